"""Backpressure: a node takes from clients only what the consortium commits in a couple of
seconds; past that a submission is answered 503 with Retry-After before it costs a
signature check, and the SDK waits as told and loses nothing."""

from __future__ import annotations

import pytest

from nodes.intake import DRAIN_SECONDS, BusyError, Intake


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bound_follows_the_measured_commit_rate() -> None:
    clock = Clock()
    intake = Intake(floor=100, clock=clock)
    intake.admit(pending=99)  # an idle node takes one block's worth
    with pytest.raises(BusyError) as refused:
        intake.admit(pending=100)
    assert refused.value.retry_after >= 1
    assert refused.value.headers == {"Retry-After": str(refused.value.retry_after)}
    for _ in range(10):  # 1,000 committed a second for ten seconds
        clock.now += 1
        intake.committed(1000)
    assert intake.rate() == pytest.approx(1000, rel=0.12)
    assert intake.limit() == pytest.approx(1000 * DRAIN_SECONDS, rel=0.12)
    intake.admit(pending=1500, count=400)
    with pytest.raises(BusyError) as refused:
        intake.admit(pending=intake.limit() + 3000)
    # The pending excess over the limit, at the rate it commits: three seconds.
    assert refused.value.retry_after == 3
    clock.now += 60  # nothing committed for a minute: back to the floor
    intake.committed(0)
    assert intake.limit() == 100
