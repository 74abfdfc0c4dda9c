"""The tourism simulator: deterministic, valid events, holiday peaks, detected incidents."""

from __future__ import annotations

from pathlib import Path

from bench.quality import run_quality
from simulator.base import SimContext, parse_start
from simulator.departments.tourism import Tourism
from simulator.run import reference_city
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[2] / "rules"
START = parse_start("2024-06-03T08:00:00")  # a Monday


def _ctx(start: float = START, seed: int = 5) -> SimContext:
    return SimContext(seed=seed, start=start, end=start + 10 * 3600, city=reference_city(RULES))


def _slice(dept: Tourism, t0: float, t1: float) -> list[tuple]:
    return sorted((e.ts, e.key, e.value["event_id"], e.value.get("visitors_now"))
                  for e in dept.events(t0, t1, dept.plan()) if t0 <= e.ts < t1)


def test_same_seed_same_plan_and_events_however_the_run_is_cut() -> None:
    a, b = Tourism(_ctx()), Tourism(_ctx())
    assert [i.as_json() for i in a.plan()] == [i.as_json() for i in b.plan()]
    whole = _slice(a, START, START + 4 * 3600)
    cut = _slice(b, START, START + 3600 + 123) + _slice(b, START + 3600 + 123, START + 4 * 3600)
    assert whole == sorted(cut)
    assert len(whole) > 500


def test_events_validate() -> None:
    dept = Tourism(_ctx())
    for envelope in dept.events(START, START + 3 * 3600, dept.plan()):
        assert isinstance(decode(envelope.topic, envelope.value, key=envelope.key), Event)


def _peak_share(start: str) -> float:
    begin = parse_start(start)
    dept = Tourism(SimContext(seed=5, start=begin, end=begin + 86400,
                              city=reference_city(RULES)))
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
