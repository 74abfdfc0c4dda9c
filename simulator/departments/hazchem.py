"""Hazardous chemicals (危化品): storage tanks at nine facilities, tankers and their waybills.

Background:
- 26 storage tanks at 9 facilities (four in the Linjiang chemical park, grid G0616) report every
  minute: level (steady, with two transfers a day that take product out and bring it back,
  ``transfer_active`` while they run), temperature following the day, pressure for the three
  LPG spheres (following the temperature), combustible gas (% LEL) and toxic gas near zero.
  Now and then a reading is lost (gaps of 2–3 minutes, well under the 5-minute offline limit).
- 24 tankers (times ``ctx.rate``), each based at a loading facility, make one or two round
  trips a day between 07:00 and 20:00 to a customer facility: a waybill is issued 20–50
  minutes before departure (planned route as lat/lon points, a time window), started at
  departure and finished on arrival; the way back runs under its own waybill. Tankers report
  every 30 s with the ignition on (speed, road class, tank pressure and temperature, valve,
  cargo, load, the terminal's continuous driving time, the grid) and every 5 minutes when
  parked with the ignition off. A quarter of them (every fourth) report through a platform
  that does no map matching, so their reports carry no road class. They unload inside the
  customer's facility zone with the valve open and keep within the speed limits; weekends and
  holidays see fewer trips. Routes avoid the city centre, schools and water-source areas.
- Now and then a violation record (events.market.record) against a transport company.

Incidents (``simulator.departments.hazchem_incidents``): every hazchem model, each
``ctx.incidents_per_model`` times, plus the *companion* incidents a situation necessarily causes
for a second model (a tank at 96% is also above 90%): those are real situations too.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from simulator.base import Department, Envelope, Incident, SimContext, every
from simulator.city import Point, along, length, metres, offset
from simulator.departments import hazchem_incidents as scenarios

VEHICLE = "events.hazchem.vehicle"
FACILITY = "events.hazchem.facility"
WAYBILL = "events.hazchem.waybill"
MARKET = "events.market.record"
EMERGENCY = "events.emergency.report"
RESTRICTED = ("city_centre", "school", "water_source")
CROWDED = ("tourism_site", "hospital")
CENTRE = (30.25, 120.16)
CARGOES = (("1203", 3.0), ("1075", 2.1), ("1830", 8.0), ("1090", 3.0), ("1005", 2.3))
# Storage facilities: id, zone, centre, tanks, grid (computed), LPG spheres among the tanks.
FACILITIES = (
    ("F-01", (30.305, 120.405), 3), ("F-02", (30.305, 120.420), 3),
    ("F-03", (30.318, 120.405), 3), ("F-04", (30.318, 120.420), 3),
    ("F-05", (30.360, 120.180), 4), ("F-06", (30.170, 120.300), 3),
    ("F-07", (30.370, 120.040), 3), ("F-08", (30.230, 120.420), 2),
    ("F-09", (30.390, 120.300), 2),
)
LOADING = ("F-01", "F-02", "F-03", "F-04", "F-05")
CUSTOMERS = ("F-06", "F-07", "F-08", "F-09", "F-05")
PRESSURISED = {"F-06-T1", "F-08-T1", "F-01-T2"}
COMPANIES = tuple(f"HC-{i:02d}" for i in range(1, 9))
N_VEHICLES = 24


@dataclass(frozen=True)
class Tank:
    tank_id: str
    facility_id: str
    grid: str
    base_level: float
    base_temp: float
    pressurised: bool
    phase: float


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: str
    plate: str
    driver_id: str
    company_id: str
    home: str
    cargo_un: str
    cargo_class: float
    rated_t: float
    map_matched: bool = True
    """False: its platform sends no road class (it comes from map matching)."""


class Hazchem(Department):
    name = "hazchem"
    topics = (VEHICLE, FACILITY, WAYBILL, MARKET, EMERGENCY)

    def __init__(self, ctx: SimContext) -> None:
        super().__init__(ctx)
        rng = ctx.rng("hazchem/entities")
        self.sites: dict[str, Point] = {f: p for f, p, _ in FACILITIES}
        self.tanks: list[Tank] = []
        for fid, point, n in FACILITIES:
            for k in range(1, n + 1):
                tid = f"{fid}-T{k}"
                self.tanks.append(Tank(tid, fid, ctx.city.grid_of(*point),
                                       rng.uniform(35, 65), rng.uniform(18, 24),
                                       tid in PRESSURISED, rng.uniform(0, 60)))
        self.vehicles: list[Vehicle] = []
        # ctx.rate scales the fleet (benchmarks); the fleet beyond the registered 24 tankers
        # is numbered from HV-101 and shares the registered drivers.
        for i in range(1, max(1, round(N_VEHICLES * ctx.rate)) + 1):
            un, cls = rng.choice(CARGOES)
            vid = f"HV-{i:03d}" if i <= N_VEHICLES else f"HV-{100 + i:03d}"
            self.vehicles.append(Vehicle(vid, f"浙A{rng.randint(10000, 99999)}危",
                                         f"HD-{(i - 1) % N_VEHICLES + 1:03d}",
                                         rng.choice(COMPANIES),
                                         LOADING[i % len(LOADING)], un, cls,
                                         rng.choice((20.0, 25.0, 30.0)),
                                         map_matched=i % 4 != 0))
        self._routes: dict[tuple[str, str], list[Point]] = {}
        self._days: dict[tuple[str, int], list[Envelope]] = {}
        self._plan: list[Incident] | None = None

    # ---- geography -------------------------------------------------------------------------

    def crosses(self, route: list[Point], kinds: tuple[str, ...] = RESTRICTED) -> bool:
        total = length(route)
        return any(self.ctx.city.inside_any(along(route, d), kinds)
                   for d in [*range(0, int(total), 150), total])

    def route(self, a: str, b: str) -> list[Point]:
        """A planned route between two facilities clear of every restricted zone."""
        if (a, b) not in self._routes:
            rng = self.ctx.rng(f"hazchem/route/{a}/{b}")
            start, end = self.sites[a], self.sites[b]
            best = [start, end]
            tries = 0
            while self.crosses(best) and tries < 400:
                tries += 1
                mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
                spread = 0.02 + 0.0005 * tries
                ways = [(mid[0] + rng.uniform(-1, 1) * spread * 4,
                         mid[1] + rng.uniform(-1, 1) * spread * 4)
                        for _ in range(1 + tries // 150)]
                ways.sort(key=lambda w: metres(start, w))
                best = [start, *ways, end]
            self._routes[(a, b)] = best
        return self._routes[(a, b)]

    @staticmethod
    def road_class(p: Point) -> str:
        return "highway" if metres(p, CENTRE) > 9000 else "urban"

    # ---- event builders --------------------------------------------------------------------

    def vehicle_event(self, ts: float, v: Vehicle, p: Point, speed: float, *, ignition: bool,
                      waybill: str | None, driving: float, rng: random.Random,
                      heading: float = 0.0, **extra: Any) -> Envelope:
        loaded = extra.pop("loaded", True)
        value: dict[str, Any] = {
            "event_id": f"{v.vehicle_id}-{int(ts * 1000)}", "ts": self.ctx.iso(ts),
            "source": "hazchem-telematics", "vehicle_id": v.vehicle_id, "plate": v.plate,
            "lat": round(p[0], 6), "lon": round(p[1], 6), "speed_kmh": round(max(0.0, speed), 1),
            "heading": round(heading % 360, 1), "ignition": ignition,
            "driver_id": v.driver_id, "waybill_id": waybill, "cargo_un": v.cargo_un,
            "cargo_class": v.cargo_class,
            "load_t": round(v.rated_t * rng.uniform(0.8, 0.95), 1) if loaded else 0.3,
            "rated_load_t": v.rated_t,
            "tank_pressure_kpa": round((820.0 if v.cargo_class < 3 else 35.0)
                                       + rng.gauss(0, 2), 1),
            "tank_temp_c": round(rng.uniform(22, 30), 1), "valve_open": False,
            "road_class": self.road_class(p), "driving_min": round(driving, 1),
            "grid_id": self.ctx.city.grid_of(*p)}
        value.update(extra)
        if not v.map_matched:
            del value["road_class"]
        return Envelope(ts, VEHICLE, v.vehicle_id, value)

    def waybill_event(self, ts: float, wid: str, v: Vehicle, status: str, route: list[Point],
                      window: tuple[float, float], qty: float, **extra: Any) -> Envelope:
        value: dict[str, Any] = {
            "event_id": f"{wid}-{status}", "ts": self.ctx.iso(ts), "source": "hazchem-waybill",
            "waybill_id": wid, "vehicle_id": v.vehicle_id, "company_id": v.company_id,
            "driver_id": v.driver_id, "cargo_un": v.cargo_un, "qty_t": qty,
            "route": [{"lat": round(a, 6), "lon": round(b, 6)} for a, b in route],
            "window_start": self.ctx.iso(window[0]), "window_end": self.ctx.iso(window[1]),
            "status": status}
        value.update(extra)
        return Envelope(ts, WAYBILL, wid, value)

    def tank_event(self, ts: float, tank: Tank, rng: random.Random,
                   override: dict[str, Any] | None = None) -> Envelope:
        local = self.ctx.local(ts)
        hour = local.hour + local.minute / 60
        temp = tank.base_temp + 4 * math.sin(math.pi * (hour - 9) / 12) + rng.gauss(0, 0.1)
        level, transfer = self._level(ts, tank)
        value: dict[str, Any] = {
            "event_id": f"{tank.tank_id}-{int(ts)}", "ts": self.ctx.iso(ts),
            "source": "hazchem-dcs", "tank_id": tank.tank_id, "facility_id": tank.facility_id,
            "level_pct": round(level + rng.gauss(0, 0.03), 2), "temp_c": round(temp, 2),
            "lel_pct": round(max(0.0, rng.gauss(1.0, 0.6)), 1),
            "toxic_ppm": round(max(0.0, rng.gauss(0.3, 0.15)), 2), "sensor_status": "ok",
            "grid_id": tank.grid, "transfer_active": transfer}
        if tank.pressurised:
            value["pressure_kpa"] = round(self.sphere_pressure(temp) + rng.gauss(0, 1.5), 1)
        if override:
            value.update(override)
        return Envelope(ts, FACILITY, tank.tank_id, value)

    @staticmethod
    def sphere_pressure(air_temp: float) -> float:
        """An LPG sphere's pressure: its contents follow the air's daily swing only damped
        (a large thermal mass), about 3 kPa per degree of air temperature."""
        return 780 + 3 * (air_temp - 20)

    def _level(self, ts: float, tank: Tank) -> tuple[float, bool]:
        """Level from the base and the day's two transfers: out in the morning, back in the
        afternoon (so every day starts and ends at the base level)."""
        day = self.day_start(ts)
        rng = self.ctx.rng(f"hazchem/transfer/{tank.tank_id}/{int(day)}")
        amount = rng.uniform(10, 20)
        out0 = day + rng.uniform(8.5, 10.5) * 3600
        out1 = out0 + rng.uniform(40, 80) * 60
        in0 = day + rng.uniform(14, 16) * 3600
        in1 = in0 + rng.uniform(40, 80) * 60
        if ts < out0 or ts >= in1:
            return tank.base_level, False
        if ts < out1:
            return tank.base_level - amount * (ts - out0) / (out1 - out0), True
        if ts < in0:
            return tank.base_level - amount, False
        return tank.base_level - amount + amount * (ts - in0) / (in1 - in0), True

    def day_start(self, ts: float) -> float:
        local = self.ctx.local(ts)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()

    # ---- background ------------------------------------------------------------------------

    def _tank_day(self, tank: Tank, day: float, incidents: list[Incident]) -> list[Envelope]:
        rng = self.ctx.rng(f"hazchem/tank/{tank.tank_id}/{int(day)}")
        gaps = [day + rng.uniform(0, 86400) for _ in range(rng.randint(0, 2))]
        mine = [i for i in incidents if tank.tank_id in i.extra.get("tanks", ())]
        out = []
        for ts in every(day, day + 86400, 60.0, tank.phase):
            if any(g <= ts < g + 150 for g in gaps):
                continue  # a lost reading or two
            override: dict[str, Any] = {}
            drop = False
            for incident in mine:
                change = scenarios.tank_override(self, incident, tank, ts)
                if change is None:
                    drop = True
                elif change:
                    override.update(change)
            if not drop:
                out.append(self.tank_event(ts, tank, rng, override))
        return out

    def _vehicle_day(self, v: Vehicle, day: float) -> list[Envelope]:
        rng = self.ctx.rng(f"hazchem/vehicle/{v.vehicle_id}/{int(day)}")
        quiet = self.ctx.local(day).weekday() >= 5 or self.ctx.is_holiday(day)
        trips = rng.choice((0, 1, 1) if quiet else (1, 1, 2))
        home = self.sites[v.home]
        out: list[Envelope] = []
        t = day + rng.uniform(7, 9.5) * 3600
        busy: list[tuple[float, float]] = []
        last_wb: str | None = None
        for n in range(trips):
            dest = rng.choice([c for c in CUSTOMERS if c != v.home])
            wid = f"WB-{v.vehicle_id[3:]}-{self.ctx.local(day).strftime('%m%d')}-{n}"
            _, arrive = self._drive(out, v, v.home, dest, t, wid + "A", rng, loaded=True)
            unload_end = arrive + rng.uniform(35, 50) * 60
            for ts in every(arrive + 30, unload_end, 30.0, arrive):
                p = self.sites[dest]
                out.append(self.vehicle_event(
                    ts, v, offset(p, rng.gauss(0, 5), rng.gauss(0, 5)), 0.0, ignition=True,
                    waybill=wid + "A", driving=0.0, rng=rng,
                    valve_open=ts < arrive + 25 * 60, loaded=ts < arrive + 25 * 60))
            _, back = self._drive(out, v, dest, v.home, unload_end, wid + "B", rng,
                                  loaded=False)
            busy.append((t, back))
            last_wb = wid + "B"
            t = back + rng.uniform(1, 2.5) * 3600
        # Parked at home with the ignition off: a report every 5 minutes.
        for ts in every(day, day + 86400, 300.0, rng.uniform(0, 300)):
            if not any(a <= ts < b + 60 for a, b in busy):
                out.append(self.vehicle_event(
                    ts, v, offset(home, rng.gauss(0, 5), rng.gauss(0, 5)), 0.0,
                    ignition=False, waybill=last_wb if busy and ts > busy[0][1] else None,
                    driving=0.0, rng=rng, loaded=False))
        if rng.random() < 0.01:
            out.append(self.violation(day + rng.uniform(9, 17) * 3600, v.company_id,
                                      rng.choice(("overload", "late_inspection", "paperwork")),
                                      rng))
        return out

    def _drive(self, out: list[Envelope], v: Vehicle, a: str, b: str, depart: float, wid: str,
               rng: random.Random, loaded: bool) -> tuple[float, float]:
        """Waybill issued, started, the drive, finished; returns (issue time, arrival)."""
        route = self.route(a, b)
        total = length(route)
        issued = depart - rng.uniform(20, 50) * 60
        expected = total / (45 / 3.6)
        window = (issued, depart + expected + 2 * 3600)
        qty = round(v.rated_t * 0.9, 1) if loaded else 0.0
        out.append(self.waybill_event(issued, wid, v, "issued", route, window, qty))
        out.append(self.waybill_event(depart, wid, v, "started", route, window, qty))
        ts, done, driving = depart, 0.0, 0.0
        previous = route[0]
        while done < total:
            p = along(route, done)
            road = self.road_class(p)
            speed = rng.uniform(62, 76) if road == "highway" else rng.uniform(36, 54)
            if road == "urban" and rng.random() < 0.12:
                speed = rng.uniform(0, 8)  # lights, junctions
            heading = math.degrees(math.atan2(p[1] - previous[1], p[0] - previous[0]))
            out.append(self.vehicle_event(ts, v, offset(p, rng.gauss(0, 4), rng.gauss(0, 4)),
                                          speed, ignition=True, waybill=wid, driving=driving,
                                          rng=rng, heading=heading, loaded=loaded))
            previous = p
            done += speed / 3.6 * 30
            ts += 30
            driving += 0.5
        out.append(self.waybill_event(ts, wid, v, "finished", route, window, qty))
        return issued, ts

    def violation(self, ts: float, company: str, item: str, rng: random.Random) -> Envelope:
        return Envelope(ts, MARKET, company, {
            "event_id": f"{company}-violation-{int(ts)}-{rng.randint(0, 9999)}",
            "ts": self.ctx.iso(ts), "source": "hazchem-enforcement", "company_id": company,
            "kind": "violation", "item": item, "result": "penalty"})

    # ---- department interface --------------------------------------------------------------

    def plan(self) -> list[Incident]:
        if self._plan is None:
            self._plan = scenarios.plan(self)
        return self._plan

    def _days_of(self, t0: float, t1: float) -> list[float]:
        day = self.day_start(t0)
        out = []
        while day < t1:
            out.append(day)
            day = (self.ctx.local(day) + timedelta(days=1, hours=2)).replace(
                hour=0).timestamp()
        return out

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        # Background is generated a day at a time from that day's own generators (so the same
        # whatever the slicing) and kept for the slices of the day.
        days = self._days_of(t0, t1)
        for day in days:
            for entity in itertools.chain(self.tanks, self.vehicles):
                key = (entity.tank_id if isinstance(entity, Tank) else entity.vehicle_id,
                       int(day))
                if key not in self._days:
                    self._days[key] = self._tank_day(entity, day, incidents) \
                        if isinstance(entity, Tank) else self._vehicle_day(entity, day)
                yield from (e for e in self._days[key] if t0 <= e.ts < t1)
        for key in [k for k in self._days if k[1] < int(days[0])]:
            del self._days[key]
        for incident in incidents:
            if incident.extra.get("tanks"):
                continue  # produced inside the tanks' own readings
            if incident.start - 4 * 3600 < t1 and incident.end + 4 * 3600 > t0:
                yield from (e for e in scenarios.incident_events(self, incident)
                            if t0 <= e.ts < t1)
