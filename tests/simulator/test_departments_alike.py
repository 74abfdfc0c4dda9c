"""What every simulated department must do alike: the same seed gives the same events and
truth, a run cut into slices gives the events of a whole one, and every event validates against
its topic and carries its key. (Departments with checks of their own beside these run them in
their own modules.)"""

import pytest

from tests.simkit import (
    assert_events_valid,
    assert_independent_of_slicing,
    assert_same_seed_same_events,
)

HOURS = {"cross": 24, "emergency": 6, "gov": 24, "market": 24}
"""Hours simulated for the determinism and validity checks (emergency's day is dense)."""


@pytest.mark.parametrize(("department", "hours"), HOURS.items())
def test_same_seed_gives_the_same_events_and_truth(department, hours):
    assert_same_seed_same_events(department, hours)


@pytest.mark.parametrize("department", HOURS)
def test_events_do_not_depend_on_how_the_run_is_cut(department):
    assert_independent_of_slicing(department)


@pytest.mark.parametrize(("department", "hours"), HOURS.items())
def test_every_event_validates_against_its_topic_and_carries_its_key(department, hours):
    assert_events_valid(department, hours)
