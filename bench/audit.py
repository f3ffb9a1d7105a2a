"""The regulator's full-chain verification (`parktrace verify`) on a large chain: events
verified per second per core, next to the raw Ed25519 verify rate measured in the same run
(the ratio is the figure to compare across machines and runs).

    .venv/bin/python bench/audit.py [--events 300000] [--per-block 1000] [--db URL]
    .venv/bin/python bench/audit.py --quick

The chain is built first with `DevChain` (every event a signed ~500-byte EPCIS event, every
block certified by a quorum), then verified from the stored bytes exactly as `parktrace
verify` does (`ledger.verify.verify_store`: hashes, Merkle roots, chain links, every
transaction and commit signature, membership rules, derived indexes). The verifier is
single-threaded, so CPU seconds of this process are core-seconds. `bench/verify.py` does the
same on a 10,000-transaction chain; this one reuses its raw-rate measurement.

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import common
from verify import raw_verify_rate  # bench/verify.py

from ledger.store import Store
from ledger.verify import verify_store
from traceability.validity import trace_rules

TARGET_PER_CORE = 5000


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
    args = p.parse_args()
    if args.quick:
        args.events, args.per_block = 2000, 200

    tmp = Path(tempfile.mkdtemp(prefix="parktrace-bench-audit-"))
    drop: Callable[[], None] | None = None
    try:
        directory = tmp / "consortium"
        consortium = common.sample_consortium(directory)
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
        raw = raw_verify_rate(1.0 if args.quick else 3.0)
        common.log(f"built in {build.wall:.0f} s; raw verify {raw:.0f}/s; verifying")
        with common.Stopwatch() as audit:
            report = verify_store(store, consortium.genesis, rules=trace_rules)
        store.close()
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)
    if not report.ok:
        raise SystemExit(f"the chain fails verification: {report.problem}")

    per_core = report.transactions / audit.cpu
    result = {
        "db": kind,
        "events": report.transactions,
        "blocks": report.blocks,
        "signatures": report.signatures,
        "build_seconds": round(build.wall, 1),
        "verify_wall_seconds": round(audit.wall, 2),
        "verify_cpu_seconds": round(audit.cpu, 2),
        "events_per_second_per_core": round(per_core),
        "events_per_second_wall": round(report.transactions / audit.wall),
        "raw_signature_verifies_per_second_per_core": round(raw),
        "ratio_events_to_raw_signatures": common.ratio(per_core, raw),
        "target_events_per_second_per_core": TARGET_PER_CORE,
    }
    figures = {
        "db": kind,
        "events": report.transactions,
        "events/s per core": round(per_core),
        "raw verifies/s": round(raw),
        "ratio to raw": result["ratio_events_to_raw_signatures"],
        "verify wall s": round(audit.wall, 1),
    }
    common.emit(
        "audit",
        result,
        figures,
        args,
        title="Full-chain verification (`parktrace verify`): events per second per core.",
    )


if __name__ == "__main__":
    sys.exit(main())
