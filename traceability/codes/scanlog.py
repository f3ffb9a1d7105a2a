"""The scan log: every resolution of a serialised code, kept by each node for itself.

It lives outside the ledger on purpose: scans are observations of one node, numerous,
and personal data in aggregate, so they are not consensus state and are never signed or
replicated. A row keeps only the code, the batch it belongs to (if genuine), the time
and, if the client offered one, a coarse region (province or country). No IP address,
no user agent, no precise location. Its own tables in its own database (in memory by
default), created on start; nothing in the ledger's schema changes.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

metadata = MetaData()
scans = Table(
    "codes_scans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code", String(256), nullable=False),
    Column("batch", String(32)),
    Column("genuine", Boolean, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("region", String(8)),
)
Index("ix_codes_scans_code_at", scans.c.code, scans.c.at_us)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How long after a scan its page may still add the region the client offers.
REGION_GRACE = timedelta(minutes=30)
#: The most scans of one code read back to judge it (the newest).
HISTORY_LIMIT = 1000


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Scan:
    id: str
    code: str
    batch: str | None
    genuine: bool
    at: datetime
    region: str | None


class ScanLog:
    def __init__(self, url: str | None = None) -> None:
        self.engine = _engine(url)
        metadata.create_all(self.engine)
        self._lock = threading.Lock()  # one in-memory SQLite connection is shared
        self._last = 0

    def close(self) -> None:
        self.engine.dispose()

    def record(
        self, code: str, batch: str | None, genuine: bool, at: datetime, region: str | None
    ) -> Scan:
        with self._lock, self.engine.begin() as conn:
            # strictly increasing times keep the order of scans even when a clock repeats
            self._last = max(_micros(at), self._last + 1)
            scan = Scan(secrets.token_hex(16), code, batch, genuine, _moment(self._last), region)
            conn.execute(
                insert(scans).values(
                    id=scan.id,
                    code=code,
                    batch=batch,
                    genuine=genuine,
                    at_us=self._last,
                    region=region,
                )
            )
        return scan

    def add_region(self, scan_id: str, code: str, region: str, now: datetime) -> bool:
        """Attach the region a client offers after the fact (the page's form), once, to a
        recent scan of the same code; False if there is no such scan."""
        with self._lock, self.engine.begin() as conn:
            done = conn.execute(
                update(scans)
                .where(
                    scans.c.id == scan_id,
                    scans.c.code == code,
                    scans.c.region.is_(None),
                    scans.c.at_us >= _micros(now - REGION_GRACE),
                )
                .values(region=region)
            )
            return bool(done.rowcount)

    def history(self, code: str, limit: int = HISTORY_LIMIT) -> list[Scan]:
        """The newest `limit` scans of `code`, oldest first."""
        with self._lock, self.engine.connect() as conn:
            rows = conn.execute(
                select(scans)
                .where(scans.c.code == code)
                .order_by(scans.c.at_us.desc(), scans.c.id)
                .limit(limit)
            ).all()
        return [
            Scan(r.id, r.code, r.batch, r.genuine, _moment(r.at_us), r.region)
            for r in reversed(rows)
        ]

    def count(self, code: str) -> int:
        with self._lock, self.engine.connect() as conn:
            return conn.scalar(select(func.count()).where(scans.c.code == code)) or 0

    def get(self, scan_id: str) -> Scan | None:
        with self._lock, self.engine.connect() as conn:
            r = conn.execute(select(scans).where(scans.c.id == scan_id)).first()
        if r is None:
            return None
        return Scan(r.id, r.code, r.batch, r.genuine, _moment(r.at_us), r.region)


def _engine(url: str | None) -> Engine:
    if not url or url in ("sqlite://", ":memory:"):
        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    from ledger.store.store import make_engine

    return make_engine(url)
