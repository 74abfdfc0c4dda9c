"""Property-based fuzzing of the two doors untrusted input comes in by: the event decoder and the
rule loader. Whatever comes in, the answer is a result or a clear error — never an exception —
in bounded time (hypothesis' deadline) and memory (the process's peak, checked at the end)."""

from __future__ import annotations

import json
import math
import resource
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rule_files.loader import compile_rule_text
from engine.rule_files.yaml_source import RuleError
from models.expr import Expression, ExpressionError
from tests.rulekit import FACILITY, rule_text
from topics.bounds import FIELD_MAX_CHARS, TEXT_MAX_CHARS, fits
from topics.codec import Event, EventTimePolicy, decode
from topics.records import DeadLetter
from topics.registry import EVENT_TOPICS

FUZZ = settings(max_examples=300, deadline=2000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = 1_765_000_000.0
BOUNDS = EventTimePolicy().around(NOW)
TOPICS = sorted(EVENT_TOPICS)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=600),
    st.sampled_from(["NaN", "nan", "Infinity", "-inf", "1e400", "", "2100-01-01T00:00:00Z",
                     "1970-01-01", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",
                     "\x00\x01", "燃气味" * 50]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=20)


@st.composite
def event_like(draw: Any) -> tuple[str, dict[str, Any]]:
    """A record of a topic: its schema's fields (some left out) with arbitrary JSON values,
    sometimes plausible ones, plus stray fields."""
    topic = draw(st.sampled_from(TOPICS))
    fields = list(EVENT_TOPICS[topic].schema.model_fields)
    record: dict[str, Any] = {}
    for name in fields:
        if draw(st.integers(0, 9)) == 0:
            continue
        if name == "ts" and draw(st.booleans()):
            record[name] = draw(st.floats(min_value=NOW - 30 * 86400, max_value=NOW + 86400))
        else:
            record[name] = draw(json_values)
    record.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    return topic, record


def _assert_decoded(result: Event | DeadLetter) -> None:
    assert isinstance(result, Event | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason and result.reason_class
        assert fits(result.source_topic.encode(), result.model_dump_json().encode())
        return
    spec = EVENT_TOPICS[result.topic]
    assert BOUNDS.not_before <= result.ts <= BOUNDS.not_after
    for name in spec.schema.model_fields:
        value = result.data.get(name)
        if isinstance(value, float):
            assert math.isfinite(value), name
        if isinstance(value, str):
            assert len(value) <= max(FIELD_MAX_CHARS, TEXT_MAX_CHARS), name


@FUZZ
@given(topic=st.sampled_from([*TOPICS, "events.nowhere"]), raw=st.binary(max_size=2000))
def test_any_bytes_decode_to_an_event_or_a_dead_letter(topic: str, raw: bytes) -> None:
    _assert_decoded(decode(topic, raw, key=raw[:20], bounds=BOUNDS))


@pytest.mark.slow
@FUZZ
@given(case=event_like())
def test_any_json_record_decodes_to_a_bounded_event_or_a_dead_letter(
        case: tuple[str, dict[str, Any]]) -> None:
    topic, record = case
    raw = json.dumps(record).encode()  # orjson refuses integers beyond 64 bits; senders may not
    _assert_decoded(decode(topic, raw, bounds=BOUNDS))


cel_like = st.text(alphabet=string.ascii_letters + string.digits + " ()[]{}<>=!&|+-*/%.,?:'\"_",
                   max_size=300)


@FUZZ
@given(source=cel_like, value=json_scalars)
def test_any_condition_compiles_or_is_refused_and_never_raises_when_evaluated(
        source: str, value: Any) -> None:
    try:
        expression = Expression(source)
    except ExpressionError:
        return
    for name in expression.variables:
        expression.evaluate({name: value})


def _mutated(draw: Any) -> str:
    """A valid rule file with one field replaced by something arbitrary, or arbitrary YAML."""
    doc = yaml.safe_load(rule_text(id="fuzz.tank.hot", source=FACILITY, kind="threshold",
                                   condition="temp_c > 60", summary="{tank_id} at {temp_c}"))
    how = draw(st.integers(0, 3))
    if how == 0:
        return draw(st.text(max_size=400))
    key = draw(st.sampled_from(sorted(doc)))
    if how == 1:
        doc[key] = draw(json_values)
    elif how == 2:
        doc[key] = draw(cel_like)
    else:
        doc[draw(st.text(max_size=10))] = draw(json_values)
    return yaml.safe_dump(doc, allow_unicode=True)


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_any_rule_file_compiles_or_gives_file_line_errors(data: Any) -> None:
    text = _mutated(data.draw)
    rule, errors = compile_rule_text(text, Path("fuzz.yaml"))
    assert (rule is None) == bool(errors)
    for error in errors:
        assert isinstance(error, RuleError) and error.line >= 1 and error.message


@FUZZ
@given(anchors=st.lists(st.integers(1, 12), min_size=1, max_size=12))
def test_aliases_are_refused_before_they_expand(anchors: list[int]) -> None:
    # Each level refers to the previous one n times: the product may be astronomical.
    lines = ['l0: &l0 ["x"]']
    for i, n in enumerate(anchors, start=1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * n)}]")
    rule, errors = compile_rule_text("\n".join(lines) + "\n", Path("aliases.yaml"))
    assert rule is None and errors
    total = math.prod(anchors)
    if total > 100_000:
        assert any("expand to more than 100000" in e.message for e in errors)


def test_fuzzing_stayed_within_bounded_memory() -> None:
    # Runs after the fuzz tests of this module (pytest keeps file order): peak RSS of the
    # whole test process, which a single expansion bomb would have pushed to gigabytes.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000  # KiB
