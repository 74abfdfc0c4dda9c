"""The tourism simulator: deterministic, valid events, holiday peaks, detected incidents."""

from __future__ import annotations

import pytest

from bench.quality import run_quality
from simulator.base import SimContext, parse_start
from simulator.departments.tourism import Tourism
from tests.simkit import RULES, context, decoded, sliced

START = parse_start("2024-06-03T08:00:00")  # a Monday


def _ctx(start: str = "2024-06-03T08:00:00", seed: int = 5, hours: float = 10) -> SimContext:
    return context(seed, hours, start)


def test_same_seed_same_plan_and_events_however_the_run_is_cut() -> None:
    a, b = Tourism(_ctx()), Tourism(_ctx())
    assert [i.as_json() for i in a.plan()] == [i.as_json() for i in b.plan()]
    whole = sliced(a, [START, START + 4 * 3600])
    assert whole == sliced(b, [START, START + 3600 + 123, START + 4 * 3600])
    assert len(whole) > 500


def test_events_validate() -> None:
    dept = Tourism(_ctx())
    for envelope in dept.events(START, START + 3 * 3600, dept.plan()):
        decoded(envelope)


def _peak_share(start: str) -> float:
    begin = parse_start(start)
    dept = Tourism(_ctx(start, hours=24))
    shares = [e.value["visitors_now"] / e.value["capacity"]
              for e in dept.events(begin + 13 * 3600, begin + 16 * 3600, [])
              if "capacity" in e.value]
    return max(shares)


def test_holidays_fill_the_sites() -> None:
    weekday = _peak_share("2024-06-04T00:00:00")   # a Tuesday: under 80% everywhere
    holiday = _peak_share("2024-10-02T00:00:00")   # National Day week
    assert weekday < 0.8
    assert holiday > 0.8
    assert holiday > 2 * weekday


@pytest.mark.slow
def test_incidents_are_detected_by_their_models() -> None:
    # Ten days of history: the visitor-surge model judges nothing in a site's first ten days.
    scores, meta = run_quality(seed=3, start="2024-06-03T08:00:00", duration="10h",
                               departments=["tourism"], rules_dir=RULES, history="10d")
    assert meta["bad"] == 0
    for model in ("tourism.site.capacity_80", "tourism.site.capacity_full",
                  "tourism.hotel.occupancy_high", "tourism.site.counter_offline",
                  "tourism.site.capacity_forecast"):
        score = scores[model]
        assert score.incidents >= 2, model
        assert score.detected == score.incidents, model
        assert score.alerts == score.incidents, model
    assert scores["tourism.site.visitor_surge"].detected >= 1
