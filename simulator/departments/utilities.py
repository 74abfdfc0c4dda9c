"""Urban lifelines (城市生命线): water, gas, heat, drainage, bridges, power feeders, streetlights.

Background: timed sensors report on their own phase — water-main pressure and DMA inflow
(every 5 min; pressure sags and flow swells with the day's demand, later and lower on
weekends and holidays; the night minimum between 02:00 and 04:00 sits at the meter's
``baseline``), gas medium-pressure mains (5 min, about
300-380 kPa) and underground gas detectors (10 min, a few % LEL), heat-network supply and
return temperatures (10 min; in the heating season, 15 November to 15 March, about 90 °C and
50 °C with ``in_season: true``; out of season the idle network reads ambient with
``in_season: false``), drainage wells (5 min, 1.5-2.5 m below the surface, rising a little in
the occasional light rain), manhole-cover tilt (10 min), bridge strain (5 min) and pier tilt
(10 min). Feeder trips (a few a day city-wide) and lamp faults (about a dozen a day) are sent
when they happen. ``ctx.rate`` scales the number of sensors (and the trip and fault rates).
Sensors drop out now and then for 8-20 minutes (shorter than the 30-minute offline timeout).

Incidents: one kind per model of ``rules/utilities`` (see ``plan`` and ``_apply``); heating
incidents only when the run is in the heating season (the default June run has none).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulator.base import Department, Envelope, Incident, every

TOPIC = "events.utilities.sensor"
UNITS = {"pressure_kpa": "kPa", "flow_m3h": "m3/h", "lel_pct": "%LEL", "supply_temp_c": "°C",
         "return_temp_c": "°C", "level_m": "m", "cover_tilt_deg": "deg", "strain_ue": "ue",
         "tilt_deg": "deg", "feeder_trip": "trip", "lamp_fault": "fault"}


@dataclass
class Sensor:
    sid: str
    network: str
    metric: str
    lat: float
    lon: float
    grid: str
    period: float
    phase: float
    base: float
    extra: dict[str, Any] = field(default_factory=dict)


def in_heating_season(moment: datetime) -> bool:
    md = (moment.month, moment.day)
    return md >= (11, 15) or md <= (3, 15)


def demand(hour: float) -> float:
    """Water demand above the night minimum (0 at 02:00-04:00, about 1 at the morning peak)."""
    return (math.exp(-((hour - 7.5) ** 2) / 3.0) + 0.8 * math.exp(-((hour - 19.0) ** 2) / 5.0)
            + 0.45 * math.exp(-((hour - 12.5) ** 2) / 8.0))


class Utilities(Department):
    name = "utilities"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.sensors = self._build()
        self.by_id = {s.sid: s for s in self.sensors}
        self._effects: dict[str, list[Incident]] = {}

    # -- the city's sensors ---------------------------------------------------------------

    def _build(self) -> list[Sensor]:
        rng = self.ctx.rng("utilities/entities")
        city = self.ctx.city
        out: list[Sensor] = []

        def add(prefix: str, n: int, network: str, metric: str, period: float,
                base: Any, **extra: Any) -> None:
            for i in range(max(1, round(n * self.ctx.rate))):  # rate scales the city
                lat, lon = city.random_point(rng)
                value = base(rng) if callable(base) else base
                out.append(Sensor(f"{prefix}-{i + 1:03d}", network, metric, round(lat, 6),
                                  round(lon, 6), city.grid_of(lat, lon), period,
                                  rng.uniform(0, period), value,
                                  {k: (v(rng) if callable(v) else v) for k, v in extra.items()}))

        add("WP", 30, "water", "pressure_kpa", 300, lambda r: r.uniform(320, 420))
        add("WF", 8, "water", "flow_m3h", 300, lambda r: r.uniform(20, 60))
        add("GP", 20, "gas", "pressure_kpa", 300, lambda r: r.uniform(310, 370))
        add("GL", 15, "gas", "lel_pct", 600, lambda r: r.uniform(0.5, 3.0))
        add("HS", 8, "heat", "supply_temp_c", 600, lambda r: r.uniform(86, 95))
        add("HR", 8, "heat", "return_temp_c", 600, lambda r: r.uniform(45, 52))
        add("DL", 20, "drainage", "level_m", 300, lambda r: r.uniform(-2.5, -1.5))
        add("MC", 30, "drainage", "cover_tilt_deg", 600, lambda r: r.uniform(0.2, 1.2),
            net=lambda r: r.choice(["drainage", "water", "gas", "power"]))
        add("BS", 4, "bridge", "strain_ue", 300, lambda r: r.uniform(180, 380))
        add("BT", 4, "bridge", "tilt_deg", 600, lambda r: r.uniform(-0.05, 0.05))
        add("PF", 40, "power", "feeder_trip", 0, 1.0)
        add("SL", 300, "streetlight", "lamp_fault", 0, 1.0)
        for s in out:  # manhole covers belong to the network of their well
            if s.metric == "cover_tilt_deg":
                s.network = s.extra.pop("net")
        # Lamps come in streets: put them in 12 grids.
        lamp_grids = rng.sample(sorted({s.grid for s in out if s.metric != "lamp_fault"}), 12)
        for s in out:
            if s.metric == "lamp_fault":
                grid = rng.choice(lamp_grids)
                s.lat, s.lon = (round(x, 6) for x in city.random_point(rng, grid))
                s.grid = grid
        return out

    def _of(self, *metrics: str) -> list[Sensor]:
        return [s for s in self.sensors if s.metric in metrics]

    # -- incidents ------------------------------------------------------------------------

    def plan(self) -> list[Incident]:
        ctx = self.ctx
        rng = ctx.rng("utilities/plan")
        out: list[Incident] = []
        used: set[str] = set()

        def pick(pool: list[Sensor]) -> Sensor:
            free = [s for s in pool if s.sid not in used] or pool
            s = rng.choice(free)
            used.add(s.sid)
            return s

        def add(model: str, n: int, key: str, start: float, end: float, note: str,
                **extra: Any) -> None:
            out.append(Incident(self.incident_id(f"utilities.{model}", n), f"utilities.{model}",
                                key, start, end, self.name, note, extra))

        k = ctx.incidents_per_model
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick([x for x in self._of("pressure_kpa") if x.network == "water"])
            add("water.pressure_drop", n, s.sid, t, t + 900, "water main burst",
                drop=rng.uniform(150, 220))
        meters = self._of("flow_m3h")
        for n, t in enumerate(self._night_times(rng, k, 1.5)):
            s = pick(meters)
            add("water.night_flow_rising", n, s.sid, t, t + 5700, "hidden leak in a DMA",
                leak=s.base * rng.uniform(0.8, 1.2))
            # A leak as large as the meter's base flow is also far out of line for the hour.
            out.append(Incident(f"{out[-1].incident_id}-flow_anomaly",
                                "utilities.water.flow_anomaly", s.sid, t, t + 5700, self.name,
                                "companion: the leak's flow is unusual for the hour",
                                {"companion": True}))
        for n, t in enumerate(ctx.incident_times(rng, lead=11 * 3600)):
            s = pick(meters)
            add("water.flow_anomaly", n, s.sid, t, t + 600, "flow surge (hydrant opened)",
                factor=rng.uniform(2.2, 2.8))
        gas = [x for x in self._of("pressure_kpa") if x.network == "gas"]
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(gas)
            low = rng.random() < 0.7
            add("gas.pressure_out_of_band", n, s.sid, t, t + 600,
                "regulator failure" + (" (low)" if low else " (high)"),
                level=rng.uniform(150, 190) if low else rng.uniform(420, 450))
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(self._of("lel_pct"))
            add("gas.manhole_lel", n, s.sid, t, t + 600, "gas collecting in a manhole",
                level=rng.uniform(30, 60))
        season = [t for t in ctx.incident_times(rng) if in_heating_season(ctx.local(t))]
        for n, t in enumerate(season):
            s = pick(self._of("supply_temp_c"))
            add("heating.supply_temp_low", n, s.sid, t, t + 2400, "heat source cutting back",
                level=rng.uniform(58, 66))
        season = [t for t in ctx.incident_times(rng, lead=7 * 3600)
                  if in_heating_season(ctx.local(t))]
        for n, t in enumerate(season):
            s = pick(self._of("return_temp_c"))
            add("heating.return_temp_shift", n, s.sid, t, t + 3600,
                "return temperature step (leak near the sensor)", step=-rng.uniform(7, 9))
        wells = self._of("level_m")
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(wells)
            add("drainage.level_high", n, s.sid, t, t + 6000, "storm cell, well filling up",
                rain=rng.uniform(30, 50), peak=rng.uniform(0.0, 0.1))
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(wells)
            add("drainage.level_rising_fast", n, s.sid, t, t + 900,
                "downpour, pipes surcharging", rain=rng.uniform(30, 50),
                rise=rng.uniform(0.9, 1.05))
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(self._of("cover_tilt_deg"))
            add("manhole.cover_displaced", n, s.sid, t, t + 600, "cover knocked out",
                level=rng.uniform(15, 40))
        for n, t in enumerate(ctx.incident_times(rng, lead=11 * 3600)):
            s = pick(self._of("strain_ue"))
            add("bridge.strain_anomaly", n, s.sid, t, t + 300, "overloaded convoy on the span",
                jump=rng.uniform(70, 110))
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(self._of("tilt_deg"))
            add("bridge.tilt_over_limit", n, s.sid, t, t + 1200, "pier settling",
                level=rng.choice([-1, 1]) * rng.uniform(0.25, 0.35))
        feeders = self._of("feeder_trip")
        for n, t in enumerate(ctx.incident_times(rng)):
            grid = rng.choice(sorted({f.grid for f in feeders}))
            local = [f.sid for f in feeders if f.grid == grid]
            trips = sorted(rng.uniform(0, 600) for _ in range(rng.randint(3, 5)))
            add("power.feeder_trip_cluster", n, grid, t, t + 600, "cable fault re-striking",
                trips=[(t + dt, rng.choice(local)) for dt in trips])
        lamps = self._of("lamp_fault")
        for n, t in enumerate(ctx.incident_times(rng)):
            grid = rng.choice(sorted({x.grid for x in lamps}))
            in_grid = [x.sid for x in lamps if x.grid == grid]
            local = rng.sample(in_grid, min(7, len(in_grid)))
            faults = sorted(rng.uniform(0, 2400) for _ in local)
            add("streetlight.failure_cluster", n, grid, t, t + 2400, "lighting circuit lost",
                faults=[(t + dt, sid) for dt, sid in zip(faults, local, strict=True)])
        timed = [x for x in self.sensors if x.period and x.network != "heat"]
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(timed)
            add("sensor.offline", n, s.sid, t, t + 1900, "sensor lost its link",
                duration=rng.uniform(3600, 7200))
        analog = self._of("pressure_kpa")
        for n, t in enumerate(ctx.incident_times(rng)):
            s = pick(analog)
            add("sensor.stuck", n, s.sid, t, t + 3700, "gateway re-sending its last reading",
                duration=rng.uniform(5400, 7200))
        self._effects = {}
        for inc in out:
            self._effects.setdefault(inc.key, []).append(inc)
        return out

    def _night_times(self, rng: random.Random, n: int, hour: float) -> list[float]:
        """``n`` times at ``hour`` (local) on the nights of the run, cycling through them."""
        ctx = self.ctx
        day = ctx.local(ctx.start).replace(hour=0, minute=0, second=0, microsecond=0)
        nights = []
        while day.timestamp() < ctx.end:
            t = (day + timedelta(hours=hour)).timestamp() + rng.uniform(0, 600)
            if ctx.start <= t and t + 3 * 3600 <= ctx.end:
                nights.append(t)
            day = (day + timedelta(days=1, hours=3)).replace(hour=0)
        return sorted(nights[i % len(nights)] for i in range(n)) if nights else []

    # -- events ---------------------------------------------------------------------------

    def _event(self, s: Sensor, ts: float, value: float, **extra: Any) -> Envelope:
        body = {"event_id": f"{s.sid}-{int(ts * 1000)}", "ts": self.ctx.iso(ts),
                "source": f"{s.network}-scada", "sensor_id": s.sid, "network": s.network,
                "metric": s.metric, "value": value, "unit": UNITS[s.metric], "lat": s.lat,
                "lon": s.lon, "grid_id": s.grid}
        body.update({k: v for k, v in extra.items() if v is not None})
        return Envelope(ts, TOPIC, s.sid, body)

    def _rain(self, ts: float) -> float:
        """City-wide light rain: on about a quarter of days, a 2-3 h spell of 2-8 mm/h."""
        local = self.ctx.local(ts)
        rng = self.ctx.rng(f"utilities/rain/{local.date().isoformat()}")
        if rng.random() > 0.25:
            return 0.0
        begin, length, peak = rng.uniform(0, 21), rng.uniform(2, 3), rng.uniform(2, 8)
        hour = local.hour + local.minute / 60
        if not begin <= hour < begin + length:
            return 0.0
        return round(peak * math.sin(math.pi * (hour - begin) / length) + 0.5, 1)

    def _background(self, s: Sensor, ts: float, rng: random.Random) -> tuple[float, dict]:
        local = self.ctx.local(ts)
        hour = local.hour + local.minute / 60
        extra: dict[str, Any] = {}
        # Weekends and holidays: a later, lower morning peak.
        rest = local.weekday() >= 5 or self.ctx.is_holiday(ts)
        use = 0.85 * demand(hour - 1.0) if rest else demand(hour)
        if s.metric == "pressure_kpa" and s.network == "water":
            v = s.base - 35 * use + rng.gauss(0, 3)
        elif s.metric == "pressure_kpa":
            v = s.base - 8 * use + rng.gauss(0, 2)
        elif s.metric == "flow_m3h":
            v = s.base * (1 + 3.0 * use) * (1 + rng.gauss(0, 0.03))
            extra["baseline"] = round(s.base, 1)
        elif s.metric == "lel_pct":
            v = max(0.0, s.base + rng.gauss(0, 0.4))
        elif s.network == "heat":
            season = in_heating_season(local)
            extra["in_season"] = season
            if not season:
                v = 24 + 4 * math.sin(math.pi * (hour - 9) / 12) + rng.gauss(0, 0.4)
            else:
                v = s.base + 2.0 * math.cos(math.pi * (hour - 5) / 12) + rng.gauss(0, 0.5)
        elif s.metric == "level_m":
            rain = self._rain(ts)
            extra["rain_mm_h"] = rain
            v = s.base + 0.03 * rain + rng.gauss(0, 0.02)
        elif s.metric == "cover_tilt_deg":
            v = max(0.0, s.base + rng.gauss(0, 0.2))
        elif s.metric == "strain_ue":
            v = s.base + 4 * math.sin(math.pi * (hour - 8) / 12) + rng.gauss(0, 4)
        else:  # tilt_deg
            v = s.base + rng.gauss(0, 0.01)
        return v, extra

    def _apply(self, s: Sensor, ts: float, v: float, extra: dict, rng: random.Random
               ) -> float | None:
        for inc in self._effects.get(s.sid, ()):
            m, x, dt = inc.model_id.split(".", 1)[1], inc.extra, ts - inc.start
            if dt < 0:
                continue
            if m == "water.pressure_drop" and dt < 3 * 3600:
                v -= x["drop"] * min(1.0, dt / 600)
            elif m == "water.night_flow_rising" and dt < 8 * 3600:
                v += x["leak"]
            elif m == "water.flow_anomaly" and "factor" in x and dt < 900:
                v *= x["factor"]
            elif m in ("gas.pressure_out_of_band", "gas.manhole_lel", "manhole.cover_displaced",
                       "heating.supply_temp_low", "bridge.tilt_over_limit") and dt < 3600:
                v = x["level"] + rng.gauss(0, 0.01 * abs(x["level"]))
            elif m == "heating.return_temp_shift":
                v += x["step"]
            elif m == "drainage.level_high" and dt < 3 * 3600:
                extra["rain_mm_h"] = round(x["rain"], 1)
                v = s.base + (x["peak"] - s.base) * min(1.0, dt / 6000) + rng.gauss(0, 0.02)
            elif m == "drainage.level_rising_fast" and dt < 2 * 3600:
                extra["rain_mm_h"] = round(x["rain"], 1)
                v += x["rise"] * min(1.0, dt / 900)
            elif m == "bridge.strain_anomaly" and dt < 600:
                v += x["jump"]
            elif m == "sensor.offline" and dt < x["duration"]:
                return None
            elif m == "sensor.stuck" and dt < x["duration"]:
                v = round(s.base, 1)
        return v

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        if not self._effects and incidents:
            self._effects = {}
            for inc in incidents:
                self._effects.setdefault(inc.key, []).append(inc)
        for hour in self.source_hours(t0, t1):
            yield from self._hour(hour, t0, t1)
        for inc in incidents:
            for ts, sid in [*inc.extra.get("trips", ()), *inc.extra.get("faults", ())]:
                if t0 <= ts < t1:
                    yield self._event(self.by_id[sid], ts, 1.0)

    def _hour(self, hour: float, t0: float, t1: float) -> Iterator[Envelope]:
        rng = self.slice_rng(hour)
        drop_rng = self.slice_rng(hour, "dropout")
        end = min(hour + 3600, t1)
        for s in self.sensors:
            if not s.period:
                continue
            gap = None
            if drop_rng.random() < 0.01:  # a short dropout, 8-20 min
                begin = hour + drop_rng.uniform(0, 3600)
                gap = (begin, begin + drop_rng.uniform(480, 1200))
            for ts in every(hour, hour + 3600, s.period, s.phase):
                v, extra = self._background(s, ts, rng)
                v = self._apply(s, ts, v, extra, rng)
                if v is None or not t0 <= ts < end or (gap and gap[0] <= ts < gap[1]):
                    continue
                digits = 2 if s.metric in ("level_m", "tilt_deg") else 1
                yield self._event(s, ts, round(v, digits), **extra)
        # Event-driven: feeder trips (about 4 a day) and lamp faults (about 12 a day, at night).
        # (every draw is made whichever slice asks, so slices agree)
        for ts in self._poisson(rng, hour, 4 / 24):
            feeder = rng.choice(self._of("feeder_trip"))
            if t0 <= ts < t1:
                yield self._event(feeder, ts, 1.0)
        night = self.ctx.local(hour).hour in (18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5)
        for ts in self._poisson(rng, hour, 0.9 if night else 0.1):
            lamp = rng.choice(self._of("lamp_fault"))
            if t0 <= ts < t1:
                yield self._event(lamp, ts, 1.0)

    def _poisson(self, rng: random.Random, hour: float, per_hour: float) -> list[float]:
        out, t = [], hour
        while True:
            t += rng.expovariate(per_hour * self.ctx.rate / 3600.0)
            if t >= hour + 3600:
                return out
            out.append(t)
