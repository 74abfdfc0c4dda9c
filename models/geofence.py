"""geofence: where a moving thing is, against zones and planned routes.

Zones come from the ``reference.zones`` table (polygons or circles, each with a ``kind`` such as
school, water_source, city_centre, hospital); routes from the vehicle's current waybill (the
latest ``events.hazchem.waybill`` record named by the event's waybill field). Modes:

- ``inside``: the position is inside a selected zone;
- ``outside``: it is inside none of them (a valve opened away from any facility);
- ``near``: it is within ``distance_m`` of a selected zone (parked next to a crowded place);
- ``dwell``: it has stayed inside one selected zone for at least ``dwell``;
- ``off_route``: it is farther than ``distance_m`` from the waybill's planned route.

``when`` (CEL) adds a condition on the event itself (``speed_kmh < 1`` for parked). The
opposite position clears. An event without a position, or whose ``when`` cannot be decided (a
field it needs is missing), says nothing (``UNDECIDED``, a HOLD the engine counts). Distances
use a local flat projection (metres per degree at the point's latitude): at city scale the
error is far below GPS noise.

State per key: for ``dwell`` the zone entered and when; otherwise nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from models.base import (
    HOLD,
    UNDECIDED,
    KindParams,
    Reading,
    Verdict,
    WarningModel,
    pickled_by_position,
)
from models.durations import Duration
from models.expr import CelExpr
from models.geometry import (
    ZONES_TABLE,
    Point,
    ZoneShape,
    as_point,
    as_position,
    distance_to_segment_m,
    unknown_zones,
    zone_shape,
)
from models.refdata import ModelEnv, Record
from topics.codec import Event

WAYBILLS_TABLE = "events.hazchem.waybill"


class GeofenceParams(KindParams):
    mode: Literal["inside", "outside", "near", "dwell", "off_route"]
    zones: list[str] = Field(default_factory=list)
    """Zone kinds (or zone ids) the rule watches; for every mode but off_route."""
    distance_m: float | None = None
    dwell: Duration | None = None
    route_field: str = "waybill_id"
    """off_route: the event field naming the waybill whose planned route applies."""
    when: CelExpr | None = None
    lat_field: str = "lat"
    lon_field: str = "lon"

    @model_validator(mode="after")
    def _complete(self) -> GeofenceParams:
        if self.mode != "off_route" and not self.zones:
            raise ValueError(f"mode {self.mode} needs 'zones' (zone kinds or ids)")
        if self.mode in ("near", "off_route") and not self.distance_m:
            raise ValueError(f"mode {self.mode} needs 'distance_m'")
        if self.mode == "dwell" and not self.dwell:
            raise ValueError("mode dwell needs 'dwell'")
        return self


@pickled_by_position
@dataclass(slots=True)
class DwellState:
    zone: str | None = None
    since: float | None = None


class Geofence(WarningModel[DwellState | None]):
    """Position against zones or a planned route.

    >>> from models.refdata import ModelEnv, ReferenceData
    >>> from topics.codec import Event
    >>> ref = ReferenceData()
    >>> ref.put("reference.zones", "Z1", {"name": "No.1 School", "kind": "school",
    ...         "center": {"lat": 30.0, "lon": 120.0}, "radius_m": 200})
    >>> m = Geofence(GeofenceParams(mode="inside", zones=["school"]), ModelEnv(reference=ref))
    >>> [m.score_one(None, Event("t", "V1", 0, {"lat": 30.0 + d, "lon": 120.0})).verdict.value
    ...  for d in (0.001, 0.002)]
    ['breach', 'clear']
    """

    kind = "geofence"
    Params = GeofenceParams
    evidence_fields = ("zone_id", "zone", "zones", "distance_m", "limit_m", "entered_at",
                       "stayed_s", "waybill_id", "when")
    event_expressions = ("when",)
    breach_expressions = ("when",)
    event_fields = ("lat_field", "lon_field")

    def __init__(self, params: GeofenceParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.when = self.maybe_expression(params.when)
        self._cache: tuple[int, list[ZoneShape]] | None = None

    @classmethod
    def field_problems(cls, params: GeofenceParams, sources: list[str],  # type: ignore[override]
                       fields_of: Any, env: ModelEnv) -> list[tuple[tuple[str | int, ...], str]]:
        if params.mode == "off_route" and not all(params.route_field in fields_of(t)
                                                  for t in sources):
            return [(("route_field",), f"unknown field {params.route_field!r}")]
        return []

    @classmethod
    def reference_problems(cls, params: GeofenceParams, env: ModelEnv  # type: ignore[override]
                           ) -> list[tuple[tuple[str | int, ...], str]]:
        return unknown_zones(params.zones, env, "zones")

    def _zones(self) -> list[ZoneShape]:
        reference = self.env.reference
        if self._cache is None or self._cache[0] != reference.table_version(ZONES_TABLE):
            wanted = set(self.params.zones)
            shapes = [zone_shape(zid, z) for zid, z in reference.items(ZONES_TABLE)
                      if zid in wanted or z.get("kind") in wanted]
            self._cache = (reference.table_version(ZONES_TABLE), shapes)
        return self._cache[1]

    def new_state(self) -> DwellState | None:
        return DwellState() if self.params.mode == "dwell" else None

    def _point(self, event: Event) -> Point | None:
        return as_position(event.data.get(self.params.lat_field),
                           event.data.get(self.params.lon_field))

    def score_one(self, state: DwellState | None, event: Event) -> Reading:
        point = self._point(event)
        if point is None:
            return UNDECIDED
        if self.when is not None:
            held = self.when.evaluate(event.data)
            if held is None:
                return UNDECIDED
            if held is False:
                return Reading(Verdict.CLEAR, {"when": self.when.source})
        mode = self.params.mode
        if mode == "off_route":
            return self._off_route(point, event)
        zones = self._zones()
        if mode == "near":
            near = [(z.distance_m(point), z) for z in zones]
            hits = sorted((d, z.zone_id, z) for d, z in near if d <= (self.params.distance_m or 0))
            if hits:
                d, _, zone = hits[0]
                return Reading(Verdict.BREACH, _zone_evidence(zone) | {"distance_m": round(d)})
            return Reading(Verdict.CLEAR)
        inside = next((z for z in zones if z.contains(point)), None)
        if mode == "inside":
            return Reading(Verdict.BREACH, _zone_evidence(inside)) if inside \
                else Reading(Verdict.CLEAR)
        if mode == "outside":
            return Reading(Verdict.CLEAR, _zone_evidence(inside)) if inside \
                else Reading(Verdict.BREACH, {"zones": self.params.zones})
        # dwell
        assert isinstance(state, DwellState)
        if inside is None:
            return Reading(Verdict.CLEAR)
        since = state.since if state.zone == inside.zone_id and state.since is not None \
            else event.ts
        stayed = event.ts - since
        evidence = _zone_evidence(inside) | {"entered_at": since, "stayed_s": stayed}
        assert self.params.dwell is not None
        return Reading(Verdict.BREACH if stayed >= self.params.dwell else Verdict.BAND, evidence)

    def learn_one(self, state: DwellState | None, event: Event) -> None:
        if not isinstance(state, DwellState):
            return
        point = self._point(event)
        if point is None:
            return
        inside = next((z for z in self._zones() if z.contains(point)), None)
        if inside is None:
            state.zone, state.since = None, None
        elif state.zone != inside.zone_id:
            state.zone, state.since = inside.zone_id, event.ts

    def _off_route(self, point: Point, event: Event) -> Reading:
        waybill_id = event.data.get(self.params.route_field)
        waybill = None if waybill_id is None else \
            self.env.reference.get(WAYBILLS_TABLE, str(waybill_id), event.ts)
        route = _route(waybill)
        if len(route) < 2:
            return HOLD  # no planned route known: nothing to compare with
        distance = min(distance_to_segment_m(point, a, b) for a, b in itertools.pairwise(route))
        evidence = {"waybill_id": waybill_id, "distance_m": round(distance),
                    "limit_m": self.params.distance_m}
        assert self.params.distance_m is not None
        return Reading(Verdict.BREACH if distance > self.params.distance_m else Verdict.CLEAR,
                       evidence)

    def describe(self) -> dict[str, Any]:
        p = self.params
        out: dict[str, Any] = {"kind": self.kind, "mode": p.mode}
        out |= {"zones": p.zones} if p.zones else {}
        out |= {"distance_m": p.distance_m} if p.distance_m else {}
        out |= {"dwell_s": p.dwell} if p.dwell else {}
        out |= {"when": p.when} if p.when else {}
        return out


def _zone_evidence(zone: ZoneShape | None) -> dict[str, Any]:
    return {} if zone is None else {"zone_id": zone.zone_id, "zone": zone.name}


def _route(waybill: Record | None) -> list[Point]:
    if not waybill:
        return []
    return [as_point(v) for v in waybill.get("route") or ()]
