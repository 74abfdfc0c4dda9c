"""joined: a condition over the event together with a record it names — and that record's route.

Some warnings are only visible when an event is set beside the record it refers to: a tanker's
position report beside its electronic waybill (the cargo it carries is not the waybill's, the
waybill is not started or has run out of its time window, there is none at all). ``table`` names
the reference table holding the records (``events.hazchem.waybill`` keeps the latest record of
every waybill; ``reference.lists`` and ``reference.zones`` work too) and ``via`` the event field
holding the record's key. In ``condition`` (CEL) the record is a map named by ``record``
(default ``record``) beside the event's own fields; it is ``null`` when the event names no
record or the table has none under that key, so
``waybill == null || waybill.status != "started"`` reads as it says. Text values of the
record written as ISO date-times become timestamps, so ``ts > waybill.window_end`` compares
times.

``siblings_by`` (a field name) also hands the conditions ``siblings``: the table's other records
(keyed otherwise than the event) whose field of that name equals the event's — a vehicle's other
waybills, for ``siblings.exists(w, w.status == "started")``. It scans the table, so it suits
low-rate topics (waybills), not telemetry.

``route_zones`` (zone kinds or ids) adds a check of a planned route against the zones: the
route is the event's ``route_field`` (default ``route``, a list of lat/lon points) or, when the
event has none, the joined record's. ``route_zone`` and ``route_zone_id`` are the name and id of
the first selected zone the route passes through (the polyline sampled every 25 m), or ``null``
— ``route_zone != null`` breaches when a waybill's route crosses a school's circle.

``clear`` (default: not ``condition``) clears; in between is the hysteresis band. An undecidable
condition (a needed field is null) says nothing (``UNDECIDED``, a HOLD the engine counts).
Stateless: the record is read when the event is scored, so what counts is the record as it
stands then.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from models.base import UNDECIDED, KindParams, Reading, Verdict, WarningModel
from models.expr import CelExpr, Expression, ExpressionError
from models.geometry import (
    ZONES_TABLE,
    ZoneShape,
    as_point,
    east_north_m,
    unknown_zones,
    zone_shape,
)
from models.refdata import ModelEnv, Record
from models.vocabulary import MacroError
from topics.codec import Event
from topics.reference import LOOKUP_EVENT_TOPICS, REFERENCE_SCHEMAS
from topics.schemas import CITY_TZ

SAMPLE_M = 25.0
ROUTE_CACHE_SIZE = 10_000
"""Routes whose first crossed zone is remembered (forgotten all at once when full)."""
RECORD_CACHE_SIZE = 1_024
"""Looked-up records kept normalised (forgotten all at once when full). Small: an entry keeps
its record alive, and a superseded waybill with its route is some kilobytes."""
_UNSEEN = object()
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


JOINABLE_TABLES = (*REFERENCE_SCHEMAS, *LOOKUP_EVENT_TOPICS)
"""Tables a record can be joined from: the reference topics, and department topics whose
latest event per key is kept as reference (waybills)."""


class JoinedParams(KindParams):
    condition: CelExpr
    """CEL over the event's fields, the joined record (under ``as``) and ``route_zone``."""
    clear: CelExpr | None = None
    table: str | None = None
    """The reference table holding the records (e.g. events.hazchem.waybill)."""
    via: str | None = None
    """The event field holding the record's key in ``table``."""
    record: str = "record"
    """The name the joined record goes by in the conditions (``waybill``)."""
    siblings_by: str | None = None
    """With ``table``: the other records of the table whose field of this name equals the
    event's (a vehicle's other waybills) are the list ``siblings`` in the conditions."""
    route_zones: list[str] = Field(default_factory=list)
    """Zone kinds (or ids) a planned route must not pass through."""
    route_field: str = "route"

    @model_validator(mode="after")
    def _complete(self) -> JoinedParams:
        if self.siblings_by is not None and self.table is None:
            raise ValueError("'siblings_by' needs 'table' (the records to search)")
        if (self.table is None) != (self.via is None):
            raise ValueError("'table' and 'via' go together: the table and the event field "
                             "naming the record")
        if self.table is None and not self.route_zones:
            raise ValueError("joined needs 'table' and 'via' (a record to join), "
                             "'route_zones', or both")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.record):
            raise ValueError(f"'record' must be a lower-case name, not {self.record!r}")
        if self.table is not None and self.table not in JOINABLE_TABLES:
            raise ValueError(f"table: unknown table {self.table!r}; known: "
                             f"{', '.join(JOINABLE_TABLES)}")
        return self


class Joined(WarningModel[None]):
    """Event and record side by side.

    >>> from models.refdata import ModelEnv, ReferenceData
    >>> from topics.codec import Event
    >>> ref = ReferenceData()
    >>> ref.put("events.hazchem.waybill", "W1", {"cargo_un": "1203", "status": "started"})
    >>> m = Joined(JoinedParams.model_validate({
    ...     "table": "events.hazchem.waybill", "via": "waybill_id", "record": "waybill",
    ...     "condition": "waybill != null && cargo_un != waybill.cargo_un"}),
    ...     ModelEnv(reference=ref))
    >>> [m.score_one(None, Event("t", "V1", 0, {"waybill_id": w, "cargo_un": c})).verdict.value
    ...  for w, c in (("W1", "1203"), ("W1", "1005"), ("W9", "1005"))]
    ['clear', 'breach', 'clear']
    """

    kind = "joined"
    Params = JoinedParams
    evidence_fields = ("siblings", "route_zone", "route_zone_id")

    @classmethod
    def reference_problems(cls, params: KindParams, env: ModelEnv
                           ) -> list[tuple[tuple[str | int, ...], str]]:
        assert isinstance(params, JoinedParams)
        return unknown_zones(params.route_zones, env, "route_zones")

    @classmethod
    def summary_names(cls, params: KindParams) -> frozenset[str]:
        # The joined record's fields come as ``<record>_<field>``, whatever the record holds.
        assert isinstance(params, JoinedParams)
        names = frozenset(cls.evidence_fields)
        return names | {f"{params.record}_*"} if params.table else names
    event_fields = ("via",)
    breach_expressions = ("condition",)

    def __init__(self, params: JoinedParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.condition = self.expression(params.condition)
        self.clear = self.maybe_expression(params.clear)
        self._cache: tuple[int, list[ZoneShape]] | None = None
        self._crossings: tuple[list[ZoneShape],
                               dict[tuple[Any, ...], ZoneShape | None]] | None = None
        self._records: dict[int, tuple[Record, dict[str, Any]]] = {}
        """Records as normalised, by the identity of the stored record (a new version of a
        record is a new object): every event of a tanker looks up the same waybill."""
        # The record goes to CEL with only the fields the conditions read: a whole waybill (its
        # route of hundreds of points) converted into CEL values at every event was a main cost.
        texts = " ".join(e.expanded for e in (self.condition, self.clear) if e is not None)
        used = re.findall(rf"\b{re.escape(params.record)}\s*\.\s*(\w+)", texts)
        whole = re.search(rf"\b{re.escape(params.record)}\b(?!\s*\.)", texts)
        self._record_fields = None if whole and not used else set(used) or None

    @classmethod
    def field_problems(cls, params: JoinedParams, sources: list[str],  # type: ignore[override]
                       fields_of: Any, env: ModelEnv) -> list[tuple[tuple[str | int, ...], str]]:
        own = {params.record, "siblings", "route_zone", "route_zone_id"}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for topic in sources:
            if params.siblings_by is not None and params.siblings_by not in fields_of(topic):
                problems.append((("siblings_by",), f"unknown field {params.siblings_by!r} "
                                                   f"(not a field of {topic})"))
        for name in ("condition", "clear"):
            source = getattr(params, name)
            if source is None:
                continue
            try:
                variables = Expression(source, env.constants, env.macros).variables
            except (ExpressionError, MacroError) as exc:
                problems.append(((name,), f"{name}: {exc}"))
                continue
            for topic in sources:
                unknown = [v for v in variables if v not in own and v not in fields_of(topic)]
                if unknown:
                    problems.append(((name,), f"unknown field {', '.join(map(repr, unknown))} "
                                              f"in {name} (not a field of {topic}, nor "
                                              f"{params.record!r} or route_zone)"))
        return problems

    def new_state(self) -> None:
        return None

    def _zones(self) -> list[ZoneShape]:
        reference = self.env.reference
        if self._cache is None or self._cache[0] != reference.table_version(ZONES_TABLE):
            wanted = set(self.params.route_zones)
            self._cache = (reference.table_version(ZONES_TABLE),
                           [zone_shape(zid, z) for zid, z in reference.items(ZONES_TABLE)
                            if zid in wanted or z.get("kind") in wanted])
        return self._cache[1]

    def _route_zone(self, route: list[Any]) -> ZoneShape | None:
        """The first zone the route crosses, remembered per route: every event of a waybill
        carries the same route, and sampling it every 25 m is the kind's largest cost."""
        zones = self._zones()
        cached = self._crossings
        if cached is None or cached[0] is not zones:
            cached = self._crossings = (zones, {})
        try:
            key = tuple(tuple(v) if isinstance(v, list) else v for v in route)
            hash(key)
        except TypeError:
            return _first_crossed([as_point(v) for v in route], zones)
        found = cached[1].get(key, _UNSEEN)
        if found is _UNSEEN:
            if len(cached[1]) >= ROUTE_CACHE_SIZE:
                cached[1].clear()
            found = cached[1][key] = _first_crossed([as_point(v) for v in route], zones)
        return found  # type: ignore[return-value]

    def _normalised(self, record: Record) -> dict[str, Any]:
        cached = self._records.get(id(record))
        if cached is not None and cached[0] is record:
            return cached[1]
        if len(self._records) >= RECORD_CACHE_SIZE:
            self._records.clear()
        normal = _normalised(record)
        self._records[id(record)] = (record, normal)
        return normal

    def score_one(self, state: None, event: Event) -> Reading:
        p = self.params
        data = dict(event.data)
        evidence: dict[str, Any] = {}
        record: dict[str, Any] | None = None
        if p.table is not None and p.via is not None:
            key = event.data.get(p.via)
            found = None if key is None else self.env.reference.get(p.table, str(key), event.ts)
            record = None if found is None else self._normalised(found)
            fields = self._record_fields
            data[p.record] = record if record is None or fields is None else {
                k: v for k, v in record.items() if k in fields}
            evidence[f"{p.record}_found"] = record is not None
            for name, value in (data[p.record] or {}).items():
                if isinstance(value, datetime):  # as the duty officer reads times
                    evidence[f"{p.record}_{name}"] = \
                        value.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
                elif isinstance(value, str | int | float | bool):
                    evidence[f"{p.record}_{name}"] = value
        if p.siblings_by is not None and p.table is not None:
            value = event.data.get(p.siblings_by)
            siblings = [] if value is None else [
                self._normalised(r) for k, r in self.env.reference.items(p.table, event.ts)
                if k != str(event.data.get(p.via)) and r.get(p.siblings_by) == value]
            data["siblings"] = siblings
            evidence["siblings"] = len(siblings)
        if p.route_zones:
            route = event.data.get(p.route_field) or (record or {}).get(p.route_field) or []
            zone = self._route_zone(route)
            data["route_zone"] = None if zone is None else zone.name
            data["route_zone_id"] = None if zone is None else zone.zone_id
            evidence |= {"route_zone": data["route_zone"], "route_zone_id": data["route_zone_id"]}
        held = self.condition.evaluate(data)
        if held is True:
            return Reading(Verdict.BREACH, evidence)
        if self.clear is None:
            return UNDECIDED if held is None else Reading(Verdict.CLEAR, evidence)
        cleared = self.clear.evaluate(data)
        if cleared is True:
            return Reading(Verdict.CLEAR, evidence)
        return UNDECIDED if held is None and cleared is None \
            else Reading(Verdict.BAND, evidence)

    def describe(self) -> dict[str, Any]:
        p = self.params
        out: dict[str, Any] = {"kind": self.kind, "condition": p.condition}
        out |= {"table": p.table, "via": p.via, "record": p.record} if p.table else {}
        out |= {"route_zones": p.route_zones} if p.route_zones else {}
        out |= {"clear": p.clear} if p.clear else {}
        return out


def _normalised(record: Record) -> dict[str, Any]:
    """The record with ISO date-time strings (and naive datetimes) as aware UTC datetimes."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, str) and _ISO.match(value):
            with contextlib.suppress(ValueError):
                value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=CITY_TZ)).astimezone(UTC)
        out[name] = value
    return out


def _first_crossed(route: list[tuple[float, float]], zones: list[ZoneShape]) -> ZoneShape | None:
    """The first zone (in route order) a point of the polyline, sampled every 25 m, lies in."""
    if not route or not zones:
        return None
    for zone in zones:
        if zone.contains(route[0]):
            return zone
    for a, b in itertools.pairwise(route):
        # Only zones whose box the segment's box meets can hold one of its samples: a long
        # route past a few small zones is then mostly never sampled at all.
        near = [z for z in zones if _boxes_meet(z.bbox, a, b)]
        if not near:
            continue
        x, y = east_north_m(a, b)
        steps = max(1, int((x * x + y * y) ** 0.5 // SAMPLE_M))
        for i in range(1, steps + 1):
            point = (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
            for zone in near:
                if zone.contains(point):
                    return zone
    return None


def _boxes_meet(box: tuple[float, float, float, float], a: tuple[float, float],
                b: tuple[float, float]) -> bool:
    lat_min, lat_max, lon_min, lon_max = box
    return (min(a[0], b[0]) <= lat_max and max(a[0], b[0]) >= lat_min
            and min(a[1], b[1]) <= lon_max and max(a[1], b[1]) >= lon_min)

