"""Every rule file in rules/ loads cleanly, and every test written in it passes."""

import json
from pathlib import Path

import pytest

from engine.loader import load_rules
from engine.rulefile import json_schema
from engine.ruletest import run_rule_test

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
LOADED = load_rules([RULES_DIR])
CASES = [pytest.param(rule, test, id=f"{rule.id}: {test.name}")
         for rule in LOADED.rules for test in rule.spec.tests]


def test_every_rule_file_is_valid():
    assert [str(e) for e in LOADED.errors] == []
    assert LOADED.rules, "no rule files found"


@pytest.mark.parametrize(("rule", "test"), CASES)
def test_rule_file_case(rule, test):
    outcome = run_rule_test(rule, test)
    assert outcome.passed, "\n".join(outcome.problems)


def test_the_published_json_schema_is_current():
    published = json.loads((RULES_DIR / "rule.schema.json").read_text(encoding="utf-8"))
    assert published == json_schema(), "run: yujing schema --out rules/rule.schema.json"
