"""The discovery resources of the EPCIS REST binding: which event types, EPCs, business
steps, business locations, read points and dispositions the ledger's events hold, each
read from the event index within what the reader may see, in value order, a page at a
time. Page tokens carry the last value served (stateless, valid on every node)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from traceability.epcis import cbv
from traceability.epcis.index import EventIndex, canonical_identifier, events, identifiers
from traceability.epcis.query import QueryParameterError
from traceability.epcis.rules import EVENT_TYPES

#: EPC roles of the index that name an object (not a class or a lot).
_EPC_ROLES = ("epc", "parent", "input", "output")


@dataclass(frozen=True)
class Resource:
    """One discovery resource: its column in the index and the event filter of its
    `/{value}/events` sub-resource."""

    name: str
    column: Any
    event_filter: str


RESOURCES = {
    r.name: r
    for r in (
        Resource("eventTypes", events.c.event_type, "eventType"),
        Resource("epcs", identifiers.c.identifier, "MATCH_anyEPC"),
        Resource("bizSteps", events.c.biz_step, "EQ_bizStep"),
        Resource("bizLocations", events.c.biz_location, "EQ_bizLocation"),
        Resource("readPoints", events.c.read_point, "EQ_readPoint"),
        Resource("dispositions", events.c.disposition, "EQ_disposition"),
    )
}


def _statement(resource: Resource, scope: Any, after: str | None, exact: str | None) -> Any:
    column = resource.column
    statement = select(column).distinct().where(column.is_not(None))
    if resource.name == "epcs":
        statement = statement.join(events, events.c.log_index == identifiers.c.log_index).where(
            identifiers.c.role.in_(_EPC_ROLES)
        )
    if scope is not None:
        statement = statement.where(scope)
    if after is not None:
        statement = statement.where(column > after)
    if exact is not None:
        statement = statement.where(column == exact)
    return statement.order_by(column)


def values(
    index: EventIndex, name: str, scope: Any, per_page: int, token: str | None
) -> tuple[list[str], str | None]:
    """One page of the values of resource `name` and the next page's token (or None)."""
    resource = RESOURCES[name]
    after = _decode(name, token) if token else None
    rows = index.run(_statement(resource, scope, after, None).limit(per_page + 1))
    found = [r[0] for r in rows]
    if name == "eventTypes" and token is None:
        found = sorted(set(found) | set(EVENT_TYPES))  # the standard ones are always there
        return found, None
    page = found[:per_page]
    more = len(found) > per_page
    return page, _encode(name, page[-1]) if more and page else None


def holds(index: EventIndex, name: str, scope: Any, value: str) -> bool:
    """Whether an event the reader may see holds `value` (an event type always exists)."""
    if name == "eventTypes" and value in EVENT_TYPES:
        return True
    return bool(index.run(_statement(RESOURCES[name], scope, None, normal(name, value)).limit(1)))


def normal(name: str, value: str) -> str:
    """The spelling the index holds `value` in: any GS1 spelling of a CBV value or of an
    identifier finds the same one."""
    if name == "bizSteps":
        return cbv.normalize(value, cbv.BIZ_STEP)
    if name == "dispositions":
        return cbv.normalize(value, cbv.DISPOSITION)
    if name in ("epcs", "bizLocations", "readPoints"):
        return canonical_identifier(value)
    return value


def _encode(name: str, value: str) -> str:
    raw = json.dumps({"resource": name, "after": value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(name: str, token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["resource"] != name or not isinstance(data["after"], str):
            raise ValueError("another resource's token")
        return data["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise QueryParameterError(f"nextPageToken: not a page token of /{name}") from exc
