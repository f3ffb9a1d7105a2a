"""The virtual network: point-to-point messages with the fault plan's delays, loss,
duplication and partitions. Payloads are message objects (honest senders) or `Raw` JSON
or bytes (hostile senders), which the receiving host must decode like any peer input."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.block import Vote
from nodes.consensus.messages import Decision

from .clock import Clock
from .faults import FaultPlan


@dataclass(frozen=True)
class Raw:
    """Untrusted wire content: a JSON value or bytes."""

    data: Any


class Network:
    def __init__(
        self,
        clock: Clock,
        plan: FaultPlan,
        rng: random.Random,
        deliver: Callable[[int, int, Any], None],
    ) -> None:
        self.clock, self.plan, self.rng, self._deliver = clock, plan, rng, deliver
        self.sent = self.lost = 0

    def send(self, src: int, dst: int, payload: Any) -> None:
        self.sent += 1
        plan, rng, now = self.plan, self.rng, self.clock.now
        if now >= plan.heal:
            self.clock.after(
                rng.uniform(0.001, plan.post_heal_delay), self._deliver, dst, src, payload
            )
            return
        if (
            any(p.splits(src, dst, now) for p in plan.partitions)
            or rng.random() < plan.loss
            or (plan.value_loss and _for_value(payload) and rng.random() < plan.value_loss)
            or (isinstance(payload, Decision) and rng.random() < plan.decision_loss)
        ):
            self.lost += 1
            return
        copies = 2 if rng.random() < plan.duplicate else 1
        slow = plan.slow_commit if _commit_traffic(payload) else plan.slow
        for _ in range(copies):
            self.clock.after(self._delay(slow), self._deliver, dst, src, payload)

    def _delay(self, slow: float) -> float:
        if self.rng.random() < slow:
            return self.rng.uniform(0.0, self.plan.slow_max)
        return 0.001 + self.rng.expovariate(1.0 / self.plan.mean_delay)


def _for_value(payload: Any) -> bool:
    """Votes for a value: losing some makes nodes see different quorums, the situation that
    locks exist for."""
    return isinstance(payload, Vote) and payload.block_hash is not None


def _commit_traffic(payload: Any) -> bool:
    """Precommits and decisions: slowing them down races timeouts against commits."""
    return isinstance(payload, Decision) or (
        isinstance(payload, Vote) and payload.type == "precommit"
    )
