"""The trust rule set: data in genesis (`rules`), versioned, changed only by a governance
transaction (`rules.set`) effective from a height.

    {"version": 1, "harvest_tolerance": 1.1, "future_minutes": 60, "backdated_days": 30,
     "plot_approval": {"m": 1, "of": ["park-committee"]},
     "gi_zones": [{"id", "name", "name_en", "source",
                   "areas": [{"name", "polygon": [[lon, lat], ...]}]}],
     "product_classes": [{"id", "name", "gtins": [GTIN-14, ...], "measure": "mass" | "count",
                          "unit_kg"?, "gi_zone"?, "temperature"?: [min °C, max °C],
                          "made_from"?: [{"class", "max_yield"}]}]}

Only goods of a listed product class are governed by the trust rules; everything else
is judged as before. Numbers are parsed as `Decimal` from their JSON text, so every node
computes the same limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from ledger.errors import SchemaError
from ledger.membership import ApprovalRule
from ledger.tx import require_keys

from .geo import Polygon, parse_polygon

PARK_RULES = Path(__file__).resolve().parent / "park-rules.json"
RULESET_FIELDS = (
    "version",
    "harvest_tolerance",
    "future_minutes",
    "backdated_days",
    "plot_approval",
    "gi_zones",
    "product_classes",
)
CLASS_FIELDS = ("id", "name", "gtins", "measure")
CLASS_OPTIONAL = ("unit_kg", "gi_zone", "temperature", "made_from")
MEASURES = ("mass", "count")


def number(value: Any, what: str, *, low: Decimal = Decimal(0)) -> Decimal:
    """A JSON number as a Decimal (never a bool), at least `low`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{what}: expected a number")
    result = Decimal(str(value))
    if not result.is_finite() or result < low:
        raise SchemaError(f"{what}: expected a number of at least {low}")
    return result


def _text(value: Any, what: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise SchemaError(f"{what}: expected a non-empty string of at most {limit} characters")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaError(f"{what}: expected a list")
    return value


@dataclass(frozen=True)
class GiZone:
    id: str
    name: str
    name_en: str
    source: str
    areas: tuple[tuple[str, Polygon], ...]

    def contains(self, lon: Decimal, lat: Decimal) -> bool:
        return any(polygon.contains(lon, lat) for _, polygon in self.areas)


@dataclass(frozen=True)
class ProductClass:
    id: str
    name: str
    gtins: tuple[str, ...]
    measure: str
    unit_kg: Decimal | None = None
    gi_zone: str | None = None
    temperature: tuple[Decimal, Decimal] | None = None
    #: (input class id, max output mass per input mass)
    made_from: tuple[tuple[str, Decimal], ...] = ()

    @property
    def unit(self) -> str:
        """What the class's running totals count: grams or units."""
        return "g" if self.measure == "mass" else "units"

    def grams(self, amount: int) -> Decimal | None:
        """The mass of `amount` (grams, or units of `unit_kg`); None if unknown."""
        if self.measure == "mass":
            return Decimal(amount)
        return None if self.unit_kg is None else Decimal(amount) * self.unit_kg * 1000


@dataclass(frozen=True)
class RuleSet:
    version: int
    harvest_tolerance: Decimal
    future_minutes: int
    backdated_days: int
    plot_approval: ApprovalRule
    gi_zones: dict[str, GiZone]
    classes: dict[str, ProductClass]
    by_gtin: dict[str, ProductClass]

    def class_of(self, gtin: str | None) -> ProductClass | None:
        return self.by_gtin.get(gtin) if gtin else None


def _zone(data: Any, what: str) -> GiZone:
    obj = require_keys(data, ("id", "name", "name_en", "source", "areas"), what)
    areas = []
    for i, area in enumerate(_list(obj["areas"], f"{what}.areas")):
        entry = require_keys(area, ("name", "polygon"), f"{what}.areas[{i}]")
        areas.append(
            (
                _text(entry["name"], f"{what}.areas[{i}].name"),
                parse_polygon(entry["polygon"], f"{what}.areas[{i}].polygon"),
            )
        )
    if not areas:
        raise SchemaError(f"{what}.areas: list at least one area")
    return GiZone(
        _text(obj["id"], f"{what}.id", 64),
        _text(obj["name"], f"{what}.name"),
        _text(obj["name_en"], f"{what}.name_en"),
        _text(obj["source"], f"{what}.source"),
        tuple(areas),
    )


def _class(data: Any, what: str, zones: dict[str, GiZone]) -> ProductClass:
    present = tuple(k for k in CLASS_OPTIONAL if isinstance(data, dict) and k in data)
    obj = require_keys(data, CLASS_FIELDS + present, what)
    gtins = tuple(
        _text(g, f"{what}.gtins[{i}]", 14)
        for i, g in enumerate(_list(obj["gtins"], f"{what}.gtins"))
    )
    if not gtins or not all(len(g) == 14 and g.isdigit() for g in gtins):
        raise SchemaError(f"{what}.gtins: expected GTIN-14s (14 digits)")
    if obj["measure"] not in MEASURES:
        raise SchemaError(f"{what}.measure: expected one of {', '.join(MEASURES)}")
    zone = obj.get("gi_zone")
    if zone is not None and zone not in zones:
        raise SchemaError(f"{what}.gi_zone: no GI zone {zone!r}")
    temperature = None
    if "temperature" in obj:
        bounds = _list(obj["temperature"], f"{what}.temperature")
        if len(bounds) != 2:
            raise SchemaError(f"{what}.temperature: expected [min, max] in °C")
        low, high = (number(b, f"{what}.temperature", low=Decimal(-273)) for b in bounds)
        if low > high:
            raise SchemaError(f"{what}.temperature: min exceeds max")
        temperature = (low, high)
    made_from = []
    for i, entry in enumerate(_list(obj.get("made_from", []), f"{what}.made_from")):
        item = require_keys(entry, ("class", "max_yield"), f"{what}.made_from[{i}]")
        made_from.append(
            (
                _text(item["class"], f"{what}.made_from[{i}].class", 64),
                number(item["max_yield"], f"{what}.made_from[{i}].max_yield"),
            )
        )
    unit_kg = number(obj["unit_kg"], f"{what}.unit_kg") if "unit_kg" in obj else None
    return ProductClass(
        _text(obj["id"], f"{what}.id", 64),
        _text(obj["name"], f"{what}.name"),
        gtins,
        obj["measure"],
        unit_kg,
        zone,
        temperature,
        tuple(made_from),
    )


def parse_ruleset(data: Any, what: str = "rules") -> RuleSet:
    """A rule set from its JSON; SchemaError naming the field."""
    obj = require_keys(data, RULESET_FIELDS, what)
    version = obj["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SchemaError(f"{what}.version: expected a positive integer")
    tolerance = number(obj["harvest_tolerance"], f"{what}.harvest_tolerance", low=Decimal(1))
    minutes, days = obj["future_minutes"], obj["backdated_days"]
    for value, name in ((minutes, "future_minutes"), (days, "backdated_days")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SchemaError(f"{what}.{name}: expected a non-negative integer")
    approval = ApprovalRule.from_json(obj["plot_approval"], f"{what}.plot_approval")
    zones: dict[str, GiZone] = {}
    for i, entry in enumerate(_list(obj["gi_zones"], f"{what}.gi_zones")):
        zone = _zone(entry, f"{what}.gi_zones[{i}]")
        if zone.id in zones:
            raise SchemaError(f"{what}.gi_zones: {zone.id!r} is listed twice")
        zones[zone.id] = zone
    classes: dict[str, ProductClass] = {}
    by_gtin: dict[str, ProductClass] = {}
    for i, entry in enumerate(_list(obj["product_classes"], f"{what}.product_classes")):
        product = _class(entry, f"{what}.product_classes[{i}]", zones)
        if product.id in classes:
            raise SchemaError(f"{what}.product_classes: {product.id!r} is listed twice")
        classes[product.id] = product
        for gtin in product.gtins:
            if gtin in by_gtin:
                raise SchemaError(f"{what}.product_classes: GTIN {gtin} is in two classes")
            by_gtin[gtin] = product
    for product in classes.values():
        for source, _ in product.made_from:
            if source not in classes:
                raise SchemaError(f"{what}: class {product.id!r} is made from unknown {source!r}")
    return RuleSet(version, tolerance, minutes, days, approval, zones, classes, by_gtin)


@cache
def _parsed(text: str) -> RuleSet:
    return parse_ruleset(json.loads(text))


def ruleset_of(data: dict[str, Any]) -> RuleSet:
    """`parse_ruleset`, once per distinct document (genesis is read by every rule)."""
    return _parsed(json.dumps(data, sort_keys=True))


def park_rules() -> dict[str, Any]:
    """The park's rule set (traceability/trust/park-rules.json), for the demo's genesis."""
    return json.loads(PARK_RULES.read_text(encoding="utf-8"))
