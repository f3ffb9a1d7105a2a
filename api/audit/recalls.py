"""Recalls from the regulator's side: plan one (which units it must name) and list the
committed ones with what they reach.

Planning: the ledger compares identifiers by their canonical key but cannot tell which
keyed serials belong to a lot (traceability.recall). So before the regulator signs a
recall, the node traces the lot forward (traceability.audit.trace) — opening the lot's
`codes.issue` batches with its resolver keys to find the serialised units — and lists
every unit reached, once, by its canonical key, as the recall's `units`. The ledger then
follows aggregations and transformations from those on its own, at the recall and
forever after.

A transaction is at most 64 KiB, so a recall reaching more units than one transaction
holds is planned as several recall transactions of the same lot, each naming a share.
"""

from __future__ import annotations

from typing import Any

from ledger.membership import Membership
from ledger.store import Store
from traceability.audit.trace import UnitsOf, forward
from traceability.codes import CodeError
from traceability.codes.batch import recorded_batches
from traceability.codes.digital_link import parse_uri
from traceability.epcis.index import EventIndex, canonical_identifier
from traceability.recall import RecallIndex

from ..codes.service import CodesService

#: Units per recall transaction: 600 Digital Link URIs stay well inside 64 KiB.
UNITS_PER_TX = 600
#: More serials than this in one lot are not enumerated for a trace (say so instead).
MAX_SERIALS = 1_000_000


def serial_units(codes: CodesService, store: Store) -> UnitsOf:
    """UnitsOf over the lot's `codes.issue` batches this node can open."""

    def units_of(identifier: str) -> tuple[list[str], list[str]]:
        try:
            link = parse_uri(identifier)
        except CodeError:
            return [], []
        if link.lot is None or link.serial is not None or link.lot_id is None:
            return [], []
        units: list[str] = []
        notes: list[str] = []
        for recorded in recorded_batches(store, link.lot_id):
            batch = recorded.batch
            key = codes.serial_key(batch)
            if key is None:
                notes.append(
                    f"batch {batch.id} ({batch.count} codes): this node holds no resolver key "
                    "that opens it, so its serialised units are not traced"
                )
                continue
            if batch.count > MAX_SERIALS:
                notes.append(f"batch {batch.id}: {batch.count} codes are too many to trace")
                continue
            units += [code.instance_id or "" for _, code in batch.codes(key, 0, batch.count)]
        return [u for u in units if u], notes

    return units_of


def plan(
    index: EventIndex, membership: Membership, lot: str, units_of: UnitsOf | None
) -> dict[str, Any]:
    """The recall payloads (without reason) that name everything `lot` reached."""
    trace = forward(index, membership, lot, units_of)
    root = canonical_identifier(lot)
    units = sorted(key for key in (trace["spellings"] if trace else ()) if key != root)
    chunks = [units[i : i + UNITS_PER_TX] for i in range(0, len(units), UNITS_PER_TX)] or [[]]
    return {
        "lot": lot,
        "canonical": root,
        "units": len(units),
        "notes": trace["units"]["notes"] if trace else [],
        "traced": trace is not None,
        "payloads": [{"lot": lot, "units": chunk} for chunk in chunks],
    }


def list_recalls(recalls: RecallIndex, store: Store, membership: Membership) -> dict[str, Any]:
    """Every committed recall, with how many identifiers it makes affected."""
    reach: dict[str, int] = {}
    for recall_id in recalls.affected.values():
        reach[recall_id] = reach.get(recall_id, 0) + 1
    items = []
    for recall in recalls.recalls.values():
        member = membership.member(recall.signer)
        header = store.header(recall.height)
        items.append(
            {
                **recall.to_json(),
                "units": len(recall.units),
                "time": header.time if header else None,
                "regulator": member.org if member else None,
                "affected": reach.get(recall.tx_id, 0),
            }
        )
    return {"count": len(items), "recalls": items}


def affected_by(recalls: RecallIndex, recall_id: str) -> list[str]:
    return sorted(i for i, r in recalls.affected.items() if r == recall_id)
