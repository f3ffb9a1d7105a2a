"""A lot as its producer sees it: its state, its events with block and receipt, and the
bundle (events + receipts) that verifies offline against the genesis file."""

from __future__ import annotations

from typing import Any

from traceability.epcis.records import EPCIS_TX_TYPE
from traceability.receipts import build_receipt

from ..services import Services

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


def lot_view(svc: Services, lot_id: str) -> dict[str, Any]:
    store = svc.node.store
    events: list[dict[str, Any]] = []
    state = "unknown"
    recalled = False
    for stored in store.txs_for_product(lot_id, limit=500):
        tx = stored.tx
        if tx.type == "recall":
            recalled = True
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
        "genesis_hash": svc.genesis.hash,
    }
