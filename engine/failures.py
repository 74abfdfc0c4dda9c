"""Failures confined to what caused them: one rule on one event (or one key's deadline).

A model, a condition, a summary or a bug in the engine may raise on some event: a river detector
panicking in Rust (``PanicException``, which is not an ``Exception``), a CEL error nothing
foresaw, a division by zero. The scoring core catches it where the rule met the event, records a
``ScoringFailure`` and goes on with the other rules and the rest of the batch; the worker
dead-letters the event with the rule's id and the reason and counts it, so every input event is
still accounted for. Only what must end the process (an interrupt, an exit, memory exhausted)
passes through.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from topics.codec import Event

FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, asyncio.CancelledError)
"""What a failure of one rule must never swallow."""

Phase = Literal["score", "learn", "deadline", "housekeeping"]


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, FATAL)


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: message``, the message cut to ``limit`` characters (errors can quote input).

    >>> describe(ZeroDivisionError("division by zero"))
    'ZeroDivisionError: division by zero'
    """
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if len(message) > limit:
        message = message[:limit] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@dataclass(frozen=True, slots=True)
class ScoringFailure:
    """A rule that raised: on an event (``score``, ``learn``), at a deadline, or while state
    was being kept (``housekeeping``)."""

    rule_id: str
    key: str
    phase: Phase
    reason: str
    event: Event | None = None
    index: int | None = None
    """The event's position in the batch ``ScoringCore.process`` was given."""

    def __str__(self) -> str:
        what = {"score": "scoring", "learn": "learning from", "deadline": "a deadline of",
                "housekeeping": "keeping the state of"}[self.phase]
        tail = " (its learned state for this key starts afresh)" if self.phase == "learn" else ""
        return f"rule {self.rule_id} failed {what} key {self.key!r}: {self.reason}{tail}"
