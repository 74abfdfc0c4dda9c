"""The windowed early-detection score the anomaly benchmark uses (``bench/detection_score.py``):
checked against the rules it implements, so a benchmark figure means what it says."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detection_score
from detection_score import PROFILES, Series, normalised, raw_score

STANDARD, LOW_FP, LOW_FN = PROFILES["standard"], PROFILES["low_fp"], PROFILES["low_fn"]


def test_its_examples_hold():
    assert doctest.testmod(detection_score).failed == 0


def test_windows_share_a_tenth_of_the_series_and_centre_on_each_label():
    assert Series("s", 2000, [500, 1500]).windows() == [(450, 550), (1450, 1550)]
    assert Series("s", 2000, [500, 520]).windows() == [(450, 570)]  # overlapping: merged


def test_earlier_is_better_and_only_the_first_detection_in_a_window_counts():
    series = Series("s", 1000, [500])
    early, late = raw_score(series, [451], STANDARD), raw_score(series, [540], STANDARD)
    assert 0.98 < early <= 1.0 and 0 < late < early
    assert raw_score(series, [451, 452, 453], STANDARD) == early


def test_false_alarms_cost_by_profile_and_less_just_after_a_window():
    series = Series("s", 1000, [500])
    before = raw_score(series, [100, 451], STANDARD) - raw_score(series, [451], STANDARD)
    just_after = raw_score(series, [560, 451], STANDARD) - raw_score(series, [451], STANDARD)
    assert before == pytest.approx(-0.11) and -0.11 < just_after < 0
    assert raw_score(series, [100], LOW_FP) - raw_score(series, [], LOW_FP) == pytest.approx(-0.22)
    assert raw_score(series, [], LOW_FN) == -2.0


def test_a_corpus_is_normalised_between_never_firing_and_firing_at_every_window_start():
    a, b = Series("a", 1000, [500]), Series("b", 1000, [300, 700])
    control = Series("c", 1000, [])
    assert normalised([(a, []), (b, []), (control, [])], STANDARD) == 0.0
    assert b.windows() == [(275, 325), (675, 725)]  # two anomalies share the tenth
    assert normalised([(a, [450]), (b, [275, 675]), (control, [])], STANDARD) == 100.0
    assert normalised([(a, [450]), (b, [275, 675]), (control, [10])], STANDARD) < 100.0
    assert 0 < normalised([(a, [450]), (b, []), (control, [])], STANDARD) < 50
