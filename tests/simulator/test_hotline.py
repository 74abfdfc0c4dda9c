"""The 12345 hotline simulator: deterministic, valid tickets, and its incidents are caught."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import quality
from simulator.base import SimContext
from simulator.city import metres
from simulator.departments.hotline import TOPIC, Hotline
from tests.simkit import START, context, decoded, department_rules, only_department, sliced


@pytest.fixture(scope="module")
def own_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return department_rules(tmp_path_factory, "hotline")


def _ctx(seed: int = 3, hours: float = 6) -> SimContext:
    return context(seed, hours)


def test_same_seed_same_events_whatever_the_slices() -> None:
    ctx = _ctx()
    hourly = [ctx.start + h * 3600 for h in range(7)]
    odd = [ctx.start, ctx.start + 1234.5, ctx.start + 4 * 3600 + 17, ctx.end]
    first = sliced(Hotline(ctx), hourly)
    assert first == sliced(Hotline(_ctx()), odd)
    assert first != sliced(Hotline(_ctx(seed=4)), hourly)


def test_events_validate_and_tickets_have_a_life() -> None:
    ctx = _ctx()
    dept = Hotline(ctx)
    envelopes = list(dept.events(ctx.start, ctx.end, dept.plan()))
    assert len(envelopes) > 300
    statuses: Counter[str] = Counter()
    for envelope in envelopes:
        assert envelope.topic == TOPIC
        decoded(envelope)
        assert envelope.key == envelope.value["ticket_id"]
        statuses[envelope.value["status"]] += 1
    # every ticket is filed once; most are assigned and closed within the six hours
    assert statuses["new"] > statuses["assigned"] > statuses["closed"] > 0
    assert statuses["reopened"] > 0


def test_a_day_of_background_is_a_realistic_volume() -> None:
    ctx = _ctx(seed=1, hours=24)
    dept = Hotline(ctx)
    count = sum(1 for _ in dept.events(ctx.start, ctx.end, []))
    assert 5_000 < count < 50_000


@pytest.mark.slow
def test_incidents_are_detected(monkeypatch: pytest.MonkeyPatch, own_rules: Path) -> None:
    # only this department, whatever other simulator modules are in the package
    only_department(monkeypatch, "hotline", Hotline)
    scores, meta = quality.run_quality(seed=3, start=START, duration="6h",
                                       departments=["hotline"], rules_dir=own_rules)
    assert meta["bad"] == 0
    # between 00:00 and 06:00 every model but the daytime dust cluster has incidents planned
    planned = {m for m, s in scores.items() if s.incidents}
    assert planned == {
        "hotline.ticket.gas_smell", "hotline.grid.gas_smell_cluster",
        "hotline.grid.water_outage_cluster", "hotline.caller.repeat_unresolved",
        "hotline.ticket.overdue", "hotline.ticket.reopened_twice",
        "hotline.ticket.life_safety_keywords", "hotline.grid.night_noise_cluster",
        "hotline.ticket.elderly_welfare_keywords"}
    for model in planned:
        assert scores[model].detected == scores[model].incidents, model
    # a cluster's tickets are each a gas-smell incident: three or four per cluster, plus two
    assert scores["hotline.ticket.gas_smell"].incidents >= 2 + 2 * 3
    # background tickets never mention gas, danger to life or an elderly person in trouble
    for model in ("hotline.ticket.gas_smell", "hotline.ticket.life_safety_keywords",
                  "hotline.ticket.elderly_welfare_keywords"):
        assert scores[model].alerts == scores[model].matched_alerts, model


@pytest.mark.slow
def test_category_surges_are_detected_once_the_baseline_has_its_history(
        monkeypatch: pytest.MonkeyPatch, own_rules: Path) -> None:
    only_department(monkeypatch, "hotline", Hotline)
    scores, _ = quality.run_quality(seed=3, start=START, duration="12h",
                                    departments=["hotline"], rules_dir=own_rules)
    # surges are planned from 8 h into the run, when every category has 6 hours of history
    surge = scores["hotline.district.category_surge"]
    assert surge.incidents == surge.detected == 2


@pytest.mark.slow
def test_new_categories_are_detected_once_grids_have_been_watched(
        monkeypatch: pytest.MonkeyPatch, own_rules: Path) -> None:
    only_department(monkeypatch, "hotline", Hotline)
    model = "hotline.grid.new_category_spike"
    scores, meta = quality.run_quality(seed=3, start=START, duration="2d",
                                       departments=["hotline"], rules_dir=own_rules)
    # planned from 28 h into the run, when busy grids have been watched for a day
    spike = scores[model]
    assert spike.incidents == spike.detected == 2
    # Any other alert is about tickets another incident planted (a district's category surge
    # concentrated in one grid is new to that grid too), never about background tickets alone.
    planted = {(t["grid_id"], t["category"]) for incident in meta["truth"]
               if incident.model_id != model for t, _ in incident.extra.get("tickets", [])}
    ours = {(i.key, t["category"]) for i in meta["truth"] if i.model_id == model
            for t, _ in i.extra["tickets"]}
    fired = {(a.key, a.evidence["group"]) for a in meta["alert_records"]
             if a.model_id == model and a.state == "firing"}
    assert ours <= fired
    assert fired - ours <= planted


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_dust_cluster_s_tickets_are_in_its_cell_and_within_its_rule_s_reach(seed: int) -> None:
    ctx = _ctx(seed, hours=48)
    clusters = [i for i in Hotline(ctx).plan()
                if i.model_id == "hotline.grid.construction_dust_cluster"]
    assert clusters
    for incident in clusters:
        points = [(t["lat"], t["lon"]) for t, _ in incident.extra["tickets"]]
        assert {ctx.city.grid_of(*p) for p in points} == {incident.key}
        assert max(metres(a, b) for a in points for b in points) <= 1000  # the rule's near_m
