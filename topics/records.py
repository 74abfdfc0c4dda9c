"""Records yujing itself publishes: alerts and dead letters."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Severity(StrEnum):
    """The four Chinese warning levels, lowest first: blue (IV) < yellow < orange < red (I)."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.BLUE: 1, Severity.YELLOW: 2, Severity.ORANGE: 3, Severity.RED: 4}


class Alert(BaseModel):
    """One state change of one alert episode, published on ``alerts`` keyed by ``alert_id``.

    ``alert_id`` is stable for the same model, key and episode, so a consumer that sees a record
    twice (at-least-once delivery) can drop the duplicate by (alert_id, state).
    """

    alert_id: str
    model_id: str
    model_version: int
    state: Literal["firing", "escalated", "resolved"]
    severity: Severity
    departments: list[str]
    maturity: Literal["stable", "incubating", "disabled"] = "stable"
    key: str
    sources: list[str]
    """The topics the model reads."""
    grid_id: str | None = None
    district: str | None = None
    first_ts: float = Field(description="event time (epoch s) the episode started")
    last_ts: float = Field(description="event time (epoch s) of the latest evidence")
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class DeadLetter(BaseModel):
    """An input record that could not be used, with why; published on ``events.deadletter``.

    ``value`` is the original bytes as text when they are UTF-8, else base64 (``encoding``).
    """

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    reason: str
