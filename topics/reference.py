"""Reference records: the slowly changing data models consult (zones, lists, waybills).

They live in compacted topics keyed by the record's id (a null value deletes it); every worker
reads them whole. Files under ``rules/reference/`` hold the same records for replay, tests and
``yujing reference publish``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from topics.schemas import BOUNDED, FreeText, LatLon


class Zone(BaseModel):
    """A named area: a polygon (lat/lon vertices) or a circle (centre and radius)."""

    model_config = ConfigDict(extra="allow", **BOUNDED)

    name: str
    kind: str
    """What sort of place: city_centre, school, hospital, water_source, tourism_site,
    facility, parking …; geofence rules select zones by kind."""
    polygon: list[LatLon] | None = Field(default=None, min_length=3)
    center: LatLon | None = None
    radius_m: float | None = Field(default=None, gt=0)
    district: str | None = None
    grid_id: str | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Zone:
        if (self.polygon is None) == (self.center is None):
            raise ValueError("give either 'polygon' or 'center' with 'radius_m'")
        if self.center is not None and self.radius_m is None:
            raise ValueError("a circle needs 'radius_m'")
        return self


class ListEntry(BaseModel):
    """Membership of an entity in a named list (blacklist, qualified drivers, valid permits),
    keyed ``<list>:<entity>``, optionally in force only between two times."""

    model_config = ConfigDict(extra="allow", **BOUNDED)

    list: str
    entity: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    note: FreeText | None = None


ReferenceTopic = Literal["reference.zones", "reference.lists"]

REFERENCE_SCHEMAS: dict[str, type[BaseModel]] = {
    "reference.zones": Zone,
    "reference.lists": ListEntry,
}
"""Reference topics and the schema of their records."""

LOOKUP_EVENT_TOPICS = ("events.hazchem.waybill",)
"""Department topics whose latest event per key is also kept as reference (a vehicle's waybill
gives its planned route)."""
