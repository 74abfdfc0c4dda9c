"""A rule that raises costs only itself, on that event: the other rules score the event, the rest
of the batch is scored, and the failure is recorded for the worker to dead-letter and count."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from river import stats

from engine.core import MemoryStore, ScoringCore
from engine.failures import is_fatal
from models.base import Reading, WarningModel
from tests.rulekit import FACILITY, rule, tank


class Faulty(WarningModel[Any]):
    """Wraps a rule's model and raises where told to: a defect injected into scoring."""

    kind = "threshold"

    def __init__(self, inner: WarningModel[Any], score: Any = None, learn: Any = None,
                 deadline: Any = None) -> None:
        super().__init__(inner.params, inner.env)
        self.inner = inner
        self.fail_score, self.fail_learn, self.fail_deadline = score, learn, deadline
        self.uses_deadlines = inner.uses_deadlines  # type: ignore[misc]

    def new_state(self) -> Any:
        return {"inner": self.inner.new_state(), "learned": 0}

    def score_one(self, state: Any, event: Any) -> Reading:
        if self.fail_score is not None:
            self.fail_score(event)
        return self.inner.score_one(state["inner"], event)

    def learn_one(self, state: Any, event: Any) -> None:
        state["learned"] += 1
        if self.fail_learn is not None:
            self.fail_learn(event)
        self.inner.learn_one(state["inner"], event)

    def next_deadline(self, state: Any) -> float | None:
        return self.inner.next_deadline(state["inner"])

    def on_deadline(self, state: Any, at: float) -> Reading:
        if self.fail_deadline is not None:
            self.fail_deadline(at)
        return self.inner.on_deadline(state["inner"], at)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


def faulty(compiled: Any, **how: Any) -> Any:
    return dataclasses.replace(compiled, model=Faulty(compiled.model, **how))


def raise_on_13(event: Any) -> None:
    if event.data.get("temp_c") == 13:
        raise ZeroDivisionError("a defect in the model")


def hot(**fields: Any) -> Any:
    return rule(**{"id": "test.tank.hot", "source": FACILITY, "kind": "threshold",
                   "condition": "temp_c > 10", **fields})


def test_a_rule_raising_on_one_event_costs_only_that_rule_on_that_event():
    broken = faulty(hot(id="test.tank.broken"), score=raise_on_13)
    core = ScoringCore([broken, hot()], MemoryStore())
    alerts = core.process([tank(0, "T1", temp_c=70), tank(1, "T2", temp_c=13),
                           tank(2, "T3", temp_c=80)])
    assert sorted((a.model_id, a.key) for a in alerts) == [
        ("test.tank.broken", "T1"), ("test.tank.broken", "T3"),
        ("test.tank.hot", "T1"), ("test.tank.hot", "T2"), ("test.tank.hot", "T3")]
    (failure,) = core.take_failures()
    assert (failure.rule_id, failure.key, failure.phase, failure.index) == (
        "test.tank.broken", "T2", "score", 1)
    assert failure.reason == "ZeroDivisionError: a defect in the model"
    assert failure.event is not None and failure.event.data["temp_c"] == 13
    assert core.take_failures() == []  # taken once


def test_a_river_panic_while_learning_starts_that_keys_state_afresh():
    def panic(event: Any) -> None:  # what river's rolling quantile does with a NaN
        stats.RollingQuantile(0.5, 10).update(math.nan)

    with pytest.raises(BaseException) as caught:
        panic(None)
    assert not isinstance(caught.value, Exception)  # pyo3's PanicException: BaseException only
    assert not is_fatal(caught.value)

    def panic_on_13(event: Any) -> None:
        if event.data.get("temp_c") == 13:
            panic(event)

    learner = faulty(hot(id="test.tank.learner"), learn=panic_on_13)
    store = MemoryStore()
    core = ScoringCore([learner], store)
    core.process([tank(0, "T1", temp_c=5), tank(1, "T1", temp_c=6), tank(2, "T2", temp_c=7)])
    core.process([tank(3, "T1", temp_c=13)])
    (failure,) = core.take_failures()
    assert (failure.phase, failure.key) == ("learn", "T1")
    assert "PanicException" in failure.reason and "starts afresh" in str(failure)
    state_key = learner.state_key
    assert store.load(FACILITY, "T1")[state_key].model["learned"] == 0  # fresh
    assert store.load(FACILITY, "T2")[state_key].model["learned"] == 1  # untouched
    core.process([tank(4, "T1", temp_c=20)])  # and the key is scored again
    assert store.load(FACILITY, "T1")[state_key].model["learned"] == 1


def test_a_rule_failing_at_a_deadline_costs_only_that_keys_timer():
    def boom(at: float) -> None:
        raise RuntimeError("deadline defect")

    silent = dict(source=FACILITY, kind="absence", timeout="10m")
    broken = faulty(rule(id="test.tank.silent_broken", **silent), deadline=boom)
    core = ScoringCore([broken, rule(id="test.tank.silent", **silent)], MemoryStore())
    core.process([tank(0, "T1"), tank(0, "T2")])
    alerts = core.advance(3600)
    assert sorted((a.model_id, a.key) for a in alerts) == [
        ("test.tank.silent", "T1"), ("test.tank.silent", "T2")]
    failures = core.take_failures()
    assert sorted((f.rule_id, f.key, f.phase) for f in failures) == [
        ("test.tank.silent_broken", "T1", "deadline"),
        ("test.tank.silent_broken", "T2", "deadline")]
    assert core.advance(7200) == []  # the broken timers are not retried for ever


def test_what_must_end_the_process_is_not_swallowed():
    def interrupt(event: Any) -> None:
        raise KeyboardInterrupt

    core = ScoringCore([faulty(hot(), score=interrupt)], MemoryStore())
    with pytest.raises(KeyboardInterrupt):
        core.process([tank(0, temp_c=20)])


def test_a_non_finite_value_is_skipped_by_a_learned_model_and_counted():
    from models.anomaly import Anomaly, AnomalyParams
    from topics.codec import Event

    model = Anomaly(AnomalyParams(field="pressure_kpa", detector="gaussian", warmup=20))
    state = model.new_state()
    for i in range(30):
        ev = Event(FACILITY, "T1", 60.0 * i, {"pressure_kpa": 500.0 + i % 3})
        model.score_one(state, ev)
        model.learn_one(state, ev)
    bad = Event(FACILITY, "T1", 60.0 * 31, {"pressure_kpa": math.nan})
    assert model.score_one(state, bad).evidence == {"skipped": "unusable_value"}
    model.learn_one(state, bad)  # no panic, nothing learned
    assert state.seen == 30
    compiled = rule(id="test.tank.pressure", source=FACILITY, kind="anomaly",
                    detector="gaussian", field="pressure_kpa", warmup=20)
    core = ScoringCore([compiled], MemoryStore())
    for i in range(25):
        core.process([tank(60.0 * i, pressure_kpa=500.0 + i % 3)])
    bad_event = tank(60.0 * 26, pressure_kpa=1.0)
    bad_event.data["pressure_kpa"] = math.inf  # past decode, which rejects it
    core.process([bad_event])
    assert core.unused == {("test.tank.pressure", "unusable_value"): 1}
    assert core.take_failures() == []


@pytest.mark.parametrize("detector", ["gaussian", "predictive"])
def test_a_huge_value_does_not_blind_a_learned_model(detector):
    # 1e308 squared is infinite: learned, it left the Gaussian's mean and spread NaN (never to
    # alert again) and made Holt's forecaster overflow.
    from models.anomaly import Anomaly, AnomalyParams
    from topics.codec import Event

    model = Anomaly(AnomalyParams(field="pressure_kpa", warmup=20, detector=detector))
    state = model.new_state()
    for i in range(40):
        value = 500.0 + i % 3 if i < 30 else (-1) ** i * 1e308
        ev = Event(FACILITY, "T1", 60.0 * i, {"pressure_kpa": value})
        reading = model.score_one(state, ev)
        model.learn_one(state, ev)
        if i >= 30:
            assert reading.evidence == {"skipped": "unusable_value"}
    spike = Event(FACILITY, "T1", 60.0 * 41, {"pressure_kpa": 900.0})
    assert model.score_one(state, spike).verdict.value == "breach"
