"""Storage per event: bytes the ledger's store takes on disk (SQLite) and in its relations
(PostgreSQL), indexes included, divided by the events of a chain of realistic signed
~500-byte EPCIS events, in the same run for both databases.

    .venv/bin/python bench/storage.py [--events 100000] [--per-block 500] [--pg URL]
    .venv/bin/python bench/storage.py --quick

SQLite: the database file after a WAL checkpoint (page_count x page_size), split by table
and index with the `dbstat` table. PostgreSQL: `pg_total_relation_size` (heap, TOAST,
indexes) of every table of the ledger's schema in a scratch database (created, then
dropped), after VACUUM; the database's own size, catalogs included, is printed beside it.
`--pg none` skips PostgreSQL. The API's event index is derived data outside the ledger's
store (in memory by default) and is not counted.

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import common

from devtools.samples import sample_event
from ledger.store import Store

TARGET_BYTES = 1536
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLES = (
    "blocks",
    "transactions",
    "product_index",
    "claims",
    "tallies",
    "log_nodes",
    "meta",
    "alembic_version",
)


def sqlite_sizes(path: Path) -> dict[str, Any]:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        objects = dict(
            connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        )
        kinds = dict(connection.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
    finally:
        connection.close()
    by_table: dict[str, int] = {}
    for name, size in objects.items():
        table = kinds.get(name, name)  # sqlite_autoindex_… rows name their table
        if name.startswith("sqlite_autoindex_"):
            table = name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
        by_table[table] = by_table.get(table, 0) + size
    return {
        "total_bytes": pages * page_size,
        "file_bytes": path.stat().st_size,
        "free_pages": free,
        "objects": dict(sorted(objects.items(), key=lambda kv: -kv[1])),
        "by_table": dict(sorted(by_table.items(), key=lambda kv: -kv[1])),
    }


def pg_sizes(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        by_table = {}
        objects = {}
        for table in TABLES:
            total, heap, indexes = conn.execute(
                "SELECT pg_total_relation_size(c.oid), pg_table_size(c.oid), "
                "pg_indexes_size(c.oid) FROM pg_class c WHERE c.relname = %s "
                "AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
                (table,),
            ).fetchone() or (0, 0, 0)
            by_table[table] = total
            objects[f"{table} (heap+toast)"] = heap
            objects[f"{table} (indexes)"] = indexes
        database = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {
        "total_bytes": sum(by_table.values()),
        "database_bytes": database,
        "objects": dict(sorted(objects.items(), key=lambda kv: -kv[1])),
        "by_table": dict(sorted(by_table.items(), key=lambda kv: -kv[1])),
    }


def measure(kind: str, url: str, directory: Path, events: int, per_block: int) -> dict[str, Any]:
    store = Store(url)
    common.log(f"{kind}: building a chain of {events} events")
    with common.Stopwatch() as build:
        chain = common.build_chain(store, directory, events, per_block=per_block)
    blocks = chain.state.height
    store.close()
    sizes = sqlite_sizes(Path(url.split("///", 1)[1])) if kind == "sqlite" else pg_sizes(url)
    per_event = sizes["total_bytes"] / events
    envelopes = sizes["by_table"].get("transactions", 0)
    common.log(f"{kind}: {per_event:.0f} bytes per event")
    return {
        "events": events,
        "blocks": blocks,
        "build_seconds": round(build.wall, 1),
        "bytes_per_event": round(per_event),
        "fraction_of_target": common.ratio(per_event, TARGET_BYTES),
        "transactions_table_bytes_per_event": round(envelopes / events),
        **sizes,
    }


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--per-block", type=int, default=500)
    p.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL, or 'none'")
    args = p.parse_args()
    if args.quick:
        args.events, args.per_block = 1000, 100

    tmp = Path(tempfile.mkdtemp(prefix="parktrace-bench-storage-"))
    results: dict[str, Any] = {}
    try:
        directory = tmp / "consortium"
        common.sample_consortium(directory)
        (_, envelope), *_ = next(common.signed_envelopes(directory, 0, 1, workers=1))
        envelope_bytes = len(envelope.encode())
        event = sample_event(0)[1]["event"]
        payload_bytes = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        results["sqlite"] = measure(
            "sqlite", f"sqlite:///{tmp / 'chain.db'}", directory, args.events, args.per_block
        )
        if args.pg != "none":
            from audit import pg_database

            url, drop = pg_database(args.pg, "parktrace_bench_storage")
            try:
                results["postgresql"] = measure(
                    "postgresql", url, directory, args.events, args.per_block
                )
            finally:
                drop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "events": args.events,
        "per_block": args.per_block,
        "event_json_bytes": payload_bytes,
        "signed_envelope_bytes": envelope_bytes,
        "target_bytes_per_event": TARGET_BYTES,
        **results,
    }
    figures = {
        "events": args.events,
        "per block": args.per_block,
        "envelope B": envelope_bytes,
        "SQLite B/event": results["sqlite"]["bytes_per_event"],
        "PostgreSQL B/event": results["postgresql"]["bytes_per_event"]
        if "postgresql" in results
        else "—",
        "target B/event": TARGET_BYTES,
    }
    common.emit(
        "storage",
        result,
        figures,
        args,
        title="Bytes per event in the ledger's store, indexes included "
        "(SQLite file; PostgreSQL relations).",
    )


if __name__ == "__main__":
    sys.exit(main())
