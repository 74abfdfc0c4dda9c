"""The alert record a rule's decision publishes: what fired, for which key, and why — bounded.

An alert repeats what the event said (the summary fills in its fields, the evidence holds the
values the condition read), and an event can carry a lot: so the summary is cut at
``SUMMARY_MAX_CHARS``, every string in the evidence at ``EVIDENCE_VALUE_MAX_CHARS``, and evidence
larger than ``EVIDENCE_MAX_BYTES`` as JSON keeps only the condition and a note. Whatever the
input, an alert fits in a Kafka record.

Personal data (``topics.personal_data``) is protected here, where the alert is built: the
summary is filled from the protected values of the event (a hashed driver, a masked phone, a
dropped name shown as withheld) and scanned once more, the evidence and the key are protected
alike. The rule itself saw the original values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from engine.decision.episodes import DecisionState
from engine.rule_files.loader import CompiledRule
from engine.rule_files.summary import render_summary
from models.places import place_of
from topics.bounds import (
    EVIDENCE_MAX_BYTES,
    EVIDENCE_VALUE_MAX_CHARS,
    SUMMARY_MAX_CHARS,
    cut,
)
from topics.personal_data import OutputProtection, PolicyKind, field_policies
from topics.records import Alert
from topics.registry import EVENT_TOPICS

EVIDENCE_ITEMS_MAX = 100
"""Items of a list or mapping inside the evidence (a window's values, matched keywords)."""


def build_alert(rule: CompiledRule, decision: DecisionState, state: str, key: str,
                data: dict[str, Any]) -> Alert:
    spec = rule.spec
    evidence = dict(decision.evidence or {})
    guard = OutputProtection.of(data, sources_policies(tuple(spec.sources)))
    values = guard.summary_values({**data, **evidence, "key": key})
    evidence = guard.record(evidence)
    key = guard.text(key)
    assert decision.alert_id is not None and decision.episode_start is not None
    # The town (镇街) is the reference data's, from the grid (or, for events that only carry a
    # position, the town it is in): the three-level command starts a work order there.
    grid_id = data.get("grid_id")
    town = place_of(rule.model.env.reference, data)
    # The rule's own text too: a condition may compare with a number (a blocked caller's).
    evidence["condition"] = guard.value(rule.model.describe())
    if spec.hold_for:
        evidence["for_s"] = spec.hold_for
    return Alert(
        alert_id=decision.alert_id,
        model_id=spec.id,
        model_version=spec.version,
        state=state,  # type: ignore[arg-type]
        severity=decision.severity or spec.severity,
        reopened=decision.reopened,
        departments=spec.departments,
        maturity=spec.maturity,
        key=cut(key, EVIDENCE_VALUE_MAX_CHARS),
        sources=spec.sources,
        grid_id=_short(grid_id),
        town=town.town_id if town else None,
        district=_short(data.get("district") or (town.district if town else None)),
        first_ts=decision.episode_start,
        last_ts=decision.last_ts if decision.last_ts is not None else decision.episode_start,
        summary=cut(guard.text(render_summary(spec.summary, values)), SUMMARY_MAX_CHARS),
        evidence=bounded_evidence(evidence),
    )


@lru_cache(maxsize=256)
def sources_policies(sources: tuple[str, ...]) -> dict[str, PolicyKind]:
    """The personal fields of the topics a rule reads, and their policies.

    >>> sources_policies(("events.hazchem.waybill", "events.hotline.ticket"))["driver_id"]
    'hash'
    """
    policies: dict[str, PolicyKind] = {}
    for topic in sources:
        if topic in EVENT_TOPICS:
            policies.update(field_policies(EVENT_TOPICS[topic].schema))
    return policies


def bounded_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """``evidence`` with long strings cut and long collections shortened; if it is still larger
    than ``EVIDENCE_MAX_BYTES`` as JSON, only its condition and a note saying so.

    >>> bounded_evidence({"text": "火" * 5000})["text"][-20:]
    '火火…[cut: 5000 chars]'
    >>> sorted(bounded_evidence({f"k{i}": "x" * 900 for i in range(40)}))
    ['evidence_cut']
    """
    bounded = {str(k)[:100]: _bounded(v, 3) for k, v in list(evidence.items())[:EVIDENCE_ITEMS_MAX]}
    size = len(orjson.dumps(bounded, default=str))
    if size <= EVIDENCE_MAX_BYTES:
        return bounded
    kept = {"condition": bounded["condition"]} if "condition" in bounded else {}
    if kept and len(orjson.dumps(kept, default=str)) > EVIDENCE_MAX_BYTES // 2:
        kept = {}
    return {**kept, "evidence_cut": f"{size} bytes of evidence left out (more than "
                                    f"{EVIDENCE_MAX_BYTES})"}


def _bounded(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return cut(value, EVIDENCE_VALUE_MAX_CHARS)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth <= 0:
        return cut(str(value), EVIDENCE_VALUE_MAX_CHARS)
    if isinstance(value, dict):
        return {str(k)[:100]: _bounded(v, depth - 1)
                for k, v in list(value.items())[:EVIDENCE_ITEMS_MAX]}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth - 1) for v in value[:EVIDENCE_ITEMS_MAX]]
    return value  # datetimes and the like: Alert's serializer writes them


def _short(value: Any) -> Any:
    return cut(value, EVIDENCE_VALUE_MAX_CHARS) if isinstance(value, str) else value
