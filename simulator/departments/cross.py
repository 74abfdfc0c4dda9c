"""Cross-department (三跨) situations: what several departments see of one happening.

The other departments simulate their own streams; this one produces the *combined* incidents the
cross-department models are meant to catch, by emitting events on those departments' topics with
their field conventions (utilities ``network``/``metric``: gas ``pressure_kpa``, drainage
``level_m`` from the manhole cover, power ``feeder_trip``; hotline categories ``gas_smell`` and
``water_logging``; health kinds ``fever_visit`` and ``school_absence`` with ``district``; police
kind ``crowd_gathering``; tourism ``visitors_now``/``capacity`` with ``grid_id``).

Its own background is only what keeps its sensors and sites ordinary: a gas-pressure and a
drainage sensor in every grid of a planned incident report every 5 minutes all run (gas about
300 kPa, drainage about 1.8 m down) and each planned tourism site reports its count every
10 minutes (20-50% full, following the day), so they are not taken for offline.
Incidents:
``cross.grid.gas_smell_and_pressure_drop`` — a gas-smell ticket, then the grid's gas pressure
dropping to 150-190 kPa 5-40 minutes later;
``cross.grid.rainstorm_drainage_waterlogging`` — a rainstorm warning for the grid, the drainage
level rising to 0.1 m under the cover, a waterlogging ticket;
``cross.district.fever_surge_school_absence`` — 22-30 fever-clinic visits in 15 minutes, then a
school reporting 11-18 pupils absent with illness, in one district;
``cross.grid.crowd_report_site_over_capacity`` — a site filling to 102-112% and a 110
crowd-gathering report in its grid;
``cross.feeder.hospital_feeder_trips`` — a hospital feeder tripping twice within 3-10 minutes.
The same events are also what single-stream models watch (the 12345 gas-smell ticket, the gas
pressure band, the drainage level, the police crowd report, the capacity models of the site):
the plan lists those as incidents too (note "seen by <model>"), so their alerts are not
counted as false.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from simulator.base import Department, Envelope, Incident, SimContext, every

UTIL, HOTLINE, HEALTH, POLICE, TOURISM, EMERGENCY = (
    "events.utilities.sensor", "events.hotline.ticket", "events.health.report",
    "events.police.incident", "events.tourism.site", "events.emergency.report")
HAZCHEM_VEHICLE = "events.hazchem.vehicle"
HOSPITAL_FEEDERS = ("PF-H01", "PF-H02", "PF-H03", "PF-H04", "PF-H05", "PF-H06")
CAPACITY = 20000


class Cross(Department):
    name = "cross"
    topics = (UTIL, HOTLINE, HEALTH, POLICE, TOURISM, EMERGENCY)

    def __init__(self, ctx: SimContext) -> None:
        super().__init__(ctx)
        self._plan: list[Incident] | None = None

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[Incident]:
        ctx, out = self.ctx, []
        city = ctx.city

        def add(model: str, n: int, key: str, start: float, end: float, note: str,
                **extra: Any) -> Incident:
            incident = Incident(self.incident_id(model, n), model, key, start, end, self.name,
                                note, dict(extra))
            out.append(incident)
            return incident

        def seen_by(model: str, of: Incident, key: str, start: float) -> None:
            out.append(Incident(f"{of.incident_id}/{model.rsplit('.', 1)[-1]}", model, key,
                                start, start + 60, self.name, f"seen by {model}",
                                {"companion": True}))

        rng = ctx.rng("cross/plan/gas")
        for n, start in enumerate(ctx.incident_times(rng)):
            grid, drop = rng.choice(city.grids), start + rng.uniform(300, 2400)
            i = add("cross.grid.gas_smell_and_pressure_drop", n, grid, start, drop,
                    "gas smell reported, then gas pressure drops in the grid", drop=drop,
                    low=rng.uniform(150, 190), ticket=f"HT-XG{n:03d}", sensor=f"GS-X{n:03d}")
            seen_by("hotline.ticket.gas_smell", i, i.extra["ticket"], start)
            seen_by("utilities.gas.pressure_out_of_band", i, i.extra["sensor"], drop)
        rng = ctx.rng("cross/plan/rain")
        for n, start in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            grid = rng.choice(city.grids)
            rise_at, rise = start + rng.uniform(600, 2400), rng.uniform(1800, 3600)
            high = rise_at + rise * (1.5 / 1.7)  # -1.8 m to -0.1 m: -0.3 m at 1.5/1.7 of it
            ticket = high + rng.uniform(300, 1500)
            i = add("cross.grid.rainstorm_drainage_waterlogging", n, grid, start, ticket,
                    "rainstorm warning, drainage level high and waterlogging in one grid",
                    rise_at=rise_at, rise=rise, ticket_at=ticket, ticket=f"HT-XW{n:03d}",
                    sensor=f"DR-X{n:03d}", warning=f"WW-X{n:03d}")
            seen_by("utilities.drainage.level_high", i, i.extra["sensor"], high)
        rng = ctx.rng("cross/plan/fever")
        for n, start in enumerate(ctx.incident_times(rng, tail=7 * 3600)):
            grid = rng.choice(city.grids)
            add("cross.district.fever_surge_school_absence", n, city.district_of(grid), start,
                start + rng.uniform(3600, 6 * 3600),
                "fever-clinic surge and school absence cluster in one district", grid=grid,
                school_grid=rng.choice([g for g in city.grids
                                        if city.district_of(g) == city.district_of(grid)]),
                visits=rng.randint(22, 30), absent=rng.randint(11, 18))
        rng = ctx.rng("cross/plan/crowd")
        for n, start in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            grid, peak = rng.choice(city.grids), rng.uniform(1.02, 1.12)
            full = start + 3600 / peak  # the count rises linearly to peak within an hour
            crowd = start + rng.uniform(2400, 4200)
            i = add("cross.grid.crowd_report_site_over_capacity", n, grid, start,
                    max(full, crowd) + 600, "110 crowd report and a site over capacity",
                    peak=peak, crowd_at=crowd, site=f"TS-X{n:03d}", incident=f"PI-X{n:03d}")
            seen_by("police.incident.crowd_gathering", i, i.extra["incident"], crowd)
            seen_by("tourism.site.capacity_80", i, i.extra["site"], start + 0.8 * 3600 / peak)
            seen_by("tourism.site.capacity_full", i, i.extra["site"], full)
            seen_by("tourism.site.capacity_forecast", i, i.extra["site"], start)
        rng = ctx.rng("cross/plan/tanker")
        for n, start in enumerate(ctx.incident_times(rng, tail=2 * 3600)):
            grid = rng.choice(city.grids)
            arrive = start + rng.uniform(600, 1500)  # the site is 80%+ full from the start
            i = add("cross.grid.hazchem_tanker_near_crowded_site", n, grid, start, arrive,
                    "a hazchem tanker parks in the grid of a tourism site at 80%+ capacity",
                    arrive=arrive, site=f"TS-XH{n:03d}", vehicle=f"HV-XH{n:03d}",
                    share=rng.uniform(0.82, 0.9))
            seen_by("tourism.site.capacity_80", i, i.extra["site"], start)

        rng = ctx.rng("cross/plan/feeder")
        for n, start in enumerate(ctx.incident_times(rng)):
            gap = rng.uniform(180, 600)
            add("cross.feeder.hospital_feeder_trips", n, HOSPITAL_FEEDERS[n % 6], start,
                start + gap, "a hospital feeder trips twice", gap=gap,
                grid=rng.choice(city.grids))
        self._plan = out
        return out

    # ---------------------------------------------------------------- events
    def _env(self, topic: str, key_field: str, key: str, ts: float, n: int | str,
             **fields: Any) -> Envelope:
        value = {"event_id": f"X-{key}-{int(ts * 1000)}-{n}", "ts": self.ctx.iso(ts),
                 "source": "cross-sim", key_field: key}
        value.update({k: v for k, v in fields.items() if v is not None})
        return Envelope(ts, topic, key, value)

    def _sensor(self, ts: float, sid: str, grid: str, network: str, metric: str, value: float,
                unit: str) -> Envelope:
        lat, lon = self.ctx.city.grid_center(grid)
        return self._env(UTIL, "sensor_id", sid, ts, 0, network=network, metric=metric,
                         value=round(value, 2), unit=unit, grid_id=grid, lat=round(lat, 6),
                         lon=round(lon, 6))

    def _ticket(self, ts: float, tid: str, grid: str, category: str, text: str) -> Envelope:
        lat, lon = self.ctx.city.grid_center(grid)
        return self._env(HOTLINE, "ticket_id", tid, ts, 0, category=category, text=text,
                         status="new", grid_id=grid, district=self.ctx.city.district_of(grid),
                         lat=round(lat, 6), lon=round(lon, 6), urgency="urgent",
                         caller_hash=f"c{zlib.crc32(tid.encode()):08x}")

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        for i in incidents:
            if i.extra.get("companion"):
                continue
            yield from self._incident(i, t0, t1)

    def _incident(self, i: Incident, t0: float, t1: float) -> Iterator[Envelope]:
        x, m = i.extra, i.model_id

        def noise(ts: float, sd: float) -> float:  # the same whichever slice asks
            return self.ctx.rng(f"cross/noise/{i.incident_id}/{int(ts)}").gauss(0, sd)

        if m == "cross.grid.gas_smell_and_pressure_drop":
            for ts in every(t0, t1, 300, self.ctx.start):
                low = x["drop"] <= ts < x["drop"] + 1800
                kpa = x["low"] + noise(ts, 2) if low else 300 + noise(ts, 5)
                yield self._sensor(ts, x["sensor"], i.key, "gas", "pressure_kpa", kpa, "kPa")
            yield self._sensor(x["drop"], x["sensor"], i.key, "gas", "pressure_kpa", x["low"],
                               "kPa")
            yield self._ticket(i.start, x["ticket"], i.key, "gas_smell",
                               "楼道里煤气味很重，怀疑漏气")
        elif m == "cross.grid.rainstorm_drainage_waterlogging":
            if t0 <= i.start < t1:
                lat, lon = self.ctx.city.grid_center(i.key)
                yield self._env(EMERGENCY, "report_id", x["warning"], i.start, 0,
                                kind="weather_warning", hazard="rainstorm", level="orange",
                                value=3.0, grid_id=i.key, lat=round(lat, 6), lon=round(lon, 6))
            for ts in every(t0, t1, 300, self.ctx.start):
                phase = (ts - x["rise_at"]) / x["rise"]
                up = 0.0 if phase < 0 else 1.0 if phase < 3 else max(0.0, 1 - (phase - 3) / 3)
                up = min(up, max(phase, 0.0))
                level = -1.8 + 1.7 * up + noise(ts, 0.01)
                yield self._sensor(ts, x["sensor"], i.key, "drainage", "level_m", level, "m")
            yield self._ticket(x["ticket_at"], x["ticket"], i.key, "water_logging",
                               "小区门口积水已经没过脚踝，车都开不过去")
        elif m == "cross.district.fever_surge_school_absence":
            yield self._env(HEALTH, "facility_id", f"HF-X{i.incident_id[-1]}", i.start, 0,
                            kind="fever_visit", count=x["visits"], district=i.key,
                            grid_id=x["grid"])
            yield self._env(HEALTH, "facility_id", f"SCH-X{i.incident_id[-1]}", i.end, 0,
                            kind="school_absence", count=x["absent"], district=i.key,
                            grid_id=x["school_grid"], school_id=f"SCH-X{i.incident_id[-1]}")
        elif m == "cross.grid.crowd_report_site_over_capacity":
            for ts in every(t0, t1, 600, self.ctx.start):
                local = self.ctx.local(ts)
                hour = local.hour + local.minute / 60
                share = 0.2 + 0.3 * math.exp(-((hour - 14) ** 2) / 12)
                phase = (ts - i.start) / 3600
                if 0 <= phase <= 2:  # fills within an hour, stays full for an hour
                    share = max(share, x["peak"] * min(phase, 1.0))
                elif 2 < phase <= 4:
                    share = max(share, x["peak"] * (1 - (phase - 2) / 2 * 0.6))
                visitors = int(CAPACITY * share * (1 + noise(ts, 0.003)))
                yield self._env(TOURISM, "site_id", x["site"], ts, 0, visitors_now=visitors,
                                capacity=CAPACITY, grid_id=i.key,
                                district=self.ctx.city.district_of(i.key))
            lat, lon = self.ctx.city.grid_center(i.key)
            yield self._env(POLICE, "incident_id", x["incident"], x["crowd_at"], 0,
                            kind="crowd_gathering", level=2, grid_id=i.key,
                            district=self.ctx.city.district_of(i.key), lat=round(lat, 6),
                            lon=round(lon, 6))
        elif m == "cross.grid.hazchem_tanker_near_crowded_site":
            for ts in every(t0, t1, 600, self.ctx.start):  # the site reports every 10 min
                if i.start <= ts < i.start + 2 * 3600:
                    visitors = int(CAPACITY * x["share"] * (1 + noise(ts, 0.003)))
                    yield self._env(TOURISM, "site_id", x["site"], ts, 0,
                                    visitors_now=visitors, capacity=CAPACITY, grid_id=i.key,
                                    district=self.ctx.city.district_of(i.key))
            lat, lon = self.ctx.city.grid_center(i.key)
            for n, ts in enumerate(x["arrive"] + k * 300 for k in range(4)):
                if t0 <= ts < t1:  # parked, engine off, for 15 minutes
                    yield self._env(HAZCHEM_VEHICLE, "vehicle_id", x["vehicle"], ts, n,
                                    plate=f"浙A·X{x['vehicle'][-3:]}", lat=round(lat, 6),
                                    lon=round(lon, 6), speed_kmh=0.0, ignition=False,
                                    grid_id=i.key)
        elif m == "cross.feeder.hospital_feeder_trips":
            for n, ts in enumerate((i.start, i.start + x["gap"])):
                yield self._env(UTIL, "sensor_id", i.key, ts, n, network="power",
                                metric="feeder_trip", value=1.0, unit="trip", grid_id=x["grid"])
