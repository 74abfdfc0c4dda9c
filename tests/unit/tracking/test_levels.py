"""Scorecards per command level (镇街 · 县区 · 市): each tier's own acknowledgements, times
and SLA, from who held each order when."""

from __future__ import annotations

from engine.tracking.scores import scorecards
from tests.unit.tracking.recordkit import T0, order
from topics.records import LevelHold, Scorecard

DAY = 86400.0
LIMITS = {"town": 180.0, "district": 300.0, "city": 300.0}


def held(*steps: tuple[str, float]) -> list[LevelHold]:
    """Holds at (level, seconds after T0), each with the level's limit."""
    return [LevelHold(level=level, place=None if level == "city" else f"{level}-place",
                      since=T0 + at, ack_within_s=LIMITS[level]) for level, at in steps]


def level_cards(orders, fb=(), end: float = 7200.0) -> dict[str, Scorecard]:
    return {c.name: c for c in scorecards([], orders, fb, T0 + end - DAY, T0 + end)
            if c.scope == "level"}


def test_each_level_an_order_reached_counts_it_and_the_one_that_took_it_acknowledged_it():
    climbed = order("O1", ack=500.0, resolved=1100.0, level="city", escalations=2,
                    levels=held(("town", 0), ("district", 180), ("city", 480)))
    at_town = order("O2", ack=60.0, level="town", levels=held(("town", 0)))
    got = level_cards([climbed, at_town])
    assert list(got) == ["town", "district", "city"]  # lowest first
    town, district, city = got["town"], got["district"], got["city"]
    assert (town.orders, town.acknowledged, town.ack_p50_s) == (2, 1, 60.0)
    assert (town.sla_met, town.sla_total) == (1, 2)  # O1 climbed on: missed at the town
    assert (district.orders, district.acknowledged, district.sla_met, district.sla_total) == (
        1, 0, 0, 1)
    # the city took it 20 s after it got it, and resolved it 620 s after
    assert (city.orders, city.acknowledged, city.ack_p50_s, city.sla_compliance) == (
        1, 1, 20.0, 1.0)
    assert (city.resolved, city.resolve_p50_s, city.open_backlog) == (1, 620.0, 0)
    assert town.open_backlog == 1  # O2 is acknowledged but not closed: still the town's work


def test_a_level_still_holding_an_unanswered_order_is_judged_when_its_limit_passed():
    waiting = order("O1", created=7000.0, level="district", escalations=1,
                    levels=held(("town", 7000), ("district", 7180)))
    got = level_cards([waiting], end=7400.0)  # 220 s at the district: within its 300 s
    assert (got["district"].sla_total, got["district"].open_backlog) == (0, 1)
    assert (got["town"].sla_met, got["town"].sla_total, got["town"].open_backlog) == (0, 1, 0)
    late = level_cards([waiting], end=7500.0)  # 320 s: missed
    assert (late["district"].sla_met, late["district"].sla_total) == (0, 1)


def test_orders_recorded_before_the_three_levels_count_for_the_district_then_the_city():
    old = order("O1", ack=400.0, level="city", escalations=1, ack_within_s=300.0,
                district="xihu")
    old.history.insert(1, old.history[0].model_copy(update={"at": T0 + 300.0,
                                                             "what": "escalated"}))
    got = level_cards([old, order("O2", ack=30.0)])
    assert (got["district"].orders, got["district"].acknowledged) == (2, 1)
    assert (got["city"].orders, got["city"].acknowledged, got["city"].ack_p50_s) == (
        1, 1, 100.0)


def test_department_and_model_cards_are_unchanged_by_the_levels():
    climbed = order("O1", ack=500.0, level="city", escalations=2,
                    levels=held(("town", 0), ("district", 180), ("city", 480)),
                    ack_within_s=180.0)
    fire = {f"{c.scope}:{c.name}": c for c in scorecards(
        [], [climbed], [], T0 - DAY, T0 + 7200.0)}["department:fire"]
    # the department's SLA: acknowledged before it first climbed (the starting level's limit)
    assert (fire.orders, fire.ack_p50_s, fire.sla_met, fire.sla_total) == (1, 500.0, 0, 1)
