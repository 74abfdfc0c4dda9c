"""Durations as rule files, routing files and the CLIs write them (``30s``, ``10m``, ``1h30m``).

A module of its own, importing only pydantic: the dispatcher, the tracker and the CLIs read
durations without loading the model kinds.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration written like ``90s``, ``10m``, ``1h30m``, ``7d`` (or a number of s).

    >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("9m30s"), parse_duration(30)
    (600.0, 5400.0, 570.0, 30.0)
    >>> parse_duration("0")
    0.0
    """
    if isinstance(text, int | float):
        seconds = float(text) if abs(text) < 1e300 else math.inf
        if not math.isfinite(seconds):
            raise ValueError(f"not a duration: {str(text)[:30]} seconds is beyond any clock")
        return seconds
    compact = text.replace(" ", "")
    if compact == "0":
        return 0.0  # none, in any unit
    if not _DURATION.match(compact):
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 10m, 1h30m, 7d)")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))


def format_duration(seconds: float) -> str:
    """The shortest exact form: ``format_duration(5400) == '90m'``.

    >>> format_duration(5400), format_duration(86400), format_duration(2.5)
    ('90m', '1d', '2.5s')
    """
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A rule-file duration: ``30s``, ``10m``, ``4h``, ``7d`` or a number of seconds."""


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def _not_negative(seconds: float) -> float:
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
"""A duration that must be longer than zero (a window, a timeout)."""
NonNegativeDuration = Annotated[float, BeforeValidator(parse_duration),
                               AfterValidator(_not_negative)]
"""A duration that may be zero but not less (a learning period, a lateness)."""
Lateness = NonNegativeDuration
"""How far behind the newest event (event time) an event may arrive and still be used."""
