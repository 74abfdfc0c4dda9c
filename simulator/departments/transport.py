"""Transport: road-segment detectors and coach, bus and school-bus telemetry.

Background:
- 30 road segments (free flow 50–100 km/h) report speed, flow and occupancy every 2 minutes;
  flow follows the traffic rhythm (morning and evening peaks, lighter weekends and holidays),
  speed falls a little as the road fills but stays well above 30% of free flow; two segments
  are closed for works all day (closed, a few works vehicles, no speed); detectors drop out now
  and then for 4–8 minutes (under the 10-minute offline limit).
- 16 long-distance coaches make one or two trips a day between 05:30 and 01:30, reporting every
  minute at 75–96 km/h with fewer passengers than seats.
- 5 bus lines of 15 stops, 5 buses each every 10 minutes from 06:00 to 22:00, send a record at
  each stop (line_id, stop_id), 150 s ± 20 s apart.
- 8 school buses (two on each of the 4 route corridors of the reference data) run their route
  07:00–07:40 and 16:30–17:10, a position a minute, inside the corridor.

Incidents (one kind per transport model; dedicated vehicle ids for the vehicle models):
congestion (speed sinks over 12 minutes to ~20% of free flow for half an hour), a sudden speed
drop (from free flow to ~15% within 2 minutes, cleared 8 minutes later), a flow surge (2.5×
for 6 minutes), a closed segment carrying traffic, a silent detector (25 minutes), a speeding
coach (104–112 km/h for 5 minutes), a coach driving between 02:00 and 05:00, an overcrowded
coach, a school bus leaving its corridor for 6 minutes, and two buses of a line reaching one
stop 60–90 s apart (the dispatcher then holds the second bus).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from simulator.base import Department, Envelope, Incident, diurnal, every
from simulator.city import LAT0, LAT1, LON0, LON1, offset

ROAD = "events.transport.road"
COACH = "events.transport.coach"

ROAD_PERIOD = 120.0
N_SEGMENTS = 30
CLOSED_SEGMENTS = ("RS-029", "RS-030")
N_COACHES = 16
LINES = ("L01", "L02", "L03", "L04", "L05")
STOPS = 15
BUSES_PER_LINE = 5
HEADWAY = 600.0
STOP_GAP = 150.0
SCHOOL_ROUTES = {  # corridor centre lines of rules/reference/transport_school_bus_routes.yaml
    "R1": (30.300, 120.050, 120.150), "R2": (30.220, 120.250, 120.350),
    "R3": (30.350, 120.300, 120.400), "R4": (30.180, 120.050, 120.150)}

MODELS = ("transport.road.congestion", "transport.road.sudden_speed_drop",
          "transport.road.flow_anomaly", "transport.road.closed_flow",
          "transport.road.sensor_offline", "transport.coach.overspeed",
          "transport.coach.night_driving", "transport.coach.overcrowded",
          "transport.school_bus.off_route", "transport.bus.bunching")


class Transport(Department):
    name = "transport"
    topics = (ROAD, COACH)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("transport/entities")
        self.segments: dict[str, dict[str, float]] = {}
        for i in range(1, N_SEGMENTS + 1):
            ff = rng.choice((50.0, 60.0, 60.0, 80.0, 80.0, 100.0))
            self.segments[f"RS-{i:03d}"] = {
                "ff": ff, "base": rng.uniform(500, 2200), "phase": rng.uniform(0, ROAD_PERIOD)}
        self.coaches = []
        for i in range(1, N_COACHES + 1):
            self.coaches.append({"id": f"CO-{i:03d}", "plate": f"浙A{rng.randint(10000, 99999)}K",
                                 "rated": rng.choice((45, 49, 53, 55)),
                                 "driver": f"DR-{rng.randint(1000, 9999)}",
                                 "phase": rng.uniform(0, 60)})
        self.school_buses = []
        for i, route in enumerate(sorted(SCHOOL_ROUTES) * 2):
            self.school_buses.append({"id": f"SB-{i + 1:03d}", "route": route,
                                      "plate": f"浙A{rng.randint(10000, 99999)}X",
                                      "rated": rng.choice((35, 41, 49)),
                                      "phase": rng.uniform(0, 60),
                                      "lag": 600.0 * (i // len(SCHOOL_ROUTES))})
        self.lines = {}
        for line in LINES:
            lat, lon = rng.uniform(LAT0 + 0.03, LAT1 - 0.03), rng.uniform(LON0 + 0.05, LON1 - 0.1)
            heading = rng.uniform(0, 2 * math.pi)
            self.lines[line] = [offset((lat, lon), 500 * k * math.cos(heading),
                                       500 * k * math.sin(heading)) for k in range(STOPS)]

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[Incident]:
        ctx = self.ctx
        out: list[Incident] = []
        # each road incident gets a segment of its own (none shares a segment with another)
        pool = [s for s in self.segments if s not in CLOSED_SEGMENTS]
        ctx.rng("transport/plan/segments").shuffle(pool)
        self._free_segments = pool
        for model in MODELS:
            rng = ctx.rng(f"transport/plan/{model}")
            starts = self._night_starts(rng) if model.endswith("night_driving") else \
                [self._daytime(t) for t in ctx.incident_times(rng)]
            for n, start in enumerate(starts):
                if start >= ctx.end - 1800:
                    continue
                out.append(self._incident(model, n, start, rng))
        return out

    def _daytime(self, ts: float) -> float:
        """Move a start out of 01:00–06:00 (coaches rest then; roads are empty)."""
        hour = self.ctx.local(ts).hour
        return ts + (6 - hour) * 3600 if 1 <= hour < 6 else ts

    def _night_starts(self, rng: random.Random) -> list[float]:
        """Starts between 02:10 and 04:30 local time, on days of the run where they fit."""
        ctx = self.ctx
        day = ctx.local(ctx.start).replace(hour=2, minute=10, second=0, microsecond=0)
        windows = []
        while day.timestamp() < ctx.end:
            ts = day.timestamp()
            if ts >= ctx.start and ts + 8400 + 1800 <= ctx.end:
                windows.append(ts)
            day += timedelta(days=1)
        rng.shuffle(windows)
        return sorted(w + rng.uniform(0, 8400) for w in windows[:ctx.incidents_per_model])

    def _incident(self, model: str, n: int, start: float, rng: random.Random) -> Incident:
        short = model.rsplit(".", 1)[-1]
        iid = self.incident_id(model, n)
        if model.startswith("transport.road"):
            free = self._free_segments
            fits = [s for s in free if short != "sudden_speed_drop" or self.segments[s]["ff"] >= 60]
            seg = fits[0] if fits else rng.choice(sorted(self.segments)[:-len(CLOSED_SEGMENTS)])
            if seg in free:
                free.remove(seg)
            ends = {"congestion": 720 + 600, "sudden_speed_drop": 120, "flow_anomaly": 360,
                    "closed_flow": 300, "sensor_offline": 600}
            spans = {"congestion": 720 + 1800 + 600, "sudden_speed_drop": 600,
                     "flow_anomaly": 360, "closed_flow": 1500, "sensor_offline": 1500}
            notes = {"congestion": "speed sinks to ~20% of free flow for 30 min",
                     "sudden_speed_drop": "free flow to ~15% within 2 min (crash)",
                     "flow_anomaly": "flow 2.5x for 6 min (diverted traffic)",
                     "closed_flow": "segment marked closed still carries ~50% of its traffic",
                     "sensor_offline": "detector silent for 25 min"}
            return Incident(iid, model, seg, start, start + ends[short], self.name, notes[short],
                            {"segment": seg, "span": spans[short]})
        if short == "bunching":
            line = rng.choice(LINES)
            stop = rng.randrange(2, STOPS - 2)
            gap = rng.uniform(60, 90)
            # midway between two scheduled buses (they call at stop s at s*150 s mod 600 s)
            start -= (start - stop * STOP_GAP - HEADWAY / 2) % HEADWAY
            return Incident(iid, model, f"{line}-S{stop:02d}", start, start + gap, self.name,
                            f"two buses of {line} at stop {stop} {gap:.0f} s apart",
                            {"line": line, "stop": stop, "gap": gap})
        if short == "off_route":
            route = rng.choice(sorted(SCHOOL_ROUTES))
            vid = f"SB-X{n:02d}"
            # the bus drives its corridor for 10 min, then 6 min about 800 m north of it
            return Incident(iid, model, vid, start + 600, start + 600 + 120, self.name,
                            f"school bus leaves corridor {route} for 6 min",
                            {"route": route, "trip_start": start, "plate": f"浙A{90000 + n}X"})
        vid = f"CO-X{MODELS.index(model)}{n:02d}"
        rated = rng.choice((45, 49, 53))
        ends = {"overspeed": 60, "night_driving": 300, "overcrowded": 120}
        notes = {"overspeed": "coach at 104-112 km/h for 5 min",
                 "night_driving": "coach driving on between 02:00 and 05:00",
                 "overcrowded": "coach carries 3-6 passengers more than rated"}
        return Incident(iid, model, vid, start, start + ends[short], self.name, notes[short],
                        {"rated": rated, "extra_pax": rng.randint(3, 6),
                         "plate": f"浙A{80000 + MODELS.index(model) * 100 + n}K",
                         "origin": (rng.uniform(30.2, 30.35), rng.uniform(120.05, 120.3))})

    # ---------------------------------------------------------------- events
    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        mine = [i for i in incidents if i.department == self.name]
        yield from self._roads(t0, t1, mine)
        yield from self._coaches(t0, t1)
        yield from self._buses(t0, t1)
        yield from self._school_buses(t0, t1)
        for incident in mine:
            for env in self._incident_events(incident):
                if t0 <= env.ts < t1:
                    yield env

    def _road(self, ts: float, seg: str, speed: float | None, flow: float,
              closed: bool = False) -> Envelope:
        info = self.segments[seg]
        occupancy = min(95.0, flow / (info["base"] * 2.2) * 40 + (0 if speed is None else
                                                                  max(0.0, 60 - speed) * 0.4))
        value: dict[str, Any] = {
            "event_id": f"{seg}-{int(ts)}", "ts": self.ctx.iso(ts), "source": "tocc",
            "segment_id": seg, "flow_vph": round(flow, 0), "occupancy_pct": round(occupancy, 1),
            "free_flow_kmh": info["ff"]}
        typical = info["base"] * diurnal(ts, self.ctx, "traffic")
        if typical > 0 and seg not in CLOSED_SEGMENTS:
            value["flow_pct_typical"] = round(100 * flow / typical, 1)
        if speed is not None:
            value["speed_kmh"] = round(speed, 1)
        if closed or seg in CLOSED_SEGMENTS:
            value["closed"] = True
        return Envelope(ts, ROAD, seg, value)

    def _normal(self, seg: str, ts: float, rng: random.Random) -> tuple[float, float]:
        info = self.segments[seg]
        d = diurnal(ts, self.ctx, "traffic")
        flow = max(0.0, info["base"] * d * (1 + rng.gauss(0, 0.05)))
        load = min(0.9, flow / (info["base"] * 2.2))
        speed = info["ff"] * (1 - 0.5 * load ** 3) * (1 + rng.gauss(0, 0.03))
        return speed, flow

    def _roads(self, t0: float, t1: float, incidents: list[Incident]) -> Iterator[Envelope]:
        busy = {}
        for inc in incidents:
            if inc.model_id.startswith("transport.road"):
                busy.setdefault(inc.key, []).append((inc.start - 1, inc.start + inc.extra["span"]))
        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour, "road")
            for seg, info in self.segments.items():
                gap_at = rng.uniform(hour, hour + 3600) if rng.random() < 0.03 else None
                gap_len = rng.uniform(240, 480)
                for ts in every(hour, hour + 3600, ROAD_PERIOD, info["phase"]):
                    speed, flow = self._normal(seg, ts, rng)
                    if not t0 <= ts < t1:
                        continue
                    if gap_at is not None and gap_at <= ts < gap_at + gap_len:
                        continue
                    if any(a <= ts < b for a, b in busy.get(seg, ())):
                        continue
                    if seg in CLOSED_SEGMENTS:
                        yield self._road(ts, seg, None, rng.choice((0, 0, 0, 5, 10, 15)))
                    else:
                        yield self._road(ts, seg, speed, flow)

    def _incident_events(self, inc: Incident) -> Iterator[Envelope]:
        rng = self.ctx.rng(f"transport/incident/{inc.incident_id}")
        short = inc.model_id.rsplit(".", 1)[-1]
        if inc.model_id.startswith("transport.road"):
            seg = inc.key
            info = self.segments[seg]
            ff = info["ff"]
            for ts in every(inc.start - 1, inc.start + inc.extra["span"], ROAD_PERIOD,
                            info["phase"]):
                speed, flow = self._normal(seg, ts, rng)
                dt = ts - inc.start
                closed = False
                if short == "congestion":
                    jam = min(1.0, dt / 720) if dt < 720 + 1800 else \
                        max(0.0, 1 - (dt - 720 - 1800) / 600)
                    speed = speed * (1 - jam) + ff * 0.2 * (1 + rng.gauss(0, 0.05)) * jam
                    flow *= 1 - 0.3 * jam
                elif short == "sudden_speed_drop":
                    if dt < 480:
                        speed = ff * 0.15 * (1 + rng.gauss(0, 0.05))
                        flow *= 0.8
                    speed = max(speed, 1.0)
                    speed = speed if dt >= 0 else ff * 0.9
                elif short == "flow_anomaly":
                    flow *= 2.5
                elif short == "closed_flow":
                    closed = True
                    flow = max(200.0, flow * 0.5)
                elif short == "sensor_offline":
                    continue
                yield self._road(ts, seg, speed, flow, closed)
            return
        if short == "bunching":
            line, stop, gap = inc.extra["line"], inc.extra["stop"], inc.extra["gap"]
            tag = inc.incident_id.rsplit("-", 1)[-1]
            yield self._bus(inc.start, f"BUS-{line}-X{tag}A", line, stop, rng.uniform(0, 15))
            yield self._bus(inc.start + gap, f"BUS-{line}-X{tag}B", line, stop,
                            rng.uniform(0, 15))
            return
        if short == "off_route":
            route = inc.extra["route"]
            lat, lon0, lon1 = SCHOOL_ROUTES[route]
            begin = inc.extra["trip_start"]
            for ts in every(begin, begin + 1800, 60.0):
                frac = (ts - begin) / 1800
                lon = lon0 + (lon1 - lon0) * frac
                off = 0.0072 if inc.start <= ts < inc.start + 360 else 0.0
                yield self._coach(ts, inc.key, "school_bus", inc.extra["plate"],
                                  lat + off + rng.gauss(0, 0.0002), lon, rng.uniform(30, 45),
                                  25, 41, "DR-SBX", route_id=route)
            return
        extra = inc.extra
        lat, lon = extra["origin"]
        pax = extra["rated"] - 5
        dur = 1800 if short != "night_driving" else 1500
        begin = inc.start - (600 if short != "night_driving" else 0)
        for ts in every(begin, begin + dur, 60.0):
            dt = ts - inc.start
            speed = rng.uniform(80, 92)
            passengers = pax
            if short == "overspeed" and 0 <= dt < 300:
                speed = rng.uniform(104, 112)
            if short == "overcrowded" and 0 <= dt < 900:
                passengers = extra["rated"] + extra["extra_pax"]
            p = offset((lat, lon), (ts - begin) * 23.0, 0.0)
            yield self._coach(ts, inc.key, "coach", extra["plate"], p[0], p[1], speed,
                              passengers, extra["rated"], "DR-X")

    def _coach(self, ts: float, vid: str, category: str, plate: str, lat: float, lon: float,
               speed: float, passengers: int, rated: int, driver: str,
               **more: Any) -> Envelope:
        value = {"event_id": f"{vid}-{int(ts)}", "ts": self.ctx.iso(ts), "source": "coach_gps",
                 "vehicle_id": vid, "plate": plate, "category": category,
                 "lat": round(min(LAT1 + 0.2, max(LAT0 - 0.2, lat)), 6),
                 "lon": round(min(LON1 + 0.3, max(LON0 - 0.3, lon)), 6),
                 "speed_kmh": round(max(0.0, speed), 1), "passengers": passengers,
                 "rated_passengers": rated, "driver_id": driver} | more
        return Envelope(ts, COACH, vid, value)

    def _bus(self, ts: float, vid: str, line: str, stop: int, extra: float) -> Envelope:
        lat, lon = self.lines[line][stop]
        d = diurnal(ts, self.ctx, "traffic")
        plate = f"浙A{zlib.crc32(vid.encode()) % 90000 + 10000}B"
        pax = min(76, int(25 * d + extra))
        return self._coach(ts, vid, "bus", plate, lat, lon, 0.0, pax, 80, "DR-BUS",
                           line_id=line, stop_id=f"{line}-S{stop:02d}")

    def _coaches(self, t0: float, t1: float) -> Iterator[Envelope]:
        for hour in self.source_hours(t0, t1, lookback=21 * 3600):
            local = self.ctx.local(hour)
            if local.hour != 5:  # a day's trips are drawn at 05:00
                continue
            rng = self.slice_rng(hour, "coach")
            for coach in self.coaches:
                begin = hour + 1800 + rng.uniform(0, 10 * 3600)
                for _trip in range(rng.choice((1, 1, 2))):
                    dur = rng.uniform(2, 6) * 3600
                    # every trip is over by 01:30 (coaches rest 02:00-05:00)
                    dur = min(dur, hour + 20.5 * 3600 - begin)
                    if dur < 1800:
                        break
                    lat, lon = rng.uniform(30.2, 30.35), rng.uniform(120.05, 120.3)
                    heading = rng.uniform(0, 2 * math.pi)
                    pax = rng.randint(10, coach["rated"])
                    trip_rng = random.Random(rng.random())
                    for ts in every(begin, begin + dur, 60.0, coach["phase"]):
                        speed = min(96.0, trip_rng.gauss(86, 4))
                        if trip_rng.random() < 0.05:
                            speed = trip_rng.uniform(0, 30)  # toll gate, service area
                        if not t0 <= ts < t1:
                            continue
                        dist = (ts - begin) * 24.0
                        p = offset((lat, lon), dist * math.cos(heading) % 30000,
                                   dist * math.sin(heading) % 20000)
                        yield self._coach(ts, coach["id"], "coach", coach["plate"], p[0], p[1],
                                          speed, pax, coach["rated"], coach["driver"])
                    begin += dur + rng.uniform(1800, 7200)

    def _buses(self, t0: float, t1: float) -> Iterator[Envelope]:
        for hour in self.source_hours(t0, t1, lookback=3600):
            local = self.ctx.local(hour)
            if not 6 <= local.hour < 22:
                continue
            rng = self.slice_rng(hour, "bus")
            for line in LINES:
                for trip_start in every(hour, hour + 3600, HEADWAY):
                    vid = f"BUS-{line}-{int(trip_start // HEADWAY) % BUSES_PER_LINE + 1}"
                    for s in range(STOPS):
                        ts = trip_start + s * STOP_GAP + rng.uniform(-20, 20)
                        extra = rng.uniform(0, 15)
                        if t0 <= ts < t1:
                            yield self._bus(ts, vid, line, s, extra)

    def _school_buses(self, t0: float, t1: float) -> Iterator[Envelope]:
        for hour in self.source_hours(t0, t1):
            local = self.ctx.local(hour)
            if local.hour not in (7, 16):
                continue
            rng = self.slice_rng(hour, "school_bus")
            for bus in self.school_buses:
                lat, lon0, lon1 = SCHOOL_ROUTES[bus["route"]]
                begin = hour + (0 if local.hour == 7 else 1800) + bus["lag"] / 4
                pupils = rng.randint(15, bus["rated"])
                for ts in every(begin, begin + 2400, 60.0, bus["phase"]):
                    frac = (ts - begin) / 2400
                    lon = lon0 + (lon1 - lon0) * (frac if local.hour == 7 else 1 - frac)
                    jitter, speed = rng.gauss(0, 0.0002), rng.uniform(25, 50)
                    if t0 <= ts < t1:
                        yield self._coach(ts, bus["id"], "school_bus", bus["plate"],
                                          lat + jitter, lon, speed,
                                          pupils, bus["rated"], f"DR-{bus['id']}",
                                          route_id=bus["route"])
