"""Market regulation and credit records: prices, inspections, bids, credit levels, violations.

Background: the price-monitoring system publishes the average retail price of ten goods every
15 minutes (company_id ``PRICE-MON``, key of the price models: the item), moving by a few tenths
of a percent with a gentle daily swing; about 600 companies get sampling inspections in office
hours (about 150 a working day, 3% failing), submit bids (about 80 a working day), have their
public credit level updated (about 400 a working day; A-C, D only for companies holding no
permit) and a few violations recorded. Nothing happens at night, at weekends or on holidays
but the prices: about 1,500 records on a working day. Companies on the reference lists
(``market_blacklist`` MC-0901..0903, ``market_permits`` MC-0800..0809) appear only as the
incidents need them, or harmlessly.
Incidents, one kind per model:
``market.bid.blacklisted_company`` — a blacklisted company (entry in force) bids;
``market.price.essential_jump`` — an essential good's price climbs 22-35% over 2-4 hours;
``market.price.anomaly`` — one price reading of a non-essential good off by 6-10%;
``market.food.inspection_failure_cluster`` — 3-4 companies fail inspections of one food item
within a few hours;
``market.credit.downgraded_d_with_permits`` — a permit holder's credit level set to D;
``market.inspection.repeated_failures`` — one company fails two inspections within hours.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from simulator.base import Department, Envelope, Incident, SimContext, arrivals, every

TOPIC = "events.market.record"
PRICES = {"rice": 6.2, "flour": 5.1, "edible_oil": 15.8, "pork": 26.0, "eggs": 11.5,
          "vegetables": 4.8, "milk": 13.2, "beef": 78.0, "fruit": 9.6, "aquatic": 32.0}
ESSENTIAL = ("rice", "flour", "edible_oil", "pork", "eggs", "vegetables", "milk")
OTHER = ("beef", "fruit", "aquatic")
FOOD = ("vegetables", "pork", "eggs", "milk", "rice", "edible_oil", "flour", "aquatic",
        "bean_products", "cooked_food")
NON_FOOD = ("electrical_appliance", "children_toy", "fertilizer", "textile", "cosmetics")
PERMITS = tuple(f"MC-080{n}" for n in range(10))
BLACKLISTED = ("MC-0901", "MC-0902")  # entries in force (MC-0903's has ended)
BID_ITEMS = ("road_works", "school_canteen_supply", "office_furniture", "it_services",
             "greening", "property_services")
MON = "PRICE-MON"


def _office(ts: float, ctx: SimContext) -> float:
    """Relative rate of office-hours work: weekdays 8:30-17:30, none at night or on holidays."""
    local = ctx.local(ts)
    if local.weekday() >= 5 or ctx.is_holiday(ts):
        return 0.0
    hour = local.hour + local.minute / 60
    return 2.6 if 8.5 <= hour < 17.5 and not 12 <= hour < 13.5 else 0.0


class Market(Department):
    name = "market"
    topics = (TOPIC,)

    def __init__(self, ctx: SimContext) -> None:
        super().__init__(ctx)
        rng = ctx.rng("market/entities")
        self.companies = [f"MC-{n:04d}" for n in range(1, 601)]
        self.phase = {item: rng.uniform(0, 2 * math.pi) for item in PRICES}

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[Incident]:
        ctx, out = self.ctx, []

        def add(model: str, n: int, key: str, start: float, end: float, note: str,
                **extra: object) -> None:
            out.append(Incident(self.incident_id(model, n), model, key, start, end,
                                self.name, note, dict(extra)))

        rng = ctx.rng("market/plan/bid")
        for n, start in enumerate(ctx.incident_times(rng)):
            add("market.bid.blacklisted_company", n, BLACKLISTED[n % len(BLACKLISTED)], start,
                start, "blacklisted company bids", item=rng.choice(BID_ITEMS))
        rng = ctx.rng("market/plan/jump")
        for n, start in enumerate(ctx.incident_times(rng, lead=2 * 3600, tail=5 * 3600)):
            item, climb, span = ESSENTIAL[n % len(ESSENTIAL)], rng.uniform(0.22, 0.35), \
                rng.uniform(2, 4) * 3600
            # +20% is reached at 20/climb of the climb (the climb is linear)
            end = start + span * 0.2 / climb + 900
            add("market.price.essential_jump", n, item, start, end,
                "essential-goods price up 20% within a day", climb=climb, span=span)
            # A climb of a fifth within hours is also out of line with the good's usual prices.
            out.append(Incident(f"{self.incident_id('market.price.essential_jump', n)}-anomaly",
                                "market.price.anomaly", item, start, end, self.name,
                                "companion: the climb is out of line with recent prices",
                                {"companion": True}))
        rng = ctx.rng("market/plan/anomaly")
        for n, start in enumerate(ctx.incident_times(rng, lead=13 * 3600)):
            start = self.ctx.start + math.ceil((start - self.ctx.start) / 900) * 900  # a report
            add("market.price.anomaly", n, OTHER[n % len(OTHER)], start, start,
                "price out of line with its recent level",
                factor=rng.choice((1, -1)) * rng.uniform(0.06, 0.10))
        rng = ctx.rng("market/plan/cluster")
        for n, start in enumerate(ctx.incident_times(rng, tail=6 * 3600)):
            companies = rng.sample(self.companies, rng.choice((3, 4)))
            gaps = sorted(rng.uniform(600, 4 * 3600) for _ in companies[1:])
            add("market.food.inspection_failure_cluster", n, FOOD[n % len(FOOD)], start,
                start + gaps[1], "food-inspection failures cluster", companies=companies,
                gaps=[0.0, *gaps])
        rng = ctx.rng("market/plan/credit")
        for n, start in enumerate(ctx.incident_times(rng)):
            add("market.credit.downgraded_d_with_permits", n, PERMITS[n % len(PERMITS)], start,
                start, "company holding permits downgraded to credit level D")
        rng = ctx.rng("market/plan/repeat")
        for n, start in enumerate(ctx.incident_times(rng, tail=6 * 3600)):
            gap = rng.uniform(1, 5) * 3600
            add("market.inspection.repeated_failures", n, f"MC-07{n % 100:02d}", start,
                start + gap, "company fails inspections repeatedly", gap=gap,
                items=rng.sample(NON_FOOD, 2))
        return out

    # ---------------------------------------------------------------- events
    def _record(self, ts: float, company: str, kind: str, n: int | str,
                **fields: object) -> Envelope:
        value = {"event_id": f"MR-{company}-{kind}-{int(ts * 1000)}-{n}",
                 "ts": self.ctx.iso(ts), "source": "market", "company_id": company,
                 "kind": kind}
        value.update({k: v for k, v in fields.items() if v is not None})
        return Envelope(ts, TOPIC, company, value)

    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        yield from self._prices(t0, t1, incidents)
        yield from self._background(t0, t1)
        for incident in incidents:
            yield from self._incident(incident)

    def _price(self, item: str, ts: float, rng_noise: float, incidents: list[Incident]) -> float:
        local = self.ctx.local(ts)
        hour = local.hour + local.minute / 60
        price = PRICES[item] * (1 + 0.004 * math.sin(2 * math.pi * hour / 24 + self.phase[item]))
        price *= 1 + rng_noise
        for i in incidents:
            if i.key != item:
                continue
            if i.model_id == "market.price.essential_jump" and ts >= i.start:
                climb, span = i.extra["climb"], i.extra["span"]
                up = min(1.0, (ts - i.start) / span)
                ease = max(0.0, 1 - (ts - i.start - span) / (2 * 86400))  # slowly back
                price *= 1 + climb * min(up, ease)
            elif i.model_id == "market.price.anomaly" and "factor" in i.extra \
                    and abs(ts - i.start) < 1:
                price *= 1 + i.extra["factor"]
        return round(price, 2)

    def _prices(self, t0: float, t1: float, incidents: list[Incident]) -> Iterator[Envelope]:
        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour, "prices")
            for ts in every(hour, hour + 3600, 900, self.ctx.start):
                for item in PRICES:
                    noise = rng.gauss(0, 0.0025)
                    if t0 <= ts < t1:
                        yield self._record(ts, MON, "price", item, item=item, value=self._price(
                            item, ts, noise, incidents))

    def _background(self, t0: float, t1: float) -> Iterator[Envelope]:
        ctx = self.ctx

        def office(t: float) -> float:
            return _office(t, ctx)

        for hour in self.source_hours(t0, t1):
            rng = self.slice_rng(hour, "records")
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 8 * ctx.rate, office)):
                item = rng.choice(FOOD + NON_FOOD)
                yield self._record(ts, rng.choice(self.companies), "inspection", n, item=item,
                                   result="fail" if rng.random() < 0.03 else "pass")
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 4 * ctx.rate, office)):
                company = rng.choice(self.companies + list(PERMITS))
                yield self._record(ts, company, "bid", n, item=rng.choice(BID_ITEMS),
                                   value=round(rng.uniform(0.2, 30), 2))
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 20 * ctx.rate, office)):
                company = rng.choice(self.companies + list(PERMITS))
                levels = ("A", "B", "C", "D") if company not in PERMITS else ("A", "B", "C")
                weights = (50, 35, 12, 3)[:len(levels)]
                yield self._record(ts, company, "credit", n,
                                   credit_level=rng.choices(levels, weights)[0])
            for n, ts in enumerate(arrivals(rng, hour, hour + 3600, 1 * ctx.rate, office)):
                yield self._record(ts, rng.choice(self.companies), "violation", n,
                                   item=rng.choice(("false_advertising", "unlicensed_sale",
                                                    "price_not_marked", "expired_food")),
                                   value=round(rng.uniform(0.5, 20), 1))

    def _incident(self, i: Incident) -> Iterator[Envelope]:
        x = i.extra
        if i.model_id == "market.bid.blacklisted_company":
            yield self._record(i.start, i.key, "bid", "x", item=x["item"], value=12.5)
        elif i.model_id == "market.food.inspection_failure_cluster":
            for n, (company, gap) in enumerate(zip(x["companies"], x["gaps"], strict=True)):
                yield self._record(i.start + gap, company, "inspection", f"x{n}", item=i.key,
                                   result="fail")
        elif i.model_id == "market.credit.downgraded_d_with_permits":
            yield self._record(i.start, i.key, "credit", "x1", credit_level="D")
        elif i.model_id == "market.inspection.repeated_failures":
            for n, ts in enumerate((i.start, i.start + x["gap"])):
                yield self._record(ts, i.key, "inspection", f"x{n}", item=x["items"][n],
                                   result="fail")
