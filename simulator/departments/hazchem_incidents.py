"""The hazardous-chemicals incidents: what each model is meant to catch, and its events.

Tank incidents change the readings of one of the department's own tanks for a while
(``tank_override``); vehicle incidents are a trip of a tanker of their own, which reports from
shortly before the incident and ends parked with the ignition off (``incident_events``); waybill
incidents are waybills issued as the incident. ``plan`` decides them all up front from the
seed. Where one situation necessarily meets a second model's condition too (a tank at 96% is
above 90%; 92 km/h on a highway is also above 80), a *companion* incident of that model records
it, so the truth holds every situation there really is.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import TYPE_CHECKING, Any

from models.geometry import distance_to_segment_m, zone_shape
from simulator.base import Envelope, Incident, every
from simulator.city import Point, along, length, metres, offset

if TYPE_CHECKING:
    from simulator.departments.hazchem import Hazchem, Tank, Vehicle

M = 60.0
TANK_MODELS = {
    # model: (seconds from start by which it can be expected to fire, companions)
    "hazchem.tank.level_high": (20 * M, ()),
    "hazchem.tank.level_high_high": (20 * M, ("hazchem.tank.level_high",)),
    "hazchem.tank.level_low": (20 * M, ()),
    "hazchem.tank.level_falling_no_transfer": (10 * M, ()),
    "hazchem.tank.gas_first_alarm": (2 * M, ()),
    "hazchem.tank.gas_second_alarm": (2 * M, ("hazchem.tank.gas_first_alarm",)),
    "hazchem.tank.toxic_gas_high": (2 * M, ()),
    "hazchem.tank.temp_high": (15 * M, ()),
    "hazchem.tank.pressure_high": (10 * M, ("hazchem.tank.pressure_rising_fast",
                                            "hazchem.tank.pressure_anomaly")),
    "hazchem.tank.pressure_rising_fast": (5 * M, ("hazchem.tank.pressure_anomaly",)),
    "hazchem.tank.pressure_anomaly": (3 * M, ()),
    "hazchem.tank.sensor_offline": (7 * M, ()),
    "hazchem.tank.sensor_stuck": (32 * M, ()),
}
PRESSURE_MODELS = {"hazchem.tank.pressure_high", "hazchem.tank.pressure_rising_fast",
                   "hazchem.tank.pressure_anomaly"}
VEHICLE_MODELS = {
    # model: (pre-roll, duration of the situation, expected firing after start, companions)
    "hazchem.vehicle.overspeed_highway": (10 * M, 3 * M, 1 * M, ()),
    "hazchem.vehicle.overspeed_urban": (10 * M, 3 * M, 1 * M, ()),
    "hazchem.vehicle.overspeed_sustained": (10 * M, 3 * M, 2 * M,
                                            ("hazchem.vehicle.overspeed_highway",)),
    "hazchem.vehicle.fatigue_driving": (10 * M, 20 * M, 1 * M, ()),
    "hazchem.vehicle.night_ban": (0, 20 * M, 2 * M, ()),
    "hazchem.vehicle.off_route": (10 * M, 5 * M, 3 * M, ()),
    "hazchem.vehicle.restricted_zone": (10 * M, 2 * M, 2 * M, ()),
    "hazchem.vehicle.restricted_zone_dwell": (10 * M, 12 * M, 12 * M,
                                              ("hazchem.vehicle.restricted_zone",)),
    "hazchem.vehicle.parked_outside_area": (10 * M, 40 * M, 31 * M, ()),
    "hazchem.vehicle.parked_near_crowd": (10 * M, 15 * M, 11 * M, ()),
    "hazchem.vehicle.gps_lost": (10 * M, 15 * M, 11 * M, ()),
    "hazchem.vehicle.no_active_waybill": (0, 15 * M, 3 * M, ()),
    "hazchem.vehicle.cargo_mismatch": (0, 15 * M, 1 * M, ()),
    "hazchem.vehicle.overload": (0, 15 * M, 1 * M, ()),
    "hazchem.vehicle.tank_pressure_high": (0, 15 * M, 5 * M, ()),
    "hazchem.vehicle.tank_temp_high": (0, 15 * M, 5 * M, ()),
    "hazchem.vehicle.tank_pressure_rising_fast": (10 * M, 10 * M, 4 * M, ()),
    "hazchem.vehicle.valve_open_moving": (10 * M, 2 * M, 1 * M,
                                          ("hazchem.vehicle.valve_open_outside_facility",)),
    "hazchem.vehicle.valve_open_outside_facility": (10 * M, 5 * M, 2 * M, ()),
    "hazchem.vehicle.harsh_braking": (10 * M, 2 * M, 10, ()),
    "hazchem.waybill.outside_window": (10 * M, 15 * M, 6 * M, ()),
    "hazchem.vehicle.red_weather_transport": (0, 20 * M, 35 * M, ()),
}
WAYBILL_MODELS = ("hazchem.waybill.company_blacklisted", "hazchem.waybill.driver_unqualified",
                  "hazchem.waybill.vehicle_inspection_expired",
                  "hazchem.waybill.route_restricted")
SCHOOLS = ((30.280, 120.200), (30.205, 120.210))
BESIDE_WEST_LAKE = (30.236, 120.128)  # 190 m west of the scenic area's edge


def plan(dept: Hazchem) -> list[Incident]:
    ctx = dept.ctx
    rng = ctx.rng("hazchem/plan")
    out: list[Incident] = []
    busy: dict[str, list[tuple[float, float]]] = {}

    def free(tank: str, a: float, b: float) -> bool:
        return all(b + 3600 < s or a > e + 3600 for s, e in busy.get(tank, ()))

    def add(model: str, n: int, key: str, start: float, end: float, note: str,
            extra: dict[str, Any], companions: tuple[str, ...] = (),
            companion_keys: list[str] | None = None) -> None:
        incident = Incident(dept.incident_id(model, n), model, key, start, end, dept.name,
                            note, extra)
        out.append(incident)
        for c in companions:
            for k in companion_keys or [key]:
                out.append(Incident(f"{incident.incident_id}-{c.rsplit('.', 1)[-1]}-{k}", c,
                                    k, start, end, dept.name, f"companion of {model}",
                                    {"companion": incident.incident_id}))

    tanks = list(dept.tanks)
    for model, (fire, companions) in TANK_MODELS.items():
        if model in PRESSURE_MODELS:
            # One sphere per pressure model: the anomaly detector learns each tank's normal,
            # and a sphere just through a pressure excursion has a widened normal for a while.
            spheres = sorted((t for t in tanks if t.pressurised), key=lambda t: t.tank_id)
            pool = [spheres[sorted(PRESSURE_MODELS).index(model) % len(spheres)]]
        else:
            pool = [t for t in tanks if not t.pressurised]
        for n, start in enumerate(ctx.incident_times(rng, lead=2 * 3600, tail=3600)):
            rng.shuffle(pool)
            tank = next((t for t in pool if free(t.tank_id, start, start + 3600)), pool[0])
            busy.setdefault(tank.tank_id, []).append((start, start + 3600))
            add(model, n, tank.tank_id, start, start + fire, model.rsplit(".", 1)[-1],
                {"tanks": [tank.tank_id], "model": model, "offsets": [0.0]}, companions)
    for model, key_of, want in (("hazchem.facility.multi_tank_alarm", "facility", 2),
                                ("hazchem.grid.alarm_storm", "grid", 3)):
        for n, start in enumerate(ctx.incident_times(rng, lead=2 * 3600, tail=3600)):
            if key_of == "facility":
                facility = rng.choice([f for f in ("F-01", "F-02", "F-03", "F-04", "F-05")])
                chosen = [t for t in tanks if t.facility_id == facility
                          and not t.pressurised][:want]
                key = facility
            else:
                facilities = rng.sample(["F-01", "F-02", "F-03", "F-04"], want)
                chosen = [next(t for t in tanks if t.facility_id == f and not t.pressurised)
                          for f in facilities]
                key = chosen[0].grid
            for t in chosen:
                busy.setdefault(t.tank_id, []).append((start, start + 3600))
            step = 3 * M if want == 2 else 5 * M
            add(model, n, key, start, start + step * (want - 1) + M,
                f"gas alarms at {want} {'tanks' if want == 2 else 'facilities'}",
                {"tanks": [t.tank_id for t in chosen], "model": model,
                 "offsets": [i * step for i in range(want)]},
                ("hazchem.tank.gas_first_alarm",), [t.tank_id for t in chosen])
    for i, (model, (pre, dur, fire, companions)) in enumerate(VEHICLE_MODELS.items()):
        if model == "hazchem.vehicle.night_ban":
            starts = _night_times(dept, rng)
        else:
            starts = ctx.incident_times(rng, lead=3600, tail=3600)
        for n, start in enumerate(starts):
            vid = f"HX-{i:02d}{n}"
            key = {"hazchem.waybill.outside_window": f"WB-X-{i:02d}{n}"}.get(model, vid)
            extra = {"model": model, "vehicle": vid, "pre": pre, "dur": dur, "n": n,
                     "seed": rng.randrange(1 << 30)}
            if model == "hazchem.vehicle.red_weather_transport":
                route = dept.route(*_pair(rng))
                point = along(route, length(route) * rng.uniform(0.3, 0.6))
                key = ctx.city.grid_of(*point)
                extra["route"], extra["at"] = route, point
            add(model, n, key, start, start + fire, model.rsplit(".", 1)[-1], extra, companions,
                [vid] if companions else None)
    for model in WAYBILL_MODELS:
        for n, start in enumerate(ctx.incident_times(rng, lead=3600, tail=3600)):
            wid = f"WB-Y-{model.rsplit('.', 1)[-1][:6].upper()}-{n}"
            add(model, n, wid, start, start + 60, model.rsplit(".", 1)[-1],
                {"model": model, "n": n, "seed": rng.randrange(1 << 30)})
    for n, start in enumerate(ctx.incident_times(rng, lead=3600, tail=3600)):
        vid = f"HZ-{n:02d}"
        add("hazchem.waybill.vehicle_double_booked", n, vid, start, start + 60,
            "a second waybill started while the first is in transport",
            {"model": "double_booked", "vehicle": vid, "n": n, "seed": rng.randrange(1 << 30)})
    for n, start in enumerate(ctx.incident_times(rng, lead=3600, tail=3 * 3600)):
        company = f"HC-9{n}"
        add("hazchem.company.repeat_violations", n, company, start, start + 80 * M,
            "three violations in one day", {"model": "violations", "company": company})
    return out


def _night_times(dept: Hazchem, rng: random.Random) -> list[float]:
    ctx = dept.ctx
    days = max(1, int((ctx.end - ctx.start) // 86400))
    out = []
    for n in range(ctx.incidents_per_model):
        day = dept.day_start(ctx.start) + (n % days) * 86400
        t = day + rng.uniform(1.0, 4.5) * 3600
        out.append(min(max(t, ctx.start + 600), ctx.end - 3600))
    return sorted(out)


def _pair(rng: random.Random) -> tuple[str, str]:
    a = rng.choice(("F-01", "F-02", "F-03", "F-05"))
    b = rng.choice(("F-06", "F-07", "F-09"))
    return a, b


# ---- tanks --------------------------------------------------------------------------------

def tank_override(dept: Hazchem, incident: Incident, tank: Tank, ts: float
                  ) -> dict[str, Any] | None:
    """Changed fields of ``tank``'s reading at ``ts`` (empty: unchanged; None: no reading)."""
    model = incident.extra["model"]
    offset_s = incident.extra["offsets"][incident.extra["tanks"].index(tank.tank_id)]
    r = ts - incident.start - offset_s
    if r < 0 or r >= 3600:
        return {}
    level = dept._level(ts, tank)[0]
    short = model.rsplit(".", 1)[-1]
    if short in ("level_high", "level_high_high", "level_low"):
        target = {"level_high": 92.0, "level_high_high": 96.5, "level_low": 8.0}[short]
        if r < 15 * M:
            value = level + (target - level) * r / (15 * M)
        elif r < 35 * M:
            value = target
        elif r < 50 * M:
            value = target + (level - target) * (r - 35 * M) / (15 * M)
        else:
            return {}
        return {"level_pct": round(value, 2), "transfer_active": True}
    if short == "level_falling_no_transfer":
        return {"level_pct": round(level - 0.12 * min(r, 40 * M) / M, 2),
                "transfer_active": False} if r < 45 * M else {}
    if short in ("gas_first_alarm", "gas_second_alarm", "multi_tank_alarm", "alarm_storm"):
        if r >= 10 * M:
            return {}
        base = 55.0 if short == "gas_second_alarm" else 27.0
        return {"lel_pct": round(base + 6 * abs(math.sin(r / 120)), 1)}
    if short == "toxic_gas_high":
        return {"toxic_ppm": round(8.5 + math.sin(r / 90), 2)} if r < 10 * M else {}
    if short == "temp_high":
        if r >= 40 * M:
            return {}
        return {"temp_c": round(38.0 + 5 * min(1.0, r / (10 * M)), 2)}
    if short == "sensor_offline":
        return None if r < 15 * M else {}
    if short == "sensor_stuck":
        # the gauge freezes at the level of the moment it stuck
        frozen = dept._level(incident.start + offset_s, tank)[0]
        return {"level_pct": round(frozen, 2)} if r < 45 * M else {}
    pressure = dept.sphere_pressure(dept.tank_event(ts, tank, random.Random(0)).value["temp_c"])
    if short == "pressure_high":
        if r >= 30 * M:
            return {}
        rise = 900 * min(1.0, r / (8 * M)) if r < 20 * M else 900 * (30 * M - r) / (10 * M)
        return {"pressure_kpa": round(pressure + rise, 1)}
    if short == "pressure_rising_fast":
        if r >= 40 * M:
            return {}
        rise = 80 * min(1.0, r / (4 * M)) if r < 20 * M else 80 * (40 * M - r) / (20 * M)
        return {"pressure_kpa": round(pressure + rise, 1)}
    if short == "pressure_anomaly":
        return {"pressure_kpa": round(pressure + 40, 1)} if r < 3 * M else {}
    return {}


# ---- vehicles and waybills -----------------------------------------------------------------

def incident_events(dept: Hazchem, incident: Incident) -> list[Envelope]:
    extra = incident.extra
    if "companion" in extra:
        return []
    model = extra["model"]
    if model == "violations":
        rng = random.Random(incident.incident_id)
        return [dept.violation(incident.start + k * 40 * M, extra["company"], item, rng)
                for k, item in enumerate(("overload", "no_waybill", "unqualified_driver"))]
    if model in WAYBILL_MODELS:
        return _waybill_incident(dept, incident)
    if model == "double_booked":
        rng = random.Random(extra["seed"])
        v = _incident_vehicle(dept, extra["vehicle"], rng)
        route, t = dept.route(*_pair(rng)), incident.start
        first, second = f"WB-Z-{extra['n']}A", f"WB-Z-{extra['n']}B"
        window = (t - 2 * 3600, t + 4 * 3600)
        return [dept.waybill_event(t - 50 * M, first, v, "issued", route, window, 20.0),
                dept.waybill_event(t - 40 * M, first, v, "started", route, window, 20.0),
                dept.waybill_event(t - 10 * M, second, v, "issued", route, window, 20.0),
                dept.waybill_event(t, second, v, "started", route, window, 20.0),
                dept.waybill_event(t + 20 * M, second, v, "cancelled", route, window, 20.0),
                dept.waybill_event(t + 60 * M, first, v, "finished", route, window, 20.0)]
    return _vehicle_incident(dept, incident)


def _incident_vehicle(dept: Hazchem, vid: str, rng: random.Random, **changes: Any) -> Vehicle:
    from simulator.departments.hazchem import Vehicle
    fields = {"vehicle_id": vid, "plate": f"浙B{rng.randint(10000, 99999)}危",
              "driver_id": f"HD-{rng.randint(30, 56):03d}", "company_id": "HC-01",
              "home": "F-01", "cargo_un": "1203", "cargo_class": 3.0, "rated_t": 30.0}
    fields.update(changes)
    return Vehicle(**fields)


def _waybill_incident(dept: Hazchem, incident: Incident) -> list[Envelope]:
    rng = random.Random(incident.extra["seed"])
    short = incident.model_id.rsplit(".", 1)[-1]
    changes: dict[str, Any] = {}
    if short == "company_blacklisted":
        changes["company_id"] = "C-0666"
    elif short == "driver_unqualified":
        changes["driver_id"] = f"HD-{57 + incident.extra['n'] % 4:03d}"
    elif short == "vehicle_inspection_expired":
        changes["vehicle_id"] = f"HV-{57 + incident.extra['n'] % 4:03d}"
    v = _incident_vehicle(dept, changes.pop("vehicle_id", f"HY-{incident.extra['n']}"), rng,
                          **changes)
    route = dept.route(*_pair(rng))
    if short == "route_restricted":  # straight through the old-town core
        route = [(30.2525, 120.120), (30.2525, 120.210)]
    t = incident.start
    return [dept.waybill_event(t, incident.key, v, "issued", route, (t, t + 6 * 3600), 20.0),
            dept.waybill_event(t + 50 * M, incident.key, v, "cancelled", route,
                               (t, t + 6 * 3600), 20.0)]


def _near(point: Point, kinds: tuple[str, ...], m: float, dept: Hazchem) -> bool:
    return any(zone_shape(zid, z).distance_m(point) <= m for zid, z in dept.ctx.city.zones(*kinds))


def _vehicle_incident(dept: Hazchem, incident: Incident) -> list[Envelope]:
    extra = incident.extra
    short = incident.model_id.rsplit(".", 1)[-1]
    rng = random.Random(extra["seed"])
    # Incident tankers carry a cargo the night-time ban does not cover (sulphuric acid, or
    # ammonia for a pressurised tank), so an incident at night shows only its own model.
    changes: dict[str, Any] = {"cargo_un": "1830", "cargo_class": 8.0}
    if short == "tank_pressure_rising_fast":
        changes = {"cargo_un": "1005", "cargo_class": 2.3}
    elif short == "night_ban":
        changes = {"cargo_un": "1203", "cargo_class": 3.0}
    if short in ("overspeed_highway", "overspeed_sustained") and extra["n"] % 2:
        # Every second one reports no road class: the models must then hold it to 80 km/h.
        changes["map_matched"] = False
    v = _incident_vehicle(dept, extra["vehicle"], rng, **changes)
    start, pre, dur = incident.start, extra["pre"], extra["dur"]
    t0, t1 = start - pre, start + dur + 5 * M
    route = extra.get("route") or dept.route(*_pair(rng))
    where = {"restricted_zone": "school", "restricted_zone_dwell": "school",
             "parked_near_crowd": "lake"}.get(short)
    if where == "school":
        school = SCHOOLS[extra["n"] % 2]
        east = offset(school, 450, 0)
        route = [offset(east, 0, -4000), offset(east, 0, 4000)]
    elif where == "lake":
        route = [(BESIDE_WEST_LAKE[0], 120.06), BESIDE_WEST_LAKE]
    total = length(route)
    speed0 = 45.0
    # Where along the route the vehicle is at the start (so the incident happens mid-route).
    if where == "lake":
        d_start = total - speed0 / 3.6 * pre
    elif where == "school":
        d_start = total / 2
    elif short == "red_weather_transport":
        d_start = max(0.0, _distance_to(route, extra["at"]) - 5 * M * speed0 / 3.6)
    else:
        d_start = total * rng.uniform(0.3, 0.5)
    wid = incident.key if short == "outside_window" else f"WB-X-{v.vehicle_id[3:]}"
    window = (t0 - 3600, t1 + 3 * 3600)
    if short == "outside_window":
        window = (t0 - 3 * 3600, start)
    out = [dept.waybill_event(t0 - 30 * M, wid, v, "issued", route, window, 25.0)]
    if short != "no_active_waybill":
        out.append(dept.waybill_event(t0 - 60, wid, v, "started", route, window, 25.0))
    if short == "red_weather_transport":
        out.append(Envelope(start, "events.emergency.report", f"RW-{incident.incident_id}", {
            "event_id": f"RW-{incident.incident_id}", "ts": dept.ctx.iso(start),
            "source": "meteorology", "report_id": f"RW-{incident.incident_id}",
            "kind": "weather_warning", "level": "red", "value": 4, "grid_id": incident.key}))
        t0, t1 = start + 30 * M, start + 50 * M
    d = d_start - speed0 / 3.6 * (start - t0) if short not in ("red_weather_transport",) \
        else d_start
    d = max(0.0, d) if where != "lake" else d_start
    stop_point: Point | None = None
    times = list(every(t0, t1, 30.0, t0))
    if short == "harsh_braking":
        times = sorted({*times, *(start + k for k in range(0, 6))})
    for ts in times:
        r = ts - start
        inside = 0 <= r < dur
        speed = rng.uniform(42, 50)
        p = along(route, min(max(d, 0.0), total))
        fields: dict[str, Any] = {}
        ignition = True
        if short in ("overspeed_highway", "overspeed_sustained") and inside:
            speed, fields["road_class"] = (84.0 if short == "overspeed_highway" else 92.0), \
                "highway"
        elif short == "overspeed_urban" and inside:
            speed, fields["road_class"] = 64.0, "urban"
        elif short in ("overspeed_highway", "overspeed_sustained", "overspeed_urban"):
            fields["road_class"] = "urban" if short == "overspeed_urban" else "highway"
        if short == "fatigue_driving":
            fields["driving_min"] = round(230 + (ts - t0) / 60, 1)
        if short == "off_route" and inside:
            p = _aside(dept, route, d, 900)
        if where == "school" and r >= 0:
            school = SCHOOLS[extra["n"] % 2]
            if r < 30:
                p = offset(school, 225, 0)
                speed = 25.0
            elif r < (60 if short == "restricted_zone" else dur):
                p, speed = offset(school, rng.uniform(-20, 20), rng.uniform(-20, 20)), \
                    (20.0 if short == "restricted_zone" else 0.0)
            elif r < (90 if short == "restricted_zone" else dur + 30):
                p = offset(school, 225, 0)
            else:
                p = along(route, min(d, total))
        if short in ("parked_outside_area", "valve_open_outside_facility") and inside:
            stop_point = stop_point or _roadside(dept, route, d)
            p, speed = stop_point, 0.0
            ignition = short != "parked_outside_area"
            if short == "valve_open_outside_facility":
                fields["valve_open"] = True
        if where == "lake" and r >= 0:
            p, speed = offset(BESIDE_WEST_LAKE, rng.gauss(0, 3), rng.gauss(0, 3)), 0.0
            if r >= dur:
                continue
        if short == "parked_outside_area" and inside and int(r) % 300 >= 30:
            continue  # ignition off: a report every 5 minutes
        if short == "gps_lost" and inside:
            continue
        if short == "cargo_mismatch":
            fields["cargo_un"] = "1789"  # hydrochloric acid, not the waybill's sulphuric
        if short == "overload":
            fields["load_t"] = 33.0
        if short == "tank_pressure_high":
            fields["tank_pressure_kpa"] = round(590 + 4 * max(0.0, r) / 60, 1)
        if short == "tank_temp_high":
            fields["tank_temp_c"] = round(48 + 0.6 * max(0.0, r) / 60, 1)
        if short == "tank_pressure_rising_fast" and r >= 0:
            fields["tank_pressure_kpa"] = round(820 + 20 * min(r, 4 * M) / 60, 1)
        if short == "valve_open_moving" and inside:
            fields["valve_open"] = True
        if short == "harsh_braking" and 0 <= r < 6:
            speed = (62.0, 52.0, 40.0, 28.0, 12.0, 0.0)[int(r)]
        elif short == "harsh_braking" and 6 <= r < 90:
            speed = 0.0
        out.append(dept.vehicle_event(ts, v, p, speed, ignition=ignition, waybill=wid,
                                      driving=fields.pop("driving_min", 20 + (ts - t0) / 60),
                                      rng=rng, **fields))
        if ts + 30 <= t1 or short == "harsh_braking":
            d += speed / 3.6 * (1 if short == "harsh_braking" and 0 <= r < 6 else 30)
    end = max(times) + 30
    out.append(dept.vehicle_event(end, v, along(route, min(max(d, 0.0), total)), 0.0,
                                  ignition=False, waybill=wid, driving=0.0, rng=rng))
    out.append(dept.waybill_event(end, wid, v, "finished", route, window, 25.0))
    return out


def _distance_to(route: list[Point], point: Point) -> float:
    best, where, done = math.inf, 0.0, 0.0
    step = 50.0
    total = length(route)
    while done <= total:
        gap = metres(along(route, done), point)
        if gap < best:
            best, where = gap, done
        done += step
    return where


def _aside(dept: Hazchem, route: list[Point], d: float, m: float) -> Point:
    """A point ``m`` metres to one side of the route at ``d`` (perpendicular to it), clear of
    restricted zones and at least 0.8·m from every part of the route."""
    p, q = along(route, d), along(route, d + 50)
    north, east = (q[0] - p[0]) * 111_320, (q[1] - p[1]) * 111_320 * math.cos(math.radians(p[0]))
    norm = math.hypot(north, east) or 1.0
    for side in (1, -1):
        candidate = offset(p, side * m * north / norm, -side * m * east / norm)
        clear = min(distance_to_segment_m(candidate, a, b) for a, b in itertools.pairwise(route))
        if clear >= 0.8 * m and not dept.ctx.city.inside_any(
                candidate, ("city_centre", "school", "water_source")):
            return candidate
    return offset(p, side * m * north / norm, -side * m * east / norm)


def _roadside(dept: Hazchem, route: list[Point], d: float) -> Point:
    for k in range(40):
        p = along(route, d + 200 * k)
        if not _near(p, ("tourism_site", "hospital", "city_centre", "school", "water_source",
                         "facility", "parking"), 500, dept):
            return offset(p, 15, 0)
    return along(route, d)
