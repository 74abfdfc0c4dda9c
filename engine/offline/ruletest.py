"""Runs the tests written inside rule files, like ``promtool test rules``.

Each test feeds its events to a fresh core holding only its rule, in event time, then advances
the clock to ``until``; the alerts that rule raises must match ``expect`` one for one, in order.

Personal fields are hashed with ``DEVELOPMENT_KEY`` here whatever the machine configures, so a
summary's expected token (``driver h:…``) is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import timedelta

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.format import ExpectedAlert, RuleTest
from engine.rule_files.loader import CompiledRule
from models.durations import format_duration
from topics.codec import Event, decode
from topics.personal_data import DEVELOPMENT_KEY, hashing_key
from topics.records import Alert, DeadLetter


@dataclass(slots=True)
class TestOutcome:
    rule_id: str
    file: str
    test: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def run_rule_tests(rules: list[CompiledRule],
                   around: Callable[[list[tuple[CompiledRule, RuleTest]]],
                                    Iterable[tuple[CompiledRule, RuleTest]]] = lambda pairs: pairs
                   ) -> list[TestOutcome]:
    """Every test of every rule, in order; ``around`` may wrap the (rule, test) pairs (the
    CLI's progress bar)."""
    pairs = [(rule, test) for rule in rules for test in rule.spec.tests]
    return [run_rule_test(rule, test) for rule, test in around(pairs)]


def run_rule_test(rule: CompiledRule, test: RuleTest) -> TestOutcome:
    with hashing_key(DEVELOPMENT_KEY):
        return _run_rule_test(rule, test)


def _run_rule_test(rule: CompiledRule, test: RuleTest) -> TestOutcome:
    outcome = TestOutcome(rule.id, str(rule.file), test.name)
    start = test.start.timestamp()
    events: list[Event] = []
    lines = [(at, fields, item.topic) for item in test.events for at, fields in item.expanded()]
    for i, (at, own, topic) in enumerate(sorted(lines, key=lambda line: line[0])):
        fields = {**test.given, **own}
        fields.setdefault("event_id", f"test-{i}")
        fields.setdefault("source", "rule-test")
        fields["ts"] = test.start + timedelta(seconds=at)
        decoded = decode(topic or rule.spec.sources[0], fields)
        if isinstance(decoded, DeadLetter):
            outcome.problems.append(f"event at {format_duration(at)} is not a valid "
                                    f"event: {decoded.reason}")
            continue
        events.append(decoded)
    if outcome.problems:
        return outcome

    rule = with_test_reference(rule, test)
    core = ScoringCore([rule], MemoryStore())
    alerts: list[Alert] = []
    for event in events:
        alerts += core.advance(event.ts)
        alerts += core.process([event])
    if test.until is not None:
        alerts += core.advance(start + test.until)
    alerts = [a for a in alerts if a.model_id == rule.id]
    if not _matches(alerts, test.expect, start):
        outcome.problems.append(_diff(alerts, test.expect, start))
    return outcome


def with_test_reference(rule: CompiledRule, test: RuleTest) -> CompiledRule:
    """The rule with the test's own reference records added to a copy of its reference data."""
    if not test.reference:
        return rule
    reference = rule.model.env.reference.copy()
    for table, records in test.reference.items():
        for key, record in records.items():
            reference.put(table, key, record)
    return rule.with_env(dc_replace(rule.model.env, reference=reference))


def _matches(alerts: list[Alert], expected: list[ExpectedAlert], start: float) -> bool:
    if len(alerts) != len(expected):
        return False
    for alert, want in zip(alerts, expected, strict=True):
        if want.state != alert.state:
            return False
        if want.at is not None and abs(alert.last_ts - start - want.at) > 1e-6:
            return False
        if want.severity is not None and want.severity != alert.severity:
            return False
        if want.key is not None and want.key != alert.key:
            return False
        if want.summary is not None and want.summary != alert.summary:
            return False
    return True


def describe_alert(alert: Alert, start: float) -> str:
    return (f"at {format_duration(round(alert.last_ts - start, 3))} {alert.state} "
            f"{alert.severity} key={alert.key} summary={alert.summary!r}")


def _describe_expected(want: ExpectedAlert) -> str:
    parts = [f"at {format_duration(want.at)}" if want.at is not None else "at (any)", want.state]
    if want.severity:
        parts.append(str(want.severity))
    if want.key:
        parts.append(f"key={want.key}")
    if want.summary:
        parts.append(f"summary={want.summary!r}")
    return " ".join(parts)


def _diff(alerts: list[Alert], expected: list[ExpectedAlert], start: float) -> str:
    want = [f"    - {_describe_expected(e)}" for e in expected] or ["    (no alerts)"]
    got = [f"    - {describe_alert(a, start)}" for a in alerts] or ["    (no alerts)"]
    return "\n".join(["alerts differ", "  expected:", *want, "  got:", *got])
