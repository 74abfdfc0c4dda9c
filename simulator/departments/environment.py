"""Environment monitoring: air stations, water sections, construction-site noise, enterprise CEMS.

Background: 12 air stations send PM2.5 every 10 minutes and the hourly AQI (from the hour's
PM2.5, HJ 633 breakpoints); the city's PM2.5 level changes from day to day (15-55 µg/m³) with
morning and evening peaks. 6 water sections send ammonia nitrogen, COD and the resulting class
(GB 3838) every hour, normally within their target class III. 8 construction sites' boundary
noise monitors send 5-minute levels: 60-68 dB(A) while working (07:00-19:00, less on Sundays),
45-50 dB(A) otherwise. 8 enterprises each have SO2 and NOx analysers (CEMS) reporting every
minute at 40-70% of their permit limit. Stations drop out now and then for 10-40 minutes
(shorter than the 2-hour offline timeout). ``ctx.rate`` scales the number of stations.

Incidents: one kind per model of ``rules/environment``: a slow build-up of heavy pollution at an
air station, a PM2.5 plume (a fire nearby), an enterprise over its permit for 90 minutes, a
monitor sending one constant value, a COD pollution lasting hours at a section (class drop),
a two-hour ammonia-nitrogen pulse, night work at a construction site, a station going silent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from simulator.base import Department, Envelope, Incident, every

TOPIC = "events.environment.station"
PM25_BREAKS = [(0, 35, 0, 50), (35, 75, 50, 100), (75, 115, 100, 150), (115, 150, 150, 200),
               (150, 250, 200, 300), (250, 350, 300, 400), (350, 500, 400, 500)]


def aqi_of_pm25(pm25: float) -> float:
    for lo, hi, alo, ahi in PM25_BREAKS:
        if pm25 <= hi:
            return alo + (ahi - alo) * (max(pm25, lo) - lo) / (hi - lo)
    return 500.0


def wq_class(nh3n: float, cod: float) -> int:
    """GB 3838-2002 class (1-5; 6 worse than V) from ammonia nitrogen and COD."""
    by_n = next((c for c, lim in ((1, 0.15), (2, 0.5), (3, 1.0), (4, 1.5), (5, 2.0))
                 if nh3n <= lim), 6)
    by_cod = next((c for c, lim in ((2, 15), (3, 20), (4, 30), (5, 40)) if cod <= lim), 6)
    return max(by_n, by_cod)


@dataclass
class Station:
    sid: str
    kind: str
    grid: str
    phase: float
    base: float
    enterprise: str | None = None
    metric: str | None = None
    limit: float | None = None
    base2: float = 0.0


class Environment(Department):
    name = "environment"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("environment/entities")
        grids = ctx.city.grids

        def scale(n: int) -> int:  # ctx.rate scales the number of stations
            return max(1, round(n * ctx.rate))

        self.stations: list[Station] = []
        for i in range(scale(12)):
            self.stations.append(Station(f"AQ-{i + 1:02d}", "air", rng.choice(grids),
                                         rng.uniform(0, 600), rng.uniform(0.85, 1.15)))
        for i in range(scale(6)):
            self.stations.append(Station(f"WQ-{i + 1:02d}", "water", rng.choice(grids),
                                         rng.uniform(0, 3600), rng.uniform(0.3, 0.55),
                                         base2=rng.uniform(11, 16)))
        for i in range(scale(8)):
            self.stations.append(Station(f"NS-{i + 1:02d}", "noise", rng.choice(grids),
                                         rng.uniform(0, 300), rng.uniform(45, 49),
                                         enterprise=f"SITE-{i + 1:02d}",
                                         base2=rng.uniform(60, 66)))
        for i in range(scale(8)):
            grid = rng.choice(grids)
            for metric, limit in (("so2", rng.choice([35, 50])), ("nox", rng.choice([50, 100]))):
                self.stations.append(Station(
                    f"CEMS-E{i + 1:02d}-{metric.upper()}", "emission", grid, rng.uniform(0, 60),
                    limit * rng.uniform(0.4, 0.7), enterprise=f"ENT-{i + 1:02d}",
                    metric=metric, limit=float(limit)))
        self.by_id = {s.sid: s for s in self.stations}
        self._effects: dict[str, list[Incident]] = {}

    # -- incidents ------------------------------------------------------------------------

    def plan(self) -> list[Incident]:
        ctx = self.ctx
        rng = ctx.rng("environment/plan")
        out: list[Incident] = []
        used: set[str] = set()

        def pick(kind: str) -> Station:
            pool = [s for s in self.stations if s.kind == kind]
            free = [s for s in pool if s.sid not in used] or pool
            s = rng.choice(free)
            used.add(s.sid)
            return s

        def add(model: str, n: int, s: Station, start: float, end: float, note: str,
                **extra: Any) -> None:
            out.append(Incident(self.incident_id(f"environment.{model}", n),
                                f"environment.{model}", s.sid, start, end, self.name, note,
                                extra))

        for n, t in enumerate(ctx.incident_times(rng, tail=7 * 3600)):
            add("air.aqi_heavy", n, pick("air"), t, t + 6 * 3600,
                "heavy pollution building up over hours", peak=rng.uniform(175, 220))
        for n, t in enumerate(ctx.incident_times(rng)):
            add("air.pm25_jump", n, pick("air"), t, t + 1800, "smoke plume from a fire nearby",
                jump=rng.uniform(85, 100))
        for n, t in enumerate(ctx.incident_times(rng)):
            add("emission.over_permit", n, pick("emission"), t, t + 3900,
                "denitrification unit out of service", factor=rng.uniform(1.3, 2.0))
        for n, t in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            add("emission.monitor_flatline", n, pick("emission"), t, t + 7260,
                "a fixed value typed into the data logger")
        for n, t in enumerate(ctx.incident_times(rng, tail=4 * 3600)):
            add("water.class_drop", n, pick("water"), t, t + 3 * 3600 + 60,
                "sewage overflow upstream", cod=rng.uniform(24, 35))
        for n, t in enumerate(ctx.incident_times(rng)):
            add("water.nh3n_spike", n, pick("water"), t, t + 3600 + 60,
                "livestock wastewater pulse", rise=rng.uniform(1.3, 1.8))
        for n, t in enumerate(self._night_times(rng)):
            add("noise.night_construction", n, pick("noise"), t, t + 1200,
                "concrete pour at night", level=rng.uniform(58, 66))
        for n, t in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            s = pick(rng.choice(["air", "emission"]))
            add("station.offline", n, s, t, t + 7260, "station lost power",
                duration=rng.uniform(3 * 3600, 4 * 3600))
        self._effects = {}
        for inc in out:
            self._effects.setdefault(inc.key, []).append(inc)
        return out

    def _night_times(self, rng: random.Random) -> list[float]:
        """Times in 22:00-04:00 (local) inside the run, one a night where possible."""
        ctx = self.ctx
        slots = []
        day = ctx.local(ctx.start).replace(hour=0, minute=0, second=0, microsecond=0)
        day -= timedelta(days=1)
        while day.timestamp() < ctx.end:
            for h in (22, 23, 24, 25, 26, 27):
                t = (day + timedelta(hours=h)).timestamp()
                if ctx.start + 1800 <= t and t + 5400 <= ctx.end:
                    slots.append(t)
            day += timedelta(days=1)
        if not slots:
            return []
        chosen = rng.sample(slots, min(ctx.incidents_per_model, len(slots)))
        return sorted(t + rng.uniform(0, 1800) for t in chosen)

    # -- events ---------------------------------------------------------------------------

    def _event(self, s: Station, ts: float, metric: str, value: float, **extra: Any
               ) -> Envelope:
        body = {"event_id": f"{s.sid}-{metric}-{int(ts * 1000)}", "ts": self.ctx.iso(ts),
                "source": f"env-{s.kind}", "station_id": s.sid, "kind": s.kind,
                "metric": metric, "value": value, "grid_id": s.grid}
        if s.enterprise:
            body["enterprise_id"] = s.enterprise
        body.update({k: v for k, v in extra.items() if v is not None})
        return Envelope(ts, TOPIC, s.sid, body)

    def _city_pm25(self, ts: float) -> float:
        local = self.ctx.local(ts)
        day = self.ctx.rng(f"environment/pm/{local.date().isoformat()}").uniform(15, 55)
        hour = local.hour + local.minute / 60
        return day * (0.8 + 0.25 * math.exp(-((hour - 8) ** 2) / 4)
                      + 0.3 * math.exp(-((hour - 21) ** 2) / 6))

    def _pm25(self, s: Station, ts: float, noise: float) -> float:
        v = self._city_pm25(ts) * s.base + noise
        for inc in self._effects.get(s.sid, ()):
            dt = ts - inc.start
            if inc.model_id.endswith("aqi_heavy") and dt >= 0:
                ramp = min(1.0, dt / (5 * 3600)) if dt < 9 * 3600 else 0.0
                v += (inc.extra["peak"] - v) * ramp
            elif inc.model_id.endswith("pm25_jump") and 0 <= dt < 4200:
                v += inc.extra["jump"] * (min(1.0, dt / 900) if dt < 2400
                                          else (4200 - dt) / 1800)
        return max(2.0, v)

    def _silent(self, s: Station, ts: float) -> bool:
        return any(inc.model_id.endswith("station.offline")
                   and 0 <= ts - inc.start < inc.extra["duration"]
                   for inc in self._effects.get(s.sid, ()))

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        if not self._effects and incidents:
            for inc in incidents:
                self._effects.setdefault(inc.key, []).append(inc)
        for hour in self.source_hours(t0, t1):
            for e in self._hour(hour):
                if t0 <= e.ts < t1:
                    yield e

    def _hour(self, hour: float) -> Iterator[Envelope]:
        drop_rng = self.slice_rng(hour, "dropout")
        for s in self.stations:
            rng = self.slice_rng(hour, s.sid)
            gap = None
            if drop_rng.random() < 0.01:
                begin = hour + drop_rng.uniform(0, 3600)
                gap = (begin, begin + drop_rng.uniform(600, 2400))
            for e in self._station_hour(s, hour, rng):
                if not self._silent(s, e.ts) and not (gap and gap[0] <= e.ts < gap[1]):
                    yield e

    def _station_hour(self, s: Station, hour: float, rng: random.Random) -> Iterator[Envelope]:
        ctx = self.ctx
        if s.kind == "air":
            readings = [(ts, round(self._pm25(s, ts, rng.gauss(0, 3)), 1))
                        for ts in every(hour, hour + 3600, 600, s.phase)]
            yield from (self._event(s, ts, "pm25", v) for ts, v in readings)
            # The hourly AQI, from the last hour's PM2.5 (recomputed, so slices agree).
            back = self.slice_rng(hour - 3600, s.sid)
            prev = [self._pm25(s, ts, back.gauss(0, 3))
                    for ts in every(hour - 3600, hour, 600, s.phase)]
            if prev and hour - 3600 >= ctx.start:
                aqi = aqi_of_pm25(sum(prev) / len(prev))
                yield self._event(s, hour + 30, "aqi", round(aqi))
        elif s.kind == "water":
            for ts in every(hour, hour + 3600, 3600, s.phase):
                nh3n = s.base + rng.gauss(0, 0.04)
                cod = s.base2 + rng.gauss(0, 0.8)
                for inc in self._effects.get(s.sid, ()):
                    dt = ts - inc.start
                    if inc.model_id.endswith("class_drop") and 0 <= dt < 5 * 3600:
                        cod = inc.extra["cod"] + rng.gauss(0, 0.8)
                    elif inc.model_id.endswith("nh3n_spike") and 0 <= dt < 7200:
                        nh3n += inc.extra["rise"] * (1.0 if dt < 3600 else 0.5)
                nh3n, cod = round(max(0.02, nh3n), 2), round(cod, 1)
                yield self._event(s, ts, "nh3n", nh3n)
                yield self._event(s, ts, "cod", cod)
                yield self._event(s, ts, "wq_class", wq_class(nh3n, cod), target_class=3)
        elif s.kind == "noise":
            for ts in every(hour, hour + 3600, 300, s.phase):
                local = ctx.local(ts)
                working = 7 <= local.hour < 19 and not (local.weekday() == 6
                                                       or ctx.is_holiday(ts))
                v = (s.base2 if working else s.base) + rng.gauss(0, 2)
                for inc in self._effects.get(s.sid, ()):
                    if 0 <= ts - inc.start < 5400:
                        v = inc.extra["level"] + rng.gauss(0, 2)
                yield self._event(s, ts, "db", round(v, 1))
        else:  # emission
            assert s.limit is not None and s.metric is not None
            for ts in every(hour, hour + 3600, 60, s.phase):
                v = s.base * (1 + 0.06 * math.sin(ts / 5400)) + rng.gauss(0, 0.05 * s.limit)
                for inc in self._effects.get(s.sid, ()):
                    dt = ts - inc.start
                    if inc.model_id.endswith("over_permit") and 0 <= dt < 5400:
                        v = s.limit * inc.extra["factor"] + rng.gauss(0, 0.05 * s.limit)
                    elif inc.model_id.endswith("monitor_flatline") and 0 <= dt < 9000:
                        v = round(s.base, 1)
                yield self._event(s, ts, s.metric, round(max(0.1, v), 1), limit=s.limit)
