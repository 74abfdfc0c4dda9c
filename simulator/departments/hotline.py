"""12345 citizen hotline (群众吹哨): tickets filed, assigned, closed and sometimes reopened.

Background: about 100 tickets an hour over a day, 250 at the afternoon peak (the ``activity``
rhythm, busier on holidays) from a large pool of callers, in a dozen categories with typical texts,
spread over the grid cells by a fixed population weight. Each ticket is a sequence of records
with the same ``ticket_id``: new, assigned 5–30 minutes later, closed 1–6 hours later (urgent
tickets within 20–100 minutes, before their due time of 2 hours; ordinary tickets are due in
3 days); 3% are reopened once after closing (with a new due time) and closed again. About
2,500 tickets and 7,300 events a day at rate 1.0.

Every ticket that reports a gas smell, a danger to life or an elderly person alone in trouble
is a situation its model must alert on, so such tickets come only from the planned incidents
(the truth lists each of them); background texts never use those words.

Incidents (``ctx.incidents_per_model`` per model):

- ``hotline.ticket.gas_smell`` — one gas-smell ticket (key: the ticket);
- ``hotline.grid.gas_smell_cluster`` — 3–4 gas-smell tickets from one grid within 40 minutes
  (each ticket is also a ``gas_smell`` incident);
- ``hotline.grid.water_outage_cluster`` — 6–8 water-outage tickets in one grid within 90 minutes;
- ``hotline.caller.repeat_unresolved`` — a caller's ticket closed, reopened, then a new ticket;
- ``hotline.ticket.overdue`` — an urgent ticket closed 30–120 minutes after its 2-hour limit;
- ``hotline.ticket.reopened_twice`` — a ticket reopened twice (its caller has then contacted
  the hotline three times: also a ``repeat_unresolved`` incident);
- ``hotline.ticket.life_safety_keywords`` — a ticket describing a fire, a collapse, a suicide
  threat;
- ``hotline.grid.night_noise_cluster`` — 5–6 noise complaints from one grid within 90 minutes
  starting between 22:00 and 04:00 (fewer when the run has no such night);
- ``hotline.grid.construction_dust_cluster`` — 5 dust complaints from within 400 m of one site
  within 4 hours, starting between 07:00 and 15:00;
- ``hotline.district.category_surge`` — 18–25 tickets of one category (a gym chain closing,
  a bus line rerouted …) from one district within 45 minutes, at least 8 hours into the run
  (the learned baseline needs its history);
- ``hotline.grid.new_category_spike`` — 5–7 tickets within 3 hours, in one busy grid, of a
  category the background never files (rats, dead fish, stray dogs), at least 28 hours into the
  run (the model first watches a grid for a day);
- ``hotline.ticket.elderly_welfare_keywords`` — a neighbour worried about an elderly person
  living alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from simulator.base import Department, Envelope, Incident, arrivals, diurnal

TOPIC = "events.hotline.ticket"
LIFE = 10 * 3600.0
"""Longest life of a background ticket (new to its last record), the look-back of a slice."""

# category: (share of background tickets, department it goes to, texts)
CATEGORIES: dict[str, tuple[float, str, tuple[str, ...]]] = {
    "road": (0.14, "urban_management", (
        "小区门口道路有个大坑，车辆经过很危险", "人行道地砖松动，下雨溅一身水",
        "路灯坏了好几天，晚上很黑", "井盖破损，请尽快维修")),
    "sanitation": (0.12, "urban_management", (
        "垃圾桶满了没人清运，味道很大", "小区里有人乱扔建筑垃圾", "公共厕所很脏，没人打扫")),
    "noise": (0.10, "urban_management", (
        "楼下广场舞音响声音太大", "隔壁装修电钻声太吵", "工地施工噪音扰民",
        "酒吧音乐声很大，影响休息")),
    "traffic": (0.10, "transport", (
        "公交车到站不停", "路口红绿灯时间太短，行人过不去", "小区门口违章停车堵住通道")),
    "consumer": (0.14, "market_regulation", (
        "网购商品质量问题商家不退货", "健身房跑路，会员卡无法退费", "超市价格标签和结算不一致")),
    "housing": (0.12, "housing_utilities", (
        "物业不作为，电梯经常坏", "楼顶漏水，物业推诿", "小区停车费上涨不合理")),
    "water_outage": (0.03, "housing_utilities", (
        "家里停水了，没有接到通知", "水压很低，楼上没有水", "自来水发黄，有时候停水")),
    "construction_dust": (0.03, "urban_management", (
        "附近工地扬尘很大，窗户一层灰", "渣土车不盖篷布，路上都是土", "拆迁工地没有洒水降尘")),
    "greening": (0.06, "urban_management", (
        "小区绿化带树木太高挡住阳光", "行道树枯死没有补种")),
    "elderly_care": (0.03, "civil_affairs", (
        "想咨询高龄老人补贴怎么申请", "社区老年食堂什么时候开放", "想给父母申请居家养老服务",
        "独居老人助餐服务怎么办理")),
    "other": (0.13, "hotline_12345", (
        "咨询社保转移手续", "咨询孩子入学政策", "建议增加公交线路", "咨询居住证办理流程")),
}
DEPT = {c: d for c, (_, d, _) in CATEGORIES.items()} | {
    "gas_smell": "housing_utilities", "life_safety": "emergency_management"}

GAS_TEXTS = ("楼道里有很重的燃气味", "厨房闻到燃气味，不敢开火", "小区里到处是煤气味",
             "单元门口闻到燃气，很担心漏气")
LIFE_TEXTS = ("幸福小区3号楼着火了，楼道里全是浓烟", "老房子的墙塌了，下面好像有人",
              "有个人站在桥上说不想活了", "饭店后厨发生爆炸，有人受伤")
SURGE_TEXTS = {
    "consumer": ("连锁健身房突然关门，预付卡没法退", "教育培训机构跑路，学费退不了"),
    "traffic": ("公交线路突然改线，没有任何通知", "地铁口附近公交站取消了，出行很不方便"),
    "sanitation": ("整个片区垃圾好几天没人清运", "附近垃圾中转站停运，垃圾堆在路边"),
    "housing": ("小区电梯全部停运，物业联系不上", "小区物业撤场，没人管了"),
}
NOVEL_TEXTS = {  # categories the background never files: new to every grid
    "pests": ("小区里突然出现很多老鼠，晚上到处跑", "楼道墙角发现大量白蚁"),
    "dead_fish": ("河里漂着很多死鱼", "小区景观池里的鱼一夜之间都死了"),
    "stray_dogs": ("一群流浪狗在小区里追人", "路口总有几条流浪狗，孩子不敢上学"),
}
NIGHT_NOISE_TEXTS = ("工地半夜还在施工，吵得睡不着", "酒吧音乐声太大，半夜吵得没法睡")
ELDERLY_TEXTS = ("隔壁独居老人好几天没见出门了，敲门没人应", "楼上空巢老人电话没人接，联系不上",
                 "对门孤寡老人摔倒了，一个人住没人照顾")


def limit(urgency: str) -> float:
    """Time allowed to close a ticket: 2 hours if urgent, else 3 days."""
    return 7200.0 if urgency == "urgent" else 3 * 86400.0


class Hotline(Department):
    name = "hotline"
    topics = (TOPIC,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        rng = ctx.rng("hotline/grids")
        self.grids = ctx.city.grids
        self.weights = [rng.lognormvariate(0, 0.8) for _ in self.grids]
        cats = list(CATEGORIES)
        self.cats, self.cat_weights = cats, [CATEGORIES[c][0] for c in cats]

    # -- records -------------------------------------------------------------------------

    def _ticket(self, rng: random.Random, ticket_id: str, ts: float, grid: str, category: str,
                text: str, urgency: str = "normal", caller: str | None = None,
                at: tuple[float, float] | None = None) -> dict[str, Any]:
        lat, lon = self.ctx.city.random_point(rng, grid)
        if at is not None:  # a ticket about one place (a site), filed by a neighbour of it
            lat, lon = at
        due = ts + limit(urgency)
        return {"ticket_id": ticket_id, "caller_hash": caller or f"C{rng.getrandbits(40):010x}",
                "district": self.ctx.city.district_of(grid), "grid_id": grid,
                "lat": round(lat, 6), "lon": round(lon, 6), "category": category, "text": text,
                "urgency": urgency, "dept": DEPT.get(category, "hotline_12345"),
                "due_at": self.ctx.iso(due)}

    def _records(self, ticket: dict[str, Any], life: list[tuple[float, str]], t0: float,
                 t1: float) -> Iterable[Envelope]:
        due = ticket["due_at"]
        for ts, status in life:
            if status == "reopened":  # a reopened ticket gets a new due time
                due = self.ctx.iso(ts + limit(ticket["urgency"]))
            if t0 <= ts < t1:
                yield Envelope(ts, TOPIC, ticket["ticket_id"], {
                    "event_id": f"{ticket['ticket_id']}-{status}-{int(ts)}",
                    "ts": self.ctx.iso(ts), "source": "hotline", **ticket, "status": status,
                    "due_at": due})

    def _life(self, rng: random.Random, ts: float, urgency: str) -> list[tuple[float, str]]:
        assigned = ts + rng.uniform(300, 1800)
        closed = ts + (rng.uniform(1200, 6000) if urgency == "urgent"
                       else rng.uniform(3600, 6 * 3600))
        life = [(ts, "new"), (assigned, "assigned"), (max(closed, assigned + 60), "closed")]
        if rng.random() < 0.03:
            reopened = life[-1][0] + rng.uniform(1800, 7200)
            life += [(reopened, "reopened"), (reopened + rng.uniform(1800, 7200), "closed")]
        return life

    def grid(self, rng: random.Random) -> str:
        return rng.choices(self.grids, self.weights)[0]

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

        def incident(model: str, n: int, key: str, start: float, end: float, note: str,
                     tickets: list[tuple[dict[str, Any], list[tuple[float, str]]]]) -> None:
            out.append(Incident(self.incident_id(model, n), model, key, start, end, self.name,
                                note, {"tickets": tickets}))

        used: set[str] = set()

        def fresh(draw: Any) -> str:
            """A grid no other cluster incident of the run uses (one alert episode each)."""
            for _ in range(50):
                key = draw()
                if key not in used:
                    break
            used.add(key)
            return key

        def gas_each(model_n: str, tickets: list[tuple[dict[str, Any], list]]) -> None:
            for i, (t, life) in enumerate(tickets):
                out.append(Incident(f"{self.name}-gas_smell-{model_n}-{i}",
                                    "hotline.ticket.gas_smell", t["ticket_id"], life[0][0],
                                    life[0][0] + 60, self.name, "gas-smell ticket of a cluster",
                                    {"tickets": []}))

        def simple(rng: random.Random, tid: str, ts: float, category: str, text: str,
                   urgency: str = "normal", grid: str | None = None, caller: str | None = None,
                   at: tuple[float, float] | None = None):
            t = self._ticket(rng, tid, ts, grid or self.grid(rng), category, text, urgency, caller,
                             at)
            return t, self._life(rng, ts, urgency)

        rng = ctx.rng("hotline/plan/gas_smell")
        for n, ts in enumerate(ctx.incident_times(rng)):
            t = simple(rng, f"HX-GAS-{n}", ts, rng.choice(["gas_smell", "housing"]),
                       rng.choice(GAS_TEXTS), "urgent")
            incident("hotline.ticket.gas_smell", n, t[0]["ticket_id"], ts, ts + 60,
                     "gas-smell ticket", [t])

        rng = ctx.rng("hotline/plan/gas_cluster")
        for n, ts in enumerate(ctx.incident_times(rng, tail=3600)):
            grid = fresh(lambda: self.grid(rng))
            times = sorted(ts + rng.uniform(0, 2400) for _ in range(4))
            times[0] = ts
            count = rng.choice([3, 4])
            tickets = [simple(rng, f"HX-GASC-{n}-{i}", times[i], "gas_smell",
                              rng.choice(GAS_TEXTS), "urgent", grid) for i in range(count)]
            incident("hotline.grid.gas_smell_cluster", n, grid, ts, times[2] + 60,
                     f"{count} gas-smell tickets in 40 min", tickets)
            gas_each(f"c{n}", tickets)

        rng = ctx.rng("hotline/plan/water")
        for n, ts in enumerate(ctx.incident_times(rng, tail=7200)):
            grid, count = fresh(lambda: self.grid(rng)), rng.randint(6, 8)
            times = sorted([ts] + [ts + rng.uniform(0, 5400) for _ in range(count - 1)])
            tickets = [simple(rng, f"HX-WAT-{n}-{i}", times[i], "water_outage",
                              rng.choice(CATEGORIES["water_outage"][2]), "normal", grid)
                       for i in range(count)]
            incident("hotline.grid.water_outage_cluster", n, grid, ts, times[4] + 60,
                     f"{count} water-outage tickets in 90 min (burst main)", tickets)

        rng = ctx.rng("hotline/plan/caller")
        for n, ts in enumerate(ctx.incident_times(rng, tail=6 * 3600)):
            caller, grid = f"C-REP{n:04d}", self.grid(rng)
            first = self._ticket(rng, f"HX-REP-{n}-0", ts, grid, "road",
                                 "小区门口路面塌陷一直没修好", "normal", caller)
            reopen = ts + rng.uniform(2, 3) * 3600
            again = reopen + rng.uniform(1, 2.5) * 3600
            second = self._ticket(rng, f"HX-REP-{n}-1", again, grid, "road",
                                  "又来反映，门口路面坑洞还是没修", "normal", caller)
            incident("hotline.caller.repeat_unresolved", n, caller, ts, again + 60,
                     "a caller's issue closed, reopened, then a new ticket",
                     [(first, [(ts, "new"), (ts + 900, "assigned"), (ts + 5400, "closed"),
                               (reopen, "reopened")]),
                      (second, [(again, "new"), (again + 900, "assigned")])])

        rng = ctx.rng("hotline/plan/overdue")
        for n, ts in enumerate(ctx.incident_times(rng, tail=3 * 3600)):
            cat = rng.choice(["water_outage", "road", "housing"])
            t = self._ticket(rng, f"HX-OVD-{n}", ts, self.grid(rng), cat,
                             rng.choice(CATEGORIES[cat][2]), "urgent")
            closed = ts + 7200 + rng.uniform(1800, 7200)
            incident("hotline.ticket.overdue", n, t["ticket_id"], ts, ts + 7200 + 60,
                     "urgent ticket closed late",
                     [(t, [(ts, "new"), (ts + rng.uniform(300, 1800), "assigned"),
                           (closed, "closed")])])

        rng = ctx.rng("hotline/plan/reopened")
        for n, ts in enumerate(ctx.incident_times(rng, tail=5 * 3600)):
            cat = rng.choice(["noise", "sanitation", "housing"])
            t = self._ticket(rng, f"HX-RO2-{n}", ts, self.grid(rng), cat,
                             rng.choice(CATEGORIES[cat][2]), "normal")
            steps = [ts]
            for _ in range(4):
                steps.append(steps[-1] + rng.uniform(1800, 3600))
            life = [(ts, "new"), (steps[1], "closed"), (steps[2], "reopened"),
                    (steps[3], "closed"), (steps[4], "reopened")]
            incident("hotline.ticket.reopened_twice", n, t["ticket_id"], ts, steps[4] + 60,
                     "ticket reopened twice", [(t, life)])
            out.append(Incident(f"{self.name}-repeat_unresolved-r{n}",
                                "hotline.caller.repeat_unresolved", t["caller_hash"], ts,
                                steps[4] + 60, self.name,
                                "the caller of a ticket reopened twice", {"tickets": []}))

        rng = ctx.rng("hotline/plan/life")
        for n, ts in enumerate(ctx.incident_times(rng)):
            t = simple(rng, f"HX-LIFE-{n}", ts, "other", rng.choice(LIFE_TEXTS), "urgent")
            incident("hotline.ticket.life_safety_keywords", n, t[0]["ticket_id"], ts, ts + 60,
                     "ticket about a danger to life", [t])

        rng = ctx.rng("hotline/plan/noise")
        for n, ts in enumerate(self._starts_in(rng, ctx.incidents_per_model, 5400,
                                                   (22, 23, 0, 1, 2, 3))):
            grid, count = fresh(lambda: self.grid(rng)), rng.randint(5, 6)
            times = sorted([ts] + [ts + rng.uniform(0, 5400) for _ in range(count - 1)])
            tickets = [simple(rng, f"HX-NOI-{n}-{i}", times[i], "noise",
                              rng.choice(NIGHT_NOISE_TEXTS),
                              "normal", grid) for i in range(count)]
            incident("hotline.grid.night_noise_cluster", n, grid, ts, times[3] + 60,
                     f"{count} night noise complaints", tickets)

        rng = ctx.rng("hotline/plan/dust")
        for n, ts in enumerate(self._starts_in(rng, ctx.incidents_per_model, 4 * 3600,
                                               tuple(range(7, 15)))):
            grid = fresh(lambda: self.grid(rng))
            times = sorted([ts] + [ts + rng.uniform(0, 4 * 3600) for _ in range(4)])
            site = self.ctx.city.inner_point(rng, grid)
            tickets = [simple(rng, f"HX-DST-{n}-{i}", times[i], "construction_dust",
                              rng.choice(CATEGORIES["construction_dust"][2]), "normal", grid,
                              at=self.ctx.city.point_near(rng, site, 400))
                       for i in range(5)]
            incident("hotline.grid.construction_dust_cluster", n, grid, ts, times[3] + 60,
                     "5 construction-dust complaints in 4 h from around one site", tickets)

        rng = ctx.rng("hotline/plan/surge")
        # the learned baseline needs 6 hours of history: surges come 8 hours into the run
        for n, ts in enumerate(ctx.incident_times(rng, lead=8 * 3600, tail=2 * 3600)):
            if ts + 3600 > ctx.end:
                continue
            district = fresh(lambda: ctx.city.district_of(self.grid(rng)))
            cells = [g for g in self.grids if ctx.city.district_of(g) == district]
            category = rng.choice(sorted(SURGE_TEXTS))
            count = rng.randint(18, 25)
            times = sorted([ts] + [ts + rng.uniform(0, 2700) for _ in range(count - 1)])
            tickets = [simple(rng, f"HX-SRG-{n}-{i}", t, category,
                              rng.choice(SURGE_TEXTS[category]), "normal", rng.choice(cells))
                       for i, t in enumerate(times)]
            incident("hotline.district.category_surge", n, district, ts, times[-1] + 60,
                     f"{count} {category} tickets in 45 min (one cause)", tickets)

        rng = ctx.rng("hotline/plan/new_category")
        # the model watches a grid for a day before anything counts as new: these come 28 hours
        # into the run (none in a one-day run), in busy grids (with tickets from the first hours)
        busy = sorted(self.grids, key=lambda g: -self.weights[self.grids.index(g)])
        busy = busy[:max(1, len(busy) // 4)]
        for n, ts in enumerate(ctx.incident_times(rng, lead=28 * 3600, tail=4 * 3600)):
            if ts < ctx.start + 28 * 3600 or ts + 4 * 3600 > ctx.end:
                continue
            grid = fresh(lambda: rng.choice(busy))
            category = rng.choice(sorted(NOVEL_TEXTS))
            count = rng.randint(5, 7)
            times = sorted([ts] + [ts + rng.uniform(0, 3 * 3600) for _ in range(count - 1)])
            tickets = [simple(rng, f"HX-NEW-{n}-{i}", t, category,
                              rng.choice(NOVEL_TEXTS[category]), "normal", grid)
                       for i, t in enumerate(times)]
            incident("hotline.grid.new_category_spike", n, grid, ts, times[4] + 60,
                     f"{count} tickets of {category}, new to the grid, within 3 h", tickets)

        rng = ctx.rng("hotline/plan/elderly")
        for n, ts in enumerate(ctx.incident_times(rng)):
            t = simple(rng, f"HX-ELD-{n}", ts, "elderly_care", rng.choice(ELDERLY_TEXTS),
                       "urgent")
            incident("hotline.ticket.elderly_welfare_keywords", n, t[0]["ticket_id"], ts,
                     ts + 60, "elderly person alone, not seen", [t])
        return out

    # -- events ----------------------------------------------------------------------------

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        ctx = self.ctx
        for hour in self.source_hours(t0, t1, lookback=LIFE):
            rng = self.slice_rng(hour)
            times = list(arrivals(rng, hour, hour + 3600, 150 * ctx.rate,
                                  lambda t: diurnal(t, ctx, "activity")))
            for n, ts in enumerate(times):
                category = rng.choices(self.cats, self.cat_weights)[0]
                urgency = "urgent" if rng.random() < 0.05 else "normal"
                ticket = self._ticket(rng, f"H-{int(hour) // 3600}-{n:04d}", ts, self.grid(rng),
                                      category, rng.choice(CATEGORIES[category][2]), urgency)
                yield from self._records(ticket, self._life(rng, ts, urgency), t0, t1)
        for incident in incidents:
            for ticket, life in incident.extra["tickets"]:
                yield from self._records(ticket, life, t0, t1)
