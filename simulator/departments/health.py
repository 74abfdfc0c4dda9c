"""Health: hospital, 120 dispatch, disease-reporting and vaccine cold-chain reports.

Background:
- 8 hospitals report fever-clinic visits of the last 15 minutes (a few to a dozen, day high,
  night low), the emergency department's longest wait every 15 minutes (40–200 minutes,
  longest in the evening) and bed occupancy every hour (78–92%).
- 6 district 120 dispatch centres report every 5 minutes the calls of those 5 minutes (about
  1–2 an hour per 10,000 … in all 4–10 an hour at a centre, day high) and the ambulances out
  on calls against those on duty (about a third at the busiest hour).
- The case-reporting system files about 20 notifiable-disease cases a day from 60 schools and
  communities (rarely two of one disease at one place in a week) and 2–3 single
  food-poisoning patients a day across the city.
- 30 vaccine fridges report every 2 minutes at 3.5–5.5 °C; a door opened now and then lifts a
  reading to 8–9 °C for 2–6 minutes (under the 10-minute limit).

Incidents: a fever-clinic surge (4× the usual count for 30 minutes), three cases of one disease
at one school within hours, an ER wait above 240 minutes, an ambulance-call surge (15+ calls
in 15 minutes), ambulances in use climbing towards those on duty, a food-poisoning cluster
(5–7 patients from one grid within 2 hours), a failing vaccine fridge (9–12 °C for 40 minutes)
and a hospital at 95–97% bed occupancy for 4 hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

from simulator.base import Department, Envelope, Incident, diurnal, every
from simulator.city import DISTRICTS

TOPIC = "events.health.report"
DISEASES = ("influenza", "norovirus", "hand_foot_mouth", "chickenpox", "mumps",
            "tuberculosis", "scarlet_fever")
MODELS = ("health.fever_clinic.visit_surge", "health.disease.cluster", "health.er.wait_long",
          "health.ambulance.call_surge", "health.ambulance.capacity_forecast",
          "health.food_poisoning.cluster", "health.vaccine.cold_chain_temperature",
          "health.hospital.bed_occupancy_high")


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class Health(Department):
    name = "health"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("health/entities")
        grids = ctx.city.grids
        self.hospitals = {}
        for i in range(1, 9):
            grid = rng.choice(grids)
            self.hospitals[f"HOS-{i:02d}"] = {
                "grid": grid, "district": ctx.city.district_of(grid),
                "fever": rng.uniform(10, 24), "er": rng.uniform(60, 110),
                "beds": rng.uniform(80, 87), "phase": rng.uniform(0, 900)}
        self.centres = {f"AMB-{d}": {"district": d, "rate": rng.uniform(4, 8),
                                     "duty": rng.choice((20, 24, 30)),
                                     "phase": rng.uniform(0, 300)} for d in DISTRICTS}
        self.places = []
        for i in range(1, 61):
            grid = rng.choice(grids)
            self.places.append({"id": f"SCH-{i:03d}" if i <= 40 else f"COM-{i:03d}",
                                "grid": grid, "district": ctx.city.district_of(grid)})
        self.fridges = {f"VAC-{i:02d}": {"grid": rng.choice(grids), "mean": rng.uniform(4, 5),
                                         "phase": rng.uniform(0, 120)} for i in range(1, 31)}

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[Incident]:
        ctx = self.ctx
        out: list[Incident] = []
        for model in MODELS:
            rng = ctx.rng(f"health/plan/{model}")
            short = model.split(".", 1)[1]
            # learned models need their warm-up: 16 fever counts (4 h), 6 dispatch reports
            lead = 5 * 3600 if short == "fever_clinic.visit_surge" else 3600
            for n, start in enumerate(ctx.incident_times(rng, lead=lead, tail=3 * 3600)):
                iid = f"{self.name}-{short.replace('.', '-')}-{n}"
                hospital = sorted(self.hospitals)[(n * 3 + MODELS.index(model)) % 8]
                if short == "fever_clinic.visit_surge":
                    info = self.hospitals[hospital]
                    first = start + (info["phase"] - start) % 900
                    out.append(Incident(iid, model, hospital, first, first + 60, self.name,
                                        "fever-clinic visits 4x usual for 30 min",
                                        {"until": first + 1800}))
                elif short == "disease.cluster":
                    place = rng.choice(self.places)
                    disease = rng.choice(DISEASES)
                    times = sorted(start + rng.uniform(0, 4 * 3600) for _ in range(2))
                    times = [start, *times]
                    out.append(Incident(iid, model, f"{place['id']}/{disease}", start,
                                        times[-1], self.name,
                                        f"3 {disease} cases at {place['id']} within 4 h",
                                        {"place": place, "disease": disease, "times": times}))
                elif short == "er.wait_long":
                    info = self.hospitals[hospital]
                    first = start + (info["phase"] - start) % 900
                    out.append(Incident(iid, model, hospital, first, first + 60, self.name,
                                        "ER longest wait 250-290 min for 90 min",
                                        {"until": first + 5400}))
                elif short.startswith("ambulance"):
                    centre = sorted(self.centres)[(n + MODELS.index(model)) % len(self.centres)]
                    info = self.centres[centre]
                    first = start + (info["phase"] - start) % 300
                    if short.endswith("call_surge"):
                        out.append(Incident(iid, model, centre, first, first + 900, self.name,
                                            "16-20 calls within 15 min (mass casualty)",
                                            {"calls": [6, 6, 5]}))
                    else:
                        out.append(Incident(iid, model, centre, first, first + 3600,
                                            self.name, "ambulances in use climb to capacity",
                                            {"until": first + 2 * 3600}))
                elif short == "food_poisoning.cluster":
                    place = rng.choice(self.places)
                    reports = [(start + k * rng.uniform(1200, 2400), c)
                               for k, c in enumerate((2, 2, rng.randint(1, 3)))]
                    out.append(Incident(iid, model, place["grid"], start, reports[-1][0],
                                        self.name, "5-7 food-poisoning patients within 2 h",
                                        {"reports": reports, "place": place}))
                elif short == "vaccine.cold_chain_temperature":
                    fridge = sorted(self.fridges)[(n * 5 + 2) % len(self.fridges)]
                    first = start + (self.fridges[fridge]["phase"] - start) % 120
                    out.append(Incident(iid, model, fridge, first, first + 600, self.name,
                                        "vaccine fridge failing: 9-12 °C for 40 min",
                                        {"until": first + 2400}))
                else:
                    info = self.hospitals[hospital]
                    first = start + (info["phase"] - start) % 3600
                    out.append(Incident(iid, model, hospital, first, first + 60, self.name,
                                        "bed occupancy 95-97% for 4 h",
                                        {"until": first + 4 * 3600}))
        return out

    # ---------------------------------------------------------------- events
    def _report(self, ts: float, facility: str, kind: str, **fields: Any) -> Envelope:
        value = {"event_id": f"{facility}-{kind}-{int(ts)}", "ts": self.ctx.iso(ts),
                 "source": "health_platform", "facility_id": facility, "kind": kind} | fields
        return Envelope(ts, TOPIC, facility, value)

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        mine = [i for i in incidents if i.department == self.name]
        active: dict[tuple[str, str], list[Incident]] = {}
        for inc in mine:
            active.setdefault((inc.model_id, inc.key), []).append(inc)

        def during(model: str, key: str, ts: float) -> Incident | None:
            for inc in active.get((model, key), ()):
                if inc.start <= ts < inc.extra.get("until", inc.end):
                    return inc
            return None

        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour)
            for hid, h in self.hospitals.items():
                base = dict(grid_id=h["grid"], district=h["district"])
                for ts in every(hour, hour + 3600, 900.0, h["phase"]):
                    act = diurnal(ts, self.ctx, "activity")
                    count = _poisson(rng, h["fever"] * act / 1.6)
                    if during(MODELS[0], hid, ts):
                        count = count * 3 + 20
                    local = self.ctx.local(ts)
                    wait = h["er"] * (0.6 + 0.7 * math.exp(-((local.hour - 20) % 24) / 6)) \
                        * (1 + rng.gauss(0, 0.08))
                    if during(MODELS[2], hid, ts):
                        wait = rng.uniform(250, 290)
                    if t0 <= ts < t1:
                        yield self._report(ts, hid, "fever_visit", count=count, **base)
                        yield self._report(ts + 1, hid, "er_wait", value=round(wait), **base)
                for ts in every(hour, hour + 3600, 3600.0, h["phase"]):
                    beds = h["beds"] + 3 * math.sin(ts / 86400 * 2 * math.pi) + rng.gauss(0, 1)
                    if during(MODELS[7], hid, ts):
                        beds = rng.uniform(95.2, 97)
                    if t0 <= ts + 2 < t1:
                        yield self._report(ts + 2, hid, "bed_occupancy", value=round(beds, 1),
                                           **base)
            for cid, c in self.centres.items():
                for ts in every(hour, hour + 3600, 300.0, c["phase"]):
                    act = diurnal(ts, self.ctx, "activity")
                    calls = _poisson(rng, c["rate"] * act / 1.6 / 12)
                    busy = c["duty"] * 0.33 * act / 1.65 + rng.gauss(0, 0.7)
                    surge = during(MODELS[3], cid, ts)
                    if surge:
                        calls += surge.extra["calls"][min(2, int((ts - surge.start) // 300))]
                    climb = during(MODELS[4], cid, ts)
                    if climb:
                        busy += (c["duty"] - busy) * min(1.0, (ts - climb.start) / 5400)
                    if t0 <= ts < t1:
                        yield self._report(ts, cid, "ambulance_call", count=calls,
                                           value=round(max(0.0, busy)), capacity=c["duty"],
                                           district=c["district"])
            for fid, f in self.fridges.items():
                door_at = rng.uniform(hour, hour + 3600) if rng.random() < 0.25 else None
                door_len = rng.uniform(100, 360)
                for ts in every(hour, hour + 3600, 120.0, f["phase"]):
                    temp = f["mean"] + rng.gauss(0, 0.3)
                    if door_at is not None and door_at <= ts < door_at + door_len:
                        temp = rng.uniform(8.1, 9.0)
                    if during(MODELS[6], fid, ts):
                        temp = rng.uniform(9.0, 12.0)
                    if t0 <= ts < t1:
                        yield self._report(ts, fid, "cold_chain_temp", value=round(temp, 2),
                                           grid_id=f["grid"])
            # case reports: notifiable diseases and single food-poisoning patients
            for ts in _arrivals(rng, hour, 20 / 24):
                place = rng.choice(self.places)
                disease = rng.choice(DISEASES)
                seed = rng.random()
                if t0 <= ts < t1:
                    yield self._case(ts, random.Random(seed), place, disease)
            for ts in _arrivals(rng, hour, 2.5 / 24):
                place = rng.choice(self.places)
                seed = rng.random()
                if t0 <= ts < t1:
                    yield self._case(ts, random.Random(seed), place, "food_poisoning")
        for inc in mine:
            if inc.model_id == MODELS[1]:
                for k, ts in enumerate(inc.extra["times"]):
                    if t0 <= ts < t1:
                        rng = self.ctx.rng(f"health/incident/{inc.incident_id}/{k}")
                        yield self._case(ts, rng, inc.extra["place"], inc.extra["disease"])
            elif inc.model_id == MODELS[5]:
                for k, (ts, count) in enumerate(inc.extra["reports"]):
                    if t0 <= ts < t1:
                        rng = self.ctx.rng(f"health/incident/{inc.incident_id}/{k}")
                        yield self._case(ts, rng, inc.extra["place"], "food_poisoning", count)

    def _case(self, ts: float, rng: random.Random, place: dict[str, Any], disease: str,
              count: int = 1) -> Envelope:
        hospital = rng.choice(sorted(self.hospitals))
        fields: dict[str, Any] = {"disease": disease, "count": count, "grid_id": place["grid"],
                                  "district": place["district"]}
        if disease != "food_poisoning":
            fields["cluster_id"] = f"{place['id']}/{disease}"
            if place["id"].startswith("SCH"):
                fields["school_id"] = place["id"]
        env = self._report(ts, hospital, "disease_case", **fields)
        env.value["event_id"] += f"-{rng.randrange(10**6)}"
        return env


def _arrivals(rng: random.Random, hour: float, per_hour: float) -> Iterator[float]:
    t = hour
    while True:
        t += rng.expovariate(per_hour / 3600.0)
        if t >= hour + 3600:
            return
        yield t
