"""Government work items (行政问效): approvals with legal deadlines and work orders to accept.

Background: work orders arrive through the day (about 40 an hour at peak) to a dozen
departments and are accepted within 2–20 minutes; approvals are received with a legal deadline
of 3–20 working days and finished well before it.
Incidents: ``gov.work_order.not_accepted`` — a work order nobody accepts for 45–90 minutes.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.simulator.base import Department, Envelope, Incident, arrivals, diurnal

TOPIC = "events.gov.workitem"
DEPTS = ("housing_utilities", "urban_management", "transport", "environment", "health",
         "market_regulation", "civil_affairs", "education", "public_security",
         "water_resources", "culture_and_tourism", "power_supply")


class Gov(Department):
    name = "gov"
    topics = (TOPIC,)

    def plan(self) -> list[Incident]:
        rng = self.ctx.rng("gov/plan")
        out = []
        for n, start in enumerate(self.ctx.incident_times(rng)):
            item = f"WO-X{n:04d}"
            out.append(Incident(self.incident_id("gov.work_order.not_accepted", n),
                                "gov.work_order.not_accepted", item, start, start + 1800,
                                self.name, "work order not accepted within 30 min",
                                {"dept": rng.choice(DEPTS), "late_by": rng.uniform(900, 3600)}))
        return out

    def _item(self, ts: float, item: str, dept: str, status: str, kind: str = "work_order",
              received: float | None = None) -> Envelope:
        return Envelope(ts, TOPIC, item, {
            "event_id": f"{item}-{status}-{int(ts)}", "ts": self.ctx.iso(ts), "source": "gov",
            "item_id": item, "kind": kind, "dept": dept, "status": status,
            "received_at": self.ctx.iso(received if received is not None else ts)})

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1, lookback=1200):
            rng = self.slice_rng(hour)
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 25 * ctx.rate,
                                            lambda t: diurnal(t, ctx, "activity"))):
                item, dept = f"WO-{int(hour) // 3600}-{n:04d}", rng.choice(DEPTS)
                accepted = ts + rng.uniform(120, 1200)  # accepted within 2-20 minutes
                yield self._item(ts, item, dept, "received")
                yield self._item(accepted, item, dept, "accepted", received=ts)
        for incident in incidents:
            if t0 <= incident.start < t1:
                dept = incident.extra["dept"]
                yield self._item(incident.start, incident.key, dept, "received")
            accepted = incident.start + 1800 + incident.extra["late_by"]
            if t0 <= accepted < t1:
                yield self._item(accepted, incident.key, incident.extra["dept"], "accepted",
                                 received=incident.start)
