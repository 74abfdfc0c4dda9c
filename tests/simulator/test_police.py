"""The 110 police simulator: deterministic, valid incidents, and its incidents are caught."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import quality
from simulator.base import SimContext
from simulator.city import metres
from simulator.departments.police import TOPIC, Police, station_of
from tests.simkit import START, context, decoded, department_rules, only_department, sliced


@pytest.fixture(scope="module")
def own_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return department_rules(tmp_path_factory, "police")


def _ctx(seed: int = 3, hours: float = 6) -> SimContext:
    return context(seed, hours)


def test_same_seed_same_events_whatever_the_slices() -> None:
    ctx = _ctx()
    hourly = [ctx.start + h * 3600 for h in range(7)]
    odd = [ctx.start, ctx.start + 999.0, ctx.start + 5 * 3600 + 1, ctx.end]
    first = sliced(Police(ctx), hourly)
    assert first == sliced(Police(_ctx()), odd)
    assert first != sliced(Police(_ctx(seed=4)), hourly)


def test_events_validate() -> None:
    ctx = _ctx()
    dept = Police(ctx)
    kinds: Counter[str] = Counter()
    envelopes = list(dept.events(ctx.start, ctx.end, dept.plan()))
    for envelope in envelopes:
        assert envelope.topic == TOPIC
        decoded(envelope)
        assert envelope.value["station"] == station_of(envelope.value["grid_id"])
        kinds[envelope.value["kind"]] += 1
    assert kinds["dispute"] > kinds["fight"] > 0
    assert kinds["drunk_driving"] > 0
    # background missing persons are adults; only the planned ones are minors
    minors = [e for e in envelopes if e.value["kind"] == "missing_person"
              and e.value["subject_age"] < 18]
    assert {e.key for e in minors} == {f"PX-MIN-{n}" for n in range(ctx.incidents_per_model)}


def test_a_day_of_background_is_a_realistic_volume() -> None:
    ctx = _ctx(seed=1, hours=24)
    count = sum(1 for _ in Police(ctx).events(ctx.start, ctx.end, []))
    assert 4_000 < count < 50_000


def test_station_areas_are_blocks_of_adjacent_cells() -> None:
    # rows 4-5 and columns 0-2 make one station's area; column 3 starts the next
    assert station_of("G0400") == station_of("G0402") == station_of("G0502") == "PS-0200"
    assert station_of("G0403") == "PS-0201"
    assert station_of("G0602") == "PS-0300"


@pytest.mark.slow
def test_incidents_are_detected(monkeypatch: pytest.MonkeyPatch, own_rules: Path) -> None:
    only_department(monkeypatch, "police", Police)
    scores, meta = quality.run_quality(seed=3, start=START, duration="6h",
                                       departments=["police"], rules_dir=own_rules)
    assert meta["bad"] == 0
    planned = {m for m, s in scores.items() if s.incidents}
    # a run from midnight has room for every model; drink-driving clusters start between 20:00
    # and 02:00 at least 2 h apart, and only 00:00-02:00 of this run qualifies: one of them
    assert planned == {
        "police.grid.fight_cluster", "police.district.telecom_fraud_surge",
        "police.address.repeat_incidents", "police.incident.crowd_gathering",
        "police.station.burglary_series", "police.road.traffic_accident_cluster",
        "police.incident.major", "police.grid.drunk_driving_night_cluster",
        "police.incident.missing_minor"}
    for model in planned:
        expected = 1 if model == "police.grid.drunk_driving_night_cluster" else 2
        assert scores[model].detected == scores[model].incidents == expected, model
    # single-incident models alert on planned incidents only
    for model in ("police.incident.crowd_gathering", "police.incident.major",
                  "police.incident.missing_minor"):
        assert scores[model].alerts == 2, model


@pytest.mark.slow
def test_grid_surges_are_detected_once_the_baseline_has_its_history(
        monkeypatch: pytest.MonkeyPatch, own_rules: Path) -> None:
    only_department(monkeypatch, "police", Police)
    scores, _ = quality.run_quality(seed=3, start=START, duration="12h",
                                    departments=["police"], rules_dir=own_rules)
    # surges are planned from 8 h into the run, when every cell has 6 hours of history
    surge = scores["police.district.grid_incident_surge"]
    assert surge.incidents == surge.detected == 2


CLUSTERS = {"police.grid.fight_cluster": 500, "police.grid.drunk_driving_night_cluster": 500,
            "police.station.burglary_series": 1000,
            "police.road.traffic_accident_cluster": 1000}
"""Each planned cluster model and the near_m of its rule."""


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_planned_cluster_s_reports_are_in_its_cell_and_within_its_rule_s_reach(seed: int
                                                                                 ) -> None:
    ctx = _ctx(seed, hours=48)
    seen = set()
    for incident in Police(ctx).plan():
        if incident.model_id not in CLUSTERS:
            continue
        seen.add(incident.model_id)
        records = incident.extra["records"]
        points = [(r["fields"]["lat"], r["fields"]["lon"]) for r in records]
        assert {ctx.city.grid_of(*p) for p in points} == {r["grid"] for r in records}
        assert len({r["grid"] for r in records}) == 1
        assert max(metres(a, b) for a in points for b in points) <= CLUSTERS[incident.model_id]
    assert seen == set(CLUSTERS)
