"""window's counts of reports that belong together: ``near_m`` (close in place) and
``group_by`` (one value of a field), through the scoring core and its clock; hostile options
and positions."""

import pickle
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import UNDECIDED
from models.geofence import Geofence, GeofenceParams
from models.geometry import metres_between
from models.report_clusters import _most_within
from models.window import Window, WindowParams
from tests.rulekit import drive, rule, rule_text
from topics.codec import Event

POLICE = "events.police.incident"


def fight(ts, lat=30.26, lon=120.16, **extra):
    data = {"incident_id": f"P{ts}", "kind": "fight", "grid_id": "G0405", **extra}
    if lat is not None:
        data |= {"lat": lat, "lon": lon}
    return Event(POLICE, data["incident_id"], float(ts), data)


def cluster_rule(**extra):
    return rule(**{"id": "test.cluster", "source": POLICE, "key": "grid_id", "kind": "window",
                   "aggregate": "count", "size": "1h", "condition": "value >= 3"} | extra)


def run(rules, events, until=None):
    return [(a.state, a.last_ts, a.evidence.get("value"), a.evidence.get("group"))
            for a in drive(ScoringCore(rules, MemoryStore()), events, until)]


def test_three_reports_within_near_m_fire_and_three_across_the_cell_do_not():
    close = [fight(0), fight(600, lat=30.263), fight(1200, lon=120.164)]   # 334 m, 385 m
    spread = [fight(0), fight(600, lat=30.27), fight(1200, lon=120.17)]    # over 900 m apart
    assert run([cluster_rule(near_m=500)], close) == [("firing", 1200.0, 3, None)]
    assert run([cluster_rule(near_m=500)], spread) == []
    # without near_m the cell's count is what counts
    assert run([cluster_rule()], spread) == [("firing", 1200.0, 3, None)]


def test_the_count_is_the_largest_cluster_around_one_report():
    # a chain 400 m apart: the middle report has both others within 500 m
    chain = [fight(0, lat=30.260), fight(60, lat=30.2636), fight(120, lat=30.2672)]
    assert run([cluster_rule(near_m=500)], chain) == [("firing", 120.0, 3, None)]


def test_a_report_without_a_position_counts_as_near_every_other():
    events = [fight(0), fight(600, lat=30.262), fight(1200, lat=None)]
    assert run([cluster_rule(near_m=500)], events) == [("firing", 1200.0, 2 + 1, None)]
    apart = [fight(0), fight(600, lat=30.27), fight(1200, lat=None)]
    assert run([cluster_rule(near_m=500)], apart) == []


def test_a_near_cluster_resolves_by_the_clock_when_its_first_report_leaves_the_hour():
    close = [fight(0), fight(600, lat=30.263), fight(1200, lon=120.164), fight(2400, lat=30.29)]
    assert run([cluster_rule(near_m=500)], close, until=7200) == [
        ("firing", 1200.0, 3, None), ("resolved", 3600.0, 1, None)]   # the two left: 510 m


def test_group_by_counts_each_value_apart_and_names_the_largest():
    types = ["rebate_task", "fake_loan", "rebate_task", "romance", "rebate_task"]
    events = [fight(i * 60, fraud_type=t) for i, t in enumerate(types)]
    assert run([cluster_rule(group_by="fraud_type")], events) == [
        ("firing", 240.0, 3, "rebate_task")]
    assert run([cluster_rule(group_by="fraud_type", condition="value >= 4")], events) == []


def test_a_report_without_the_group_field_counts_in_every_group():
    events = [fight(0, fraud_type="romance"), fight(60, fraud_type="romance"), fight(120)]
    assert run([cluster_rule(group_by="fraud_type")], events) == [
        ("firing", 120.0, 3, "romance")]


def test_group_and_place_together_count_one_group_close_together():
    events = [fight(0, fraud_type="a"), fight(60, fraud_type="a", lat=30.263),
              fight(120, fraud_type="b", lat=30.2605), fight(180, fraud_type="a", lat=30.29)]
    rules = [cluster_rule(group_by="fraud_type", near_m=500, condition="value >= 2")]
    assert run(rules, events) == [("firing", 60.0, 2, "a")]
    rules = [cluster_rule(group_by="fraud_type", near_m=500)]
    assert run(rules, events) == []


def test_cluster_state_pickles_and_resumes_mid_stream():
    model = Window(WindowParams(aggregate="count", size="1h", condition="value >= 3",
                                near_m=500, group_by="fraud_type"))
    state = model.new_state()
    for ev in (fight(0, fraud_type="a"), fight(60, fraud_type="a", lat=30.262)):
        model.learn_one(state, ev)
    resumed = pickle.loads(pickle.dumps(state))
    third = fight(120, fraud_type="a", lon=120.162)
    assert model.score_one(resumed, third).evidence["value"] == 3
    assert model.score_one(state, third).evidence == model.score_one(resumed, third).evidence


@pytest.mark.parametrize("extra", [{"aggregate": "sum", "field": "level"},
                                   {"window": "tumbling"}])
@pytest.mark.parametrize("clustering", [{"near_m": 500}, {"group_by": "fraud_type"}])
def test_clustering_needs_a_sliding_count(extra, clustering):
    params = {"aggregate": "count", "size": "1h", "condition": "value >= 3"} | extra
    with pytest.raises(ValidationError, match="needs 'aggregate: count' and a sliding window"):
        WindowParams(**params, **clustering)


def test_the_cell_index_counts_what_comparing_every_pair_counts():
    rng = random.Random(7)
    for _ in range(500):
        spread = rng.choice([0.001, 0.005, 0.02, 0.1])
        points = [(30.2 + rng.uniform(-spread, spread), 120.1 + rng.uniform(-spread, spread))
                  for _ in range(rng.randint(2, 30))]
        points += points[:rng.randint(0, 3)]  # reports at the very same place
        near = rng.choice([50, 300, 500, 1000, 3000])
        every_pair = max(sum(1 for q in points if metres_between(c, q) <= near) for c in points)
        assert _most_within(points, near) == every_pair


@pytest.mark.parametrize(("line", "message"), [
    ("near_m: .nan", "near_m: Input should be a finite number"),
    ("near_m: .inf", "near_m: Input should be a finite number"),
    ("near_m: 1e400", "near_m: Input should be a finite number"),
    ("near_m: -500", "near_m: Input should be greater than 0"),
    ("near_m: 500m", "near_m: Input should be a valid number"),
    ("group_by: [fraud_type]", "group_by: Input should be a valid string"),
    ("group_by: caller", "unknown field 'caller'"),
    ("near_m: 500\nlat_field: latitude", "near_m places reports by lat_field 'latitude'"),
])
def test_a_hostile_cluster_option_is_refused_on_its_line(line, message):
    text = rule_text(id="test.cluster", source=POLICE, key="grid_id", kind="window",
                     aggregate="count", size="1h", condition="value >= 3")
    text = text.replace("aggregate: count\n", f"aggregate: count\n{line}\n")
    option_line = text.splitlines().index(line.splitlines()[-1]) + 1
    compiled, errors = compile_rule_text(text, Path("cluster.yaml"))
    assert compiled is None
    assert [str(e) for e in errors if message in str(e)], errors
    assert all(str(e).startswith(f"cluster.yaml:{option_line}:") for e in errors
               if message in str(e) and "unknown field" not in str(e)), errors


@pytest.mark.parametrize("place", [{"lat": "30.26", "lon": 120.16}, {"lat": True, "lon": 120.16},
                                   {"lat": [30.26], "lon": {"x": 1}}])
def test_a_position_that_is_not_two_numbers_counts_as_near_every_other(place):
    # lat_field may name any field of the source; one holding text is no position
    model = Window(WindowParams(aggregate="count", size="1h", condition="value >= 3",
                               near_m=500))
    state = model.new_state()
    for ev in (fight(0), fight(600, lat=30.262)):
        model.learn_one(state, ev)
    odd = Event(POLICE, "P9", 1200.0, {"incident_id": "P9", "kind": "fight"} | place)
    reading = model.score_one(state, odd)
    assert reading.evidence["value"] == 3


def test_a_geofence_report_whose_position_is_text_is_undecided_not_a_failure():
    model = Geofence(GeofenceParams(mode="inside", zones=["facility"]))
    event = Event("events.hazchem.vehicle", "V1", 0.0, {"vehicle_id": "V1", "lat": "10.005",
                                                        "lon": 100.005})
    assert model.score_one(model.new_state(), event) is UNDECIDED
