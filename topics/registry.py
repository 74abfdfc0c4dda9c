"""Every topic yujing reads or writes: its name, key field, schema and partition count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from topics import schemas
from topics.records import (
    Alert,
    DeadLetter,
    Feedback,
    Incident,
    Scorecard,
    Silence,
    WorkOrder,
)
from topics.reference import REFERENCE_SCHEMAS

TopicRole = Literal["event", "alert", "deadletter", "reference", "control", "state", "feedback",
                    "report"]

# One partition count for every topic the worker co-partitions (events and its state changelogs):
# Faust assigns partition N of every topic to the same worker, which is what keeps per-key state
# beside the events of that key.
DEFAULT_PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key_field: str
    schema: type[BaseModel]
    role: TopicRole
    partitions: int = DEFAULT_PARTITIONS
    description: str = ""


_EVENT_TOPICS = [
    TopicSpec("events.hazchem.vehicle", "vehicle_id", schemas.HazchemVehicle, "event",
              description="hazardous-chemical tanker telemetry"),
    TopicSpec("events.hazchem.facility", "tank_id", schemas.HazchemFacility, "event",
              description="storage-tank sensors"),
    TopicSpec("events.hazchem.waybill", "waybill_id", schemas.HazchemWaybill, "event",
              description="hazardous-chemical electronic waybills"),
    TopicSpec("events.utilities.sensor", "sensor_id", schemas.UtilitiesSensor, "event",
              description="urban-lifeline sensors"),
    TopicSpec("events.hotline.ticket", "ticket_id", schemas.HotlineTicket, "event",
              description="12345 citizen-hotline tickets"),
    TopicSpec("events.police.incident", "incident_id", schemas.PoliceIncident, "event",
              description="110 police incidents"),
    TopicSpec("events.transport.road", "segment_id", schemas.RoadSegment, "event",
              description="road-segment traffic state"),
    TopicSpec("events.transport.coach", "vehicle_id", schemas.Coach, "event",
              description="coach, bus and school-bus telemetry"),
    TopicSpec("events.health.report", "facility_id", schemas.HealthReport, "event",
              description="health-system reports"),
    TopicSpec("events.environment.station", "station_id", schemas.EnvironmentStation, "event",
              description="environmental monitoring stations"),
    TopicSpec("events.tourism.site", "site_id", schemas.TourismSite, "event",
              description="tourism-site visitor counts"),
    TopicSpec("events.market.record", "company_id", schemas.MarketRecord, "event",
              description="market-regulation and credit records"),
    TopicSpec("events.emergency.report", "report_id", schemas.EmergencyReport, "event",
              description="fire alarms, weather warnings, rainfall, flood gauges"),
    TopicSpec("events.gov.workitem", "item_id", schemas.GovWorkItem, "event",
              description="administrative approvals and work orders"),
]

ALERTS = TopicSpec("alerts", "alert_id", Alert, "alert", description="alert state changes")
DEADLETTER = TopicSpec("events.deadletter", "source_topic", DeadLetter, "deadletter",
                       description="input records that could not be used, with the reason "
                                   "(original bytes, personal data unmasked: restricted)")

# The alert's life after it fires. Compacted topics hold the latest record per key: they are
# the durable state that dispatch and tracking rebuild from after a restart.
SILENCES = TopicSpec("control.silences", "silence_id", Silence, "control", partitions=1,
                     description="silences and maintenance windows (compacted)")
INCIDENTS = TopicSpec("incidents", "incident_id", Incident, "state",
                      description="alerts grouped by place and time (compacted)")
ORDERS = TopicSpec("dispatch.orders", "order_id", WorkOrder, "state",
                   description="work orders, latest state per order (compacted)")
FEEDBACK = TopicSpec("dispatch.feedback", "order_id", Feedback, "feedback",
                     description="acknowledgements and outcomes from department systems")
SCORECARDS = TopicSpec("performance.scorecards", "name", Scorecard, "report",
                       description="response figures per department and model (compacted)")
LIFE_TOPICS: dict[str, TopicSpec] = {t.name: t for t in
                                     (SILENCES, INCIDENTS, ORDERS, FEEDBACK, SCORECARDS)}
COMPACTED_ROLES = frozenset({"reference", "control", "state", "report"})

REFERENCE_TOPICS: dict[str, TopicSpec] = {
    name: TopicSpec(name, "id", schema, "reference", partitions=1,
                    description="reference data (compacted)")
    for name, schema in REFERENCE_SCHEMAS.items()
}

EVENT_TOPICS: dict[str, TopicSpec] = {t.name: t for t in _EVENT_TOPICS}
ALL_TOPICS: dict[str, TopicSpec] = {**EVENT_TOPICS, ALERTS.name: ALERTS,
                                    DEADLETTER.name: DEADLETTER, **REFERENCE_TOPICS,
                                    **LIFE_TOPICS}


def event_topic(name: str) -> TopicSpec:
    """The spec of a department topic; KeyError names the known topics."""
    try:
        return EVENT_TOPICS[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(EVENT_TOPICS)}") from None
