"""The origin map of a consumer page: the product's GI zone (the outlines genesis holds)
with its registered plot marked, drawn as inline SVG on the server. Nothing is fetched:
no map tiles, no script, so it shows on any phone in the park's closed network."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from traceability.trust.geo import Circle, Polygon

#: The drawing's size in SVG units; the page scales it to its width.
WIDTH, HEIGHT, MARGIN = 320.0, 220.0, 12.0
#: The plot's marker is at least this many units across, however small the plot.
MIN_MARKER = 5.0

Point = tuple[Decimal, Decimal]


@dataclass(frozen=True)
class OriginMap:
    #: SVG path data, one per area of the zone
    areas: tuple[str, ...]
    #: the plot: its outline as path data, or a circle (cx, cy, r)
    plot_path: str | None
    plot_circle: tuple[float, float, float] | None
    #: where the plot's label goes
    label_at: tuple[float, float]


def origin_map(areas: list[Polygon], plot: Circle | Polygon) -> OriginMap:
    """Project the zone and the plot (equirectangular, longitudes scaled by the cosine of
    the zone's mean latitude) into the drawing, the zone filling it."""
    points = [p for area in areas for p in area.vertices]
    lat0 = math.radians(float(sum(lat for _, lat in points)) / len(points))

    def flat(point: Point) -> tuple[float, float]:
        lon, lat = point
        return float(lon) * math.cos(lat0), float(lat)

    xs, ys = zip(*(flat(p) for p in points), strict=True)
    scale = min(
        (WIDTH - 2 * MARGIN) / max(max(xs) - min(xs), 1e-9),
        (HEIGHT - 2 * MARGIN) / max(max(ys) - min(ys), 1e-9),
    )
    left, top = min(xs), max(ys)

    def at(point: Point) -> tuple[float, float]:
        x, y = flat(point)
        return round(MARGIN + (x - left) * scale, 1), round(MARGIN + (top - y) * scale, 1)

    def path(vertices: tuple[Point, ...]) -> str:
        return "M" + " L".join(f"{x},{y}" for x, y in map(at, vertices)) + " Z"

    if isinstance(plot, Circle):
        cx, cy = at(plot.centre)
        radius = float(plot.radius_m) / 111_195 * scale  # metres -> degrees -> units
        circle = (cx, cy, round(max(radius, MIN_MARKER), 1))
        return OriginMap(tuple(path(a.vertices) for a in areas), None, circle, (cx, cy))
    corners = [at(v) for v in plot.vertices]
    width = max(x for x, _ in corners) - min(x for x, _ in corners)
    centre = (
        round(sum(x for x, _ in corners) / len(corners), 1),
        round(sum(y for _, y in corners) / len(corners), 1),
    )
    if width < MIN_MARKER:  # too small to see as an outline: a marker at its centre
        circle = (*centre, MIN_MARKER)
        return OriginMap(tuple(path(a.vertices) for a in areas), None, circle, centre)
    return OriginMap(tuple(path(a.vertices) for a in areas), path(plot.vertices), None, centre)
