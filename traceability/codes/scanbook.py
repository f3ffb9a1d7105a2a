"""The committed consumer observations (`codes.scans` transactions), indexed for the
resolver's verdict and the regulator's reports: a read model of the API's event index
(`traceability.epcis.index.EventIndex` follows the chain and calls `index_block`), so
it is rebuilt from the chain like everything derived, and every node that follows the
same chain holds the same rows.

Rules a follower applies, the same on every node: an id counts once (the first
transaction to record it; a node resubmitting a batch after a crash cannot double a
scan), and a region note fills in the region of a scan of the same code that has none,
if it was made within `REGION_GRACE` of the scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, select, update

from ledger.errors import LedgerError

from .observations import Observations, Report, Scan, parse_payload

metadata = MetaData()
scans = Table(
    "api_scans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code", String(300), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("region", String(8)),
    Column("channel", String(16), nullable=False),
    Column("node", String(64), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_api_scans_code_at", scans.c.code, scans.c.at_us)
reports = Table(
    "api_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code", String(300), nullable=False, index=True),
    Column("at_us", BigInteger, nullable=False, index=True),
    Column("region", String(8)),
    Column("note", Text, nullable=False),
    Column("photo", String(64), index=True),
    Column("node", String(64), nullable=False),
    Column("tx_id", String(64), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
#: How long after a scan a region may still be added to it.
REGION_GRACE = timedelta(minutes=30)
#: The most scans of one code read back to judge it (the newest).
HISTORY_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def moment(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


#: What the index takes of one `codes.scans` transaction: log index, id, signer, payload.
Item = tuple[int, str, str, dict[str, Any]]


def index_block(conn: Any, height: int, items: Iterable[Item]) -> None:
    """Add the observations of one committed block, in ledger order, on `conn`."""
    for log_index, tx_id, signer, payload in items:
        try:
            batch: Observations = parse_payload(payload)
        except LedgerError:  # committed, so admitted; a shape it cannot read is skipped
            continue
        _add_scans(conn, batch.scans, signer, log_index)
        for note in batch.regions:
            conn.execute(
                update(scans)
                .where(
                    scans.c.id == note.scan,
                    scans.c.code == note.code,
                    scans.c.region.is_(None),
                    scans.c.at_us >= micros(note.at - REGION_GRACE),
                    scans.c.at_us <= micros(note.at),
                )
                .values(region=note.region)
            )
        _add_reports(conn, batch.reports, signer, tx_id, height, log_index)


def _new(conn: Any, table: Table, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    known = set(conn.scalars(select(table.c.id).where(table.c.id.in_(ids))))
    return set(ids) - known


def _add_scans(conn: Any, batch: tuple[Scan, ...], signer: str, log_index: int) -> None:
    fresh = _new(conn, scans, [s.id for s in batch])
    rows = [
        {
            "id": s.id,
            "code": s.code,
            "at_us": micros(s.at),
            "region": s.region,
            "channel": s.channel,
            "node": signer,
            "log_index": log_index,
        }
        for s in batch
        if s.id in fresh
    ]
    if rows:
        conn.execute(scans.insert(), rows)


def _add_reports(
    conn: Any, batch: tuple[Report, ...], signer: str, tx_id: str, height: int, log_index: int
) -> None:
    fresh = _new(conn, reports, [r.id for r in batch])
    rows = [
        {
            "id": r.id,
            "code": r.code,
            "at_us": micros(r.at),
            "region": r.region,
            "note": r.note,
            "photo": r.photo.sha256 if r.photo else None,
            "node": signer,
            "tx_id": tx_id,
            "height": height,
            "log_index": log_index,
        }
        for r in batch
        if r.id in fresh
    ]
    if rows:
        conn.execute(reports.insert(), rows)


def clear(conn: Any) -> None:
    for table in (scans, reports):
        conn.execute(table.delete())


# -- reads (statements the index runs, and what their rows mean) ----------------------------


def history_query(code: str, limit: int = HISTORY_LIMIT) -> Any:
    """The newest `limit` committed scans of `code`."""
    return (
        select(scans)
        .where(scans.c.code == code)
        .order_by(scans.c.at_us.desc(), scans.c.id)
        .limit(limit)
    )


def scan_query(scan_id: str) -> Any:
    return select(scans).where(scans.c.id == scan_id)


def to_scan(row: Any) -> Scan:
    return Scan(row.id, row.code, moment(row.at_us), row.region, row.channel)


def reports_query(code: str | None, since: datetime | None, limit: int) -> Any:
    query = select(reports).order_by(reports.c.at_us.desc(), reports.c.id).limit(limit)
    if code is not None:
        query = query.where(reports.c.code == code)
    if since is not None:
        query = query.where(reports.c.at_us >= micros(since))
    return query


def photo_query(sha256: str) -> Any:
    """The transaction holding a photo (its bytes stay in the ledger, not the index)."""
    return select(reports.c.tx_id).where(reports.c.photo == sha256).limit(1)


def report_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "at": moment(row.at_us).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "region": row.region,
        "note": row.note,
        "photo": f"/v1/audit/reports/photos/{row.photo}" if row.photo else None,
        "photoSha256": row.photo,
        "recordedBy": row.node,
        "ledger": {"transaction": row.tx_id, "height": row.height, "logIndex": row.log_index},
    }


def photo_of(payload: Any, sha256: str) -> bytes | None:
    """The photo with this digest in a committed `codes.scans` payload."""
    try:
        batch = parse_payload(payload)
    except LedgerError:
        return None
    for report in batch.reports:
        if report.photo is not None and report.photo.sha256 == sha256:
            return report.photo.data
    return None
