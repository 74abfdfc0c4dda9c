"""Event schemas of the department streams (catalogue §1), one pydantic model per topic.

Every event carries ``event_id``, ``ts`` (event time) and ``source`` (the sending system).
Fields the catalogue lists are typed; a department may send more fields, which are kept
(``extra="allow"``) so a new upstream field never dead-letters a stream, while a known field of
the wrong type does.

``ts`` may be ISO-8601 text or epoch seconds; text without a zone is read in the city's time zone
(``YUJING_TZ``, default Asia/Shanghai), because department systems commonly send local time.

Bounds (``topics.bounds``): numbers must be finite (``NaN`` and ``Infinity``, as numbers or text,
are rejected: a learned model fed one is poisoned for good); a string field holds at most 512
characters (an id cut short would name something else); free text (``FreeText``: a ticket's
description) is cut at 4,096 characters with a marker, and the event is scored.

Personal data (``topics.personal_data``): a field that names a person says what an alert, a log
line or the CLI shows in its place — ``Personal("hash")``, ``Personal("mask")`` or
``Personal("drop")`` beside its type (``docs/personal-data.md`` lists them and why). Rules see the
original value. Licence plates of tankers and coaches are not marked: they are commercial
vehicles registered to their operators, and the plate is what a patrol stops them by.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from topics.bounds import FIELD_MAX_CHARS, TEXT_MAX_CHARS, cut
from topics.personal_data import Personal


def _city_tz() -> ZoneInfo:
    name = os.environ.get("YUJING_TZ", "Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        # Read at import, before any command can say so: a process told a zone that does not
        # exist stops with one line naming the variable (exit 2, as bad configuration does).
        print(f"error: YUJING_TZ={name!r} is not a time zone (e.g. Asia/Shanghai)",
              file=sys.stderr)
        raise SystemExit(2) from None


CITY_TZ = _city_tz()

Lat = float
Lon = float

BOUNDED = ConfigDict(str_max_length=FIELD_MAX_CHARS, allow_inf_nan=False)
"""What every event and reference schema enforces: short strings, finite numbers."""


def _cut_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return cut(value, TEXT_MAX_CHARS)


DriverId = Annotated[str | None, Personal("hash")]
"""A driver's id (often the ID card or qualification certificate number): hashed, so one driver's
alerts still correlate."""
Phone = Annotated[str | None, Personal("mask")]
"""A caller's or reporter's phone number: masked, the duty officer can still confirm it."""
PersonName = Annotated[str | None, Personal("drop")]
"""A person's name: never needed to act on an alert."""

FreeText = Annotated[str, PlainValidator(_cut_text),
                     WithJsonSchema({"type": "string",
                                     "description": f"cut at {TEXT_MAX_CHARS} characters"})]
"""Free text: cut at ``TEXT_MAX_CHARS`` with a marker rather than rejected."""


class EventSchema(BaseModel):
    """Fields every department event has."""

    model_config = ConfigDict(extra="allow", frozen=False, **BOUNDED)

    event_id: str = Field(min_length=1)
    ts: datetime
    source: str = "unknown"

    @field_validator("ts", mode="after")
    @classmethod
    def _zone_naive_ts(cls, ts: datetime) -> datetime:
        return ts.replace(tzinfo=CITY_TZ) if ts.tzinfo is None else ts


class LatLon(BaseModel):
    """A position: ``{lat: …, lon: …}`` or the pair ``[lat, lon]``."""

    model_config = BOUNDED

    lat: Lat = Field(ge=-90, le=90)
    lon: Lon = Field(ge=-180, le=180)

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) == 2:
            return {"lat": value[0], "lon": value[1]}
        return value


class HazchemVehicle(EventSchema):
    """GPS/CAN telemetry of a hazardous-chemical tanker (key: vehicle_id)."""

    vehicle_id: str
    plate: str | None = None
    lat: Lat = Field(ge=-90, le=90)
    lon: Lon = Field(ge=-180, le=180)
    speed_kmh: float = Field(ge=0)
    heading: float | None = None
    ignition: bool | None = None
    driver_id: DriverId = None
    waybill_id: str | None = None
    cargo_un: str | None = None
    cargo_class: float | None = Field(default=None, ge=1, lt=10)  # 2.1, 3, 6.1 …
    load_t: float | None = None
    rated_load_t: float | None = None
    tank_pressure_kpa: float | None = None
    tank_temp_c: float | None = None
    valve_open: bool | None = None
    # Not in the catalogue's list: the map-matched road class, which telematics platforms supply
    # and which the speed limits depend on.
    road_class: Literal["highway", "urban", "other"] | None = None
    # Not in the catalogue's list: the continuous driving time the on-board terminal keeps
    # (JT/T 794 / JT/T 808: it resets after a stop of 20 minutes or more), and the grid cell
    # the platform map-matches the position to.
    driving_min: float | None = Field(default=None, ge=0)
    grid_id: str | None = None


class HazchemFacility(EventSchema):
    """Storage-tank sensors at a hazardous-chemical facility (key: tank_id)."""

    tank_id: str
    facility_id: str
    level_pct: float | None = None
    temp_c: float | None = None
    pressure_kpa: float | None = None
    lel_pct: float | None = None
    toxic_ppm: float | None = None
    sensor_status: str | None = None
    grid_id: str | None = None
    # Not in the catalogue's list: whether a loading/unloading transfer on the tank is running
    # (from the facility's DCS), without which a falling level cannot be told from a leak.
    transfer_active: bool | None = None


class HazchemWaybill(EventSchema):
    """Electronic waybill of a hazardous-chemical transport (key: waybill_id)."""

    waybill_id: str
    vehicle_id: str
    company_id: str
    driver_id: DriverId = None
    cargo_un: str | None = None
    qty_t: float | None = None
    route: list[LatLon] = Field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None
    status: Literal["issued", "started", "finished", "cancelled"]


class UtilitiesSensor(EventSchema):
    """Urban-lifeline sensors: water, gas, heat, drainage, power, bridges, streetlights, and
    generic sensors of no listed network (``other``) (key: sensor_id)."""

    sensor_id: str
    network: Literal["water", "gas", "heat", "drainage", "power", "bridge", "streetlight",
                     "other"]
    """The lifeline network the sensor serves; ``other`` for a generic sensor of none of them
    (a telecom manhole cover, noise, a utility tunnel's air), which rules tell apart by
    ``metric``."""
    metric: str
    value: float
    unit: str | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    grid_id: str | None = None
    # Not in the catalogue's list (optional; see rules/vocabulary/utilities.yaml):
    baseline: float | None = None
    """The platform's reference value for this metric (a DMA inflow meter: its legitimate
    night flow in m³/h)."""
    rain_mm_h: float | None = None
    """Rainfall at the gauge co-located with a drainage well station, mm/h."""
    in_season: bool | None = None
    """Heat network: whether the network is in heating-season operation (from the heating
    company's SCADA); null for other networks."""


class HotlineTicket(EventSchema):
    """A 12345 citizen-hotline ticket (key: ticket_id)."""

    ticket_id: str
    caller_hash: str | None = None
    district: str | None = None
    grid_id: str | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    category: str
    text: FreeText = ""
    urgency: str | None = None
    status: Literal["new", "assigned", "closed", "reopened"]
    dept: str | None = None
    due_at: datetime | None = None
    # Not in the catalogue's list (which sends ``caller_hash`` only), but what a hotline system
    # records of every call (来电号码, 来电人): declared so that, sent, they are protected.
    caller_phone: Phone = None
    caller_name: PersonName = None


class PoliceIncident(EventSchema):
    """A 110 police incident (key: incident_id)."""

    incident_id: str
    kind: str
    district: str | None = None
    grid_id: str | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    level: int | None = None
    """1 general (一般), 2 serious (较大), 3 major (重大), 4 especially major (特别重大)."""
    address_hash: str | None = None
    # Not in the catalogue's list, but on every 110 record: the police station (派出所) whose
    # jurisdiction (a few adjacent grid cells) the incident is in, the road of a traffic case,
    # the kind of place (发案场所: venue, residence, road …) and a missing person's age.
    station: str | None = None
    road: str | None = None
    place: str | None = None
    subject_age: int | None = Field(default=None, ge=0, le=130)
    # Not in the catalogue's list: a fraud report's type (诈骗类型, as the anti-fraud centre
    # classifies them: rebate tasks, fake investment, fake customer service …): a campaign works
    # one script.
    fraud_type: str | None = None
    # Not in the catalogue's list: the reporter (报警人) a 110 record names, declared so that,
    # sent, they are protected.
    reporter_phone: Phone = None
    reporter_name: PersonName = None


class RoadSegment(EventSchema):
    """Traffic state of a road segment (key: segment_id)."""

    segment_id: str
    speed_kmh: float | None = None
    flow_vph: float | None = None
    occupancy_pct: float | None = None
    free_flow_kmh: float | None = None
    # Not in the catalogue's list: whether the segment is closed to traffic (road works, an
    # accident scene, an event), as the traffic-control system marks it.
    closed: bool | None = None
    # Not in the catalogue's list: the flow as % of the segment's typical flow for this weekday
    # and time of day (the traffic platform's historical profile, 交通流量同期比).
    flow_pct_typical: float | None = None


class Coach(EventSchema):
    """Telemetry of a coach, bus or school bus (key: vehicle_id)."""

    vehicle_id: str
    plate: str | None = None
    category: Literal["coach", "bus", "school_bus"]
    lat: Lat
    lon: Lon
    speed_kmh: float = Field(ge=0)
    passengers: int | None = None
    rated_passengers: int | None = None
    driver_id: DriverId = None
    # Not in the catalogue's list: the bus line and the stop of an arrival record (buses), and
    # the route a school bus is assigned (school_bus).
    line_id: str | None = None
    stop_id: str | None = None
    route_id: str | None = None


class HealthReport(EventSchema):
    """A health-system report: fever visits, ER waits, cases, ambulance calls (key: facility_id)."""

    facility_id: str
    kind: Literal["fever_visit", "er_wait", "disease_case", "ambulance_call", "bed_occupancy",
                  "cold_chain_temp", "school_absence"]
    disease: str | None = None
    count: int | None = None
    value: float | None = None
    grid_id: str | None = None
    district: str | None = None
    school_id: str | None = None
    # Not in the catalogue's list: the place-and-disease group a case report is filed under
    # (``<school or community>/<disease>``, as the case-reporting system groups cases), and the
    # capacity a report is measured against (ambulances on duty for ambulance_call).
    cluster_id: str | None = None
    capacity: float | None = None


class EnvironmentStation(EventSchema):
    """An environmental monitoring reading (key: station_id)."""

    station_id: str
    kind: Literal["air", "water", "noise", "emission"]
    metric: str
    value: float
    grid_id: str | None = None
    enterprise_id: str | None = None
    # Not in the catalogue's list (optional):
    limit: float | None = None
    """Emission: the discharge permit's limit for this pollutant (same unit as ``value``)."""
    target_class: int | None = None
    """Water section: its assessment target class (1-5 for I-V), for ``metric: wq_class``."""


class TourismSite(EventSchema):
    """Visitor counts at a tourism site (key: site_id)."""

    site_id: str
    visitors_now: int | None = None
    capacity: int | None = None
    entries_per_min: float | None = None
    hotel_occupancy_pct: float | None = None
    district: str | None = None
    grid_id: str | None = None


class MarketRecord(EventSchema):
    """A market-regulation or credit record about a company (key: company_id)."""

    company_id: str
    kind: Literal["bid", "inspection", "price", "credit", "violation"]
    item: str | None = None
    value: float | None = None
    result: str | None = None
    credit_level: str | None = None


class EmergencyReport(EventSchema):
    """Fire alarms, weather warnings, rainfall and flood gauges (key: report_id)."""

    report_id: str
    kind: Literal["fire_alarm", "fire_confirmed", "weather_warning", "rainfall", "flood_gauge"]
    level: str | None = None
    value: float | None = None
    grid_id: str | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    building_id: str | None = None
    # Beyond the catalogue: the hazard a weather warning is about (rainstorm, typhoon, heat …),
    # the gauge a rainfall or flood-gauge reading comes from, and the gauge's warning level (m),
    # which hydrological systems send with each reading.
    hazard: str | None = None
    gauge_id: str | None = None
    warning_level: float | None = None


class GovWorkItem(EventSchema):
    """An administrative approval or work order (key: item_id)."""

    item_id: str
    kind: Literal["approval", "work_order"]
    dept: str
    received_at: datetime | None = None
    due_at: datetime | None = None
    status: Literal["received", "accepted", "done", "reopened"]


def utc_now() -> datetime:
    return datetime.now(UTC)
