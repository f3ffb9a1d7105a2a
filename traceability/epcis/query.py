"""A useful subset of the EPCIS 2.0 SimpleEventQuery over the API's event index, answered
as EPCISQueryDocuments.

Supported parameters (multiple values separated by '|', as in the EPCIS REST binding):
eventType; GE_/LT_eventTime and GE_/LT_recordTime; EQ_action, EQ_bizStep,
EQ_disposition, EQ_readPoint, EQ_bizLocation, EQ_transformationID, EQ_eventID;
MATCH_epc, MATCH_parentID, MATCH_inputEPC, MATCH_outputEPC, MATCH_anyEPC,
MATCH_epcClass, MATCH_inputEPCClass, MATCH_outputEPCClass, MATCH_anyEPCClass (exact
identifiers; URN and Digital Link spellings of one identifier match each other);
EXISTS_errorDeclaration; WD_readPoint and WD_bizLocation (this ledger holds no location
hierarchy, so a location's descendants are itself); eventCountLimit (at most so many) and
maxEventCount (more is an error); the event-level filters of `traceability.epcis.filters`
(quantities, persistent dispositions, error declarations, sensor data); orderBy
(eventTime, recordTime), orderDirection (ASC, DESC); perPage and nextPageToken for
paging. Anything else is refused by name, never ignored: a typo in a filter must not
silently widen the result.

A nextPageToken is the query itself and the position of the last event served, encoded
and checked on the way back in: nothing is kept on the node that minted it, and since
every node holds the same ledger in the same order, any node continues the same page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select

from ledger.errors import TooLargeError
from ledger.timefmt import now
from traceability.epcis import cbv
from traceability.epcis.context import DEFAULT_CONTEXT
from traceability.epcis.filters import EVENT_FILTERS, QueryParameterError, predicate
from traceability.epcis.index import (
    EventIndex,
    IndexedEvent,
    canonical_identifier,
    events,
    identifiers,
    time_micros,
)
from traceability.epcis.rules import EVENT_TYPES, TIME_EXAMPLE

LEDGER_NAMESPACE = "https://ns.parktrace.example/epcis/"
QUERY_CONTEXT = [DEFAULT_CONTEXT, {"parktrace": LEDGER_NAMESPACE}]
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000

_MATCH_ROLES = {
    "MATCH_epc": ("epc",),
    "MATCH_parentID": ("parent",),
    "MATCH_inputEPC": ("input",),
    "MATCH_outputEPC": ("output",),
    "MATCH_anyEPC": ("epc", "parent", "input", "output"),
    "MATCH_epcClass": ("class",),
    "MATCH_inputEPCClass": ("input_class",),
    "MATCH_outputEPCClass": ("output_class",),
    "MATCH_anyEPCClass": ("class", "input_class", "output_class"),
}
_EQ_COLUMNS = {
    "EQ_action": "action",
    "EQ_bizStep": "biz_step",
    "EQ_disposition": "disposition",
    "EQ_readPoint": "read_point",
    "EQ_bizLocation": "biz_location",
    "EQ_transformationID": "transformation_id",
    "EQ_eventID": "event_id",
    # Without a location hierarchy in the ledger, "with descendants" is the location itself.
    "WD_readPoint": "read_point",
    "WD_bizLocation": "biz_location",
}
_TIMES = {
    "GE_eventTime": ("event_time_us", ">="),
    "LT_eventTime": ("event_time_us", "<"),
    "GE_recordTime": ("record_time_us", ">="),
    "LT_recordTime": ("record_time_us", "<"),
}
FILTERS = (
    "eventType",
    *_TIMES,
    *_EQ_COLUMNS,
    *_MATCH_ROLES,
    "EXISTS_errorDeclaration",
    *EVENT_FILTERS,
    "eventCountLimit",
    "maxEventCount",
    "orderBy",
    "orderDirection",
)
PARAMETERS = (*FILTERS, "perPage", "nextPageToken")
#: Rows read back at a time when event-level filters leave some out.
SCAN_BATCH = 500


@dataclass(frozen=True)
class EventQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    per_page: int = DEFAULT_PER_PAGE
    after: tuple[int, int] | None = None  # (sort key, log index) of the last event served

    @classmethod
    def from_params(cls, params: dict[str, str]) -> EventQuery:
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise QueryParameterError(
                f"query parameter {unknown[0]!r} is not supported by this node; supported: "
                + ", ".join(PARAMETERS)
            )
        per_page = _per_page(params.get("perPage"))
        token = params.get("nextPageToken")
        if token is not None:
            filters, after = decode_token(token)
            return cls(filters, per_page, after)
        filters = {k: _values(k, v) for k, v in params.items() if k in FILTERS}
        query = cls(filters, per_page)
        query.statement()  # every value checked now, before anything runs
        predicate(filters)
        return query

    def limits(self) -> tuple[int | None, int | None]:
        """(eventCountLimit, maxEventCount), each None when not given."""
        return _count(self.filters, "eventCountLimit"), _count(self.filters, "maxEventCount")

    # -- SQL ---------------------------------------------------------------------------
    def _order(self) -> tuple[Any, bool]:
        by = self.filters.get("orderBy", ["recordTime"])[0]
        if by not in ("eventTime", "recordTime"):
            raise QueryParameterError(f"orderBy: {by!r} is not eventTime or recordTime")
        default = "DESC" if "orderBy" in self.filters else "ASC"
        direction = self.filters.get("orderDirection", [default])[0]
        if direction not in ("ASC", "DESC"):
            raise QueryParameterError(f"orderDirection: {direction!r} is not ASC or DESC")
        # Record order is ledger order: the log index is the tie-free record time.
        column = events.c.event_time_us if by == "eventTime" else events.c.log_index
        return column, direction == "DESC"

    def statement(self, scope: Any = None, limit: int | None = None) -> Any:
        """The SQL of this page: `scope` further limits what the caller may see; `limit`
        rows at most (default: one page and one more, to know there is a next page)."""
        conditions = [] if scope is None else [scope]
        for name, values in self.filters.items():
            if name == "eventType":
                bad = [v for v in values if v not in EVENT_TYPES]
                if bad:
                    raise QueryParameterError(f"eventType: {bad[0]!r} is not an EPCIS event type")
                conditions.append(events.c.event_type.in_(values))
            elif name in _TIMES:
                column, op = _TIMES[name]
                moment = time_micros(values[0])
                if moment is None or len(values) != 1:
                    raise QueryParameterError(
                        f"{name}: expected one RFC 3339 time with offset like {TIME_EXAMPLE}"
                    )
                col = getattr(events.c, column)
                conditions.append(col >= moment if op == ">=" else col < moment)
            elif name in _EQ_COLUMNS:
                conditions.append(getattr(events.c, _EQ_COLUMNS[name]).in_(_eq(name, values)))
            elif name in _MATCH_ROLES:
                wanted = [canonical_identifier(v) for v in values]
                matching = select(identifiers.c.log_index).where(
                    identifiers.c.identifier.in_(wanted),
                    identifiers.c.role.in_(_MATCH_ROLES[name]),
                )
                conditions.append(events.c.log_index.in_(matching))
            elif name == "EXISTS_errorDeclaration":
                conditions.append(events.c.error_declaration.is_(True))
            elif name in ("eventCountLimit", "maxEventCount"):
                _count(self.filters, name)
        column, descending = self._order()
        if self.after is not None:
            key, log_index = self.after
            if column is events.c.log_index:
                conditions.append(column < log_index if descending else column > log_index)
            elif descending:
                conditions.append(
                    or_(column < key, and_(column == key, events.c.log_index < log_index))
                )
            else:
                conditions.append(
                    or_(column > key, and_(column == key, events.c.log_index > log_index))
                )
        ties = events.c.log_index
        order = [column.desc(), ties.desc()] if descending else [column, ties]
        rows = self.per_page + 1 if limit is None else limit
        return select(events).where(*conditions).order_by(*order).limit(rows)

    def sort_key(self, row: Any) -> int:
        column, _ = self._order()
        return row.event_time_us if column is events.c.event_time_us else row.log_index

    def after_row(self, row: Any) -> EventQuery:
        """The same query, continuing after `row`."""
        return EventQuery(self.filters, self.per_page, (self.sort_key(row), row.log_index))

    def next_token(self, last: Any) -> str:
        data = {"filters": self.filters, "after": [self.sort_key(last), last.log_index]}
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _per_page(value: str | None) -> int:
    if value is None:
        return DEFAULT_PER_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PER_PAGE:
        raise QueryParameterError(f"perPage: expected a whole number from 1 to {MAX_PER_PAGE}")
    return int(value)


def _count(filters: dict[str, list[str]], name: str) -> int | None:
    values = filters.get(name)
    if values is None:
        return None
    if len(values) != 1 or not values[0].isdigit() or int(values[0]) < 1:
        raise QueryParameterError(f"{name}: expected one whole number of at least 1")
    return int(values[0])


def _values(name: str, text: str) -> list[str]:
    if name in ("EXISTS_errorDeclaration",):
        return [text]
    values = [v for v in text.split("|")]
    if not values or any(not v or len(v) > 1024 for v in values):
        raise QueryParameterError(f"{name}: expected one or more values separated by '|'")
    return values


def _eq(name: str, values: list[str]) -> list[str]:
    if name == "EQ_bizStep":
        return [cbv.normalize(v, cbv.BIZ_STEP) for v in values]
    if name == "EQ_disposition":
        return [cbv.normalize(v, cbv.DISPOSITION) for v in values]
    if name in ("EQ_readPoint", "EQ_bizLocation"):
        return [canonical_identifier(v) for v in values]
    return values


def decode_token(token: str) -> tuple[dict[str, list[str]], tuple[int, int]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        filters = data["filters"]
        key, log_index = data["after"]
        if not isinstance(filters, dict) or not all(
            k in FILTERS and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in filters.items()
        ):
            raise ValueError("bad filters")
        if not isinstance(key, int) or not isinstance(log_index, int):
            raise ValueError("bad position")
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise QueryParameterError("nextPageToken: not a page token of this ledger") from exc
    return filters, (key, log_index)


def _matching(
    index: EventIndex, query: EventQuery, scope: Any, wanted: int
) -> tuple[list[Any], bool]:
    """Up to `wanted` rows in query order, and whether more follow. Event-level filters are
    judged on each row read back, in batches, so a page is full whatever they leave out."""
    test = predicate(query.filters)
    if test is None:
        rows = index.run(query.statement(scope, wanted + 1))
        return rows[:wanted], len(rows) > wanted
    found: list[Any] = []
    batch = max(SCAN_BATCH, wanted + 1)
    while True:
        rows = index.run(query.statement(scope, batch))
        for row in rows:
            if test(json.loads(row.event)):
                if len(found) == wanted:
                    return found, True
                found.append(row)
        if len(rows) < batch:
            return found, False
        query = query.after_row(rows[-1])


def run_query(
    index: EventIndex, query: EventQuery, scope: Any = None
) -> tuple[list[IndexedEvent], str | None]:
    """One page of events and the token of the next page (None on the last page). `scope`:
    an SQL condition on `events` limiting what the caller may see (None: everything)."""
    from traceability.epcis.index import to_indexed

    count_limit, max_count = query.limits()
    if max_count is not None and query.after is None:
        _, more = _matching(index, EventQuery(query.filters, max_count), scope, max_count)
        if more:
            raise TooLargeError(
                f"maxEventCount: more than {max_count} events match; narrow the query "
                "[epcisException:QueryTooLargeException]"
            )
    wanted = query.per_page if count_limit is None else min(query.per_page, count_limit)
    page, more = _matching(index, query, scope, wanted)
    if count_limit is not None:
        # eventCountLimit counts across pages: the next token carries what is left.
        left = count_limit - len(page)
        more = more and left > 0
        query = EventQuery({**query.filters, "eventCountLimit": [str(left)]}, query.per_page)
    token = query.next_token(page[-1]) if more and page else None
    return [to_indexed(r) for r in page], token


def ledger_view(item: IndexedEvent) -> dict[str, Any]:
    """An event as queries show it: recordTime is its block's time, and a namespaced
    extension says where in the ledger it is (for receipts)."""
    event = dict(item.event)
    if "eventID" not in event and item.event_id:
        event["eventID"] = item.event_id  # the GS1 hash ID, as the binding asks
    event["recordTime"] = item.record_time
    event["parktrace:ledger"] = {
        "parktrace:transaction": item.tx_id,
        "parktrace:height": item.height,
        "parktrace:logIndex": item.log_index,
    }
    return event


def query_document(items: list[IndexedEvent], query_name: str = "SimpleEventQuery") -> dict:
    return {
        "@context": QUERY_CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now(),
        "epcisBody": {
            "queryResults": {
                "queryName": query_name,
                "resultsBody": {"eventList": [ledger_view(i) for i in items]},
            }
        },
    }
