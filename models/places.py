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

from models.geometry import ZONES_TABLE
from models.refdata import ReferenceData

TOWN_KIND = "town"
DISTRICT_KIND = "district"


@dataclass(frozen=True, slots=True)
class Town:
    town_id: str
    name: str
    district: str | None


_INDEXES: WeakKeyDictionary[ReferenceData, tuple[int, dict[str, Town]]] = WeakKeyDictionary()
"""Per reference data: (the zones table's version, grid id -> town)."""


def town_of_grid(reference: ReferenceData, grid_id: str | None) -> Town | None:
    """The town the grid belongs to, or None (no grid, or a grid no town lists)."""
    if not grid_id:
        return None
    return _grid_index(reference).get(grid_id)


def _grid_index(reference: ReferenceData) -> dict[str, Town]:
    version = reference.table_version(ZONES_TABLE)
    cached = _INDEXES.get(reference)
    if cached is not None and cached[0] == version:
        return cached[1]
    index: dict[str, Town] = {}
    for zone_id, zone in reference.items(ZONES_TABLE):
        if zone.get("kind") != TOWN_KIND:
            continue
        district = zone.get("district")
        town = Town(zone_id, str(zone.get("name", zone_id)),
                    None if district is None else str(district))
        for grid in zone.get("grids") or ():
            index.setdefault(str(grid), town)  # a grid listed twice stays with the first town
    _INDEXES[reference] = (version, index)
    return index
