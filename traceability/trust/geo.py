"""WGS-84 shapes for plots and GI zones: polygons (ray casting on longitude/latitude,
fine at plot and prefecture scale away from the poles and the antimeridian) and circles
(centre + radius, on the local equirectangular projection, exact to well under a metre
at plot scale). Decimal arithmetic only (no libm, whose last bits differ between
platforms), so every node agrees on which side of a border a point lies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.errors import SchemaError

#: Metres per degree of latitude (and of longitude at the equator) on the WGS-84 mean radius.
METRES_PER_DEGREE = Decimal("111195.08")
_PI = Decimal("3.14159265358979323846")
MAX_VERTICES = 500
#: RFC 5870 geo URI: geo:<lat>,<lon>[,alt][;params]
_GEO_URI = re.compile(r"^geo:(-?\d{1,2}(?:\.\d+)?),(-?\d{1,3}(?:\.\d+)?)(?:,[^;]*)?(?:;.*)?$")


def _coordinate(value: Any, what: str) -> tuple[Decimal, Decimal]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise SchemaError(f"{what}: expected [longitude, latitude] in degrees")
    lon, lat = Decimal(str(value[0])), Decimal(str(value[1]))
    if not (lon.is_finite() and lat.is_finite() and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise SchemaError(f"{what}: longitude -180..180, latitude -90..90")
    return lon, lat


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[Decimal, Decimal], ...]

    def contains(self, lon: Decimal, lat: Decimal) -> bool:
        """Ray casting (even-odd rule); a point on an edge may fall either side."""
        inside = False
        points = self.vertices
        j = len(points) - 1
        for i in range(len(points)):
            xi, yi = points[i]
            xj, yj = points[j]
            if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


def parse_polygon(value: Any, what: str) -> Polygon:
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_VERTICES:
        raise SchemaError(f"{what}: expected 3 to {MAX_VERTICES} [longitude, latitude] vertices")
    return Polygon(tuple(_coordinate(v, f"{what}[{i}]") for i, v in enumerate(value)))


@dataclass(frozen=True)
class Circle:
    centre: tuple[Decimal, Decimal]
    radius_m: Decimal

    def contains(self, lon: Decimal, lat: Decimal) -> bool:
        return distance_m(self.centre, (lon, lat)) <= self.radius_m


def _cos(degrees: Decimal) -> Decimal:
    """Cosine by its Taylor series in Decimal (|angle| <= 90°: 16 terms are plenty)."""
    x = degrees * _PI / 180
    term, total = Decimal(1), Decimal(1)
    for n in range(1, 16):
        term = -term * x * x / ((2 * n - 1) * (2 * n))
        total += term
    return total


def distance_m(a: tuple[Decimal, Decimal], b: tuple[Decimal, Decimal]) -> Decimal:
    """Distance in metres on the equirectangular projection at `a`'s latitude."""
    dx = (b[0] - a[0]) * METRES_PER_DEGREE * _cos(a[1])
    dy = (b[1] - a[1]) * METRES_PER_DEGREE
    return (dx * dx + dy * dy).sqrt()


def parse_centre(value: Any, what: str) -> tuple[Decimal, Decimal]:
    return _coordinate(value, what)


def geo_point(identifier: str) -> tuple[Decimal, Decimal] | None:
    """(longitude, latitude) of an RFC 5870 geo URI (a readPoint may be one), else None."""
    match = _GEO_URI.match(identifier)
    if match is None:
        return None
    lat, lon = Decimal(match.group(1)), Decimal(match.group(2))
    return (lon, lat) if -90 <= lat <= 90 and -180 <= lon <= 180 else None
