"""Copied-code detection: what a code's scans say about it.

A genuine code printed on one item is scanned a few times, in the places the item went.
Copies of it show up as many scans, as scans in places far apart within hours, or as
scans where the goods were never shipped. Each rule is a warning the page shows with its
evidence; none of them proves a copy alone (a shop assistant may scan a box often), so
thresholds are configuration. The first scan of a code is marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from traceability.codes.regions import distance_km, region
from traceability.codes.scanlog import Scan


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
    kind: str  # many_scans | distant_regions | unshipped_region
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.details}


@dataclass(frozen=True)
class Verdict:
    first: bool
    count: int
    first_at: str | None
    warnings: list[Warning] = field(default_factory=list)

    @property
    def suspicious(self) -> bool:
        return bool(self.warnings)

    def to_json(self) -> dict[str, Any]:
        return {
            "firstScan": self.first,
            "scans": self.count,
            "firstScannedAt": self.first_at,
            "suspicious": self.suspicious,
            "warnings": [w.to_json() for w in self.warnings],
        }


def _distant_pair(scans: Sequence[Scan], rules: CopyRules) -> Warning | None:
    located = [(s, region(s.region)) for s in scans if region(s.region) is not None]
    for i, (a, ra) in enumerate(located):
        for b, rb in located[i + 1 :]:
            assert ra is not None and rb is not None
            if b.at - a.at > rules.window:
                break
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
    scans: Sequence[Scan], current: Scan | None, shipped: Iterable[str], rules: CopyRules
) -> Verdict:
    """The verdict on a code given its scans (oldest first, `current` among them) and the
    regions its journey went through."""
    count = len(scans)
    first = current is not None and bool(scans) and scans[0].id == current.id
    warnings: list[Warning] = []
    if count > rules.max_scans:
        warnings.append(Warning("many_scans", {"scans": count, "threshold": rules.max_scans}))
    pair = _distant_pair(scans, rules)
    if pair is not None:
        warnings.append(pair)
    allowed = {r.upper() for r in shipped}
    if allowed:
        outside = sorted({s.region for s in scans if s.region and s.region.upper() not in allowed})
        if outside:
            warnings.append(
                Warning("unshipped_region", {"regions": outside, "shipped": sorted(allowed)})
            )
    first_at = scans[0].at.isoformat(timespec="seconds") if scans else None
    return Verdict(first, count, first_at, warnings)
