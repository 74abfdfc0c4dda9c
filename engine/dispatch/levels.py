"""The command levels (市 · 县区 · 镇街) a work order climbs when nobody acknowledges it.

The routing file names the chain, lowest first (``defaults.levels``), each level with its own
acknowledgement limits. An order starts at the level of its place — ``town`` when its town is
known, ``district`` when only its district is, ``city`` when neither — or, when the chain has no
such level, at the next one above it; it then climbs the chain by the clock. The chain always
ends at ``city``: someone must hold what no lower level took.

>>> chain = ("town", "district", "city")
>>> start_level(chain, town="xihu.lingyin", district="xihu"), start_level(chain, None, "xihu")
('town', 'district')
>>> start_level(("district", "city"), town="xihu.lingyin", district="xihu")
'district'
>>> next_level(chain, "town"), next_level(chain, "city")
('district', None)
"""

from __future__ import annotations

import itertools
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field

from models.durations import Duration
from topics.records import OrderLevel, Severity

LEVELS: tuple[OrderLevel, ...] = get_args(OrderLevel)
"""Every command level, lowest first."""
TOP_LEVEL: OrderLevel = "city"
TWO_LEVEL_CHAIN: tuple[OrderLevel, ...] = ("district", "city")
"""The chain of a routing file that names none: the district, then the city."""

Path_ = tuple[str | int, ...]


class LevelSpec(BaseModel):
    """One level of ``defaults.levels``."""

    model_config = ConfigDict(extra="forbid")

    level: OrderLevel
    ack_within: dict[Severity, Duration] = Field(default_factory=dict)
    """How soon an order at this level must be acknowledged before it climbs (unset
    severities: ``defaults.ack_within``, else 5m/15m/1h/4h)."""


def rank(level: OrderLevel) -> int:
    return LEVELS.index(level)


def chain_problems(levels: list[LevelSpec]) -> list[tuple[Path_, str]]:
    """What is wrong with a chain: empty, out of order, a level twice, not ending at the city."""
    if not levels:
        return [(("defaults", "levels"), "defaults.levels: name at least the city level")]
    problems: list[tuple[Path_, str]] = []
    for i, (lower, upper) in enumerate(itertools.pairwise(levels), start=1):
        if rank(upper.level) <= rank(lower.level):
            problems.append((("defaults", "levels", i, "level"),
                             f"defaults.levels.{i}: {upper.level!r} after {lower.level!r}: "
                             f"list the levels lowest first, each once ({', '.join(LEVELS)})"))
    if levels[-1].level != TOP_LEVEL:
        problems.append((("defaults", "levels", len(levels) - 1, "level"),
                         f"defaults.levels: the chain must end at {TOP_LEVEL!r} (it holds what "
                         "no lower level acknowledged)"))
    return problems


def place_level(town: str | None, district: str | None) -> OrderLevel:
    """The level of a place: its town's, else its district's, else the city's."""
    return "town" if town else "district" if district else "city"


def start_level(chain: tuple[OrderLevel, ...], town: str | None,
                district: str | None) -> OrderLevel:
    """Where an order of this place starts: its place's level, or the next in the chain."""
    wanted = rank(place_level(town, district))
    return next((level for level in chain if rank(level) >= wanted), chain[-1])


def next_level(chain: tuple[OrderLevel, ...], level: OrderLevel) -> OrderLevel | None:
    """The level above ``level`` in the chain, or None at the top."""
    return next((up for up in chain if rank(up) > rank(level)), None)


def place_at(level: OrderLevel, town: str | None, district: str | None) -> str | None:
    """Whose desk holds an order at ``level``: the town's or district's id (None: the city)."""
    return town if level == "town" else district if level == "district" else None
