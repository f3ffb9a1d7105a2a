"""The trust rules' word on a consumer page: the registered plot the product's harvest
names (inside its GI zone) and whether a shipment left its temperature range. Read from
the node's trust state and the store's running totals, never recomputed here."""

from __future__ import annotations

from typing import Any

from ledger.identifiers import event_identifiers
from traceability.codes.journey import Journey
from traceability.identifiers import canonical_key
from traceability.trust.origin import OriginCheck, non_conformant, origin_check

from ..services import Services
from .origin_map import origin_map

_ORIGIN_KINDS = ("origin", "harvest", "production")


def trust_view(svc: Services, journey: Journey | None) -> dict[str, Any] | None:
    """{"origin": OriginCheck | None, "map": OriginMap | None, "cold_chain": bool}, or
    None when there is nothing to say (no trust rules, or goods they do not govern)."""
    if journey is None:
        return None
    store = svc.node.store
    found: list[tuple[str, dict[str, Any]]] = []
    for step in journey.steps:
        stored = store.tx(step.tx_id) if step.event_type else None
        event = stored.tx.payload.get("event") if stored else None
        if isinstance(event, dict):
            found.append((step.kind, event))
    origin: OriginCheck | None = origin_check(
        svc.node.rules.trust,
        svc.node.height + 1,
        [event for kind, event in found if kind in _ORIGIN_KINDS],
    )
    keys = {canonical_key(i) for _, event in found for i in event_identifiers(event)}
    warm = non_conformant(store, keys)
    if not origin and not warm:
        return None
    drawn = origin_map(list(origin.areas), origin.shape) if origin else None
    return {"origin": origin, "map": drawn, "cold_chain": warm}
