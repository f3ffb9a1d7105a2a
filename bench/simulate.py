"""Run the consensus fault simulator over many seeds, or replay one.

    python bench/simulate.py --seeds 100000 --n 4 --start 0
    python bench/simulate.py --n 4 --replay 1234 --expect-digest <digest>

Prints JSON lines: progress while running, a summary at the end. On the first failing seed
it prints the seed, the broken invariant, the tail of the trace and the command that
replays that seed exactly (the replay recomputes the trace digest and checks it), then
exits 1. Each seed is independent and deterministic, so runs split over worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.simulator.simulation import Result, Simulation
from devtools.simulator.variants import VARIANTS


def _run(job: tuple[int, int, str]) -> Result:
    seed, n, variant = job
    return Simulation(seed, n, machine_class=VARIANTS[variant], variant=variant).run()


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


def _results(args: argparse.Namespace) -> Iterator[Result]:
    jobs = ((seed, args.n, args.variant) for seed in range(args.start, args.start + args.seeds))
    if args.workers <= 1:
        yield from map(_run, jobs)
        return
    with Pool(args.workers) as pool:
        yield from pool.imap(_run, jobs, chunksize=8)


def replay_command(result: Result) -> str:
    return (
        f"python bench/simulate.py --n {result.n} --variant {result.variant} "
        f"--replay {result.seed} --expect-digest {result.digest}"
    )


def run_many(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    done = failures = 0
    for result in _results(args):
        done += 1
        if not result.ok:
            failures += 1
            sim = Simulation(
                result.seed,
                result.n,
                machine_class=VARIANTS[result.variant],
                variant=result.variant,
            )
            sim.run()  # again, in this process, for the trace
            _emit(
                {
                    "failure": {
                        "seed": result.seed,
                        "n": result.n,
                        "invariant": result.violations[0].invariant,
                        "detail": result.violations[0].detail,
                        "digest": result.digest,
                        "plan": result.plan,
                        "replay": replay_command(result),
                    },
                    "trace_tail": sim.trace.lines(last=args.trace_lines),
                }
            )
            if not args.keep_going:
                break
        if done % args.progress == 0:
            elapsed = time.perf_counter() - started
            _emit(
                {"progress": done, "failures": failures, "seeds_per_sec": round(done / elapsed, 2)}
            )
    elapsed = time.perf_counter() - started
    _emit(
        {
            "summary": {
                "n": args.n,
                "variant": args.variant,
                "start": args.start,
                "seeds": done,
                "failures": failures,
                "seconds": round(elapsed, 2),
                "seeds_per_sec": round(done / elapsed, 2) if elapsed else None,
            }
        }
    )
    return 1 if failures else 0


def replay(args: argparse.Namespace) -> int:
    sim = Simulation(
        args.replay, args.n, machine_class=VARIANTS[args.variant], variant=args.variant
    )
    result = sim.run()
    for line in sim.trace.lines(last=args.trace_lines or None):
        print(line)
    _emit({"replay": result.summary()})
    if args.expect_digest and args.expect_digest != result.digest:
        _emit({"error": "trace digest differs: this is not the same run", "got": result.digest})
        return 2
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="validators (f = (n-1)//3)")
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="correct")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--progress", type=int, default=1000, help="seeds between reports")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at a failure")
    parser.add_argument("--trace-lines", type=int, default=60, help="trace lines to print")
    parser.add_argument("--replay", type=int, help="replay this seed and print its trace")
    parser.add_argument("--expect-digest", help="with --replay: fail unless the trace matches")
    args = parser.parse_args(argv)
    return replay(args) if args.replay is not None else run_many(args)


if __name__ == "__main__":
    sys.exit(main())
