"""Tourism: visitor counters at tourism sites and district hotel occupancy.

Background:
- 16 sites (capacity 3,000–30,000) count visitors every 5 minutes while their counters are on
  (07:30–18:30). The load follows the leisure rhythm: on weekdays it peaks mid-afternoon at
  30–45% of capacity, weekends 1.6× that; on public holidays (National Day, Labour Day weeks)
  2.5× — the holiday peaks the capacity models exist for. Entries per minute follow the
  load (a 3-hour average stay) with noise; counters drop out now and then for 5–10 minutes
  (under the 15-minute offline limit).
- Each of the 6 districts reports its hotels' occupancy every hour (60–85% on weekdays, more
  at weekends, 88–99% on holidays).

Incidents: a site filling to 85% (the 80% model; the forecast model also sees the rise), a
site filling to 103% (the 100% model; the 80% and forecast models see it on the way, recorded
as companion incidents), district hotels at 96–98% for 3 hours, a wave of entries at 4× the
usual rate for 10 minutes, and a counter silent for 40 minutes during opening hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from simulator.base import Department, Envelope, Incident, diurnal, every
from simulator.city import DISTRICTS

TOPIC = "events.tourism.site"
PERIOD = 300.0
OPEN, CLOSE = 7.5, 18.5  # counters on, local hours
STAY_MIN = 180.0

MODELS = ("tourism.site.capacity_80", "tourism.site.capacity_full",
          "tourism.hotel.occupancy_high", "tourism.site.visitor_surge",
          "tourism.site.counter_offline")
FORECAST = "tourism.site.capacity_forecast"


class Tourism(Department):
    name = "tourism"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("tourism/entities")
        grids = ctx.city.grids
        self.sites: dict[str, dict[str, Any]] = {}
        for i in range(1, 17):
            grid = rng.choice(grids)
            self.sites[f"TS-{i:02d}"] = {
                "capacity": rng.choice((3000, 5000, 8000, 12000, 20000, 30000)),
                "frac": rng.uniform(0.30, 0.45), "grid": grid,
                "district": ctx.city.district_of(grid), "phase": rng.uniform(0, PERIOD)}
        self.hotels = {d: {"base": rng.uniform(62, 75), "phase": rng.uniform(0, 3600)}
                       for d in DISTRICTS}

    # ------------------------------------------------------------------ plan
    def _day_times(self, rng: random.Random, first: float, last: float) -> list[float]:
        """``incidents_per_model`` times between local hours ``first`` and ``last`` of the
        run's days, at least an hour after the run starts and 2.5 hours before it ends."""
        ctx = self.ctx
        spans = []
        day = ctx.local(ctx.start).replace(hour=0, minute=0, second=0, microsecond=0)
        while day.timestamp() < ctx.end:
            a = max(day.timestamp() + first * 3600, ctx.start + 3600)
            b = min(day.timestamp() + last * 3600, ctx.end - 9000)
            if b > a:
                spans.append((a, b))
            day += timedelta(days=1)
        total = sum(b - a for a, b in spans)
        if not total:
            return []
        n = ctx.incidents_per_model
        out = []
        for i in range(n):
            x = total * (i + rng.random()) / n
            for a, b in spans:
                if x < b - a:
                    out.append(a + x)
                    break
                x -= b - a
        return out

    def plan(self) -> list[Incident]:
        out: list[Incident] = []
        sites = sorted(self.sites)
        self.ctx.rng("tourism/plan/sites").shuffle(sites)
        used = 0
        for model in MODELS:
            rng = self.ctx.rng(f"tourism/plan/{model}")
            short = model.rsplit(".", 1)[-1]
            # the surge model needs 24 counts (2 h) of warm-up after the counters come on
            first = 10.5 if short == "visitor_surge" else 9.5
            for n, start in enumerate(self._day_times(rng, first, 15.0)):
                iid = self.incident_id(model, n)
                if short == "occupancy_high":
                    district = DISTRICTS[(n + rng.randrange(len(DISTRICTS))) % len(DISTRICTS)]
                    phase = self.hotels[district]["phase"]
                    first = start + (phase - start) % 3600  # the first hourly record inside
                    out.append(Incident(iid, model, district, start, first + 60, self.name,
                                        "district hotels 96-98% occupied for 3 h",
                                        {"until": start + 3 * 3600}))
                    continue
                site = sites[used % len(sites)]
                used += 1
                if short in ("capacity_80", "capacity_full"):
                    peak = 0.85 if short == "capacity_80" else 1.03
                    ramp = 3600.0
                    base = self._load(self.sites[site], start)
                    grid = self.sites[site]["grid"]
                    extra = {"site": site, "peak": peak, "ramp": ramp, "hold": 2400.0,
                             "base": base}
                    at = start + ramp * _crossing(base, peak, 0.8 if peak < 1 else 1.0)
                    out.append(Incident(iid, model, site, start, at + PERIOD, self.name,
                                        f"visitors rise to {peak:.0%} of capacity", extra,
                                        grid))
                    out.append(Incident(f"{iid}-forecast", FORECAST, site, start,
                                        start + ramp, self.name, "companion: the rise",
                                        {"companion": True}))
                    # Entries during an hour's rise to capacity are far above the usual rate.
                    out.append(Incident(f"{iid}-surge", "tourism.site.visitor_surge", site,
                                        start, start + ramp, self.name,
                                        "companion: entries surge during the rise",
                                        {"companion": True}))
                    if short == "capacity_full":
                        at80 = start + ramp * _crossing(base, peak, 0.8)
                        out.append(Incident(f"{iid}-80", MODELS[0], site, start,
                                            at80 + PERIOD, self.name, "companion: past 80%",
                                            {"companion": True}, grid))
                elif short == "visitor_surge":
                    out.append(Incident(iid, model, site, start, start + 600, self.name,
                                        "entries 4x the usual rate for 10 min",
                                        {"site": site}))
                else:
                    out.append(Incident(iid, model, site, start, start + 900 + PERIOD,
                                        self.name, "counter silent for 40 min while open",
                                        {"site": site}))
        return out

    # ---------------------------------------------------------------- events
    def _load(self, site: dict[str, Any], ts: float) -> float:
        """The usual share of capacity inside at ``ts``."""
        return site["frac"] * diurnal(ts, self.ctx, "leisure") / 1.7

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        mine = [i for i in incidents if i.department == self.name and not i.extra.get("companion")]
        yield from self._sites(t0, t1, mine)
        yield from self._hotels(t0, t1, mine)

    def _sites(self, t0: float, t1: float, incidents: list[Incident]) -> Iterator[Envelope]:
        by_site: dict[str, list[Incident]] = {}
        for inc in incidents:
            if "site" in inc.extra:
                by_site.setdefault(inc.extra["site"], []).append(inc)
        for hour in self.source_hours(t0, t1):
            hour_of_day = self.ctx.local(hour).hour
            if not int(OPEN) <= hour_of_day <= int(CLOSE):
                continue
            rng = self.slice_rng(hour, "site")
            for sid, site in self.sites.items():
                gap_at = rng.uniform(hour, hour + 3600) if rng.random() < 0.04 else None
                gap_len = rng.uniform(300, 600)
                for ts in every(hour, hour + 3600, PERIOD, site["phase"]):
                    local = self.ctx.local(ts)
                    h = local.hour + local.minute / 60
                    noise = rng.gauss(0, 0.015)
                    noise_e = rng.gauss(0, 0.06)
                    if not (OPEN <= h < CLOSE and t0 <= ts < t1):
                        continue
                    if gap_at is not None and gap_at <= ts < gap_at + gap_len:
                        continue
                    share = self._load(site, ts) * (1 + noise)
                    rise = (self._load(site, ts + 600) - self._load(site, ts - 600)) / 20
                    factor = 1.0
                    skip = False
                    for inc in by_site.get(sid, ()):
                        short = inc.model_id.rsplit(".", 1)[-1]
                        dt = ts - inc.start
                        if short in ("capacity_80", "capacity_full"):
                            ramp, hold = inc.extra["ramp"], inc.extra["hold"]
                            base, peak = inc.extra["base"], inc.extra["peak"]
                            if 0 <= dt < ramp:  # S-shaped rise
                                x = dt / ramp
                                share = base + (peak - base) * (1 - math.cos(math.pi * x)) / 2
                                share *= 1 + noise
                                rise = (peak - base) * math.pi / 2 * math.sin(math.pi * x) \
                                    / (ramp / 60)
                            elif ramp <= dt < ramp + hold:
                                share, rise = peak * (1 + noise), 0.0
                            elif ramp + hold <= dt < 2 * ramp + hold:  # visitors leave
                                x = (dt - ramp - hold) / ramp
                                share = share + (peak - share) * (1 + math.cos(math.pi * x)) / 2
                        elif short == "visitor_surge" and 0 <= dt < 600:
                            factor = 4.0
                        elif short == "counter_offline" and 0 < dt < 2400:
                            skip = True
                    if skip:
                        continue
                    cap = site["capacity"]
                    visitors = max(0, round(cap * share))
                    entries = max(0.0, visitors / STAY_MIN + rise * cap) * factor * (1 + noise_e)
                    yield Envelope(ts, TOPIC, sid, {
                        "event_id": f"{sid}-{int(ts)}", "ts": self.ctx.iso(ts),
                        "source": "scenic_counter", "site_id": sid, "visitors_now": visitors,
                        "capacity": cap, "entries_per_min": round(entries, 1),
                        "district": site["district"], "grid_id": site["grid"]})

    def _hotels(self, t0: float, t1: float, incidents: list[Incident]) -> Iterator[Envelope]:
        high = [i for i in incidents if i.model_id == "tourism.hotel.occupancy_high"]
        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour, "hotel")
            for district, hotel in self.hotels.items():
                for ts in every(hour, hour + 3600, 3600.0, hotel["phase"]):
                    local = self.ctx.local(ts)
                    # rooms fill through the evening: highest at night
                    evening = 6 * math.cos((local.hour - 23) / 24 * 2 * math.pi)
                    if self.ctx.is_holiday(ts):
                        pct = 90 + 3 * math.cos((local.hour - 23) / 24 * 2 * math.pi)
                    else:
                        pct = hotel["base"] + evening + (9 if local.weekday() >= 4 else 0)
                    pct += rng.gauss(0, 0.8)
                    for inc in high:
                        if inc.key == district and inc.start <= ts < inc.extra["until"]:
                            pct = rng.uniform(96, 98)
                    if t0 <= ts < t1:
                        sid = f"HOTEL-{district}"
                        yield Envelope(ts, TOPIC, sid, {
                            "event_id": f"{sid}-{int(ts)}", "ts": self.ctx.iso(ts),
                            "source": "hotel_registration", "site_id": sid,
                            "hotel_occupancy_pct": round(min(99.5, pct), 1),
                            "district": district})


def _crossing(base: float, peak: float, level: float) -> float:
    """Where (0–1) along the S-shaped rise from ``base`` to ``peak`` the load reaches ``level``."""
    y = min(1.0, max(0.0, (level - base) / (peak - base)))
    return math.acos(1 - 2 * y) / math.pi
