"""The simulated city: a grid of cells, districts, towns, and the zones of the reference data.

The map spans about 28 km × 43 km around (30.27, 120.22), cut into 0.025° cells (about
2.8 km × 2.4 km) named ``G<row><col>``; districts are bands of columns, and their towns (镇街,
``rules/reference/towns.yaml``) bands of rows within them. Zones (schools, water
sources, the city centre, hospitals, tourism sites, facilities) come from ``rules/reference``,
so incidents can be placed inside or outside what the geofence models watch.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

from models.places import town_of_grid
from models.refdata import ReferenceData

LAT0, LAT1, LON0, LON1 = 30.15, 30.40, 120.00, 120.45
CELL = 0.025
ROWS = round((LAT1 - LAT0) / CELL)
COLS = round((LON1 - LON0) / CELL)
DISTRICTS = ("xihu", "shangcheng", "gongshu", "binjiang", "xiaoshan", "yuhang")

Point = tuple[float, float]


@dataclass
class City:
    reference: ReferenceData = field(default_factory=ReferenceData)

    @property
    def grids(self) -> list[str]:
        return [f"G{r:02d}{c:02d}" for r in range(ROWS) for c in range(COLS)]

    def grid_of(self, lat: float, lon: float) -> str:
        r = min(ROWS - 1, max(0, int((lat - LAT0) / CELL)))
        c = min(COLS - 1, max(0, int((lon - LON0) / CELL)))
        return f"G{r:02d}{c:02d}"

    def district_of(self, grid: str) -> str:
        col = int(grid[3:5])
        return DISTRICTS[col * len(DISTRICTS) // COLS]

    def town_of(self, grid: str) -> str | None:
        """The town (镇街) the grid belongs to, from the reference data's towns."""
        town = town_of_grid(self.reference, grid)
        return town.town_id if town else None

    def grid_center(self, grid: str) -> Point:
        r, c = int(grid[1:3]), int(grid[3:5])
        return LAT0 + (r + 0.5) * CELL, LON0 + (c + 0.5) * CELL

    def random_point(self, rng: random.Random, grid: str | None = None) -> Point:
        """A uniform point in ``grid``, or anywhere in the city."""
        if grid is None:
            return rng.uniform(LAT0, LAT1), rng.uniform(LON0, LON1)
        lat, lon = self.grid_center(grid)
        return lat + rng.uniform(-0.45, 0.45) * CELL, lon + rng.uniform(-0.45, 0.45) * CELL

    def inner_point(self, rng: random.Random, grid: str) -> Point:
        """A uniform point in the middle of ``grid``: any point within 450 m of it is in
        ``grid`` too (a cell is 2.8 km by 2.4 km; the middle leaves 480 m east and west)."""
        lat, lon = self.grid_center(grid)
        return lat + rng.uniform(-0.3, 0.3) * CELL, lon + rng.uniform(-0.3, 0.3) * CELL

    @staticmethod
    def point_near(rng: random.Random, centre: Point, radius_m: float) -> Point:
        """A uniform point within ``radius_m`` of ``centre``, rounded as feeds send them."""
        r, angle = radius_m * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
        lat, lon = offset(centre, r * math.cos(angle), r * math.sin(angle))
        return round(lat, 6), round(lon, 6)

    def zones(self, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
        """Reference zones of the given kinds (all zones when none is given), by id."""
        return sorted((zid, dict(z)) for zid, z in self.reference.items("reference.zones")
                      if not kinds or z.get("kind") in kinds)

    def point_in_zone(self, rng: random.Random, zone: dict[str, Any]) -> Point:
        """A point well inside a zone (circle: within half its radius)."""
        if zone.get("center"):
            c = zone["center"]
            radius = float(zone["radius_m"]) * 0.5 * rng.random()
            angle = rng.uniform(0, 2 * math.pi)
            return offset((float(c["lat"]), float(c["lon"])), radius * math.cos(angle),
                          radius * math.sin(angle))
        ring = [(float(p["lat"]), float(p["lon"])) for p in zone["polygon"]]
        lats, lons = [p[0] for p in ring], [p[1] for p in ring]
        # Polygons in the reference data are convex; a point between the centre and a random
        # vertex (at most halfway) is inside.
        centre = (sum(lats) / len(lats), sum(lons) / len(lons))
        vertex = rng.choice(ring)
        t = rng.uniform(0, 0.5)
        return centre[0] + t * (vertex[0] - centre[0]), centre[1] + t * (vertex[1] - centre[1])

    def inside_any(self, point: Point, kinds: tuple[str, ...]) -> bool:
        """Whether ``point`` is inside (or within 100 m of) a zone of these kinds."""
        for _, zone in self.zones(*kinds):
            if zone.get("center"):
                c = zone["center"]
                if metres(point, (c["lat"], c["lon"])) <= float(zone["radius_m"]) + 100:
                    return True
            else:
                lats = [p["lat"] for p in zone["polygon"]]
                lons = [p["lon"] for p in zone["polygon"]]
                if min(lats) - 0.001 <= point[0] <= max(lats) + 0.001 and \
                        min(lons) - 0.001 <= point[1] <= max(lons) + 0.001:
                    return True
        return False


M_PER_DEG = 111_320.0


def offset(p: Point, east_m: float, north_m: float) -> Point:
    """The point ``east_m`` east and ``north_m`` north of ``p``."""
    return (p[0] + north_m / M_PER_DEG,
            p[1] + east_m / (M_PER_DEG * math.cos(math.radians(p[0]))))


def metres(a: Point, b: Point) -> float:
    dy = (b[0] - a[0]) * M_PER_DEG
    dx = (b[1] - a[1]) * M_PER_DEG * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def along(route: list[Point], distance_m: float) -> Point:
    """The point ``distance_m`` along a polyline (its end beyond it)."""
    for a, b in itertools.pairwise(route):
        step = metres(a, b)
        if distance_m <= step:
            t = distance_m / step if step else 0.0
            return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        distance_m -= step
    return route[-1]


def length(route: list[Point]) -> float:
    return sum(metres(a, b) for a, b in itertools.pairwise(route))
