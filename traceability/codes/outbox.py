"""A node's own observations until the chain holds them: the durable half of shared scans.

The resolver writes each scan, region note and report here before it answers (SQLite with
`synchronous=FULL` when given a file: a crash after the page was served loses nothing);
`nodes.scanbatch` seals what is waiting into one signed `codes.scans` transaction, keeps
that exact envelope here beside its entries, and deletes both once the transaction is
committed. A node that restarts with a sealed batch resubmits the same envelope (a
duplicate of a committed one is recognised by its id), so no entry is lost or doubled.

Until their batch commits, the node counts its own entries from here (`pending`), so a
person who scans twice in a second sees both scans; other nodes see them once
committed. Only what is needed to judge a code and serve a report is kept.

A page reads a code's pending entries on every scan, so they are kept in memory too, per
code, as read from the database and kept up by `add`; sealing leaves them as they are,
and a commit or a release (once per batch, not per scan) forgets them all.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

from ledger.errors import LedgerError

from .observations import Entry, RegionNote, Scan, entry_from_json, entry_json
from .scanbook import HISTORY_LIMIT, REGION_GRACE, micros

#: Most codes whose pending entries are kept in memory between two commits.
MAX_KEPT_CODES = 50_000

metadata = MetaData()
entries = Table(
    "outbox_entries",
    metadata,
    Column("row", String(32), primary_key=True),
    Column("code", String(300), nullable=False, index=True),
    Column("at_us", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("batch", String(64), index=True),
)
batches = Table(
    "outbox_batches",
    metadata,
    Column("tx_id", String(64), primary_key=True),
    Column("envelope", Text, nullable=False),
)


def _engine(url: str | None) -> Engine:
    if not url or url in ("sqlite://", ":memory:"):
        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    from ledger.store.store import make_engine

    return make_engine(url)


class Outbox:
    def __init__(self, url: str | None = None) -> None:
        self.engine = _engine(url)
        metadata.create_all(self.engine)
        self._lock = threading.Lock()  # one in-memory SQLite connection may be shared
        #: code -> its pending entries, oldest first (only codes read since the last commit).
        self._pending: dict[str, list[Entry]] = {}
        # Every scan is one row written before its page is answered: the statement is
        # compiled once for the database's driver and run on a pooled connection as is.
        columns = ("row", "code", "at_us", "size", "body")
        compiled = (
            insert(entries)
            .values({c: bindparam(c) for c in columns})
            .compile(dialect=self.engine.dialect)
        )
        self._insert_sql = str(compiled)
        self._insert_order = compiled.positiontup  # None: the driver takes named values

    def close(self) -> None:
        self.engine.dispose()

    def add(self, entry: Entry) -> None:
        """Keep `entry` (on disk before this returns, for a file-backed outbox)."""
        body = json.dumps(entry_json(entry), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            values = {
                "row": getattr(entry, "id", None) or secrets.token_hex(16),
                "code": entry.code,
                "at_us": micros(entry.at),
                "size": len(body.encode()),
                "body": body,
            }
            order = self._insert_order
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(
                        self._insert_sql,
                        values if order is None else tuple(values[k] for k in order),
                    )
                finally:
                    cursor.close()
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                connection.close()
            kept = self._pending.get(entry.code)
            if kept is not None:  # where the database orders it: by time
                at = micros(entry.at)
                place = len(kept)
                while place and micros(kept[place - 1].at) > at:
                    place -= 1
                kept.insert(place, entry)

    def pending(self, code: str) -> list[Entry]:
        """Every entry about `code` the chain does not hold yet, oldest first (a new list;
        its entries are shared and immutable)."""
        with self._lock:
            kept = self._pending.get(code)
            if kept is None:
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        select(entries.c.body)
                        .where(entries.c.code == code)
                        .order_by(entries.c.at_us)
                    ).all()
                if len(self._pending) >= MAX_KEPT_CODES:  # no commit for long: start afresh
                    self._pending.clear()
                kept = self._pending[code] = _entries(r.body for r in rows)
            return list(kept)

    def merged(self, committed: list[Scan], code: str) -> list[Scan]:
        """`code`'s committed scans (oldest first) with this node's pending scans and
        region notes applied as the chain will apply them (`scanbook.index_block`)."""
        pending = self.pending(code)
        known = {s.id for s in committed}
        scans = {s.id: s for s in committed}
        scans |= {e.id: e for e in pending if isinstance(e, Scan) and e.id not in known}
        for note in (e for e in pending if isinstance(e, RegionNote)):
            scan = scans.get(note.scan)
            if scan and scan.region is None and note.at - REGION_GRACE <= scan.at <= note.at:
                scans[note.scan] = replace(scan, region=note.region)
        ordered = sorted(scans.values(), key=lambda s: (s.at, s.id))
        return ordered[-HISTORY_LIMIT:]

    def find_scan(self, scan_id: str) -> Scan | None:
        with self._lock, self.engine.connect() as conn:
            body = conn.scalar(select(entries.c.body).where(entries.c.row == scan_id))
        found = _entries([body]) if body else []
        return found[0] if found and isinstance(found[0], Scan) else None

    def waiting(self, budget: int) -> list[tuple[str, Entry]]:
        """Unsealed entries, oldest first, up to about `budget` bytes of payload (at least
        one, however large)."""
        with self._lock, self.engine.connect() as conn:
            rows = conn.execute(
                select(entries.c.row, entries.c.size, entries.c.body)
                .where(entries.c.batch.is_(None))
                .order_by(entries.c.at_us, entries.c.row)
                .limit(1000)
            ).all()
        chosen: list[tuple[str, Entry]] = []
        used = 0
        for row in rows:
            if chosen and used + row.size > budget:
                break
            found = _entries([row.body])
            if found:
                chosen.append((row.row, found[0]))
                used += row.size
        return chosen

    def seal(self, tx_id: str, envelope: str, rows: list[str]) -> None:
        """Record that `rows` travel in the signed transaction `envelope`."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(insert(batches).values(tx_id=tx_id, envelope=envelope))
            conn.execute(update(entries).where(entries.c.row.in_(rows)).values(batch=tx_id))

    def sealed(self) -> list[tuple[str, str]]:
        """(id, envelope) of every batch sent but not known to be committed."""
        with self._lock, self.engine.connect() as conn:
            return [(r.tx_id, r.envelope) for r in conn.execute(select(batches)).all()]

    def done(self, tx_id: str) -> None:
        """The batch is committed: the chain holds its entries now."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(delete(entries).where(entries.c.batch == tx_id))
            conn.execute(delete(batches).where(batches.c.tx_id == tx_id))
            self._pending.clear()

    def release(self, tx_id: str) -> None:
        """The batch can never commit: its entries wait for another one."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(entries).where(entries.c.batch == tx_id).values(batch=None))
            conn.execute(delete(batches).where(batches.c.tx_id == tx_id))
            self._pending.clear()

    def count(self) -> int:
        with self._lock, self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(entries)) or 0


def _entries(bodies: Any) -> list[Entry]:
    out: list[Entry] = []
    for body in bodies:
        try:
            out.append(entry_from_json(json.loads(body)))
        except (LedgerError, ValueError):  # written by this node; an unreadable row is skipped
            continue
    return out
