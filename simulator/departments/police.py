"""Public security 110: incidents reported to the police, one record each.

Background: about 190 incidents an hour over a day, 460 at the afternoon peak — disputes,
requests for help, traffic accidents on some 800 named roads, thefts, fights, telecom fraud,
noise — each at an address drawn from a large pool, in a grid cell chosen by a fixed population
weight, with its police station (派出所: a block of 2 × 3 adjacent cells), the kind of place and
a level (1 general, rarely 2), and for a fraud report its type. Each background report is at a
uniform point of its cell; the reports of one planned situation come from one place.
Drink-driving cases come as a stream of their own in the evening and at night, most of them
around the bars, KTVs and restaurants of about twenty nightlife cells. About 5,000 events a
day at rate 1.0.

Every crowd gathering, every incident of level 3 or more and every missing minor is a
situation its model must alert on, so those come only from the planned incidents (background
missing persons are adults: elderly people with dementia, mostly).

Incidents (``ctx.incidents_per_model`` per model):

- ``police.grid.fight_cluster`` — 3–4 fights within 200 m of one venue in 45 minutes;
- ``police.district.telecom_fraud_surge`` — 7 fraud reports of one type (a campaign's script) in
  one district within 2.5 hours;
- ``police.address.repeat_incidents`` — 3 disputes at one address within 3 hours;
- ``police.incident.crowd_gathering`` — a crowd-gathering report;
- ``police.station.burglary_series`` — 3 burglaries within 300 m of one block within 3 h;
- ``police.road.traffic_accident_cluster`` — 3–4 accidents on one stretch (300 m) of a road within
  100 minutes;
- ``police.incident.major`` — an incident graded 3 or 4;
- ``police.grid.drunk_driving_night_cluster`` — 3–4 drink-driving cases within 200 m of one
  street of venues within 90 minutes, starting between 20:00 and 02:00 (fewer when the run has
  no night);
- ``police.incident.missing_minor`` — a missing child aged 3–16;
- ``police.district.grid_incident_surge`` — 14–18 incidents in one cell within 45 minutes, at
  least 8 hours into the run (the learned baseline needs its history); key: the district.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from simulator.base import Department, Envelope, Incident, arrivals, diurnal

TOPIC = "events.police.incident"

# kind: share of background incidents, places it happens at
KINDS: dict[str, tuple[float, tuple[str, ...]]] = {
    "dispute": (0.26, ("residence", "shop", "restaurant", "street")),
    "assistance": (0.22, ("residence", "street", "transit")),
    "traffic_accident": (0.06, ("road",)),
    "theft": (0.07, ("shop", "street", "transit")),
    "pickpocket": (0.03, ("transit", "street")),
    "e_bike_theft": (0.05, ("residence", "street")),
    "burglary": (0.002, ("residence",)),
    "fight": (0.025, ("street", "restaurant", "bar", "ktv")),
    "telecom_fraud": (0.007, ("residence",)),
    "noise": (0.08, ("residence", "bar", "ktv")),
    "missing_person": (0.005, ("residence", "street")),
    "other": (0.15, ("street", "residence", "shop")),
}
ROAD_PREFIX = ("文一", "文二", "文三", "天目山", "莫干山", "延安", "解放", "庆春", "凤起", "体育场",
               "环城北", "环城东", "秋涛", "钱江", "江南", "滨盛", "江陵", "之江", "转塘", "古墩",
               "紫金港", "余杭塘", "五常", "文溪", "良睦", "杭海", "德胜", "石桥", "东新", "上塘",
               "湖墅", "建国", "中河", "望江", "复兴", "候潮", "市心", "金城", "通惠", "萧绍")
ROAD_SUFFIX = ("路", "东路", "西路", "南路", "北路", "大道", "街", "中路", "一路", "二路",
               "支路", "辅路", "高架", "隧道", "桥", "三路", "四路", "大街", "巷", "弄")
VENUES = ("bar", "ktv", "restaurant", "nightclub")
# 诈骗类型 as the anti-fraud centre classifies reports, and their shares of the background
FRAUD_TYPES = {"rebate_task": 0.25, "fake_investment": 0.15, "fake_customer_service": 0.15,
               "fake_loan": 0.12, "fake_credit_repair": 0.08, "romance": 0.07,
               "fake_police": 0.06, "game_trade": 0.06, "fake_acquaintance": 0.06}


def fraud_type(rng: random.Random) -> str:
    return rng.choices(list(FRAUD_TYPES), list(FRAUD_TYPES.values()))[0]


def station_of(grid: str) -> str:
    """The police station whose area holds ``grid``: blocks of 2 rows × 3 columns of cells."""
    return f"PS-{int(grid[1:3]) // 2:02d}{int(grid[3:5]) // 3:02d}"


class Police(Department):
    name = "police"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("police/city")
        self.grids = ctx.city.grids
        self.weights = [rng.lognormvariate(0, 0.8) for _ in self.grids]
        self.kinds = list(KINDS)
        self.kind_weights = [KINDS[k][0] for k in self.kinds]
        self.roads = {f"{p}{s}": rng.sample(self.grids, 3) for p in ROAD_PREFIX
                      for s in ROAD_SUFFIX}
        self.road_names = sorted(self.roads)
        self.nightlife = rng.sample(self.grids, 20)

    def grid(self, rng: random.Random) -> str:
        return rng.choices(self.grids, self.weights)[0]

    def _incident(self, rng: random.Random, incident_id: str, ts: float, kind: str, grid: str,
                  **fields: Any) -> Envelope:
        lat, lon = self.ctx.city.random_point(rng, grid)
        value = {"event_id": f"{incident_id}-{int(ts)}", "ts": self.ctx.iso(ts),
                 "source": "police", "incident_id": incident_id, "kind": kind,
                 "district": self.ctx.city.district_of(grid), "grid_id": grid,
                 "lat": round(lat, 6), "lon": round(lon, 6), "level": 1,
                 "address_hash": f"A{rng.getrandbits(40):010x}", "station": station_of(grid),
                 "place": rng.choice(KINDS.get(kind, (0.0, ("street",)))[1])}
        value.update(fields)
        return Envelope(ts, TOPIC, incident_id, value)

    # -- plan ------------------------------------------------------------------------------

    def _starts_in(self, rng: random.Random, n: int, duration: float,
                   hours: tuple[int, ...]) -> list[float]:
        """Up to ``n`` start times at the given local hours, 2 h apart, with ``duration`` left
        in the run (fewer when the run has not enough such hours)."""
        lo, hi = self.ctx.start + 1800, self.ctx.end - duration - 1800
        out: list[float] = []
        for _ in range(3000):
            if len(out) == n or hi <= lo:
                break
            ts = rng.uniform(lo, hi)
            if self.ctx.local(ts).hour in hours and all(abs(ts - o) > 7200 for o in out):
                out.append(ts)
        return sorted(out)

    def plan(self) -> list[Incident]:
        ctx, out = self.ctx, []

        def add(model: str, n: int, key: str, start: float, end: float, note: str,
                records: list[dict[str, Any]]) -> None:
            out.append(Incident(self.incident_id(model, n), model, key, start, end, self.name,
                                note, {"records": records}))

        used: set[str] = set()

        def fresh(draw: Any) -> str:
            """A key no other incident of the run uses (one alert episode per incident)."""
            for _ in range(50):
                key = draw()
                if key not in used:
                    break
            used.add(key)
            return key

        def rec(iid: str, ts: float, kind: str, grid: str, **fields: Any) -> dict[str, Any]:
            return {"incident_id": iid, "ts": ts, "kind": kind, "grid": grid, "fields": fields}

        city = ctx.city

        def near(rng: random.Random, centre: tuple[float, float], radius_m: float
                 ) -> dict[str, float]:
            """The position of one report of a situation at one place (a venue, a block)."""
            lat, lon = city.point_near(rng, centre, radius_m)
            return {"lat": lat, "lon": lon}

        rng = ctx.rng("police/plan/fight")
        for n, ts in enumerate(ctx.incident_times(rng, tail=3600)):
            grid, count = fresh(lambda: self.grid(rng)), rng.choice([3, 4])
            times = sorted([ts] + [ts + rng.uniform(0, 2700) for _ in range(count - 1)])
            venue = city.inner_point(rng, grid)
            add("police.grid.fight_cluster", n, grid, ts, times[2] + 60,
                f"{count} fights in 45 min around one venue",
                [rec(f"PX-FGT-{n}-{i}", t, "fight", grid, **near(rng, venue, 200))
                 for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/fraud")
        for n, ts in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            district = fresh(lambda: ctx.city.district_of(self.grid(rng)))
            cells = [g for g in self.grids if ctx.city.district_of(g) == district]
            times = sorted([ts] + [ts + rng.uniform(0, 9000) for _ in range(6)])
            script = fraud_type(rng)
            add("police.district.telecom_fraud_surge", n, district, ts, times[5] + 60,
                f"7 telecom-fraud reports in 2.5 h (a campaign: {script})",
                [rec(f"PX-FRD-{n}-{i}", t, "telecom_fraud", rng.choice(cells),
                     place="residence", fraud_type=script) for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/address")
        for n, ts in enumerate(ctx.incident_times(rng, tail=4 * 3600)):
            grid, address = self.grid(rng), f"A-REP{n:04d}"
            times = [ts, ts + rng.uniform(3600, 5400), ts + rng.uniform(7200, 10800)]
            add("police.address.repeat_incidents", n, address, ts, times[2] + 60,
                "3 disputes at one address",
                [rec(f"PX-ADR-{n}-{i}", t, rng.choice(["dispute", "dispute", "fight"]), grid,
                     address_hash=address, place="residence") for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/crowd")
        for n, ts in enumerate(ctx.incident_times(rng)):
            iid = f"PX-CRD-{n}"
            add("police.incident.crowd_gathering", n, iid, ts, ts + 60, "crowd gathering",
                [rec(iid, ts, "crowd_gathering", self.grid(rng), level=2, place="street")])

        rng = ctx.rng("police/plan/burglary")
        for n, ts in enumerate(ctx.incident_times(rng, tail=4 * 3600)):
            station = fresh(lambda: station_of(self.grid(rng)))
            cells = [g for g in self.grids if station_of(g) == station]
            times = sorted([ts] + [ts + rng.uniform(0, 3 * 3600) for _ in range(2)])
            grid = rng.choice(cells)
            block = city.inner_point(rng, grid)
            add("police.station.burglary_series", n, station, ts, times[2] + 60,
                "3 burglaries in one neighbourhood",
                [rec(f"PX-BUR-{n}-{i}", t, "burglary", grid, place="residence",
                     **near(rng, block, 300)) for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/accident")
        for n, ts in enumerate(ctx.incident_times(rng, tail=7200)):
            road, count = fresh(lambda: rng.choice(self.road_names)), rng.choice([3, 4])
            times = sorted([ts] + [ts + rng.uniform(0, 6000) for _ in range(count - 1)])
            grid = rng.choice(self.roads[road])
            stretch = city.inner_point(rng, grid)
            add("police.road.traffic_accident_cluster", n, road, ts, times[2] + 60,
                f"{count} accidents on one stretch of {road}",
                [rec(f"PX-ACC-{n}-{i}", t, "traffic_accident", grid, road=road, place="road",
                     **near(rng, stretch, 300)) for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/major")
        for n, ts in enumerate(ctx.incident_times(rng)):
            iid = f"PX-MAJ-{n}"
            kind = rng.choice(["fight", "traffic_accident", "other"])
            grid = self.grid(rng)
            records = [rec(iid, ts, kind, grid, level=2)]
            records.append(rec(iid, ts + rng.uniform(300, 1200), kind, grid,
                               level=rng.choice([3, 3, 4])))
            add("police.incident.major", n, iid, ts, records[1]["ts"] + 60,
                "incident regraded major", records)

        rng = ctx.rng("police/plan/drunk")
        for n, ts in enumerate(self._starts_in(rng, ctx.incidents_per_model, 5400,
                                               (20, 21, 22, 23, 0, 1))):
            grid, count = fresh(lambda: rng.choice(self.nightlife)), rng.choice([3, 4])
            times = sorted([ts] + [ts + rng.uniform(0, 5400) for _ in range(count - 1)])
            street = city.inner_point(rng, grid)
            add("police.grid.drunk_driving_night_cluster", n, grid, ts, times[2] + 60,
                f"{count} drink-driving cases around the venues of one street",
                [rec(f"PX-DRK-{n}-{i}", t, "drunk_driving", grid, place=rng.choice(VENUES),
                     **near(rng, street, 200)) for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/surge")
        # the learned baseline needs 6 hours of history: surges come 8 hours into the run
        for n, ts in enumerate(ctx.incident_times(rng, lead=8 * 3600, tail=2 * 3600)):
            if ts + 3600 > ctx.end:
                continue
            district = fresh(lambda: ctx.city.district_of(self.grid(rng)))
            grid = self.grid(rng)
            while ctx.city.district_of(grid) != district:
                grid = self.grid(rng)
            count = rng.randint(14, 18)
            times = sorted([ts] + [ts + rng.uniform(0, 2700) for _ in range(count - 1)])
            add("police.district.grid_incident_surge", n, district, ts, times[-1] + 60,
                f"{count} incidents in 45 min (one local conflict)",
                [rec(f"PX-SRG-{n}-{i}", t, rng.choice(["dispute", "assistance", "other"]), grid,
                     place="street") for i, t in enumerate(times)])

        rng = ctx.rng("police/plan/minor")
        for n, ts in enumerate(ctx.incident_times(rng)):
            iid = f"PX-MIN-{n}"
            add("police.incident.missing_minor", n, iid, ts, ts + 60, "missing child",
                [rec(iid, ts, "missing_person", self.grid(rng), level=2, place="street",
                     subject_age=rng.randint(3, 16))])
        return out

    # -- events ----------------------------------------------------------------------------

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour)
            times = list(arrivals(rng, hour, hour + 3600, 280 * ctx.rate,
                                  lambda t: diurnal(t, ctx, "activity")))
            for n, ts in enumerate(times):
                kind = rng.choices(self.kinds, self.kind_weights)[0]
                grid, fields = self.grid(rng), {}
                if kind == "traffic_accident":
                    road = rng.choice(self.road_names)
                    grid, fields = rng.choice(self.roads[road]), {"road": road}
                elif kind == "missing_person":
                    fields = {"subject_age": rng.randint(18, 92)}
                elif rng.random() < 0.04:
                    fields = {"level": 2}
                incident_id = f"P-{int(hour) // 3600}-{n:04d}"
                if kind == "telecom_fraud":
                    # a draw of its own, so the rest of the background stays as it was
                    fields["fraud_type"] = fraud_type(random.Random(incident_id))
                yield self._incident(rng, incident_id, ts, kind, grid, **fields)
            # Drink driving: evenings and nights, mostly around nightlife venues.
            drunk_rng = self.slice_rng(hour, "drunk")
            local_hour = ctx.local(hour).hour
            per_hour = 4.0 if local_hour >= 20 or local_hour < 3 else 0.3
            for n, ts in enumerate(arrivals(drunk_rng, hour, hour + 3600, per_hour * ctx.rate)):
                at_venue = drunk_rng.random() < 0.6
                grid = drunk_rng.choice(self.nightlife) if at_venue else self.grid(drunk_rng)
                place = drunk_rng.choice(VENUES) if at_venue else "road"
                yield self._incident(drunk_rng, f"P-{int(hour) // 3600}-D{n:03d}", ts,
                                     "drunk_driving", grid, place=place)
        for incident in incidents:
            for r in incident.extra["records"]:
                if t0 <= r["ts"] < t1:
                    rng = random.Random(r["incident_id"])
                    yield self._incident(rng, r["incident_id"], r["ts"], r["kind"], r["grid"],
                                         **r["fields"])
