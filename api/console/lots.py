"""A lot as its producer sees it: its state, its events with block and receipt, and the
bundle (events + receipts) that verifies offline against the genesis file."""

from __future__ import annotations

from typing import Any

from traceability.codes.batch import TX_TYPE as CODES_TX_TYPE
from traceability.codes.batch import parse_payload
from traceability.codes.copies import judge
from traceability.epcis.records import EPCIS_TX_TYPE
from traceability.receipts import build_receipt

from ..codes.scans import history
from ..codes.service import CodesService
from ..services import Services

#: Codes of a lot whose scans are counted in one view (the first of each batch).
MAX_CODES = 200

#: The state a lot is in after an event of this business step (CBV 2.0), latest wins;
#: a recall overrides them all.
_STATES = {
    "commissioning": "recorded",
    "creating_class_instance": "recorded",
    "inspecting": "inspected",
    "shipping": "shipped",
    "departing": "shipped",
    "receiving": "shipped",
    "arriving": "shipped",
    "retail_selling": "sold",
}


def _step(event: dict[str, Any]) -> str:
    step = str(event.get("bizStep", ""))
    return step.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _regions(events: list[dict[str, Any]]) -> list[str]:
    """Where the lot went (ISO 3166-2), as its events say: copies are judged by them."""
    found: list[str] = []
    for item in events:
        for key in ("pt:region", "pt:destinationRegion"):
            value = item["event"].get(key)
            if isinstance(value, str) and value not in found:
                found.append(value)
    return found


def _codes(
    svc: Services, codes: CodesService, batches: list[Any], regions: list[str]
) -> list[dict[str, Any]]:
    """Each batch of the lot with its scan counts and copied-code warnings (the first
    MAX_CODES codes), judged by the same rules the consumer page applies."""
    out = []
    for stored in batches:
        batch = parse_payload(stored.tx.payload)
        key = codes.serial_key(batch)
        items = []
        if key is not None:
            for _, link in batch.codes(key, 0, min(batch.count, MAX_CODES)):
                scans = history(svc.index, codes, link.instance_id or "")
                verdict = judge(scans, None, regions, codes.settings.rules)
                items.append(
                    {
                        "serial": link.serial,
                        "scans": len(scans),
                        "warnings": [w.kind for w in verdict.warnings],
                    }
                )
        out.append(
            {
                "batch": batch.id,
                "tx": stored.tx.id,
                "height": stored.height,
                "count": batch.count,
                "scans": sum(i["scans"] for i in items),
                "copied": [i for i in items if i["warnings"]],
                "codes": items,
            }
        )
    return out


def lot_view(svc: Services, codes: CodesService, lot_id: str) -> dict[str, Any]:
    store = svc.node.store
    events: list[dict[str, Any]] = []
    batches: list[Any] = []
    state = "unknown"
    recalled = False
    for stored in store.txs_for_product(lot_id, limit=500):
        tx = stored.tx
        if tx.type == "recall":
            recalled = True
            continue
        if tx.type == CODES_TX_TYPE:
            batches.append(stored)
            continue
        if tx.type != EPCIS_TX_TYPE:
            continue
        event = tx.payload.get("event", {})
        state = _STATES.get(_step(event), state if state != "unknown" else "recorded")
        changes = svc.index.membership_changes(stored.height)
        events.append(
            {
                "tx": tx.id,
                "height": stored.height,
                "bizStep": _step(event),
                "type": event.get("type"),
                "eventTime": event.get("eventTime"),
                "event": event,
                "receipt": build_receipt(store, svc.genesis, tx.id, changes),
            }
        )
    return {
        "lot": lot_id,
        "state": "recalled" if recalled else state,
        "events": events,
        "codes": _codes(svc, codes, batches, _regions(events)),
        "genesis_hash": svc.genesis.hash,
    }
