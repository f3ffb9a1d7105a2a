"""Copied-code detection: what a code's sales and scans say about it.

The strongest signal comes first, as national drug-code checks have it: one item is sold
once, so two sale or dispense events recorded for one serial (`SALE_STEPS`, the item's
own or its container's) mean its code was copied. Scans are the second signal: a genuine
code is scanned a few times, in the places the item went. Copies show up as many scans,
as scans far apart within hours, or as scans where the goods never went (after its sale
too: a shopper's scan at home is in a region of the journey's last legs). Two regions
both on the item's own journey never raise a distance warning: a factory scan and a
pharmacy scan on one day are the journey itself. Each scan rule is a warning the page
shows with its evidence; none proves a copy alone (a shop assistant may scan a box
often), so thresholds are configuration. The first scan of a code is marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from traceability.codes.journey import Journey, Step, Text
from traceability.codes.observations import Scan
from traceability.codes.regions import distance_km, region

#: EPCIS business steps that hand an item to its buyer.
SALE_STEPS = frozenset({"retail_selling", "dispensing"})


@dataclass(frozen=True)
class CopyRules:
    #: More scans than this is suspicious.
    max_scans: int = 10
    #: Two scans at least this far apart …
    distance_km: float = 500.0
    #: … within this time is suspicious.
    window: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Warning:
    kind: str  # sold_again | many_scans | distant_regions | unshipped_region
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.details}


@dataclass(frozen=True)
class Sale:
    """A sale or dispense event recorded for the item."""

    time: str
    place: Text | None
    region: str | None
    transaction: str
    by: dict[str, str]  # the seller's name

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "place": self.place,
            "region": self.region,
            "transaction": self.transaction,
            "soldBy": self.by,
        }


@dataclass(frozen=True)
class Verdict:
    first: bool
    count: int
    first_at: str | None
    warnings: list[Warning] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)

    @property
    def suspicious(self) -> bool:
        return bool(self.warnings)

    @property
    def sold(self) -> str:
        """not_sold | sold_once | sold_again: what the page leads the scans with."""
        n = len(self.sales)
        return "not_sold" if n == 0 else "sold_once" if n == 1 else "sold_again"

    def to_json(self) -> dict[str, Any]:
        return {
            "firstScan": self.first,
            "scans": self.count,
            "firstScannedAt": self.first_at,
            "suspicious": self.suspicious,
            "sold": self.sold,
            "sales": [s.to_json() for s in self.sales],
            "warnings": [w.to_json() for w in self.warnings],
        }


def sales_of(journey: Journey | None) -> list[Sale]:
    """The sale and dispense events of an item's journey (its own and its container's),
    in the order they happened."""
    steps: list[Step] = journey.steps if journey else []
    return [
        Sale(s.time, s.place, s.region, s.tx_id, s.party.name)
        for s in steps
        if s.biz_step in SALE_STEPS and s.relation in ("self", "container")
    ]


def _distant_pair(scans: Sequence[Scan], rules: CopyRules, journey: set[str]) -> Warning | None:
    located = [(s, region(s.region)) for s in scans if region(s.region) is not None]
    for i, (a, ra) in enumerate(located):
        for b, rb in located[i + 1 :]:
            assert ra is not None and rb is not None
            if b.at - a.at > rules.window:
                break
            if ra.code in journey and rb.code in journey:
                continue
            km = distance_km(ra, rb)
            if km >= rules.distance_km:
                return Warning(
                    "distant_regions",
                    {
                        "regions": [ra.code, rb.code],
                        "km": None if km == float("inf") else round(km),
                        "hours": round((b.at - a.at).total_seconds() / 3600, 1),
                    },
                )
    return None


def judge(
    scans: Sequence[Scan],
    current: Scan | None,
    shipped: Iterable[str],
    rules: CopyRules,
    sales: Sequence[Sale] = (),
) -> Verdict:
    """The verdict on a code given its scans (oldest first, `current` among them), the
    regions its journey went through and its recorded sales."""
    count = len(scans)
    first = current is not None and bool(scans) and scans[0].id == current.id
    allowed = {r.upper() for r in shipped}
    warnings: list[Warning] = []
    if len(sales) > 1:
        warnings.append(Warning("sold_again", {"times": len(sales)}))
    if count > rules.max_scans:
        warnings.append(Warning("many_scans", {"scans": count, "threshold": rules.max_scans}))
    pair = _distant_pair(scans, rules, allowed)
    if pair is not None:
        warnings.append(pair)
    if allowed:
        outside = sorted({s.region for s in scans if s.region and s.region.upper() not in allowed})
        if outside:
            warnings.append(
                Warning("unshipped_region", {"regions": outside, "shipped": sorted(allowed)})
            )
    first_at = scans[0].at.isoformat(timespec="seconds") if scans else None
    return Verdict(first, count, first_at, warnings, list(sales))
