"""Alerts about one place at one time, grouped into one incident for the duty officer.

The place of an alert is ``grid:<grid_id>``, or ``key:<key>`` when it has no grid. An incident
is open while any of its alerts is firing and for ``group_within`` after the last one resolved;
every alert about its place joins it meanwhile. Its id is a hash of the place and the first
alert's ``first_ts``, its severity the highest of its alerts'.

Each incident keeps every alert's latest (state, severity, reopened): what the duty officer
sees, and what lets a restarted dispatcher recognise records it has already applied. A record
no newer than the one kept — the same state again, a firing after its resolution, an escalation
to a level already reached — is dropped.

>>> grouper = IncidentGrouper(group_within_s=1800)
>>> def alert(alert_id, state="firing", severity="yellow"):
...     return Alert(alert_id=alert_id, model_id="m", model_version=1, state=state,
...                  severity=severity, departments=["transport"], key="V1", sources=[],
...                  grid_id="G7", first_ts=100.0, last_ts=100.0, summary="s")
>>> first = grouper.add(alert("a1"), now=1000.0).incident
>>> grouper.add(alert("a2", severity="red"), now=1010.0).incident.incident_id == first.incident_id
True
>>> grouper.add(alert("a2", severity="red"), now=1011.0) is None     # a duplicate
True
>>> grouper.add(alert("a1", "resolved"), now=1020.0).incident.severity
<Severity.RED: 'red'>
>>> grouper.add(alert("a2", "resolved", "red"), now=1030.0).incident.closes_at
2830.0
>>> [i.state for i in grouper.advance(2830.0)]
['closed']
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from topics.records import Alert, AlertMark, Incident, Severity

_PHASE = {"firing": 0, "escalated": 1, "resolved": 2}


def alert_version(mark: AlertMark) -> tuple[int, int, int]:
    """How far an alert episode has come: later reopenings, then firing < escalated <
    resolved, then higher severities, compare greater.

    >>> alert_version(("escalated", Severity.RED, 0)) > alert_version(("firing", Severity.RED, 0))
    True
    >>> alert_version(("firing", Severity.BLUE, 1)) > alert_version(("resolved", Severity.RED, 0))
    True
    """
    state, severity, reopened = mark
    return reopened, _PHASE[state], Severity(severity).rank


def place_of(alert: Alert) -> str:
    return f"grid:{alert.grid_id}" if alert.grid_id else f"key:{alert.key}"


def incident_id_for(place: str, first_ts: float, attempt: int = 0) -> str:
    """Stable id of an incident (``attempt`` > 0 only if an older incident took the id).

    >>> incident_id_for("grid:G7", 100.0)
    'a6ef96644347247b735e740c'
    """
    basis = f"{place}|{first_ts:.3f}" + (f"|{attempt}" if attempt else "")
    return hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()


@dataclass(slots=True)
class Grouped:
    incident: Incident
    """The incident the alert is in, as it now stands (the grouper's own object)."""
    previous: AlertMark | None
    """The alert's mark in this incident before this record; ``None`` when it just joined."""


class IncidentGrouper:
    """Open and closed incidents by id, with the timers that close them."""

    def __init__(self, group_within_s: float) -> None:
        self.group_within_s = group_within_s
        self.incidents: dict[str, Incident] = {}
        self._by_alert: dict[str, str] = {}
        self._open_by_place: dict[str, str] = {}
        self._closing: list[tuple[float, str]] = []

    def incident_of(self, alert_id: str) -> Incident | None:
        incident_id = self._by_alert.get(alert_id)
        return self.incidents.get(incident_id) if incident_id else None

    def add(self, alert: Alert, now: float) -> Grouped | None:
        """Put one alert record into its incident; ``None`` when it is not news."""
        mark: AlertMark = (alert.state, alert.severity, alert.reopened)
        incident = self.incident_of(alert.alert_id)
        previous: AlertMark | None = None
        if incident is not None:
            previous = incident.alert_states.get(alert.alert_id)
            if previous is not None and alert_version(previous) >= alert_version(mark):
                return None
            if incident.state == "closed" and alert.state != "resolved":
                # Reopened after its incident closed: it is news at its place again.
                incident, previous = None, None
        if incident is None:
            open_id = self._open_by_place.get(place_of(alert))
            incident = self.incidents[open_id] if open_id else self._open(alert, now)
        self._by_alert[alert.alert_id] = incident.incident_id
        incident.alert_states[alert.alert_id] = mark
        if alert.alert_id not in incident.alert_ids:
            incident.alert_ids.append(alert.alert_id)
        if alert.model_id not in incident.model_ids:
            incident.model_ids.append(alert.model_id)
        if alert.severity.rank > incident.severity.rank:
            incident.severity = alert.severity
        incident.district = incident.district or alert.district
        incident.town = incident.town or alert.town
        incident.grid_id = incident.grid_id or alert.grid_id
        incident.updated_at = now
        if incident.state == "open":
            self._schedule_closing(incident, now)
        return Grouped(incident, previous)

    def _open(self, alert: Alert, now: float) -> Incident:
        place = place_of(alert)
        attempt = 0
        while (incident_id := incident_id_for(place, alert.first_ts, attempt)) in self.incidents:
            attempt += 1
        incident = Incident(incident_id=incident_id, place=place, alert_ids=[], model_ids=[],
                            severity=alert.severity, district=alert.district, town=alert.town,
                            grid_id=alert.grid_id, opened_at=now, updated_at=now)
        self.incidents[incident_id] = incident
        self._open_by_place[place] = incident_id
        return incident

    def _schedule_closing(self, incident: Incident, now: float) -> None:
        if any(state != "resolved" for state, _, _ in incident.alert_states.values()):
            incident.closes_at = None
        else:
            incident.closes_at = now + self.group_within_s
            heapq.heappush(self._closing, (incident.closes_at, incident.incident_id))

    def advance(self, now: float) -> list[Incident]:
        """Close the incidents whose quiet time is over; return them."""
        closed = []
        while self._closing and self._closing[0][0] <= now:
            due, incident_id = heapq.heappop(self._closing)
            incident = self.incidents.get(incident_id)
            if incident is None or incident.state != "open" or incident.closes_at != due:
                continue  # an alert joined since, or it is gone: this timer is stale
            incident.state = "closed"
            incident.updated_at = now
            if self._open_by_place.get(incident.place) == incident_id:
                del self._open_by_place[incident.place]
            closed.append(incident)
        return closed

    def forget(self, incident_id: str) -> None:
        """Drop a closed incident from memory (the topic keeps its record)."""
        incident = self.incidents.pop(incident_id, None)
        if incident is None:
            return
        for alert_id in incident.alert_ids:
            if self._by_alert.get(alert_id) == incident_id:
                del self._by_alert[alert_id]

    def restore(self, incidents: Iterable[Incident]) -> None:
        """Rebuild from the latest record of each incident, closing timers included."""
        for incident in sorted(incidents, key=lambda i: (i.state == "open", i.updated_at)):
            self.incidents[incident.incident_id] = incident
            for alert_id in incident.alert_ids:
                self._by_alert[alert_id] = incident.incident_id
            if incident.state == "open":
                self._open_by_place[incident.place] = incident.incident_id
                if incident.closes_at is not None:
                    heapq.heappush(self._closing, (incident.closes_at, incident.incident_id))

