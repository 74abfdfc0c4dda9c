"""Emergency reports: building fire alarms, weather warnings, rain gauges and flood gauges.

Background: about 300 buildings with automatic fire alarm systems raise a few alarms an hour
(mostly false: dust, steam, faulty detectors), each confirmed or dismissed by the building's
control room within 30-150 s; 40 rain gauges send their rolling hourly rainfall every 5 minutes
(dry most days, light to moderate rain — never near 50 mm/h — on some, decided per day); 12
river and lake gauges send their level every 10 minutes, 1-2.5 m under their warning level,
with a slow daily swing; the meteorological bureau issues an ordinary yellow warning (heat,
gale, fog) on some days and lifts it hours later.
Incidents, one kind per model:
``emergency.fire.alarm_cluster`` — 2-3 alarms in one building within 2 min, then confirmed;
``emergency.fire.alarm_unconfirmed`` — an alarm confirmed only 4-10 min later;
``emergency.weather.red_rainstorm_warning`` — a rainstorm warning issued at red, lowered later;
``emergency.rain.heavy_rainfall`` — a storm cell over a gauge, the hourly total peaking 55-80 mm;
``emergency.flood.gauge_over_warning`` — a gauge rising over 3 h to 0.1-0.5 m above warning;
``emergency.weather.warning_raised`` — a yellow warning raised to orange 1-3 h after issue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from simulator.base import (
    Department,
    Envelope,
    Incident,
    SimContext,
    arrivals,
    diurnal,
    every,
)

TOPIC = "events.emergency.report"
LEVELS = {"blue": 1, "yellow": 2, "orange": 3, "red": 4, "lifted": 0}
DAY = 86400.0


class Emergency(Department):
    name = "emergency"
    topics = (TOPIC,)

    def __init__(self, ctx: SimContext) -> None:
        super().__init__(ctx)
        rng = ctx.rng("emergency/entities")
        city = ctx.city
        grids = city.grids
        self.buildings = []
        for n in range(300):
            grid = rng.choice(grids)
            lat, lon = city.random_point(rng, grid)
            self.buildings.append((f"B-{n:04d}", grid, lat, lon))
        self.gauges = []
        for n in range(40):
            grid = rng.choice(grids)
            self.gauges.append((f"RG-{n:02d}", grid, *city.random_point(rng, grid),
                                rng.uniform(0.6, 1.4)))
        self.flood = []
        for n in range(12):
            grid = rng.choice(grids)
            warning = round(rng.uniform(3.5, 6.5), 2)
            self.flood.append((f"FG-{n:02d}", grid, *city.random_point(rng, grid), warning,
                               warning - rng.uniform(1.0, 2.5), rng.uniform(0, 2 * math.pi)))

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[Incident]:
        out: list[Incident] = []
        ctx = self.ctx

        def add(model: str, n: int, key: str, start: float, end: float, note: str,
                in_grid: str | None = None, **extra: object) -> None:
            out.append(Incident(self.incident_id(model, n), model, key, start, end,
                                self.name, note, dict(extra), in_grid))

        rng = ctx.rng("emergency/plan/cluster")
        for n, start in enumerate(ctx.incident_times(rng)):
            b = self.buildings[rng.randrange(len(self.buildings))]
            # further alarms within 2 min; the control room confirms within 3 min of the first
            gaps = sorted(rng.uniform(20, 120) for _ in range(rng.choice((1, 2))))
            add("emergency.fire.alarm_cluster", n, b[0], start, start + gaps[0],
                "fire alarms cluster in a building", building=b, gaps=gaps,
                confirm=gaps[-1] + rng.uniform(20, 50))
        rng = ctx.rng("emergency/plan/unconfirmed")
        for n, start in enumerate(ctx.incident_times(rng)):
            b = self.buildings[rng.randrange(len(self.buildings))]
            add("emergency.fire.alarm_unconfirmed", n, b[0], start, start + 180,
                "fire alarm not confirmed within 3 min", building=b,
                confirm=rng.uniform(240, 600))
        rng = ctx.rng("emergency/plan/red")
        for n, start in enumerate(ctx.incident_times(rng)):
            grid = rng.choice(self.ctx.city.grids)
            add("emergency.weather.red_rainstorm_warning", n, f"WW-R{n:03d}", start, start,
                "red rainstorm warning issued", in_grid=grid, grid=grid,
                lower=rng.uniform(3, 6) * 3600)
        rng = ctx.rng("emergency/plan/rain")
        for n, start in enumerate(ctx.incident_times(rng, lead=2 * 3600)):
            g = self.gauges[n % len(self.gauges)]
            peak, rise = rng.uniform(55, 80), rng.uniform(1800, 3600)
            # the hourly total passes 50 mm when the rise has reached 50/peak of its way
            cross = start + rise * math.asin(50 / peak) * 2 / math.pi
            add("emergency.rain.heavy_rainfall", n, g[0], start, cross + 300,
                "rainfall of 50 mm/h or more at a gauge", peak=peak, rise=rise)
        rng = ctx.rng("emergency/plan/flood")
        for n, start in enumerate(ctx.incident_times(rng, lead=2 * 3600, tail=4 * 3600)):
            f = self.flood[n % len(self.flood)]
            over, rise = rng.uniform(0.1, 0.5), rng.uniform(2, 4) * 3600
            add("emergency.flood.gauge_over_warning", n, f[0], start, start + rise + 600,
                "flood gauge over its warning level", over=over, rise=rise)
        rng = ctx.rng("emergency/plan/raised")
        for n, start in enumerate(ctx.incident_times(rng, tail=4 * 3600)):
            grid = rng.choice(self.ctx.city.grids)
            after = rng.uniform(1, 3) * 3600
            add("emergency.weather.warning_raised", n, f"WW-U{n:03d}", start, start + after,
                "weather warning level raised", grid=grid, after=after,
                hazard=rng.choice(("rainstorm", "typhoon", "gale")),
                lift=after + rng.uniform(2, 5) * 3600)
        return out

    # ---------------------------------------------------------------- events
    def _report(self, ts: float, report_id: str, kind: str, **fields: object) -> Envelope:
        value = {"event_id": f"{report_id}-{kind}-{int(ts * 1000)}", "ts": self.ctx.iso(ts),
                 "source": "emergency", "report_id": report_id, "kind": kind}
        value.update({k: v for k, v in fields.items() if v is not None})
        return Envelope(ts, TOPIC, report_id, value)

    def _alarm(self, ts: float, building: tuple, n: int, kind: str = "fire_alarm") -> Envelope:
        bid, grid, lat, lon = building
        return self._report(ts, f"FA-{bid}-{int(ts)}-{n}", kind, building_id=bid, grid_id=grid,
                            lat=round(lat, 6), lon=round(lon, 6))

    def _warning(self, ts: float, wid: str, grid: str, hazard: str, level: str) -> Envelope:
        lat, lon = self.ctx.city.grid_center(grid)
        return self._report(ts, wid, "weather_warning", hazard=hazard, level=level,
                            value=float(LEVELS[level]), grid_id=grid, lat=round(lat, 6),
                            lon=round(lon, 6))

    def _day_rain(self, ts: float) -> float:
        """The day's background rain intensity (mm/h at an average gauge, 0 on dry days)."""
        day = int((ts - self.ctx.start) // DAY)
        rng = self.ctx.rng(f"emergency/rainday/{day}")
        return 0.0 if rng.random() < 0.6 else rng.uniform(2, 18)

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        yield from self._fire_background(t0, t1)
        yield from self._gauges(t0, t1, incidents)
        yield from self._warnings_background(t0, t1)
        for incident in incidents:
            yield from self._incident(incident)

    def _fire_background(self, t0: float, t1: float) -> Iterator[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1, lookback=300):
            rng = self.slice_rng(hour, "fire")
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 4 * ctx.rate,
                                            lambda t: diurnal(t, ctx, "activity"))):
                building = self.buildings[rng.randrange(len(self.buildings))]
                yield self._alarm(ts, building, n)
                yield self._alarm(ts + rng.uniform(30, 150), building, n, "fire_confirmed")

    def _warnings_background(self, t0: float, t1: float) -> Iterator[Envelope]:
        day0 = int((t0 - self.ctx.start) // DAY)
        day1 = int((t1 - self.ctx.start) // DAY)
        for day in range(max(0, day0 - 1), day1 + 1):
            rng = self.ctx.rng(f"emergency/warnday/{day}")
            if rng.random() < 0.5:
                continue
            issue = self.ctx.start + day * DAY + rng.uniform(0, DAY)
            lift = issue + rng.uniform(3, 12) * 3600
            wid, grid = f"WW-B{day:04d}", rng.choice(self.ctx.city.grids)
            hazard = rng.choice(("heat", "gale", "fog"))
            for ts, level in ((issue, "yellow"), (lift, "lifted")):
                if t0 <= ts < t1:
                    yield self._warning(ts, wid, grid, hazard, level)

    def _storm(self, gauge: str, ts: float, incidents: list[Incident]) -> float:
        extra = 0.0
        for i in incidents:
            if i.model_id == "emergency.rain.heavy_rainfall" and i.key == gauge:
                rise = i.extra["rise"]
                if i.start <= ts <= i.start + 2 * rise:
                    extra += i.extra["peak"] * math.sin(math.pi / 2 * (ts - i.start) / rise)
        return max(0.0, extra)

    def _flood_rise(self, gauge: str, ts: float, incidents: list[Incident],
                    need: float) -> float:
        extra = 0.0
        for i in incidents:
            if i.model_id == "emergency.flood.gauge_over_warning" and i.key == gauge:
                rise = i.extra["rise"]
                if i.start <= ts <= i.start + 3 * rise:
                    phase = (ts - i.start) / rise
                    shape = phase if phase <= 1 else max(0.0, 1 - (phase - 1) / 2)
                    extra += (need + i.extra["over"]) * shape
        return extra

    def _gauges(self, t0: float, t1: float, incidents: list[Incident]) -> Iterator[Envelope]:
        for hour in self.source_hours(t0, t1):
            yield from (e for e in self._gauge_hour(hour, incidents) if t0 <= e.ts < t1)

    def _gauge_hour(self, hour: float, incidents: list[Incident]) -> Iterator[Envelope]:
        t0, t1 = hour, hour + 3600
        rng = self.slice_rng(hour, "gauges")
        base = self._day_rain(hour)
        for gid, grid, lat, lon, factor in self.gauges:
            for ts in every(t0, t1, 300, self.ctx.start):
                wave = 0.5 + 0.5 * math.sin(2 * math.pi * (ts - self.ctx.start) / 21600 + factor)
                mm = base * factor * wave * rng.uniform(0.8, 1.2) + self._storm(gid, ts, incidents)
                yield self._report(ts, f"{gid}-{int(ts)}", "rainfall", gauge_id=gid, grid_id=grid,
                                   lat=round(lat, 6), lon=round(lon, 6), value=round(mm, 1))
        for gid, grid, lat, lon, warning, normal, phase in self.flood:
            for ts in every(t0, t1, 600, self.ctx.start):
                local = self.ctx.local(ts)
                swing = 0.15 * math.sin(2 * math.pi * (local.hour + local.minute / 60) / 24 + phase)
                level = normal + swing + rng.gauss(0, 0.01)
                level += self._flood_rise(gid, ts, incidents, warning - normal)
                yield self._report(ts, f"{gid}-{int(ts)}", "flood_gauge", gauge_id=gid,
                                   grid_id=grid, lat=round(lat, 6), lon=round(lon, 6),
                                   value=round(level, 2), warning_level=warning)

    def _incident(self, i: Incident) -> Iterator[Envelope]:
        x = i.extra
        if i.model_id == "emergency.fire.alarm_cluster":
            yield self._alarm(i.start, x["building"], 90)
            for n, gap in enumerate(x["gaps"]):
                yield self._alarm(i.start + gap, x["building"], 91 + n)
            yield self._alarm(i.start + x["confirm"], x["building"], 95, "fire_confirmed")
        elif i.model_id == "emergency.fire.alarm_unconfirmed":
            yield self._alarm(i.start, x["building"], 80)
            yield self._alarm(i.start + x["confirm"], x["building"], 81, "fire_confirmed")
        elif i.model_id == "emergency.weather.red_rainstorm_warning":
            yield self._warning(i.start, i.key, x["grid"], "rainstorm", "red")
            yield self._warning(i.start + x["lower"], i.key, x["grid"], "rainstorm", "orange")
        elif i.model_id == "emergency.weather.warning_raised":
            yield self._warning(i.start, i.key, x["grid"], x["hazard"], "yellow")
            yield self._warning(i.start + x["after"], i.key, x["grid"], x["hazard"], "orange")
            yield self._warning(i.start + x["lift"], i.key, x["grid"], x["hazard"], "lifted")
