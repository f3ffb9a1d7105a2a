"""Trace a lot through the chain, in one call each way.

Backward — what went into it: `api.epcis.history.product_history` already follows the
containers an item travelled in and the inputs of the transformation that made it
(recursively); this module shapes that into a tree and picks out the origins: where
things were commissioned (plots, production lines) and harvested.

Forward — where it went: the lot's serialised units (when this node can open the key of
a `codes.issue` batch recorded for the lot: keyed serials are not linked to their lot on
the chain), the containers they were aggregated into (boxes, cartons, pallets), the
outputs of transformations that consumed them, and every shipment, destination and
retail location of each, from the moment it carried what is traced.

Identifiers match by their canonical key (traceability.identifiers), as the recall rule
compares them; every spelling met is kept (`spellings`, by key) for display.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ledger.membership import Membership
from traceability.audit.search import event_row, named_in
from traceability.epcis.history import product_history
from traceability.epcis.index import (
    EventIndex,
    IndexedEvent,
    canonical_identifier,
    events,
    identifiers,
    to_indexed,
)

MAX_DEPTH = 8
MAX_NODES = 5000
_FOREVER = -(2**62)
_SHIPPING = {"shipping", "departing", "transporting", "loading", "staging_outbound"}
_ARRIVAL = {"receiving", "arriving", "accepting", "unloading"}
_SELLING = {"stocking", "retail_selling", "dispensing"}
_ORIGIN = {"commissioning", "creating_class_instance"}

#: identifier -> serialised units that belong to it but that the chain does not link to
#: it (the keyed serials of a lot's `codes.issue` batches), and notes on what could not
#: be opened.
UnitsOf = Callable[[str], tuple[list[str], list[str]]]


def _step(event: dict[str, Any]) -> str:
    step = event.get("bizStep") or ""
    for prefix in ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"):
        if step.startswith(prefix):
            return step[len(prefix) :]
    return step


def _place(event: dict[str, Any]) -> str | None:
    place = event.get("pt:place")
    items = place if isinstance(place, list) else [place]
    for item in items:
        if isinstance(item, dict) and item.get("@language") == "en":
            return item.get("@value")
    return place if isinstance(place, str) else None


def _origin(row: dict[str, Any], event: dict[str, Any], subject: str) -> dict[str, Any]:
    ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), dict) else {}
    return {
        "identifier": subject,
        "kind": "harvest" if _step(event) == "creating_class_instance" else "origin",
        "eventTime": row["eventTime"],
        "location": row["bizLocation"] or row["readPoint"],
        "plot": ilmd.get("pt:plot"),
        "place": _place(event),
        "organization": row["organization"],
        "eventID": row["eventID"],
        "transaction": row["transaction"],
    }


# -- backward -------------------------------------------------------------------------------


def backward(index: EventIndex, membership: Membership, identifier: str) -> dict[str, Any] | None:
    """What went into `identifier`: a tree of itself, its containers and its inputs."""
    history = product_history(index, identifier)
    if history is None:
        return None
    items = {i.log_index: i for i in index.by_log_index(e["logIndex"] for e in history["events"])}
    by_subject: dict[str, list[dict[str, Any]]] = {}
    origins = []
    for entry in history["events"]:
        item = items.get(entry["logIndex"])
        if item is None:
            continue
        row = event_row(item, membership)
        by_subject.setdefault(entry["subject"], []).append(row)
        if _step(item.event) in _ORIGIN and item.event.get("type") == "ObjectEvent":
            origins.append(_origin(row, item.event, entry["subject"]))
    children: dict[str, list[tuple[str, str, str | None]]] = {}
    for c in history["containers"]:
        children.setdefault(c["contains"], []).append((c["identifier"], "container", c["via"]))
    for i in history["inputs"]:
        children.setdefault(i["into"], []).append((i["identifier"], "input", i["via"]))

    def node(name: str, relation: str, via: str | None, path: frozenset[str]) -> dict[str, Any]:
        kids = [
            node(child, rel, how, path | {child})
            for child, rel, how in children.get(name, [])
            if child not in path
        ]
        return {
            "identifier": name,
            "relation": relation,
            "via": via,
            "events": by_subject.get(name, []),
            "children": kids,
        }

    return {
        "identifier": identifier,
        "direction": "backward",
        "tree": node(identifier, "self", None, frozenset({identifier})),
        "origins": origins,
        "plots": sorted({o["plot"] for o in origins if o["plot"]}),
        "harvests": [o for o in origins if o["kind"] == "harvest"],
        "truncated": history["truncated"],
    }


# -- forward --------------------------------------------------------------------------------


@dataclass
class _Node:
    canonical: str
    given: str
    relation: str
    via: str | None
    since: int
    depth: int
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.given,
            "relation": self.relation,
            "via": self.via,
            "events": self.events,
            "children": [c.to_json() for c in self.children],
        }


def _naming(index: EventIndex, canonical: str, since: int) -> list[tuple[IndexedEvent, int]]:
    naming = select(identifiers.c.log_index).where(identifiers.c.identifier == canonical)
    statement = (
        select(events)
        .where(events.c.log_index.in_(naming), events.c.event_time_us >= since)
        .order_by(events.c.event_time_us, events.c.log_index)
    )
    return [(to_indexed(r), r.event_time_us) for r in index.run(statement)]


def _with_events(index: EventIndex, canonicals: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(canonicals), 500):
        chunk = canonicals[start : start + 500]
        rows = index.run(
            select(identifiers.c.identifier).where(identifiers.c.identifier.in_(chunk)).distinct()
        )
        found.update(r[0] for r in rows)
    return found


def _shared_outputs(index: EventIndex, tid: str) -> list[str]:
    rows = index.run(select(events.c.event).where(events.c.transformation_id == tid))
    outputs: list[str] = []
    for row in rows:
        outputs += _listed(json.loads(row.event), ("outputEPCList", "outputQuantityList"))
    return outputs


def _listed(event: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    found = []
    for key in keys:
        for item in event.get(key) or ():
            value = item.get("epcClass") if isinstance(item, dict) else item
            if isinstance(value, str):
                found.append(value)
    return found


def _mentions(event: dict[str, Any], keys: tuple[str, ...], canonical: str) -> bool:
    return any(canonical_identifier(v) == canonical for v in _listed(event, keys))


class _Forward:
    def __init__(self, index: EventIndex, membership: Membership) -> None:
        self.index = index
        self.membership = membership
        self.reached: dict[str, _Node] = {}
        self.spellings: dict[str, set[str]] = {}
        self.locations: list[dict[str, Any]] = []
        self.shipments: list[dict[str, Any]] = []
        self.truncated = False
        self.queue: deque[_Node] = deque()

    def add(self, parent: _Node | None, given: str, relation: str, via: str | None, since: int):
        canonical = canonical_identifier(given)
        self.spellings.setdefault(canonical, set()).add(given)
        if canonical in self.reached:
            return
        if len(self.reached) >= MAX_NODES:
            self.truncated = True
            return
        node = _Node(canonical, given, relation, via, since, parent.depth + 1 if parent else 0)
        self.reached[canonical] = node
        if parent is not None:
            parent.children.append(node)
        self.queue.append(node)

    def run(self) -> None:
        while self.queue:
            node = self.queue.popleft()
            for item, at in _naming(self.index, node.canonical, node.since):
                self.visit(node, item, at)

    def visit(self, node: _Node, item: IndexedEvent, at: int) -> None:
        event = item.event
        row = event_row(item, self.membership)
        node.events.append(row)
        for raw in named_in(event):
            if canonical_identifier(raw) == node.canonical:
                self.spellings[node.canonical].add(raw)
        step, kind = _step(event), event.get("type")
        where = row["bizLocation"] or row["readPoint"]
        if step in _SHIPPING:
            destinations = [
                d.get("destination")
                for d in event.get("destinationList") or ()
                if isinstance(d, dict) and isinstance(d.get("destination"), str)
            ]
            self.shipments.append({**_brief(row, node.given), "destinations": destinations})
            for destination in destinations:
                self.locations.append(_location(row, node.given, destination, "destination"))
        elif (step in _ARRIVAL or step in _SELLING) and where:
            kind_of = "received" if step in _ARRIVAL else "sold"
            self.locations.append(_location(row, node.given, where, kind_of, _place(event)))
        if node.depth >= MAX_DEPTH:
            self.truncated = self.truncated or kind in ("AggregationEvent", "TransformationEvent")
            return
        if (
            kind == "AggregationEvent"
            and event.get("action") in ("ADD", "OBSERVE")
            and isinstance(event.get("parentID"), str)
            and _mentions(event, ("childEPCs", "childQuantityList"), node.canonical)
        ):
            self.add(node, event["parentID"], "container", item.event_id, at)
        if kind == "TransformationEvent" and _mentions(
            event, ("inputEPCList", "inputQuantityList"), node.canonical
        ):
            outputs = _listed(event, ("outputEPCList", "outputQuantityList"))
            tid = event.get("transformationID")
            if isinstance(tid, str):
                outputs += _shared_outputs(self.index, tid)
            for output in outputs:
                self.add(node, output, "output", item.event_id, at)


def _brief(row: dict[str, Any], subject: str) -> dict[str, Any]:
    keys = ("eventTime", "bizStep", "organization", "readPoint", "eventID", "transaction")
    return {"identifier": subject, **{k: row[k] for k in keys}}


def _location(
    row: dict[str, Any], subject: str, location: str, kind: str, place: str | None = None
) -> dict[str, Any]:
    return {
        "location": location,
        "kind": kind,
        "place": place,
        "identifier": subject,
        "eventTime": row["eventTime"],
        "organization": row["organization"],
        "eventID": row["eventID"],
    }


def forward(
    index: EventIndex,
    membership: Membership,
    identifier: str,
    units_of: UnitsOf | None = None,
) -> dict[str, Any] | None:
    """Where `identifier` went: units, containers, outputs, shipments and locations."""
    walk = _Forward(index, membership)
    walk.add(None, identifier, "self", None, _FOREVER)
    root = walk.reached[canonical_identifier(identifier)]
    units, notes = units_of(identifier) if units_of else ([], [])
    seen_units = _with_events(index, [canonical_identifier(u) for u in units])
    for unit in units:
        if canonical_identifier(unit) in seen_units:
            walk.add(root, unit, "unit", None, _FOREVER)
    walk.run()
    if not any(n.events for n in walk.reached.values()):
        return None
    containers = [n.given for n in walk.reached.values() if n.relation == "container"]
    return {
        "identifier": identifier,
        "direction": "forward",
        "tree": root.to_json(),
        "units": {
            "issued": len(units),
            "with_events": len(seen_units),
            "notes": notes,
        },
        "containers": containers,
        "outputs": [n.given for n in walk.reached.values() if n.relation == "output"],
        "shipments": walk.shipments,
        "locations": walk.locations,
        "reached": sorted(walk.reached),
        "spellings": {k: sorted(v) for k, v in sorted(walk.spellings.items())},
        "truncated": walk.truncated,
    }
