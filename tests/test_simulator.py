"""The fault simulator as a test: the CI seeds, proof that it catches broken variants,
evidence of equivocation committed within two heights, exact replay, and the long-run script.

`python bench/simulate.py` runs any number of further seeds by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.simulator.faults import BEHAVIOURS, FaultPlan
from devtools.simulator.simulation import Result, Simulation, run
from devtools.simulator.variants import VARIANTS
from ledger.evidence import check_evidence

ROOT = Path(__file__).resolve().parent.parent
#: The seeds CI runs on every change: 1,000 runs over both cluster sizes.
CI_SEEDS = {4: range(600), 7: range(400)}


def ci_runs(variant: str = "correct", **kwargs) -> Iterator[Result]:
    for n, seeds in CI_SEEDS.items():
        for seed in seeds:
            yield run(seed, n, machine_class=VARIANTS[variant], variant=variant, **kwargs)


def replay_hint(result: Result) -> str:
    return (
        f"seed {result.seed} n={result.n}: {result.violations[0]} -- replay with: python "
        f"bench/simulate.py --n {result.n} --variant {result.variant} --replay {result.seed} "
        f"--expect-digest {result.digest}"
    )


@pytest.mark.slow
def test_ci_seeds_hold_every_invariant():
    started = time.perf_counter()
    failures, seen = [], Counter()
    behaviours: set[str] = set()
    for result in ci_runs():
        if not result.ok:
            failures.append(replay_hint(result))
        seen.update({k: v for k, v in result.stats.items() if isinstance(v, int)})
        seen["evidence_committed"] += len(result.evidence_delay)
        seen["crash_runs"] += bool(result.plan["crashes"])
        seen["partition_runs"] += bool(result.plan["partitions"])
        for kinds in result.plan["byzantine"].values():
            behaviours.update(kinds)
    elapsed = time.perf_counter() - started
    total = sum(len(seeds) for seeds in CI_SEEDS.values())
    print(f"\n{total} seeds in {elapsed:.1f} s: {total / elapsed:.1f} seeds/s")
    assert not failures, "\n".join(failures)
    # the runs really exercised what the simulator claims to inject
    assert behaviours == set(BEHAVIOURS)
    for what in (
        "crash_runs",
        "partition_runs",
        "evidence_committed",
        "undecodable",
        "dropped.absurd_round",
        "dropped.bad_signature",
        "dropped.round_slot_taken",
        "dropped.not_proposer",
        "dropped.bad_block_body",
    ):
        assert seen[what] > 0, what


def first_failure(variant: str, **kwargs) -> Result | None:
    return next((r for r in ci_runs(variant, **kwargs) if not r.ok), None)


def test_ignoring_the_lock_is_caught_within_the_ci_seeds():
    caught = first_failure("ignores_lock")
    assert caught is not None, "the lock-ignoring variant passed every CI seed"
    assert caught.violations[0].invariant == "locking"


def test_ignoring_the_lock_forks_the_chain_within_the_ci_seeds():
    """End to end, without the locking invariant: the same bug makes two honest nodes commit
    different blocks at one height."""
    caught = first_failure("ignores_lock", check_locking=False)
    assert caught is not None, "no CI seed turned the lock bug into a fork"
    assert caught.violations[0].invariant == "agreement"


def test_forgetting_the_sign_state_is_caught_within_the_ci_seeds():
    caught = first_failure("forgets_sign_state")
    assert caught is not None
    assert caught.violations[0].invariant == "no_double_sign"


def test_correct_machine_passes_the_seeds_that_catch_the_broken_ones():
    for variant in ("ignores_lock", "forgets_sign_state"):
        caught = first_failure(variant)
        assert caught is not None
        assert run(caught.seed, caught.n).ok


def calm_plan(byzantine: dict[int, tuple[str, ...]]) -> FaultPlan:
    """A synchronous network (delays reorder messages, nothing is lost)."""
    return FaultPlan(
        heal=0.0,
        loss=0.0,
        duplicate=0.05,
        mean_delay=0.02,
        slow=0.0,
        slow_max=0.0,
        slow_commit=0.0,
        value_loss=0.0,
        decision_loss=0.0,
        post_heal_delay=0.08,
        partitions=(),
        crashes=(),
        byzantine=byzantine,
    )


@pytest.mark.parametrize("n", [4, 7])
def test_equivocation_is_committed_as_evidence_within_two_heights(n):
    equivocator = 1
    committed = 0
    for seed in range(5):
        sim = Simulation(
            seed, n, plan=calm_plan({equivocator: ("double_vote",)}), heights_after_heal=8
        )
        result = sim.run()
        assert result.ok, replay_hint(result)
        checker = sim.checker
        settled = min(node.store.chain.height for node in sim.honest)
        for key, offence_height in checker.detected.items():
            if key in checker.offences:
                assert checker.offences[key] - offence_height <= 2, key
                committed += 1
            else:  # only offences from the last heights of the run may still be pending
                assert offence_height > settled - 2, key
        # every honest node can answer a regulator's query, and the records verify
        for node in sim.honest:
            found = node.store.evidence.query(validator=f"v{equivocator}")
            assert len(found) == sum(1 for k in checker.offences if f"/v{equivocator}/" in k)
            for item in found:
                check_evidence(item.record, sim.checker.chain.validators)
                assert item.block_height - item.offence_height <= 2
    assert committed >= 10


def test_replay_is_exact():
    seed, n = 21, 4
    first = Simulation(seed, n)
    a = first.run()
    run(seed + 1, n)  # nothing carries over from one run to the next
    second = Simulation(seed, n)
    b = second.run()
    assert a.digest == b.digest and first.trace.lines() == second.trace.lines()
    assert a.summary() == b.summary()
    assert len(first.trace.events) > 100


def script(*args: str, hashseed: str = "1") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def test_script_reports_a_failure_with_a_replay_command_that_reproduces_it():
    out = script("--n", "4", "--seeds", "40", "--variant", "ignores_lock", "--workers", "1")
    assert out.returncode == 1, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    failure = next(line["failure"] for line in lines if "failure" in line)
    assert failure["invariant"] == "locking" and failure["seed"] >= 0
    assert failure["replay"].startswith("python bench/simulate.py")
    assert any("trace_tail" in line and line["trace_tail"] for line in lines)
    # the printed command, in a process with another hash seed, takes exactly the same path
    replay = script(*failure["replay"].split()[2:], "--trace-lines", "5", hashseed="2")
    assert replay.returncode == 1, replay.stdout + replay.stderr  # the failure, reproduced
    assert "trace digest differs" not in replay.stdout
    summary = json.loads(replay.stdout.splitlines()[-1])["replay"]
    assert summary["digest"] == failure["digest"] and summary["violations"]


def test_script_runs_seeds_and_summarises():
    out = script("--n", "4", "--seeds", "12", "--start", "100", "--progress", "6", "--workers", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["progress"] for line in lines if "progress" in line] == [6, 12]
    summary = lines[-1]["summary"]
    assert (summary["seeds"], summary["failures"], summary["start"]) == (12, 0, 100)


def test_liveness_violation_is_reported_when_too_many_are_faulty():
    """Two silent validators of four exceed f = 1: the checker must say so, not hang."""
    result = run(3, 4, plan=calm_plan({0: ("silent",), 1: ("silent",)}))
    assert [v.invariant for v in result.violations] == ["liveness"]
