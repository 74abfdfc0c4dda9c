"""The decision layer's shortcut for quiet keys does exactly what ``decide`` does."""

from __future__ import annotations

import random

import pytest

from engine.decision import DecisionState, applied_quietly, decide
from models.base import Reading, Verdict

VERDICTS = [Verdict.BREACH, Verdict.CLEAR, Verdict.BAND, Verdict.HOLD]


@pytest.mark.parametrize("seed", range(40))
def test_the_quiet_shortcut_changes_a_key_as_decide_does(seed):
    rng = random.Random(seed)
    hold_for, clear_for, cooldown = (rng.choice([0.0, 30.0, 120.0]) for _ in range(3))
    plain, shortcut = DecisionState(), DecisionState()
    taken = 0
    for step in range(200):
        # mostly forward in time, sometimes an event from the past (other partitions)
        ts = step * 10.0 - (rng.random() * 300 if rng.random() < 0.2 else 0.0)
        verdict = rng.choices(VERDICTS, weights=[2, 5, 1, 2])[0]
        reading = Reading(verdict, {"value": step})
        expected = decide(plain, reading, ts, hold_for, "m", "k", clear_for, cooldown)
        if applied_quietly(shortcut, verdict, ts):
            taken += 1
            got = None
        else:
            got = decide(shortcut, reading, ts, hold_for, "m", "k", clear_for, cooldown)
        assert (got, shortcut) == (expected, plain), (step, verdict, ts)
    assert taken > 0  # the shortcut was taken, not only declined
