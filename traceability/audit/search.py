"""Search the committed events for an audit: by organisation (who signed them), product
identifier, lot, bizStep and event-time range; as JSON rows or as CSV for a spreadsheet.

Reads the API's event index (api.epcis.index), so identifiers match in any GS1 spelling
(EPC URN or Digital Link) and bizSteps in any CBV spelling.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ledger.membership import Membership
from traceability.epcis import cbv
from traceability.epcis.index import (
    CLASS_ROLES,
    EventIndex,
    IndexedEvent,
    canonical_identifier,
    events,
    identifiers,
    time_micros,
    to_indexed,
)
from traceability.errors import InvalidRequestError

MAX_ROWS = 10_000
CSV_COLUMNS = (
    "eventTime",
    "recordTime",
    "eventType",
    "action",
    "bizStep",
    "disposition",
    "organization",
    "signer",
    "readPoint",
    "bizLocation",
    "identifiers",
    "eventID",
    "transaction",
    "height",
    "logIndex",
)


@dataclass(frozen=True)
class Filters:
    organization: str | None = None
    identifier: str | None = None
    lot: str | None = None
    biz_step: str | None = None
    since: str | None = None  # eventTime >=, RFC 3339
    until: str | None = None  # eventTime <
    limit: int = 1000

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def named_in(event: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if isinstance(event.get("parentID"), str):
        found.append(event["parentID"])
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        found += [e for e in event.get(key) or () if isinstance(e, str)]
    for key in CLASS_ROLES:
        found += [
            q["epcClass"]
            for q in event.get(key) or ()
            if isinstance(q, dict) and isinstance(q.get("epcClass"), str)
        ]
    return found


def _location(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value.get("id") if isinstance(value, dict) else None


def event_row(item: IndexedEvent, membership: Membership) -> dict[str, Any]:
    """One event as the audit shows it: who signed it, what, where, and its ledger place."""
    event = item.event
    member = membership.member(item.signer)
    return {
        "eventTime": event.get("eventTime"),
        "recordTime": item.record_time,
        "eventType": event.get("type"),
        "action": event.get("action"),
        "bizStep": event.get("bizStep"),
        "disposition": event.get("disposition"),
        "organization": member.org if member else None,
        "signer": f"{member.credential.common_name}@{member.org}" if member else item.signer,
        "readPoint": _location(event, "readPoint"),
        "bizLocation": _location(event, "bizLocation"),
        "identifiers": named_in(event),
        "eventID": item.event_id,
        "transaction": item.tx_id,
        "height": item.height,
        "logIndex": item.log_index,
    }


def _micros(value: str, name: str) -> int:
    found = time_micros(value)
    if found is None:
        raise InvalidRequestError(f"{name}: expected an RFC 3339 time with offset, got {value!r}")
    return found


def search(index: EventIndex, membership: Membership, filters: Filters) -> list[dict[str, Any]]:
    """Events matching every given filter, by event time then ledger order."""
    if not 1 <= filters.limit <= MAX_ROWS:
        raise InvalidRequestError(f"limit: expected 1 to {MAX_ROWS}")
    statement = select(events)
    if filters.organization is not None:
        signers = [fp for fp, m in membership.members.items() if m.org == filters.organization]
        if filters.organization not in membership.organizations:
            raise InvalidRequestError(
                f"organization: {filters.organization!r} is not a member of this consortium",
            )
        statement = statement.where(events.c.signer.in_(signers))
    for value, roles in (
        (filters.identifier, None),
        (filters.lot, ("class", "input_class", "output_class")),
    ):
        if value is not None:
            naming = select(identifiers.c.log_index).where(
                identifiers.c.identifier == canonical_identifier(value)
            )
            if roles is not None:
                naming = naming.where(identifiers.c.role.in_(roles))
            statement = statement.where(events.c.log_index.in_(naming))
    if filters.biz_step is not None:
        statement = statement.where(
            events.c.biz_step == cbv.normalize(filters.biz_step, cbv.BIZ_STEP)
        )
    if filters.since is not None:
        statement = statement.where(events.c.event_time_us >= _micros(filters.since, "since"))
    if filters.until is not None:
        statement = statement.where(events.c.event_time_us < _micros(filters.until, "until"))
    statement = statement.order_by(events.c.event_time_us, events.c.log_index).limit(filters.limit)
    return [event_row(to_indexed(r), membership) for r in index.run(statement)]


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV (RFC 4180, header row); lists joined with spaces, as `parktrace import` reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = []
        for column in CSV_COLUMNS:
            value = row.get(column)
            if isinstance(value, list):
                value = " ".join(value)
            cells.append(_safe("" if value is None else str(value)))
        writer.writerow(cells)
    return out.getvalue()


def _safe(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
