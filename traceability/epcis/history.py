"""One product's full history: its own events, the events of the containers it travelled
in while it was inside them (a mask in its box, the box in its carton), and the history
of whatever it was made from (the lots of root that went into a batch of powder).

Containment follows AggregationEvents: from the event that puts the product into a
parent (ADD, or OBSERVE of the parent with the product inside) until one that takes it
out (DELETE naming it, or naming no children, which empties the parent). Provenance
follows TransformationEvents: the inputs of the transformation that produced the product
(all events sharing a transformationID count as one transformation), up to its time.

Corrections (EPCIS 2.0 error declarations, `traceability.epcis.corrections`) are folded
into the event they correct: a declared-erroneous event stays in the history marked
`withdrawn` (when, why, by which transaction, and its corrective events, found by their
eventIDs), is not followed into containers or inputs, and the declaration itself is no
step of its own.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from traceability.epcis.index import (
    EventIndex,
    IndexedEvent,
    canonical_identifier,
    events,
    identifiers,
    to_indexed,
)
from traceability.epcis.query import ledger_view

MAX_DEPTH = 8
_LINKING = ("AggregationEvent", "TransformationEvent")
MAX_EVENTS = 5000
_FOREVER = 2**62


@dataclass(frozen=True)
class Subject:
    identifier: str  # canonical form
    given: str  # as the event that led here spelled it
    start: int  # event-time window, microseconds
    end: int
    relation: str  # self | container | input
    via: str | None  # eventID of the aggregation or transformation that links it
    depth: int


def _events_naming(index: EventIndex, identifier: str, roles: tuple[str, ...] | None = None):
    naming = select(identifiers.c.log_index).where(identifiers.c.identifier == identifier)
    if roles is not None:
        naming = naming.where(identifiers.c.role.in_(roles))
    statement = (
        select(events)
        .where(events.c.log_index.in_(naming))
        .order_by(events.c.event_time_us, events.c.log_index)
    )
    return [(to_indexed(r), r.event_time_us) for r in index.run(statement)]


def _mentions(event: dict[str, Any], keys: tuple[str, ...], identifier: str) -> bool:
    for key in keys:
        for item in event.get(key) or ():
            value = item.get("epcClass") if isinstance(item, dict) else item
            if isinstance(value, str) and canonical_identifier(value) == identifier:
                return True
    return False


def _containment_end(
    index: EventIndex, parent: str, child: str, after: int
) -> tuple[int, str | None]:
    """When `child` leaves `parent` after time `after`: (microseconds, eventTime), or
    (forever, None) if it never does."""
    for item, at in _events_naming(index, parent, ("parent",)):
        event = item.event
        if at <= after or event.get("type") != "AggregationEvent":
            continue
        if event.get("action") != "DELETE":
            continue
        listed = event.get("childEPCs") or event.get("childQuantityList")
        if not listed or _mentions(event, ("childEPCs", "childQuantityList"), child):
            return at, event.get("eventTime")
    return _FOREVER, None


def _transformation_inputs(index: EventIndex, item: IndexedEvent) -> list[tuple[str, str]]:
    """(canonical, as given) inputs of the transformation that `item` belongs to."""
    related = [item.event]
    tid = item.event.get("transformationID")
    if isinstance(tid, str):
        rows = index.run(select(events.c.event).where(events.c.transformation_id == tid))
        related = [json.loads(r.event) for r in rows]
    found: dict[str, str] = {}
    for event in related:
        for value in event.get("inputEPCList") or ():
            if isinstance(value, str):
                found.setdefault(canonical_identifier(value), value)
        for q in event.get("inputQuantityList") or ():
            if isinstance(q, dict) and isinstance(q.get("epcClass"), str):
                found.setdefault(canonical_identifier(q["epcClass"]), q["epcClass"])
    return sorted(found.items())


def product_history(index: EventIndex, identifier: str) -> dict[str, Any] | None:
    """The history document of `identifier`, or None when no event names it. Computed
    once per index height (`EventIndex.memo`): a lot's history is read on every scan of
    every item in it. Callers must not change the document."""
    return index.memo(("history", identifier), lambda: _history(index, identifier))


def _history(index: EventIndex, identifier: str) -> dict[str, Any] | None:
    root = canonical_identifier(identifier)
    queue = deque([Subject(root, identifier, -_FOREVER, _FOREVER, "self", None, 0)])
    seen_subjects: set[tuple[str, str, int, int]] = set()
    entries: dict[int, tuple[int, dict[str, Any]]] = {}  # log index -> (time, entry)
    containers: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    truncated = False
    while queue:
        subject = queue.popleft()
        key = (subject.identifier, subject.relation, subject.start, subject.end)
        if key in seen_subjects:
            continue
        seen_subjects.add(key)
        naming = _events_naming(index, subject.identifier)
        # A declaration repeats its event, so it names the same identifiers.
        declared = {i.event_id for i, _ in naming if "errorDeclaration" in i.event}
        for item, at in naming:
            if not subject.start <= at <= subject.end or "errorDeclaration" in item.event:
                continue
            if len(entries) >= MAX_EVENTS:
                truncated = True
                break
            entries.setdefault(item.log_index, (at, _entry(item, subject)))
            if subject.depth >= MAX_DEPTH:
                truncated = truncated or item.event.get("type") in _LINKING
                continue
            if item.event_id not in declared:
                _follow(index, item, at, subject, queue, containers, inputs)
    if not entries:
        return None
    ordered = [
        entry for _, entry in sorted(entries.values(), key=lambda e: (e[0], e[1]["logIndex"]))
    ]
    _mark_withdrawn(index, ordered)
    return {
        "identifier": identifier,
        "canonicalIdentifier": root,
        "containers": containers,
        "inputs": inputs,
        "truncated": truncated,
        "events": ordered,
    }


def _follow(
    index: EventIndex,
    item: IndexedEvent,
    at: int,
    subject: Subject,
    queue: deque[Subject],
    containers: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
) -> None:
    event = item.event
    kind = event.get("type")
    child_keys = ("childEPCs", "childQuantityList")
    if (
        kind == "AggregationEvent"
        and event.get("action") in ("ADD", "OBSERVE")
        and isinstance(event.get("parentID"), str)
        and _mentions(event, child_keys, subject.identifier)
    ):
        parent = canonical_identifier(event["parentID"])
        end, until = _containment_end(index, parent, subject.identifier, at)
        end = min(end, subject.end)
        containers.append(
            {
                "identifier": event["parentID"],
                "contains": subject.given,
                "from": event.get("eventTime"),
                "until": until,
                "via": item.event_id,
            }
        )
        queue.append(
            Subject(
                parent,
                event["parentID"],
                at,
                end,
                "container",
                item.event_id,
                subject.depth + 1,
            )
        )
    if kind == "TransformationEvent" and _mentions(
        event, ("outputEPCList", "outputQuantityList"), subject.identifier
    ):
        for canonical, given in _transformation_inputs(index, item):
            link = {"identifier": given, "into": subject.given, "via": item.event_id}
            if link not in inputs:
                inputs.append(link)
            queue.append(
                Subject(
                    canonical,
                    given,
                    -_FOREVER,
                    at,
                    "input",
                    event.get("eventID"),
                    subject.depth + 1,
                )
            )


def _entry(item: IndexedEvent, subject: Subject) -> dict[str, Any]:
    return {
        "eventID": item.event_id,
        "transaction": item.tx_id,
        "height": item.height,
        "logIndex": item.log_index,
        "relation": subject.relation,
        "subject": subject.given,
        "via": subject.via,
        "event": ledger_view(item),
    }


def _mark_withdrawn(index: EventIndex, entries: list[dict[str, Any]]) -> None:
    """Add `withdrawn` to each entry whose event was declared erroneous (one lookup for
    the declarations, one for their corrective events)."""
    ids = [e["eventID"] for e in entries if e["eventID"]]
    declarations = {
        d.event_id: d for d in _recorded(index, ids, declarations=True) if d.event_id is not None
    }
    if not declarations:
        return
    corrective = {
        c: None
        for d in declarations.values()
        for c in d.event["errorDeclaration"].get("correctiveEventIDs") or ()
        if isinstance(c, str)
    }
    found = {c.event_id: c for c in _recorded(index, list(corrective), declarations=False)}
    here = {e["eventID"] for e in entries}
    for entry in entries:
        declaration = declarations.get(entry["eventID"])
        if declaration is None:
            continue
        error = declaration.event["errorDeclaration"]
        entry["withdrawn"] = {
            "declarationTime": error.get("declarationTime"),
            "reason": error.get("reason"),
            "signer": declaration.signer,
            "transaction": declaration.tx_id,
            "height": declaration.height,
            "logIndex": declaration.log_index,
            "correctiveEvents": [
                _corrective(c, found.get(c), c in here)
                for c in error.get("correctiveEventIDs") or ()
                if isinstance(c, str)
            ],
        }


def _recorded(index: EventIndex, event_ids: list[str], *, declarations: bool) -> list[IndexedEvent]:
    """The recorded events (or error declarations) with these eventIDs."""
    found: list[IndexedEvent] = []
    for start in range(0, len(event_ids), 500):
        statement = select(events).where(
            events.c.event_id.in_(event_ids[start : start + 500]),
            events.c.error_declaration.is_(declarations),
        )
        found += [to_indexed(r) for r in index.run(statement.order_by(events.c.log_index))]
    return found


def _corrective(event_id: str, item: IndexedEvent | None, in_history: bool) -> dict[str, Any]:
    return {
        "eventID": event_id,
        "recorded": item is not None,
        "inHistory": in_history,
        "transaction": item.tx_id if item else None,
        "height": item.height if item else None,
        "logIndex": item.log_index if item else None,
    }
