"""The city's map for the console, from the reference data: districts and towns (zones of
kind ``district`` and ``town``, ``rules/reference/towns.yaml``) as polygons, and each town's
grid cells laid out inside it. Nothing is fetched: the page draws it as SVG.

>>> from models.refdata import ReferenceData
>>> ref = ReferenceData()
>>> ref.put("reference.zones", "xihu", {"name": "西湖区", "kind": "district",
...         "polygon": [[30.0, 120.0], [30.0, 120.1], [30.2, 120.1], [30.2, 120.0]]})
>>> ref.put("reference.zones", "xihu.lingyin", {"name": "灵隐", "kind": "town",
...         "district": "xihu", "grids": ["G0000", "G0100"],
...         "polygon": [[30.0, 120.0], [30.0, 120.1], [30.2, 120.1], [30.2, 120.0]]})
>>> town = city_map(ref)["towns"][0]
>>> [(g["id"], g["box"]) for g in town["grids"]]
[('G0000', [30.0, 120.0, 30.1, 120.1]), ('G0100', [30.1, 120.0, 30.2, 120.1])]

Points as the reference files' loader leaves them (``{lat, lon}``) are drawn as pairs too:

>>> ref.put("reference.zones", "xihu", {"name": "西湖区", "kind": "district", "polygon": [
...     {"lat": 30.0, "lon": 120.0}, {"lat": 30.0, "lon": 120.1}, {"lat": 30.2, "lon": 120.1}]})
>>> city_map(ref)["districts"][0]["polygon"]
[[30.0, 120.0], [30.0, 120.1], [30.2, 120.1]]
"""

from __future__ import annotations

from typing import Any

from models.refdata import ReferenceData

ZONES = "reference.zones"


def _pairs(polygon: list[Any]) -> list[list[float]]:
    """A polygon as ``[lat, lon]`` pairs: the reference data validates its points into
    ``{lat, lon}`` objects (``LatLon``), a hand-made record may give pairs."""
    return [[p["lat"], p["lon"]] if isinstance(p, dict) else [p[0], p[1]] for p in polygon]


def _box(polygon: list[list[float]]) -> list[float]:
    lats, lons = [p[0] for p in polygon], [p[1] for p in polygon]
    return [min(lats), min(lons), max(lats), max(lons)]


def _cells(box: list[float], grids: list[str]) -> list[dict[str, Any]]:
    """A town's grids (``G<row><col>``) as the cells of its box, rows south to north."""
    try:
        places = {g: (int(g[1:3]), int(g[3:5])) for g in grids}
    except ValueError:
        return []
    rows = sorted({r for r, _ in places.values()})
    cols = sorted({c for _, c in places.values()})
    lat0, lon0, lat1, lon1 = box
    height, width = (lat1 - lat0) / len(rows), (lon1 - lon0) / len(cols)
    cells = []
    for grid, (row, col) in sorted(places.items()):
        i, j = rows.index(row), cols.index(col)
        cells.append({"id": grid, "box": [round(lat0 + i * height, 6), round(lon0 + j * width, 6),
                                          round(lat0 + (i + 1) * height, 6),
                                          round(lon0 + (j + 1) * width, 6)]})
    return cells


def city_map(reference: ReferenceData) -> dict[str, Any]:
    districts, towns = [], []
    for zone_id, zone in sorted(reference.items(ZONES)):
        if not zone.get("polygon"):
            continue
        polygon = _pairs(zone["polygon"])
        if zone.get("kind") == "district":
            districts.append({"id": zone_id, "name": zone.get("name", zone_id),
                              "polygon": polygon})
        elif zone.get("kind") == "town":
            box = _box(polygon)
            towns.append({"id": zone_id, "name": zone.get("name", zone_id),
                          "district": zone.get("district"), "polygon": polygon,
                          "grids": _cells(box, list(zone.get("grids") or []))})
    return {"districts": districts, "towns": towns}
