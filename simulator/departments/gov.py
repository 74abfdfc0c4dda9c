"""Government work items (行政问效): approvals with legal deadlines and work orders to accept.

Background: work orders arrive through the day (about 40 an hour at peak) to a dozen
departments, are accepted within 2–20 minutes and done 1–6 hours later; approvals are received
in office hours (about 8 an hour) with a legal deadline of 3–20 days, accepted within hours and
done well before a day ahead of the deadline.
Incidents:
``gov.work_order.not_accepted`` — a work order nobody accepts for 45–90 minutes;
``gov.work_order.reopened`` — a work order done, then reopened 1–4 hours later (and done again);
``gov.approval.near_deadline`` — an approval in progress (received days ago) that reaches a day
before its deadline undone, and is done a few hours before the deadline;
``gov.approval.overdue`` — an approval in progress with its deadline 10–60 minutes ahead, not
done until 1–3 hours after it (it is also within a day of its deadline: the near-deadline model
is meant to fire for it too, and the plan says so with a near-deadline incident of the same key).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from simulator.base import Department, Envelope, Incident, SimContext, arrivals, diurnal

TOPIC = "events.gov.workitem"
DEPTS = ("housing_utilities", "urban_management", "transport", "environment", "health",
         "market_regulation", "civil_affairs", "education", "public_security",
         "water_resources", "culture_and_tourism", "power_supply")
DAY = 86400.0


def _office(ts: float, ctx: SimContext) -> float:
    local = ctx.local(ts)
    if local.weekday() >= 5 or ctx.is_holiday(ts):
        return 0.0
    hour = local.hour + local.minute / 60
    return 2.6 if 8.5 <= hour < 17.5 and not 12 <= hour < 13.5 else 0.0


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
        rng = self.ctx.rng("gov/plan/reopened")
        for n, start in enumerate(self.ctx.incident_times(rng, lead=2 * 3600)):
            item = f"WO-R{n:04d}"
            out.append(Incident(self.incident_id("gov.work_order.reopened", n),
                                "gov.work_order.reopened", item, start, start, self.name,
                                "work order reopened after being marked done",
                                {"dept": rng.choice(DEPTS), "done_before": rng.uniform(1, 4) * 3600,
                                 "redone": rng.uniform(1, 5) * 3600}))
        rng = self.ctx.rng("gov/plan/near")
        for n, start in enumerate(self.ctx.incident_times(rng, tail=2 * 3600)):
            item, lead = f"AP-N{n:04d}", rng.uniform(1200, 7200)
            limit = start + lead  # a day before the deadline
            out.append(Incident(self.incident_id("gov.approval.near_deadline", n),
                                "gov.approval.near_deadline", item, start, limit, self.name,
                                "approval within a day of its legal deadline",
                                {"dept": rng.choice(DEPTS), "due": limit + DAY,
                                 "received": start - rng.uniform(3, 15) * DAY,
                                 "done": limit + DAY - rng.uniform(2, 12) * 3600}))
        rng = self.ctx.rng("gov/plan/overdue")
        for n, start in enumerate(self.ctx.incident_times(rng, tail=4 * 3600)):
            item, due = f"AP-O{n:04d}", start + rng.uniform(600, 3600)
            extra = {"dept": rng.choice(DEPTS), "due": due,
                     "received": start - rng.uniform(3, 15) * DAY,
                     "done": due + rng.uniform(1, 3) * 3600}
            out.append(Incident(self.incident_id("gov.approval.overdue", n),
                                "gov.approval.overdue", item, start, due + 60, self.name,
                                "approval overdue", extra))
            out.append(Incident(f"{self.name}-overdue-near_deadline-{n}",
                                "gov.approval.near_deadline", item, start, start, self.name,
                                "the overdue approval is within a day of its deadline",
                                {**extra, "companion": True}))
        return out

    def _item(self, ts: float, item: str, dept: str, status: str, kind: str = "work_order",
              received: float | None = None, due: float | None = None) -> Envelope:
        value = {"event_id": f"{item}-{status}-{int(ts)}", "ts": self.ctx.iso(ts),
                 "source": "gov", "item_id": item, "kind": kind, "dept": dept,
                 "status": status,
                 "received_at": self.ctx.iso(received if received is not None else ts)}
        if due is not None:
            value["due_at"] = self.ctx.iso(due)
        return Envelope(ts, TOPIC, item, value)

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        yield from self._work_orders(t0, t1)
        yield from self._approvals(t0, t1)
        for incident in incidents:
            yield from self._incident(incident)

    def _work_orders(self, t0: float, t1: float) -> Iterator[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1, lookback=7.5 * 3600):
            rng, done_rng = self.slice_rng(hour), self.slice_rng(hour, "done")
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 25 * ctx.rate,
                                            lambda t: diurnal(t, ctx, "activity"))):
                item, dept = f"WO-{int(hour) // 3600}-{n:04d}", rng.choice(DEPTS)
                accepted = ts + rng.uniform(120, 1200)  # accepted within 2-20 minutes
                yield self._item(ts, item, dept, "received")
                yield self._item(accepted, item, dept, "accepted", received=ts)
                # done 1-6 hours later (from a generator of its own, so the times above stay
                # as they were before work orders were closed)
                done = accepted + done_rng.uniform(3600, 6 * 3600)
                yield self._item(done, item, dept, "done", received=ts)

    def _approvals(self, t0: float, t1: float) -> Iterator[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1, lookback=20 * DAY):
            rng = self.slice_rng(hour, "approvals")
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 3 * ctx.rate,
                                            lambda t: _office(t, ctx))):
                item, dept = f"AP-{int(hour) // 3600}-{n:03d}", rng.choice(DEPTS)
                due = ts + rng.uniform(3, 20) * DAY
                accepted = ts + rng.uniform(600, 4 * 3600)
                done = accepted + rng.uniform(0.1, 0.8) * (due - DAY - accepted)
                for when, status in ((ts, "received"), (accepted, "accepted"), (done, "done")):
                    if t0 <= when < t1:
                        yield self._item(when, item, dept, status, "approval", ts, due)

    def _incident(self, i: Incident) -> Iterator[Envelope]:
        x = i.extra
        if i.model_id == "gov.work_order.not_accepted":
            yield self._item(i.start, i.key, x["dept"], "received")
            yield self._item(i.start + 1800 + x["late_by"], i.key, x["dept"], "accepted",
                             received=i.start)
        elif i.model_id == "gov.work_order.reopened":
            received = i.start - x["done_before"] - 1800
            for ts, status in ((received, "received"), (received + 600, "accepted"),
                               (i.start - x["done_before"], "done"), (i.start, "reopened"),
                               (i.start + 900, "accepted"), (i.start + x["redone"], "done")):
                yield self._item(ts, i.key, x["dept"], status, received=received)
        elif i.model_id.startswith("gov.approval.") and not x.get("companion"):
            yield self._item(i.start, i.key, x["dept"], "accepted", "approval",
                             x["received"], x["due"])
            yield self._item(x["done"], i.key, x["dept"], "done", "approval",
                             x["received"], x["due"])
