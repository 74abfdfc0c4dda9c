"""Points, zones and distances on the city's map, shared by the geofence and joined kinds and the
simulator.

Zones come from the ``reference.zones`` table (polygons or circles). Distances use a local flat
projection (metres per degree at the point's latitude): at city scale the error is far below
GPS noise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.refdata import ModelEnv, Record

ZONES_TABLE = "reference.zones"
EARTH_M_PER_DEG = 111_320.0

Point = tuple[float, float]  # (lat, lon)


def unknown_zones(names: list[str], env: ModelEnv, param: str
                  ) -> list[tuple[tuple[str | int, ...], str]]:
    """Zone kinds or ids among ``names`` that no zone of the reference data has."""
    zones = list(env.reference.items(ZONES_TABLE))
    known = {zid for zid, _ in zones} | {str(z.get("kind")) for _, z in zones}
    return [((param, i), f"{param}: {name!r} is no zone kind or id of {ZONES_TABLE} (known "
                         f"kinds: {', '.join(sorted({str(z.get('kind')) for _, z in zones}))})")
            for i, name in enumerate(names) if name not in known]


@dataclass(slots=True, frozen=True)
class ZoneShape:
    """One zone of ``reference.zones``: a polygon, or a circle around ``center``."""

    zone_id: str
    name: str
    polygon: tuple[Point, ...] | None
    center: Point | None
    radius_m: float | None
    bbox: tuple[float, float, float, float] = (-90.0, 90.0, -180.0, 180.0)
    """(lat_min, lat_max, lon_min, lon_max) enclosing the shape: most points are rejected by it
    alone, before the ray casting or the distance."""

    def contains(self, p: Point) -> bool:
        lat_min, lat_max, lon_min, lon_max = self.bbox
        if not (lat_min <= p[0] <= lat_max and lon_min <= p[1] <= lon_max):
            return False
        if self.polygon is not None:
            return in_polygon(p, self.polygon)
        assert self.center is not None and self.radius_m is not None
        return metres_between(p, self.center) <= self.radius_m

    def distance_m(self, p: Point) -> float:
        if self.contains(p):
            return 0.0
        if self.polygon is not None:
            ring = (*self.polygon, self.polygon[0])
            return min(distance_to_segment_m(p, a, b) for a, b in itertools.pairwise(ring))
        assert self.center is not None and self.radius_m is not None
        return metres_between(p, self.center) - self.radius_m


def as_position(lat: object, lon: object) -> Point | None:
    """An event's position from its two values, or None unless both are finite numbers (a
    field missing, or a rule's ``lat_field`` naming a field that holds text).

    >>> as_position(30.2, 120), as_position(None, 120.1), as_position("30.2", 120.1)
    ((30.2, 120.0), None, None)
    """
    if not (_finite(lat) and _finite(lon)):
        return None
    return float(lat), float(lon)  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_point(value: Any) -> Point:
    """A point written as ``{"lat": …, "lon": …}`` or as a (lat, lon) pair."""
    if isinstance(value, dict):
        return float(value["lat"]), float(value["lon"])
    lat, lon = value
    return float(lat), float(lon)


def zone_shape(zone_id: str, zone: Record) -> ZoneShape:
    """The shape of a ``reference.zones`` record."""
    polygon = tuple(as_point(v) for v in zone["polygon"]) if zone.get("polygon") else None
    center = as_point(zone["center"]) if zone.get("center") else None
    radius = float(zone["radius_m"]) if zone.get("radius_m") else None
    return ZoneShape(zone_id, str(zone.get("name", zone_id)), polygon, center, radius,
                     _bbox(polygon, center, radius))


def _bbox(polygon: tuple[Point, ...] | None, center: Point | None, radius_m: float | None
          ) -> tuple[float, float, float, float]:
    if polygon:
        lats, lons = [p[0] for p in polygon], [p[1] for p in polygon]
        return min(lats), max(lats), min(lons), max(lons)
    if center is None or radius_m is None:
        return (-90.0, 90.0, -180.0, 180.0)
    # Degrees the radius spans, with a margin so rounding never cuts off a point inside.
    dlat = radius_m / EARTH_M_PER_DEG * 1.01
    dlon = radius_m / (EARTH_M_PER_DEG * max(math.cos(math.radians(abs(center[0]) + dlat)),
                                             1e-6)) * 1.01
    return center[0] - dlat, center[0] + dlat, center[1] - dlon, center[1] + dlon


def in_polygon(p: Point, ring: Sequence[Point]) -> bool:
    """Ray casting in lat/lon (exact enough for city-sized polygons)."""
    lat, lon = p
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        (lat_i, lon_i), (lat_j, lon_j) = ring[i], ring[j]
        if (lon_i > lon) != (lon_j > lon):
            cross = (lat_j - lat_i) * (lon - lon_i) / (lon_j - lon_i) + lat_i
            if lat < cross:
                inside = not inside
        j = i
    return inside


def east_north_m(origin: Point, p: Point) -> tuple[float, float]:
    """Metres east and north of ``origin``."""
    scale = EARTH_M_PER_DEG * math.cos(math.radians(origin[0]))
    return (p[1] - origin[1]) * scale, (p[0] - origin[0]) * EARTH_M_PER_DEG


def metres_between(a: Point, b: Point) -> float:
    x, y = east_north_m(a, b)
    return math.hypot(x, y)


def distance_to_segment_m(p: Point, a: Point, b: Point) -> float:
    """Metres from ``p`` to the nearest point of the segment from ``a`` to ``b``."""
    ax, ay = east_north_m(p, a)
    bx, by = east_north_m(p, b)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
    return math.hypot(ax + t * dx, ay + t * dy)
