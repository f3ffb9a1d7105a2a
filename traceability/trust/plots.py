"""Registered plots: a producer registers the plots its GI harvests come from, approved
M-of-N by the rule set's `plot_approval` (the park committee), like a membership change.

`plot.register` carries

    {"change": {"plot": {"id": "P07", "gln": <GLN or SGLN>, "crop": <product class id>,
                         "gi_zone": <zone id>, "area_ha": 4.0, "yield_kg_per_ha": 3000,
                         "centre": [lon, lat], "radius_m": 150}}   or "polygon": [[lon, lat], ...]
     "approvals": [{"signer", "signature"}]}

The plot belongs to the signer's organisation. Its expected yield per season is
`area_ha × yield_kg_per_ha`; a season is the calendar year of the harvest's local time.
The plot must lie inside its GI zone (every vertex, or the centre), its crop's class must
belong to that zone, and its id and location are the chain's only ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.errors import SchemaError
from ledger.tx import require_keys

from ..identifiers import canonical_key
from .errors import RuleViolation
from .geo import Circle, Polygon, parse_centre, parse_polygon
from .ruleset import RuleSet, number

PLOT_TX_TYPE = "plot.register"
PLOT_FIELDS = ("id", "gln", "crop", "gi_zone", "area_ha", "yield_kg_per_ha")
PLOT_SHAPES = (("centre", "radius_m"), ("polygon",))
MAX_PLOT_ID = 32


@dataclass(frozen=True)
class Plot:
    id: str
    org: str
    gln: str  # canonical key of the plot's location
    crop: str
    gi_zone: str
    area_ha: Decimal
    yield_kg_per_ha: Decimal
    shape: Circle | Polygon
    height: int  # the block that registered it; it counts from the next one
    tx_id: str = ""

    @property
    def season_grams(self) -> Decimal:
        return self.area_ha * self.yield_kg_per_ha * 1000

    def contains(self, lon: Decimal, lat: Decimal) -> bool:
        return self.shape.contains(lon, lat)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": self.org,
            "location": self.gln,
            "crop": self.crop,
            "gi_zone": self.gi_zone,
            "area_ha": str(self.area_ha),
            "yield_kg_per_ha": str(self.yield_kg_per_ha),
            "registered_at": self.height,
            "transaction": self.tx_id,
            **(
                {
                    "centre": [str(v) for v in self.shape.centre],
                    "radius_m": str(self.shape.radius_m),
                }
                if isinstance(self.shape, Circle)
                else {"polygon": [[str(x), str(y)] for x, y in self.shape.vertices]}
            ),
        }


def parse_plot(payload: Any, org: str, height: int, tx_id: str = "") -> Plot:
    """The plot a registration's payload describes (shape only; `check_plot` judges it)."""
    obj = require_keys(payload, ("change", "approvals"), "payload")
    change = require_keys(obj["change"], ("plot",), "payload.change")
    data = change["plot"]
    what = "payload.change.plot"
    if not isinstance(data, dict):
        raise SchemaError(f"{what}: expected an object")
    shape_keys = next((s for s in PLOT_SHAPES if s[0] in data), None)
    if shape_keys is None:
        raise SchemaError(f"{what}: give centre and radius_m, or polygon")
    plot = require_keys(data, PLOT_FIELDS + shape_keys, what)
    plot_id = plot["id"]
    if not isinstance(plot_id, str) or not 0 < len(plot_id) <= MAX_PLOT_ID:
        raise SchemaError(f"{what}.id: expected 1 to {MAX_PLOT_ID} characters")
    for key in ("gln", "crop", "gi_zone"):
        if not isinstance(plot[key], str) or not 0 < len(plot[key]) <= 512:
            raise SchemaError(f"{what}.{key}: expected a non-empty string")
    shape: Circle | Polygon
    if "polygon" in plot:
        shape = parse_polygon(plot["polygon"], f"{what}.polygon")
    else:
        radius = number(plot["radius_m"], f"{what}.radius_m", low=Decimal(1))
        if radius > 50_000:
            raise SchemaError(f"{what}.radius_m: a plot is at most 50 km across")
        shape = Circle(parse_centre(plot["centre"], f"{what}.centre"), radius)
    area = number(plot["area_ha"], f"{what}.area_ha")
    expected = number(plot["yield_kg_per_ha"], f"{what}.yield_kg_per_ha")
    if not 0 < area <= 100_000 or expected > 1_000_000:
        raise SchemaError(f"{what}: area_ha above 0 and at most 100000, yield at most 1000 t/ha")
    return Plot(
        plot_id,
        org,
        canonical_key(plot["gln"]),
        plot["crop"],
        plot["gi_zone"],
        area,
        expected,
        shape,
        height,
        tx_id,
    )


def _points(shape: Circle | Polygon) -> tuple[tuple[Decimal, Decimal], ...]:
    return shape.vertices if isinstance(shape, Polygon) else (shape.centre,)


def check_plot(plot: Plot, rules: RuleSet, plots: dict[str, Plot]) -> None:
    """Refuse a registration the rule set or the registry does not allow."""
    crop = rules.classes.get(plot.crop)
    if crop is None:
        raise RuleViolation("plot", f"plot {plot.id}: no product class {plot.crop!r}")
    zone = rules.gi_zones.get(plot.gi_zone)
    if zone is None:
        raise RuleViolation("plot", f"plot {plot.id}: no GI zone {plot.gi_zone!r}")
    if crop.gi_zone != zone.id:
        raise RuleViolation(
            "plot", f"plot {plot.id}: {crop.id} is not a product of the GI zone {zone.name}"
        )
    outside = [p for p in _points(plot.shape) if not zone.contains(*p)]
    if outside:
        lon, lat = outside[0]
        raise RuleViolation(
            "plot",
            f"plot {plot.id} at ({lon}, {lat}) lies outside the GI zone {zone.name} "
            f"({zone.name_en})",
        )
    if plot.id in plots:
        raise RuleViolation("plot", f"plot {plot.id} is already registered")
    same = next((p for p in plots.values() if p.gln == plot.gln), None)
    if same is not None:
        raise RuleViolation("plot", f"location {plot.gln} is already plot {same.id}'s")
