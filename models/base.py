"""The contract every warning-model kind keeps.

A model kind *scores* events; it does not decide alerts. ``score_one`` reads the per-key state and
says whether the event shows the watched condition (``BREACH``), shows it is over (``CLEAR``), lies
between the two (``BAND``), or says nothing (``HOLD``); ``learn_one`` then folds the event into
the state. The decision layer
(``engine.decision``) turns readings into alerts with ``for`` durations, episodes and ids, the same
way for every kind — the way river separates a detector's score from the threshold that acts on it.

Kinds that must speak when nothing arrives (absence, sequence deadlines) also implement
``next_deadline`` and ``on_deadline``; the engine calls them from event-time or wall-clock timers.
Kinds whose verdict can change just because time passes (a window emptying) ask for deadlines only
while their alert is pending or firing (``deadlines_when_idle = False``).

State is per key, created by ``new_state`` and made of plain data (numbers, strings, lists,
dicts, dataclasses of those), so it pickles into a changelog and restores after a restart.
Its dataclasses are ``pickled_by_position``: add a field only at the end, with a default.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from models.expr import Expression
from models.refdata import ModelEnv
from topics.codec import Event

StateClass = TypeVar("StateClass", bound=type)


def pickled_by_position(cls: StateClass) -> StateClass:
    """Pickle a slotted dataclass as a call of its constructor with every field in order.

    Every key a commit covers is pickled, so this is on the worker's busiest path, and a tuple
    of values is faster both ways and smaller than Python's default for slots (a dict of slot
    names per object). Fields may only be added at the end: a pickle from before an added
    field loads with its default. Pickles written before this existed still load (they
    restore the slots by name).

    >>> @pickled_by_position
    ... @dataclass(slots=True)
    ... class Counter:
    ...     n: int = 0
    ...     last: float | None = None
    >>> Counter(3, 1.5).__reduce__()  # what pickle writes: the class, then the fields
    (<class 'models.base.Counter'>, (3, 1.5))
    """
    names = tuple(f.name for f in fields(cls))
    assert all(f.init for f in fields(cls)), f"{cls.__name__}: every field must be an argument"
    values = operator.attrgetter(*names)
    if len(names) == 1:
        def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
            return cls, (values(self),)
    else:
        def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
            return cls, values(self)
    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls


class Verdict(Enum):
    BREACH = "breach"
    """The condition holds."""
    BAND = "band"
    """The condition does not hold, nor does the clear condition (the hysteresis band): a
    pending breach starts over, a firing alert stays firing."""
    CLEAR = "clear"
    """The clear condition holds: a firing alert resolves."""
    HOLD = "hold"
    """Nothing to say (the event does not bear on the condition, or lacks its fields: then
    the reading is ``UNDECIDED``)."""
    LATE = "late"
    """The event came later than the kind's allowed lateness and was not used; evidence says
    by how much (``late_by_s``). The engine counts it; it never changes an alert."""
    SKIPPED = "skipped"
    """The event was not used for another reason (``skipped``: a value that is not a finite
    number, which would poison a learned model). Counted like a late one."""


@dataclass(slots=True)
class Reading:
    """What a model saw in one event (or at one deadline): a verdict and its evidence."""

    verdict: Verdict
    evidence: dict[str, Any] = field(default_factory=dict)
    at: float | None = None
    """Event time the verdict applies to, when not the event's own (a late event completing
    a pattern whose newest part came earlier)."""


HOLD = Reading(Verdict.HOLD)
UNDECIDED = Reading(Verdict.HOLD)
"""A HOLD that says the event lacked a field the model needs (its condition was null): the
decision layer takes it as any HOLD, and the engine counts it for the rule
(``yujing_events_undecided_total``), which it finds by identity, so it must be this object."""


def late(by_seconds: float) -> Reading:
    """The reading for an event older than the allowed lateness."""
    return Reading(Verdict.LATE, {"late_by_s": by_seconds})


def skipped(reason: str) -> Reading:
    """The reading for an event a model will not use (``reason``: a few words, a metric label)."""
    return Reading(Verdict.SKIPPED, {"skipped": reason})


LEARNABLE_MAX = 1e15
"""The largest magnitude a learned model takes: beyond any sensor's reading, and small enough
that sums of squares over years of readings stay finite (1e308 squared is infinite, after
which a detector's mean and spread are NaN and it never alerts again)."""
UNUSABLE = skipped("unusable_value")


def learnable(value: Any) -> float | None:
    """``value`` as a float if a learned model may use it — a finite number within
    ±``LEARNABLE_MAX`` — else None (decode rejects NaN and infinities; a model must not depend
    on that).

    >>> learnable(3), learnable("2.5"), learnable(float("nan")), learnable(1e308), learnable(None)
    (3.0, 2.5, None, None, None)
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and abs(number) <= LEARNABLE_MAX else None


def significant(x: float) -> float:
    """``x`` to six significant digits, as evidence shows learned figures.

    >>> significant(1 / 3), significant(123456789.0)
    (0.333333, 123457000.0)
    """
    return float(f"{x:.6g}")


S = TypeVar("S")


class KindParams(BaseModel):
    """Base of every kind's parameter block in a rule file; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WarningModel(ABC, Generic[S]):
    """One configured model of one kind; holds no per-key state itself."""

    kind: ClassVar[str]
    Params: ClassVar[type[KindParams]]
    event_expressions: ClassVar[tuple[str, ...]] = ()
    """Parameters holding CEL over the event's fields (checked against the topic's schema)."""
    event_fields: ClassVar[tuple[str, ...]] = ()
    """Parameters naming one event field."""
    breach_expressions: ClassVar[tuple[str, ...]] = ()
    """Those of ``event_expressions`` that must hold for the model to breach (not a ``clear``):
    what ``yujing validate`` checks for a missing field that silences them."""
    evidence_fields: ClassVar[tuple[str, ...]] = ()
    """What the kind may put in a reading's evidence, beside event fields: the names a rule's
    summary may use (``{score}``, ``{size}``) besides the source's fields."""
    uses_deadlines: ClassVar[bool] = False
    """True for kinds that implement ``next_deadline`` / ``on_deadline``."""
    deadlines_when_idle: ClassVar[bool] = True
    """False: deadlines matter only while the key's alert is pending or firing."""

    @classmethod
    def field_problems(cls, params: KindParams, sources: list[str],
                       fields_of: Callable[[str], set[str]], env: ModelEnv
                       ) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems with field names in parameters beyond ``event_fields`` and
        ``event_expressions`` (which the loader checks itself), as (path, message) pairs."""
        return []

    @classmethod
    def breach_conditions(cls, params: KindParams
                          ) -> list[tuple[tuple[str | int, ...], str, list[str] | None]]:
        """(path, CEL, the topics whose events it reads or None for all the rule's sources) of
        each expression over an event that must hold for a breach."""
        return [((name,), getattr(params, name), None) for name in cls.breach_expressions
                if getattr(params, name) is not None]

    @classmethod
    def reference_problems(cls, params: KindParams, env: ModelEnv
                           ) -> list[tuple[tuple[str | int, ...], str]]:
        """Names of reference data (zones, lists) in the parameters that the reference data at
        hand does not have, as (path, message) pairs. Checked by ``yujing validate``, against
        the reference files beside the rules; not by a worker, whose reference data may come
        from the reference topics after it starts."""
        return []

    @classmethod
    def summary_names(cls, params: KindParams) -> frozenset[str]:
        """The evidence names a summary may use with these parameters; a name ending in ``*``
        stands for any name it begins (a joined record's fields, whatever the record holds)."""
        return frozenset(cls.evidence_fields)

    def __init__(self, params: KindParams, env: ModelEnv | None = None) -> None:
        self.params = params
        self.env = env or ModelEnv()

    def expression(self, source: str) -> Expression:
        """Compile CEL that may use the named lists and macros of the rule set."""
        return Expression(source, self.env.constants, self.env.macros)

    def maybe_expression(self, source: str | None) -> Expression | None:
        return None if source is None else self.expression(source)

    @abstractmethod
    def new_state(self) -> S:
        """Fresh state for a key seen for the first time."""

    @abstractmethod
    def score_one(self, state: S, event: Event) -> Reading:
        """How this event looks given the key's past. Must not change ``state``."""

    def learn_one(self, state: S, event: Event) -> None:
        """Fold the event into the key's state (after scoring it)."""

    def next_deadline(self, state: S) -> float | None:
        """Event time at which ``on_deadline`` must be called if nothing else arrives."""
        return None

    def on_deadline(self, state: S, at: float) -> Reading:
        """The reading as of the deadline ``at`` (the clock has passed it); may change state."""
        return HOLD

    def describe(self) -> dict[str, Any]:
        """What the model watches, for ``yujing explain``."""
        return {"kind": self.kind}
