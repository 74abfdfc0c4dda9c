"""The command levels' places: which town (镇街) and district (县区) a grid cell belongs to.

Towns are ``reference.zones`` records of kind ``town`` (``rules/reference/towns.yaml``), each
with its ``district`` and the ``grids`` it is made of, so a worker that knows an event's grid
knows its town — no event has to carry it. The index is rebuilt when the zones table changes.

>>> from models.refdata import ReferenceData
>>> ref = ReferenceData()
>>> ref.put("reference.zones", "xihu.lingyin", {"name": "灵隐街道", "kind": "town",
...         "district": "xihu", "grids": ["G0000", "G0001"]})
>>> town_of_grid(ref, "G0001")
Town(town_id='xihu.lingyin', name='灵隐街道', district='xihu')
>>> town_of_grid(ref, "G0909") is None, town_of_grid(ref, None) is None
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from models.geometry import ZONES_TABLE, Point, as_point, as_position, in_polygon
from models.refdata import ReferenceData

TOWN_KIND = "town"
DISTRICT_KIND = "district"


@dataclass(frozen=True, slots=True)
class Town:
    town_id: str
    name: str
    district: str | None


_INDEXES: WeakKeyDictionary[ReferenceData, tuple[int, _TownIndex]] = WeakKeyDictionary()
"""Per reference data: (the zones table's version, its towns by grid and by shape)."""


def town_of_grid(reference: ReferenceData, grid_id: str | None) -> Town | None:
    """The town the grid belongs to, or None (no grid, or a grid no town lists)."""
    if not grid_id:
        return None
    return _index(reference).by_grid.get(grid_id)


def town_at(reference: ReferenceData, lat: object, lon: object) -> Town | None:
    """The town whose polygon holds the point, or None (no position, or outside every town).
    For events that carry a position and no grid (a tanker's telemetry), so their work orders
    start at the town's desk like the others.

    >>> from models.refdata import ReferenceData
    >>> ref = ReferenceData()
    >>> ref.put("reference.zones", "xihu.lingyin", {"name": "灵隐街道", "kind": "town",
    ...         "district": "xihu", "polygon": [[30.0, 120.0], [30.0, 120.1], [30.1, 120.1],
    ...                                         [30.1, 120.0]]})
    >>> town_at(ref, 30.05, 120.05).town_id, town_at(ref, 31.0, 120.05), town_at(ref, None, 1)
    ('xihu.lingyin', None, None)
    """
    point = as_position(lat, lon)
    if point is None:
        return None
    for (lat0, lat1, lon0, lon1), ring, town in _index(reference).shapes:
        if lat0 <= point[0] <= lat1 and lon0 <= point[1] <= lon1 and in_polygon(point, ring):
            return town
    return None


def place_of(reference: ReferenceData, data: dict[str, object]) -> Town | None:
    """The town of an event: its grid's, else the one its position is in."""
    grid = data.get("grid_id")
    return town_of_grid(reference, grid if isinstance(grid, str) else None) or \
        town_at(reference, data.get("lat"), data.get("lon"))


@dataclass(frozen=True, slots=True)
class _TownIndex:
    by_grid: dict[str, Town]
    shapes: list[tuple[tuple[float, float, float, float], tuple[Point, ...], Town]]
    """(bounding box, polygon, town) of every town with a polygon."""


def _index(reference: ReferenceData) -> _TownIndex:
    version = reference.table_version(ZONES_TABLE)
    cached = _INDEXES.get(reference)
    if cached is not None and cached[0] == version:
        return cached[1]
    index = _TownIndex({}, [])
    for zone_id, zone in reference.items(ZONES_TABLE):
        if zone.get("kind") != TOWN_KIND:
            continue
        district = zone.get("district")
        town = Town(zone_id, str(zone.get("name", zone_id)),
                    None if district is None else str(district))
        for grid in zone.get("grids") or ():
            index.by_grid.setdefault(str(grid), town)  # a grid listed twice: the first town
        if zone.get("polygon"):
            ring = tuple(as_point(v) for v in zone["polygon"])
            lats, lons = [q[0] for q in ring], [q[1] for q in ring]
            index.shapes.append(((min(lats), max(lats), min(lons), max(lons)), ring, town))
    _INDEXES[reference] = (version, index)
    return index
