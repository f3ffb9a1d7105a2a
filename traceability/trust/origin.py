"""What a consumer page says of a product's origin and cold chain, from the trust rules'
state: the registered plot its harvest names (inside the GI zone, as the origin rule
made sure when the harvest was admitted) and whether a shipment left the temperature
range."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.store import Store

from ..identifiers import canonical_key
from . import events
from .events import plot_named
from .geo import Circle, Polygon
from .state import TrustState


@dataclass(frozen=True)
class OriginCheck:
    plot: str
    zone: str
    zone_en: str
    #: "geo:lat,lon" of the plot's centre (or first vertex), for a map
    geo: str
    #: the plot's shape and the zone's areas, to draw them
    shape: Circle | Polygon
    areas: tuple[Polygon, ...]


def origin_check(
    state: TrustState, height: int, harvests: Iterable[dict[str, Any]]
) -> OriginCheck | None:
    """The registered plot the first of `harvests` (origin events, oldest first) names."""
    rules = state.ruleset(height)
    if rules is None:
        return None
    for event in harvests:
        plot = plot_named(state.plots, event)
        zone = rules.gi_zones.get(plot.gi_zone) if plot else None
        if plot is not None and zone is not None:
            lon, lat = (
                plot.shape.centre if isinstance(plot.shape, Circle) else plot.shape.vertices[0]
            )
            areas = tuple(polygon for _, polygon in zone.areas)
            geo = f"geo:{lat},{lon}"
            return OriginCheck(plot.id, zone.name, zone.name_en, geo, plot.shape, areas)
    return None


def non_conformant(store: Store, identifiers: Iterable[str]) -> bool:
    """Whether a sensor reading outside the range marked any of `identifiers`."""
    keys = [events.nonconformant(i) for i in identifiers]
    return any(v > 0 for v in store.totals(keys).values())


def trust_report(state: TrustState, store: Store, height: int) -> dict[str, Any]:
    """What the regulator watches: the rule set in force, the registered plots and the
    alerts counted so far (readings outside a cold-chain range, back-dated events)."""
    alerts = {"cold_chain": events.alerts("cold-chain"), "backdated": events.alerts("backdated")}
    counted = store.totals(list(alerts.values()))
    rules = state.ruleset(height)
    return {
        "rule_set": rules.version if rules else None,
        "alerts": {name: counted.get(key, 0) for name, key in alerts.items()},
        "plots": [plot.to_json() for plot in state.plots.values()],
    }


def flags(store: Store, identifier: str) -> dict[str, Any]:
    """The trust flags of one identifier (any spelling): out-of-range readings and
    back-dated events that named it."""
    key = canonical_key(identifier)
    warm, late = events.nonconformant(key), events.backdated(key)
    counted = store.totals([warm, late])
    readings = counted.get(warm, 0)
    return {
        "identifier": identifier,
        "non_conformant": readings > 0,
        "cold_chain_events_out_of_range": readings,
        "backdated_events": counted.get(late, 0),
    }
