"""Every rule file in rules/ loads cleanly, and every test written in it passes."""

import json
from pathlib import Path

import pytest

from engine.offline.ruletest import run_rule_test
from engine.rule_files.format import json_schema
from engine.rule_files.loader import load_rules

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


def test_every_evidence_name_the_catalogue_produces_is_one_its_kind_declares(monkeypatch):
    # What a summary may name is checked against the source's fields and the kind's declared
    # evidence (``WarningModel.evidence_fields``): the declaration must cover what kinds emit.
    import engine.decision.decider
    from engine.rule_files.loader import schema_fields
    from models import KINDS

    seen: dict[str, set[str]] = {}
    real = engine.decision.decider.build_alert

    def spy(rule, decision, state, key, data):
        seen.setdefault(rule.id, set()).update(decision.evidence or {})
        return real(rule, decision, state, key, data)

    monkeypatch.setattr(engine.decision.decider, "build_alert", spy)
    for rule in LOADED.rules:
        for test in rule.spec.tests:
            run_rule_test(rule, test)
    undeclared = {}
    for rule in LOADED.rules:
        names = KINDS[rule.spec.kind].summary_names(rule.model.params)
        prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
        known = set().union(*(schema_fields(t) for t in rule.spec.sources)) | names
        missing = {n for n in seen.get(rule.id, ()) if n not in known
                   and not (prefixes and n.startswith(prefixes))}
        if missing:
            undeclared[rule.id] = sorted(missing)
    assert undeclared == {}
    assert len(seen) > 120  # nearly every rule fired in its tests
