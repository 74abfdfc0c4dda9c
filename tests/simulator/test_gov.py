"""The gov simulator: deterministic for a seed, valid events, and the planned incidents
of its models detected by the rule set."""


import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    assert_events_valid,
    assert_independent_of_slicing,
    assert_same_seed_same_events,
    simulate,
)

DEPARTMENT = "gov"


def test_same_seed_gives_the_same_events_and_truth():
    assert_same_seed_same_events(DEPARTMENT, 24)


def test_events_do_not_depend_on_how_the_run_is_cut():
    assert_independent_of_slicing(DEPARTMENT)


def test_every_event_validates_against_its_topic_and_carries_its_key():
    assert_events_valid(DEPARTMENT, 24)


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start=START, duration="1d",
                               departments=["gov"], rules_dir=RULES)
    return scores, meta


@pytest.mark.slow
def test_every_gov_model_detects_its_planned_incidents(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    # two near-deadline incidents of their own, and the two overdue approvals, which pass
    # within a day of their deadline too
    expected = {"gov.approval.near_deadline": 4, "gov.approval.overdue": 2,
                "gov.work_order.not_accepted": 2, "gov.work_order.reopened": 2}
    for model, n in expected.items():
        assert scores[model].incidents == n, model
        assert scores[model].detected == n, model
        assert scores[model].alerts == scores[model].matched_alerts, model


def test_background_approvals_are_done_more_than_a_day_before_their_deadline():
    from datetime import datetime

    _, events = simulate(DEPARTMENT, 19, 24)
    for e in events:
        v = e.value
        if v["kind"] == "approval" and v["status"] == "done" and v["item_id"][:4] == "AP-N":
            continue
        if v["kind"] == "approval" and v["status"] == "done" and v["item_id"][:4] != "AP-O":
            due = datetime.fromisoformat(v["due_at"]).timestamp()
            assert due - e.ts > 86400
