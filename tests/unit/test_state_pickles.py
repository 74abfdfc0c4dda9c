"""Per-key state pickles by position (compact, fast: every key a commit covers is pickled), and
state pickled before that still loads."""

from __future__ import annotations

import copyreg
import io
import pickle
import random
from collections import deque
from dataclasses import fields, is_dataclass
from typing import Any

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.decision import DecisionState
from engine.entity_state import EntityState as Entity
from engine.entity_state import RuleState
from engine.rule_files.loader import load_rules
from simulator.base import SimContext, parse_start
from simulator.run import Simulation
from tests.simkit import RULES, START, city
from topics.codec import Event, decode


def _ours(obj: Any) -> bool:
    return (is_dataclass(obj) and hasattr(type(obj), "__slots__")
            and type(obj).__module__.startswith(("engine.", "models.")))


def _plain(obj: Any) -> Any:
    """Comparable contents: river's objects have no ``==`` (and pickle may share equal strings
    differently after a load, so the bytes may differ)."""
    if is_dataclass(obj):
        return type(obj).__name__, tuple(_plain(getattr(obj, f.name)) for f in fields(obj))
    if isinstance(obj, dict):
        return tuple(sorted((repr(k), _plain(v)) for k, v in obj.items()))
    if isinstance(obj, list | tuple | deque):
        return type(obj).__name__, tuple(_plain(item) for item in obj)
    if isinstance(obj, float):
        return repr(obj)  # nan equals itself
    if isinstance(obj, random.Random):
        return "Random"  # river's Gaussian is pickled without its generator (models.anomaly)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return type(obj).__name__, _plain(vars(obj))
    if obj is None or isinstance(obj, int | str | bytes | type):
        return obj
    return type(obj).__name__, pickle.dumps(obj)  # river's compiled objects: their own bytes


def _state_classes(obj: Any, found: set[type]) -> set[type]:
    if _ours(obj):
        found.add(type(obj))
        for f in fields(obj):
            _state_classes(getattr(obj, f.name), found)
    elif isinstance(obj, dict):
        for value in obj.values():
            _state_classes(value, found)
    elif isinstance(obj, list | tuple | deque | set):
        for item in obj:
            _state_classes(item, found)
    return found


@pytest.fixture(scope="module")
def entities() -> list[Entity]:
    begin = parse_start(START)
    sim = Simulation(SimContext(seed=5, start=begin, end=begin + 2 * 3600, city=city()))
    events = [e for e in (decode(env.topic, env.value, key=env.key) for env in sim.events())
              if isinstance(e, Event)]
    store = MemoryStore()
    core = ScoringCore(load_rules([RULES]).rules, store)
    for i in range(0, len(events), 500):
        core.process(events[i:i + 500])
    return [entity for _, _, entity in store.entities()]


@pytest.mark.slow
def test_every_state_class_of_the_citys_entities_pickles_by_position(entities):
    classes: set[type] = set()
    for entity in entities:
        _state_classes(entity, classes)
    assert {RuleState, DecisionState} < classes and len(classes) >= 8
    by_slot_names = sorted(c.__name__ for c in classes if c.__reduce__ is object.__reduce__)
    assert by_slot_names == []
    for entity in entities:
        pickled = pickle.dumps(entity, protocol=pickle.HIGHEST_PROTOCOL)
        assert _plain(pickle.loads(pickled)) == _plain(entity)


class _AsBefore(pickle.Pickler):
    """Pickles state as the worker did before ``pickled_by_position``: slots by name, and
    ``DecisionState`` as a list of its fields."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, DecisionState):
            return copyreg.__newobj__, (DecisionState,), [getattr(obj, f.name)
                                                          for f in fields(obj)]
        if _ours(obj):
            return copyreg.__newobj__, (type(obj),), (None, {f.name: getattr(obj, f.name)
                                                             for f in fields(obj)})
        return NotImplemented


@pytest.mark.slow
def test_state_in_a_changelog_written_before_loads_the_same(entities):
    for entity in entities:
        before = io.BytesIO()
        _AsBefore(before, protocol=pickle.HIGHEST_PROTOCOL).dump(entity)
        if entity:
            assert len(before.getvalue()) > len(pickle.dumps(entity, pickle.HIGHEST_PROTOCOL))
        assert _plain(pickle.loads(before.getvalue())) == _plain(entity)


def test_a_field_added_after_a_pickle_was_written_takes_its_default():
    class _Shorter(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, DecisionState):  # as if only three fields had existed
                return DecisionState, (obj.pending_since, obj.firing, obj.alert_id)
            return NotImplemented

    out = io.BytesIO()
    _Shorter(out).dump(DecisionState(pending_since=5.0, firing=True, alert_id="a", reopened=2))
    assert pickle.loads(out.getvalue()) == DecisionState(pending_since=5.0, firing=True,
                                                         alert_id="a")
