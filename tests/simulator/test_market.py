"""The market simulator: the planned incidents of its models detected by the rule set (what
every department does alike: ``test_departments_alike``)."""

import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    simulate,
)

DEPARTMENT = "market"


@pytest.fixture(scope="module")
def quality():
    # Ten days of history: the price-anomaly model judges nothing in a good's first ten days.
    scores, meta = run_quality(seed=3, start=START, duration="1d",
                               departments=["market"], rules_dir=RULES, history="10d")
    return scores, meta


@pytest.mark.slow
def test_every_market_model_detects_both_planned_incidents(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    for model in ("market.bid.blacklisted_company", "market.price.essential_jump",
                  "market.price.anomaly", "market.food.inspection_failure_cluster",
                  "market.credit.downgraded_d_with_permits",
                  "market.inspection.repeated_failures"):
        # an essential good's climb is a price anomaly too (a companion incident)
        planned = 4 if model == "market.price.anomaly" else 2
        assert scores[model].incidents == planned, model
        assert scores[model].detected == planned, model


@pytest.mark.slow
def test_rule_based_market_models_raise_no_false_alarm_on_the_background(quality):
    scores, _ = quality
    for model in ("market.bid.blacklisted_company", "market.price.essential_jump",
                  "market.credit.downgraded_d_with_permits"):
        assert scores[model].alerts == scores[model].matched_alerts, model


def test_background_never_gives_a_permit_holder_level_d_or_a_listed_company_a_bid():
    _, events = simulate(DEPARTMENT, 13, 24)
    incident_events = {(e.key, e.ts) for e in events if "-x" in e.value["event_id"]}
    for e in events:
        v = e.value
        if (e.key, e.ts) in incident_events:
            continue
        if v["kind"] == "credit" and v["company_id"].startswith("MC-080"):
            assert v["credit_level"] != "D"
        if v["kind"] == "bid":
            assert v["company_id"] not in ("MC-0901", "MC-0902")
