"""The trust rules for one EPCIS event of governed goods (see `traceability.trust`):
origin, mass balance, sequence, recall, time and cold chain. Each refusal is a
`RuleViolation` naming its rule and the figures; each acceptance is the set of running
totals (ledger.tallies) the event adds, which the next event is judged by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.policy import normalize_biz_step
from ledger.tallies import tally_key

from ..epcis.rules import parse_timestamp
from ..identifiers import canonical_key
from ..recall import MOVING_STEPS, RETURN_DISPOSITIONS, Recall
from .errors import RuleViolation
from .geo import geo_point
from .items import Item, describe, grams_text, named, parent
from .plots import Plot
from .ruleset import ProductClass, RuleSet

ORIGIN_STEPS = frozenset({"commissioning", "creating_class_instance"})
SHIPPING_STEPS = frozenset({"shipping"})
RECEIVING_STEPS = frozenset({"receiving", "accepting"})
SELLING_STEPS = frozenset({"retail_selling", "dispensing"})
OFFERING_STEPS = frozenset({"stocking"})
#: What may still happen to recalled goods: holding, examining, storing, taking back,
#: destroying (moving them back with disposition recalled/returned too).
RECALL_HANDLING = frozenset(
    {
        "holding",
        "inspecting",
        "sampling",
        "storing",
        "receiving",
        "accepting",
        "arriving",
        "unloading",
        "unpacking",
        "disassembling",
        "destroying",
        "decommissioning",
    }
)
TEMPERATURE_TYPES = frozenset({"Temperature", "gs1:Temperature", "https://gs1.org/voc/Temperature"})


def key(*parts: str) -> bytes:
    return tally_key("trust", *parts)


def held(k: str) -> bytes:
    return key("held", k)


def transit(k: str) -> bytes:
    return key("transit", k)


def made(k: str) -> bytes:
    return key("made", k)


def units(gtin: str) -> bytes:
    return key("units", gtin)


def packed(gtin: str) -> bytes:
    return key("packed", gtin)


def packed_unit(k: str) -> bytes:
    return key("packed-unit", k)


def sold(k: str) -> bytes:
    return key("sold", k)


def harvest(plot: str, season: int) -> bytes:
    return key("harvest", plot, str(season))


def contains(container: str, product: str) -> bytes:
    return key("contains", container, product)


def nonconformant(k: str) -> bytes:
    return key("nonconformant", k)


def backdated(k: str) -> bytes:
    return key("backdated", k)


def alerts(kind: str) -> bytes:
    return key("alert", kind)


class Totals:
    """Running totals as an event sees them: committed, this block's, this event's."""

    def __init__(self, read: Callable[[list[bytes]], dict[bytes, int]]) -> None:
        self._read = read
        self.delta: dict[bytes, int] = {}

    def __getitem__(self, k: bytes) -> int:
        return self.many([k])[k]

    def many(self, keys: list[bytes]) -> dict[bytes, int]:
        """Several totals in one lookup of the store."""
        found = self._read(keys)
        return {k: found.get(k, 0) + self.delta.get(k, 0) for k in keys}

    def add(self, k: bytes, amount: int) -> None:
        self.delta[k] = self.delta.get(k, 0) + amount
        if not self.delta[k]:
            del self.delta[k]


class EventJudge:
    """Judge one event by `org` against `rules`, the plots and the totals."""

    def __init__(
        self,
        rules: RuleSet,
        plots: dict[str, Plot],
        totals: Totals,
        recall_of: Callable[[str], Recall | None],
        record_time: datetime,
    ) -> None:
        self.rules = rules
        self.plots = plots
        self.t = totals
        self.recall_of = recall_of
        self.record_time = record_time

    # -- the whole event --------------------------------------------------------------------
    def judge(self, event: dict[str, Any], org: str) -> None:
        rules = self.rules
        roles = {
            role: named(event, role, rules) for role in ("objects", "children", "inputs", "outputs")
        }
        top = parent(event, rules)
        everything = [i for items in roles.values() for i in items] + ([top] if top else [])
        step = event.get("bizStep")
        step = normalize_biz_step(step) if isinstance(step, str) else None
        self._recalled(event, everything, step)
        classes = self._classes(everything)
        if not classes:
            return
        self._time(event, everything)
        kind = event.get("type")
        objects = roles["objects"]
        if kind == "ObjectEvent":
            if step in ORIGIN_STEPS and event.get("action") in ("ADD", "OBSERVE"):
                self._origin(event, objects, org)
                self._produce(objects)
            elif step in SHIPPING_STEPS:
                self._take(objects, "shipped", into=transit)
            elif step in RECEIVING_STEPS:
                self._receive(objects)
            elif step in SELLING_STEPS:
                self._take(objects, "sold", into=None)
                self._sell_units(objects)
            elif step in OFFERING_STEPS:
                self._exist(objects, "offered for sale")
        elif kind == "TransformationEvent":
            self._transform(roles["inputs"], roles["outputs"])
        elif kind == "AggregationEvent" and event.get("action") == "ADD" and top is not None:
            self._aggregate(top, roles["children"], classes)
        self._cold_chain(event, everything, classes)

    def _classes(self, items: list[Item]) -> set[str]:
        """Product classes an event touches, directly or inside the containers it names."""
        found = {i.product.id for i in items if i.product}
        asked = {contains(i.key, c): c for i in items if i.container for c in self.rules.classes}
        if asked:
            found |= {asked[k] for k, v in self.t.many(list(asked)).items() if v > 0}
        return found

    # -- recall: nothing but recall handling ------------------------------------------------
    def _recalled(self, event: dict[str, Any], items: list[Item], step: str | None) -> None:
        disposition = str(event.get("disposition", "")).rsplit(":", 1)[-1].rsplit("-", 1)[-1]
        if step in RECALL_HANDLING or (step in MOVING_STEPS and disposition in RETURN_DISPOSITIONS):
            return
        for i in items:
            recall = self.recall_of(i.key)
            if recall is not None:
                raise RuleViolation(
                    "sequence",
                    f"{i.text} is recalled (recall {recall.tx_id[:16]}… at height {recall.height}: "
                    f"{recall.reason}); only recall handling may follow "
                    f"({', '.join(sorted(RECALL_HANDLING))}, or a return), not "
                    f"{step or 'an event without bizStep'!r}",
                )

    # -- time -------------------------------------------------------------------------------
    def _time(self, event: dict[str, Any], items: list[Item]) -> None:
        when = parse_timestamp(event.get("eventTime"))
        if when is None:
            return
        ahead = when - self.record_time
        if ahead > timedelta(minutes=self.rules.future_minutes):
            raise RuleViolation(
                "time",
                f"eventTime {event['eventTime']} is {int(ahead.total_seconds() // 60)} min after "
                f"its record time {self.record_time.isoformat()}; at most "
                f"{self.rules.future_minutes} min allowed",
            )
        if -ahead > timedelta(days=self.rules.backdated_days):
            for i in items:
                if i.governed or i.container:
                    self.t.add(backdated(i.key), 1)
            self.t.add(alerts("backdated"), 1)

    # -- origin -----------------------------------------------------------------------------
    def _origin(self, event: dict[str, Any], items: list[Item], org: str) -> None:
        gi = [i for i in items if i.product and i.product.gi_zone]
        if not gi:
            return
        product = gi[0].product
        assert product is not None
        read_point = (event.get("readPoint") or {}).get("id")
        plot = self._plot_of(event, read_point)
        if plot is None:
            raise RuleViolation(
                "origin",
                f"a harvest of {product.id} ({gi[0].text}) names a registered plot, by "
                f"pt:plot or by its readPoint; none matches readPoint {read_point!r}",
            )
        if plot.org != org:
            raise RuleViolation("origin", f"plot {plot.id} is registered to {plot.org}, not {org}")
        for i in gi:
            assert i.product is not None
            if i.product.id != plot.crop or i.product.gi_zone != plot.gi_zone:
                raise RuleViolation(
                    "origin",
                    f"plot {plot.id} is registered for {plot.crop} in GI zone {plot.gi_zone}; "
                    f"the event records {i.product.id} of GI zone {i.product.gi_zone}",
                )
        self._located(plot, read_point)
        when = parse_timestamp(event.get("eventTime"))
        grams = sum(i.amount or 0 for i in gi if i.product and i.product.measure == "mass")
        if when is None or not grams:
            return
        season = when.year
        total = self.t[harvest(plot.id, season)] + grams
        limit = plot.season_grams * self.rules.harvest_tolerance
        if total > limit:
            raise RuleViolation(
                "origin",
                f"plot {plot.id} registered {grams_text(plot.season_grams)} for {season} "
                f"({grams_text(limit)} with the {self.rules.harvest_tolerance} tolerance); "
                f"{grams_text(Decimal(total))} recorded",
            )
        self.t.add(harvest(plot.id, season), grams)

    def _plot_of(self, event: dict[str, Any], read_point: Any) -> Plot | None:
        return plot_named(self.plots, event)

    @staticmethod
    def _located(plot: Plot, read_point: Any) -> None:
        if isinstance(read_point, str):
            if canonical_key(read_point) == plot.gln:
                return
            point = geo_point(read_point)
            if point is not None and plot.contains(*point):
                return
        raise RuleViolation(
            "origin",
            f"readPoint {read_point!r} is neither plot {plot.id}'s location ({plot.gln}) "
            "nor a geo: point inside the plot",
        )

    # -- quantities -------------------------------------------------------------------------
    def _produce(self, items: Iterable[Item]) -> None:
        for i in items:
            if not i.governed:
                continue
            self.t.add(made(i.key), 1)
            assert i.product is not None
            if i.instance:
                if i.gtin:
                    self.t.add(units(i.gtin), 1)
                continue
            if i.amount:
                self.t.add(held(i.key), i.amount)
                if i.product.measure == "count" and i.gtin:
                    self.t.add(units(i.gtin), i.amount)

    def _exist(self, items: Iterable[Item], doing: str) -> None:
        for i in items:
            if not i.governed:
                continue
            exists = self.t[made(i.key)] > 0 or (
                i.instance and i.gtin is not None and self.t[units(i.gtin)] > 0
            )
            if not exists:
                raise RuleViolation(
                    "sequence",
                    f"{i.text} is {doing} before it was commissioned or received on the chain",
                )

    def _take(self, items: list[Item], doing: str, into: Callable[[str], bytes] | None) -> None:
        """Goods leave their holder: shipped (into transit) or sold."""
        self._exist(items, doing)
        for i in items:
            if not i.amount or i.instance:
                continue
            assert i.product is not None
            holding = self.t[held(i.key)]
            if i.amount > holding:
                raise RuleViolation(
                    "mass balance",
                    f"lot {i.text} holds {describe(holding, i.product)} (received − shipped − "
                    f"consumed); {describe(i.amount, i.product)} {doing}",
                )
            self.t.add(held(i.key), -i.amount)
            if into is not None:
                self.t.add(into(i.key), i.amount)

    def _receive(self, items: list[Item]) -> None:
        self._exist(items, "received")
        for i in items:
            if not i.amount or i.instance:
                continue
            assert i.product is not None
            moving = self.t[transit(i.key)]
            if i.amount > moving:
                raise RuleViolation(
                    "mass balance",
                    f"lot {i.text} has {describe(moving, i.product)} in transit; "
                    f"{describe(i.amount, i.product)} received",
                )
            self.t.add(transit(i.key), -i.amount)
            self.t.add(held(i.key), i.amount)

    def _sell_units(self, items: list[Item]) -> None:
        for i in items:
            if i.governed and i.instance:
                if self.t[sold(i.key)] > 0:
                    raise RuleViolation("sequence", f"{i.text} was already sold; a unit sells once")
                self.t.add(sold(i.key), 1)

    def _transform(self, inputs: list[Item], outputs: list[Item]) -> None:
        self._take(inputs, "transformed", into=None)
        self._produce(outputs)
        by_class: dict[str, tuple[ProductClass, Decimal]] = {}
        for o in outputs:
            if o.product is None or not o.product.made_from:
                continue
            mass = o.product.grams(1 if o.instance and o.gtin else o.amount or 0)
            if mass is None:
                continue
            _, before = by_class.get(o.product.id, (o.product, Decimal(0)))
            by_class[o.product.id] = (o.product, before + mass)
        for product, out in by_class.values():
            sources = dict(product.made_from)
            allowed = Decimal(0)
            parts = []
            for i in inputs:
                if i.product is None or i.product.id not in sources or i.instance:
                    continue
                grams = i.product.grams(i.amount or 0) or Decimal(0)
                allowed += grams * sources[i.product.id]
                parts.append(f"{grams_text(grams)} × {sources[i.product.id]}")
            if out > allowed:
                raise RuleViolation(
                    "mass balance",
                    f"the transformation makes {grams_text(out)} of {product.id}; its inputs "
                    f"allow {' + '.join(parts) or 'nothing'} = {grams_text(allowed)}",
                )

    def _aggregate(self, top: Item, children: list[Item], classes: set[str]) -> None:
        self._exist([c for c in children if not c.instance], "packed")
        fresh: dict[str, list[Item]] = {}
        for c in children:
            if c.governed and c.instance and c.gtin and self.t[packed_unit(c.key)] == 0:
                fresh.setdefault(c.gtin, []).append(c)
        for gtin, new in fresh.items():
            product = new[0].product
            assert product is not None
            total = self.t[packed(gtin)] + len(new)
            made_units = self.t[units(gtin)]
            if total > made_units:
                raise RuleViolation(
                    "mass balance",
                    f"aggregations pack {total} units of {product.id} (GTIN {gtin}); "
                    f"{made_units} were commissioned",
                )
            for c in new:
                self.t.add(packed_unit(c.key), 1)
            self.t.add(packed(gtin), len(new))
        for product in sorted(classes):
            if self.t[contains(top.key, product)] == 0:
                self.t.add(contains(top.key, product), 1)

    # -- cold chain -------------------------------------------------------------------------
    def _cold_chain(self, event: dict[str, Any], items: list[Item], classes: set[str]) -> None:
        ranges = {
            c: self.rules.classes[c].temperature
            for c in classes
            if self.rules.classes[c].temperature
        }
        if not ranges:
            return
        readings = list(temperatures(event))
        outside = [
            (c, value)
            for c, (low, high) in sorted(ranges.items())
            for value in readings
            if not low <= value <= high
        ]
        if not outside:
            return
        for i in items:
            if i.governed or i.container:
                self.t.add(nonconformant(i.key), 1)
        self.t.add(alerts("cold-chain"), 1)


def plot_named(plots: Mapping[str, Plot], event: dict[str, Any]) -> Plot | None:
    """The registered plot an event names: by `pt:plot` (ILMD or the event), else the plot
    whose location its readPoint is."""
    ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), dict) else {}
    name = ilmd.get("pt:plot", event.get("pt:plot"))
    if isinstance(name, str):
        return plots.get(name)
    read_point = (event.get("readPoint") or {}).get("id")
    if isinstance(read_point, str):
        location = canonical_key(read_point)
        return next((p for p in plots.values() if p.gln == location), None)
    return None


def temperatures(event: dict[str, Any]) -> Iterable[Decimal]:
    """Every temperature an event's sensor reports give (value, min, max), in °C."""
    for element in event.get("sensorElementList") or ():
        reports = element.get("sensorReport") if isinstance(element, dict) else None
        for report in reports or ():
            if not isinstance(report, dict) or report.get("type") not in TEMPERATURE_TYPES:
                continue
            uom = report.get("uom", "CEL")
            for field in ("value", "minValue", "maxValue"):
                value = report.get(field)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    celsius = _celsius(Decimal(str(value)), uom)
                    if celsius is not None:
                        yield celsius


def _celsius(value: Decimal, uom: Any) -> Decimal | None:
    if uom == "CEL":
        return value
    if uom == "FAH":
        return (value - 32) * 5 / 9
    if uom == "KEL":
        return value - Decimal("273.15")
    return None
