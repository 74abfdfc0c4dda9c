"""The rule-file format: what a modeller writes, as pydantic models (and so as JSON Schema).

A rule file is one warning model: who owns it, which stream it reads, the kind of condition and
its parameters (at the top level, beside the common fields), how severe it is, how it explains
itself, and the tests that show when it fires and when it stays silent.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    field_validator,
    model_validator,
)

from models import KINDS
from models.durations import Duration
from models.expr import CelExpr
from topics.departments import DEPARTMENTS
from topics.records import Severity
from topics.registry import EVENT_TOPICS

RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Name(Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


SERIES_MAX = 20_000
"""Events one series line of a rule test may stand for."""


class TestEvent(BaseModel):
    """One input event of a rule test: ``at`` (offset from the test's start) plus its fields;
    or, with ``repeat``, a series: that many events ``every`` apart from ``at``, their fields
    taking the values of ``cycle`` in turn (``cycle: {value: [500, 502, 498]}``) — what a
    learned model needs hundreds of, written in one line."""

    model_config = ConfigDict(extra="allow")

    at: Duration
    topic: str | None = None
    """Defaults to the rule's source topic."""
    repeat: int = Field(default=1, ge=1, le=SERIES_MAX)
    every: Duration | None = None
    cycle: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _a_series_says_how_often(self) -> TestEvent:
        if self.repeat > 1 and not self.every:
            raise ValueError("a series ('repeat') needs 'every' (e.g. every: 1m)")
        if any(not values for values in self.cycle.values()):
            raise ValueError("'cycle' lists the values a field takes in turn: give at least one")
        return self

    def expanded(self) -> list[tuple[float, dict[str, Any]]]:
        """(offset, fields) of each event this line stands for."""
        fields = dict(self.model_extra or {})
        return [(self.at + i * (self.every or 0.0),
                 {**fields, **{name: values[i % len(values)]
                               for name, values in self.cycle.items()}})
                for i in range(self.repeat)]


class ExpectedAlert(Strict):
    """An alert a test expects; fields left out are not compared."""

    at: Duration | None = None
    state: Literal["firing", "escalated", "resolved"] = "firing"
    severity: Severity | None = None
    key: str | None = None
    summary: str | None = None


class Escalation(Strict):
    """A higher level an alert rises to while it fires (it never falls back within an episode)."""

    severity: Severity
    when: CelExpr | None = None
    """CEL over what the summary can use (the event's fields and the evidence)."""
    after: Duration | None = None
    """The alert has been firing at least this long."""

    @model_validator(mode="after")
    def _says_when(self) -> Escalation:
        if self.when is None and self.after is None:
            raise ValueError("an escalation needs 'when', 'after' or both")
        return self


class RuleTest(Strict):
    name: str = Field(min_length=1)
    start: datetime = datetime.fromisoformat("2024-06-03T10:00:00+08:00")
    """Event time of ``at: 0s`` (a Monday, 10:00 in Beijing, unless the test says otherwise)."""
    given: dict[str, Any] = Field(default_factory=dict)
    """Fields every event of the test has unless it sets them itself."""
    events: list[TestEvent] = Field(default_factory=list)
    until: Duration | None = None
    """Advance the clock to this offset after the last event, so deadlines can fire."""
    reference: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    """Reference records for this test, by table then key (added to those of rules/)."""
    expect: list[ExpectedAlert]
    """The alerts of this rule, in order; ``[]`` means it must stay silent."""


class RuleCommon(Strict):
    """Fields every rule file has, whatever its kind."""

    id: str = Field(description="Stable id, dotted lower case, e.g. hazchem.tank.level_high")
    version: int = Field(default=1, ge=1)
    name: Name
    departments: list[str] = Field(min_length=1)
    """Departments responsible for acting on the alert (dispatch routes by these)."""
    maturity: Literal["stable", "incubating", "disabled"] = "stable"
    source: str | list[str]
    """The department topic the model reads (a list for models that join several)."""
    key: str | None = None
    """The field whose value identifies what is watched; default: the topic's key."""
    where: CelExpr | None = None
    """CEL; the model only sees events for which it is true."""
    silent_without: list[str] = Field(default_factory=list)
    """Optional fields without which the rule deliberately cannot judge (no fallback), said
    with a reason in a comment: ``yujing validate`` does not warn that their absence silences
    its condition."""
    hold_for: Duration = Field(default=0.0, alias="for")
    """How long the condition must be seen holding before the alert fires."""
    severity: Severity
    escalate: list[Escalation] = Field(default_factory=list)
    """Higher levels, lowest first: the alert is re-published as ``escalated`` when it rises."""
    clear_for: Duration = 0.0
    """The condition must stay clear this long before the alert resolves (a breach in between
    keeps it firing, with no new alert)."""
    cooldown: Duration = 0.0
    """A breach this soon after the alert resolved re-opens the same alert (same id) instead
    of raising a new one: a flapping condition gives one alert, not many."""
    inhibits: list[str] = Field(default_factory=list)
    """Models (ids, or prefixes ending in ``*``) whose alerts for the same key are marked
    inhibited, and not dispatched, while this rule's alert for the key is firing at red."""
    state_ttl: Duration = 7 * 86400.0
    """A key's state is dropped after this long without events (unless its alert is firing)."""
    summary: str = Field(min_length=1, max_length=1000)
    """One line for the duty officer; ``{field}`` or ``{field:.1f}`` insert event fields."""
    description: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    # Two at least, for editors; ``_both_sides_tested`` says why in a modeller's words.
    tests: list[RuleTest] = Field(json_schema_extra={"minItems": 2})

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError("must be dotted lower case, like 'hazchem.tank.level_high'")
        return value

    @field_validator("departments")
    @classmethod
    def _known_departments(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in DEPARTMENTS]
        if unknown:
            raise ValueError(f"unknown department {', '.join(map(repr, unknown))}; known: "
                             f"{', '.join(DEPARTMENTS)}")
        return value

    @field_validator("source")
    @classmethod
    def _known_topic(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names:
            raise ValueError("name at least one topic")
        for name in names:
            if name not in EVENT_TOPICS:
                raise ValueError(f"unknown topic {name!r}; known: {', '.join(EVENT_TOPICS)}")
        return value

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)

    @model_validator(mode="after")
    def _levels_rise(self) -> RuleCommon:
        rank = self.severity.rank
        for level in self.escalate:
            if level.severity.rank <= rank:
                raise ValueError(f"escalate: {level.severity.value!r} is not above the level "
                                 "before it; list higher levels, lowest first")
            rank = level.severity.rank
        return self

    @field_validator("tests")
    @classmethod
    def _both_sides_tested(cls, tests: list[RuleTest]) -> list[RuleTest]:
        firing = sum(1 for t in tests if t.expect)
        if firing and firing < len(tests):
            return tests
        found = ("there are none" if not tests else
                 "every test here expects an alert" if firing else
                 "every test here expects none")
        raise ValueError("a rule needs at least one test that expects an alert and one that "
                         f"expects none (expect: []); {found}")


@cache
def rule_models() -> dict[str, type[RuleCommon]]:
    """One pydantic model per kind: the common fields plus that kind's parameters."""
    out: dict[str, type[RuleCommon]] = {}
    for kind, cls in KINDS.items():
        out[kind] = create_model(  # type: ignore[call-overload]
            f"{kind.title()}Rule",
            __base__=(RuleCommon, cls.Params),
            __doc__=(cls.__doc__ or "").split("\n\n")[0],
            kind=(Literal[kind], ...),  # type: ignore[valid-type]
        )
    return out


@cache
def rule_adapter() -> TypeAdapter[Any]:
    """Validates a rule file, choosing the kind's model by its ``kind:`` field."""
    kinds = tuple(rule_models().values())
    return TypeAdapter(Annotated[Union[kinds], Field(discriminator="kind")])  # noqa: UP007


def json_schema() -> dict[str, Any]:
    """JSON Schema of a rule file, for editors (yaml-language-server) and CI."""
    schema = rule_adapter().json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "yujing warning-model rule file"
    return schema
