"""The regulator's full-chain verification (`parktrace verify`) on a large chain: events
verified per second per core, next to the raw Ed25519 verify rate measured in the same run
(the ratio is the figure to compare across machines and runs), and the speed-up of its
worker pool: `parktrace verify --workers N` against `--workers 1` on the same chain, in
the same run (the target is 1.7× on two cores).

    .venv/bin/python bench/audit.py [--events 300000] [--per-block 1000] [--db URL] [--workers 2]
    .venv/bin/python bench/audit.py --quick

The chain is built first with `DevChain` (every event a signed ~500-byte EPCIS event, every
block certified by a quorum), then verified from the stored bytes exactly as `parktrace
verify` does (`ledger.verify.verify_store`: hashes, Merkle roots, chain links, every
transaction and commit signature, membership rules, derived indexes). The verifier is
single-threaded, so CPU seconds of this process are core-seconds. `bench/verify.py` does the
same on a 10,000-transaction chain; this one reuses its raw-rate measurement. Each
verification is the `parktrace verify --json` command itself, a process of its own, timed
from outside (wall clock, and the CPU seconds of it and its workers). The machine's load
average when the runs start is recorded: other work on the machine takes cores from the
pool and shows as a lower speed-up.

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import common
from verify import raw_verify_rate  # bench/verify.py

from ledger.store import Store

TARGET_PER_CORE = 5000
TARGET_SPEEDUP_2_CORES = 1.7


def run_verify(url: str, genesis: Path, workers: int) -> tuple[dict, float, float]:
    """`parktrace verify --json --workers N`: its report, wall and CPU seconds (with the
    CPU of its worker processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "cli", "verify", "--db", url, "--genesis", str(genesis)]
    done = subprocess.run(
        [*command, "--json", "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"parktrace verify failed: {done.stderr}")
    return json.loads(done.stdout), wall, cpu


def pg_database(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create a scratch database `prefix_<random>` on the server of `url`; return its URL
    and a function that drops it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    base = admin.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--per-block", type=int, default=1000)
    p.add_argument(
        "--db",
        default="sqlite",
        help="sqlite (a temporary file), or a PostgreSQL server URL (a scratch database "
        "is created on it and dropped)",
    )
    p.add_argument("--workers", type=int, default=2, help="the pool compared with one worker")
    args = p.parse_args()
    if args.quick:
        args.events, args.per_block = 2000, 200

    tmp = Path(tempfile.mkdtemp(prefix="parktrace-bench-audit-"))
    drop: Callable[[], None] | None = None
    try:
        directory = tmp / "consortium"
        common.sample_consortium(directory)
        if args.db == "sqlite":
            url, kind = f"sqlite:///{tmp / 'chain.db'}", "sqlite"
        else:
            url, drop = pg_database(args.db, "parktrace_bench_audit")
            kind = "postgresql"
        store = Store(url)
        common.log(f"building a chain of {args.events} events in {kind}")
        with common.Stopwatch() as build:
            common.build_chain(
                store,
                directory,
                args.events,
                per_block=args.per_block,
                progress=lambda n: n % 50_000 == 0 and common.log(f"  {n} events"),
            )
        store.close()
        raw = raw_verify_rate(1.0 if args.quick else 3.0)
        common.log(f"built in {build.wall:.0f} s; raw verify {raw:.0f}/s; verifying")
        load = os.getloadavg()[0]
        genesis = directory / "genesis.json"
        report, one_wall, one_cpu = run_verify(url, genesis, 1)
        common.log(f"  1 worker: {one_wall:.1f} s")
        pooled, pool_wall, pool_cpu = run_verify(url, genesis, args.workers)
        common.log(f"  {args.workers} workers: {pool_wall:.1f} s")
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)
    for got in (report, pooled):
        if not got["ok"]:
            raise SystemExit(f"the chain fails verification: {got['problem']}")
    if {k: v for k, v in report.items() if k != "seconds"} != {
        k: v for k, v in pooled.items() if k != "seconds"
    }:
        raise SystemExit("the pool's verdict differs from the single process's")

    events = report["transactions"]
    per_core = events / one_cpu
    speedup = one_wall / pool_wall
    result = {
        "db": kind,
        "events": events,
        "blocks": report["blocks"],
        "signatures": report["signatures"],
        "build_seconds": round(build.wall, 1),
        "load_average_at_start": round(load, 2),
        "verify_wall_seconds_1_worker": round(one_wall, 2),
        "verify_cpu_seconds_1_worker": round(one_cpu, 2),
        "events_per_second_per_core": round(per_core),
        "events_per_second_wall_1_worker": round(events / one_wall),
        "workers": args.workers,
        "verify_wall_seconds_pool": round(pool_wall, 2),
        "verify_cpu_seconds_pool": round(pool_cpu, 2),
        "events_per_second_wall_pool": round(events / pool_wall),
        "speedup_pool_to_1_worker": round(speedup, 2),
        "target_speedup_2_cores": TARGET_SPEEDUP_2_CORES,
        "raw_signature_verifies_per_second_per_core": round(raw),
        "ratio_events_to_raw_signatures": common.ratio(per_core, raw),
        "target_events_per_second_per_core": TARGET_PER_CORE,
    }
    figures = {
        "db": kind,
        "events": events,
        "events/s per core": round(per_core),
        "raw verifies/s": round(raw),
        "ratio to raw": result["ratio_events_to_raw_signatures"],
        "1 worker s": round(one_wall, 1),
        f"{args.workers} workers s": round(pool_wall, 1),
        "speed-up": result["speedup_pool_to_1_worker"],
        "load avg": result["load_average_at_start"],
    }
    common.emit(
        "audit",
        result,
        figures,
        args,
        title="Full-chain verification (`parktrace verify`): events per second per core, "
        "and the worker pool's speed-up over one worker.",
    )


if __name__ == "__main__":
    sys.exit(main())
