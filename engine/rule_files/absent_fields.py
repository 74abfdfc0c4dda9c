"""Conditions that a missing optional field turns into a quiet "no": ``yujing validate``'s warning.

CEL reads a field the event lacks as null. A comparison with null is an error, so
``level_pct >= 90`` is *undecided* without ``level_pct`` — the rule says nothing, and the engine
counts the event (``yujing_events_undecided_total``). An equality is not: ``road_class ==
"highway"`` is plainly false without ``road_class``, so ``road_class == "highway" && speed_kmh >
80`` judges a tanker at 95 km/h that sends no road class as not speeding, and its clear
condition may even resolve a firing alert. That is the mistake this module finds.

For every optional field F (``X | None = None`` in ``topics.schemas``) that an expression
deciding a breach reads (``WarningModel.breach_conditions``: a threshold's ``condition``, a
geofence's ``when``, a correlation's signals …), it evaluates the compiled expression over
sample events: each other field it reads takes a handful of values (the literals of the
expression and its lists, one either side of each number, the values a field's type allows),
and F takes null or one of its own sample values. It warns when both hold:

- no sample with F null makes the expression true (where the rule's ``where`` holds): the rule
  can never breach without F;
- some sample with F null makes it *false* while the same sample with some value of F makes it
  true: the absence reads as "no breach" rather than "cannot judge".

Every warning names such a sample, so none is a false alarm; a case the samples do not reach
goes unwarned (and so does a rule whose ``EVALUATIONS_MAX`` run out). The expression or the
``where`` comparing F with null (``road_class == null`` as a fallback, ``F != null`` to leave
such events out) decides the absence, and so does F listed under the rule's
``silent_without`` (without F it deliberately cannot judge): no warning then. A ``where`` is
not checked itself: it says which events the rule is about.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from models.base import WarningModel
from models.expr import Expression, ExpressionError
from models.refdata import ModelEnv
from models.vocabulary import MacroError
from topics.registry import EVENT_TOPICS

SAMPLES_MAX = 4096
"""Samples of the other fields tried per (expression, field): conditions read a few fields."""
POOL_MAX = 16
"""Values tried per field (an even spread of them when the literals give more)."""
EVALUATIONS_MAX = 100_000
"""Evaluations per rule. Rule files are untrusted: a condition naming hundreds of fields or
literals is checked no further once they are spent (a second or two), and warns of nothing
it has not shown."""

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_STRING = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
_SAMPLE_TIME = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)
_DERIVED = {"hour": int, "weekday": int}


def optional_fields(topic: str) -> frozenset[str]:
    """Fields of a topic's events that may be missing (typed ``X | None = None``).

    >>> sorted(optional_fields("events.hazchem.vehicle"))[:3]
    ['cargo_class', 'cargo_un', 'driver_id']
    """
    fields = EVENT_TOPICS[topic].schema.model_fields
    return frozenset(n for n, f in fields.items() if not f.is_required() and f.default is None)


def absent_field_warnings(kind: type[WarningModel[Any]], params: Any, sources: list[str],
                          where: str | None, env: ModelEnv, silent_without: set[str]
                          ) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, message) for each (expression, optional field) the module docstring describes.

    >>> from models.threshold import Threshold, ThresholdParams
    >>> params = ThresholdParams(condition='road_class == "highway" && speed_kmh > 80')
    >>> for path, message in absent_field_warnings(Threshold, params, ["events.hazchem.vehicle"],
    ...                                            None, ModelEnv(), set()):
    ...     print(path, message)  # doctest: +NORMALIZE_WHITESPACE
    ('condition',) condition never holds without road_class, and an event without it reads
    as not breaching: speed_kmh=81.0 breaches with road_class="highway" but not without it.
    Give the absence a fallback (road_class == null) or list road_class under silent_without
    >>> params = ThresholdParams(condition='(road_class == "highway" || road_class == null) '
    ...                                    '&& speed_kmh > 80')
    >>> absent_field_warnings(Threshold, params, ["events.hazchem.vehicle"], None, ModelEnv(),
    ...                       set())
    []
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    budget = _Budget(EVALUATIONS_MAX)
    for path, source, topics in kind.breach_conditions(params):
        topics = topics or sources
        try:
            expr = Expression(source, env.constants, env.macros)
            scope = Expression(where, env.constants, env.macros) if where else None
        except (ExpressionError, MacroError):
            continue  # reported as an error already
        optional = frozenset().union(*(optional_fields(t) for t in topics))
        types_ = _field_types(topics)
        name = ".".join(map(str, path))
        for field in expr.variables:
            if field not in optional or field in silent_without \
                    or _tests_null(field, expr, scope):
                continue
            try:
                found = _quiet_no(expr, scope, field, types_, env.constants, budget)
            except _Spent:
                return out
            if found is not None:
                sample, value = found
                shown = ", ".join(f"{k}={_cel(v)}" for k, v in sample.items()) or "an event"
                out.append((path, f"{name} never holds without {field}, and an event without "
                                  f"it reads as not breaching: {shown} breaches with "
                                  f"{field}={_cel(value)} but not without it. Give the absence "
                                  f"a fallback ({field} == null) or list {field} under "
                                  "silent_without"))
    return out


class _Spent(Exception):
    """The rule's evaluations are spent."""


class _Budget:
    def __init__(self, evaluations: int) -> None:
        self.left = evaluations

    def evaluate(self, expr: Expression, data: Mapping[str, Any]) -> Any:
        if self.left <= 0:
            raise _Spent
        self.left -= 1
        return expr.evaluate(data)


def _quiet_no(expr: Expression, scope: Expression | None, field: str,
              types_: Mapping[str, Any], constants: Mapping[str, Any], budget: _Budget
              ) -> tuple[dict[str, Any], Any] | None:
    """A sample of the other fields for which ``expr`` is false with ``field`` null but true
    with some value of it, if the expression never holds with the field null; else None."""
    literals = _literals(expr, scope, constants)
    others = sorted((set(expr.variables) | set(scope.variables if scope else ())) - {field})
    pools = [_samples(types_.get(name), literals) for name in others]
    own = _samples(types_.get(field), literals)
    witness = None
    for values in _combinations(pools):
        sample = dict(zip(others, values, strict=True))
        absent = {**sample, field: None}
        if scope is not None and budget.evaluate(scope, absent) is not True:
            continue  # the rule does not see this event without the field
        held = budget.evaluate(expr, absent)
        if held is True:
            return None  # the rule can breach without the field: it has a fallback
        if held is False and witness is None:
            value = next((v for v in own
                          if budget.evaluate(expr, {**sample, field: v}) is True), None)
            if value is not None:
                witness = ({k: v for k, v in sample.items() if k in expr.variables}, value)
    return witness


def _tests_null(field: str, expr: Expression, scope: Expression | None) -> bool:
    """The expression or the ``where`` compares the field with null: absence is decided.

    >>> _tests_null("grid_id", Expression("grid_id != null && x > 1"), None)
    True
    """
    name = re.escape(field)
    pattern = rf"\b{name}\s*[!=]=\s*null\b|\bnull\s*[!=]=\s*{name}\b"
    return any(re.search(pattern, e.expanded) for e in (expr, scope) if e is not None)


def _combinations(pools: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    """Every combination, or ``SAMPLES_MAX`` of them drawn at random (with a fixed seed, so a
    file always gets the same answer) when there are more.

    >>> len(list(_combinations([[1, 2, 3]] * 4))), len(list(_combinations([[1, 2, 3]] * 9)))
    (81, 4096)
    """
    total = math.prod(len(pool) for pool in pools)
    if total <= SAMPLES_MAX:
        yield from itertools.product(*pools)
        return
    draw = random.Random(0)
    for _ in range(SAMPLES_MAX):
        yield tuple(pool[draw.randrange(len(pool))] for pool in pools)


def _literals(expr: Expression, scope: Expression | None, constants: Mapping[str, Any]
              ) -> tuple[list[float], list[str]]:
    """Numbers and strings the expressions (and the lists they name) compare with."""
    texts = [expr.expanded, scope.expanded if scope else ""]
    numbers = {float(n) for text in texts for n in _NUMBER.findall(_STRING.sub("", text))}
    strings = {a or b for text in texts for a, b in _STRING.findall(text)}
    for name, values in constants.items():
        if any(re.search(rf"\b{re.escape(name)}\b", text) for text in texts):
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str):
                    strings.add(value)
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    numbers.add(float(value))
    return sorted(numbers), sorted(strings)


def _samples(annotation: Any, literals: tuple[list[float], list[str]]) -> list[Any]:
    """A handful of values a field of this type may take, around the literals compared with
    (those first: at most ``POOL_MAX``).

    >>> _samples(float, ([80.0], [])), _samples(bool | None, ([80.0], ["x"]))
    ([79.0, 80.0, 81.0, 0.0, 1000000.0], [True, False])
    """
    if annotation is None:  # not an event field: a joined record, a derived value
        return [None, {}]
    numbers, strings = literals
    base = _unwrap(annotation)
    if typing.get_origin(base) is typing.Literal:
        values: list[Any] = list(typing.get_args(base))
    elif base is bool:
        values = [True, False]
    elif base is datetime:
        values = [_SAMPLE_TIME]
    elif base is int or base is float:
        near = [n + d for n in numbers for d in (-1, 0, 1)]
        values = [base(x) for x in dict.fromkeys([*near, 0.0, 1e6])]
    elif base is str:
        values = [*strings, "other"]
    else:
        values = [*strings, "other", 0.0, *numbers, True, False]
    return list(dict.fromkeys(values))[:POOL_MAX]


def _unwrap(annotation: Any) -> Any:
    """``float`` of ``float | None`` and of ``Annotated[float, …]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _field_types(topics: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(_DERIVED)
    for topic in topics:
        for name, info in EVENT_TOPICS[topic].schema.model_fields.items():
            out.setdefault(name, info.annotation)
    return out


def _cel(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else repr(value)
