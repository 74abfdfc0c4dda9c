"""The gov simulator: the planned incidents of its models detected by the rule set (what
every department does alike: ``test_departments_alike``)."""

import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    simulate,
)

DEPARTMENT = "gov"


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
