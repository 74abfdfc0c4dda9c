"""What the city simulator is made of: envelopes, incidents, the context, departments.

A *department* simulates the streams of one part of the city. It builds its entities (tanks,
vehicles, sensors, callers …) from a seeded random generator, plans the incidents its warning
models are meant to catch (the ground truth), and produces the events of any time slice — normal
background traffic with its daily and weekly rhythm, noise and dropouts, plus the events that
make up the planned incidents. Same seed, same city, same events.
"""

from __future__ import annotations

import math
import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from simulator.city import City
from topics.schemas import CITY_TZ


@dataclass(slots=True)
class Envelope:
    """One event as ``yujing replay`` reads it and as it is sent to Kafka."""

    ts: float
    topic: str
    key: str
    value: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "key": self.key, "value": self.value}


@dataclass(slots=True)
class Incident:
    """A situation a model is meant to catch: the ground truth a quality run scores against.

    ``key`` is the key the model's alerts carry (a tank, a grid, a building …); ``start`` is
    when the situation begins in event time and ``end`` when it is over (the model may need
    until ``end`` to be sure, e.g. a ``for`` duration or an absence timeout).
    """

    incident_id: str
    model_id: str
    key: str
    start: float
    end: float
    department: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    grid: str | None = None
    """The grid cell the situation is in, where its key is not one: an alert keyed by that
    cell while it lasts (a tanker passing the crowded site) is a second signal of it."""
    """What the department needs to produce the incident's events (vehicle, values …)."""

    def as_json(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "model_id": self.model_id, "key": self.key,
                "start": self.start, "end": self.end, "department": self.department,
                "note": self.note}


HOLIDAYS = {date(2024, 10, d) for d in range(1, 8)} | {date(2025, 10, d) for d in range(1, 9)} | {
    date(2024, 5, d) for d in range(1, 6)} | {date(2025, 5, d) for d in range(1, 6)}
"""Public holidays (National Day and Labour Day weeks): tourism peaks, fewer commutes."""


@dataclass
class SimContext:
    """Everything a department may use: time span, scale, the city, seeded randomness."""

    seed: int
    start: float
    end: float
    rate: float = 1.0
    """Multiplies every background event rate (benchmarks turn it up)."""
    incidents_per_model: int = 2
    city: City = field(default_factory=City)

    def rng(self, name: str) -> random.Random:
        """A generator of its own for each department and purpose: adding events to one
        department never changes another's."""
        return random.Random(self.seed * 1_000_003 + zlib.crc32(name.encode()))

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, CITY_TZ)

    def iso(self, ts: float) -> str:
        """Event time as department systems send it: local time with its offset."""
        return self.local(ts).isoformat(timespec="milliseconds")

    def is_holiday(self, ts: float) -> bool:
        moment = self.local(ts)
        return moment.date() in HOLIDAYS

    def incident_times(self, rng: random.Random, n: int | None = None, lead: float = 3600,
                       tail: float = 3600) -> list[float]:
        """``n`` start times spread over the run, ``lead`` after its start and ``tail`` before
        its end (so the incident and the model's reaction fit inside)."""
        n = self.incidents_per_model if n is None else n
        span = max(1.0, self.end - self.start - lead - tail)
        return sorted(self.start + lead + span * (i + rng.random()) / n for i in range(n))


def diurnal(ts: float, ctx: SimContext, profile: str = "activity") -> float:
    """Relative activity at ``ts`` (about 1 on average over a day).

    ``traffic``: morning and evening peaks, quiet nights, lighter weekends; ``activity``: day
    high, night low (tickets, incidents, visits); ``flat``: always 1 (sensors that report on a
    timer); ``leisure``: afternoons, weekends and holidays (tourism).
    """
    local = ctx.local(ts)
    hour = local.hour + local.minute / 60
    weekend = local.weekday() >= 5
    holiday = ctx.is_holiday(ts)
    if profile == "flat":
        return 1.0
    if profile == "traffic":
        peaks = math.exp(-((hour - 8.0) ** 2) / 2.0) + math.exp(-((hour - 18.0) ** 2) / 2.5)
        base = 0.15 + 0.55 * math.sin(math.pi * max(0.0, min(1.0, (hour - 5) / 18)))
        level = base + 1.2 * peaks
        return level * (0.8 if weekend or holiday else 1.0)
    if profile == "leisure":
        level = 0.1 + 1.6 * math.exp(-((hour - 14.5) ** 2) / 8.0)
        return level * (2.5 if holiday else 1.6 if weekend else 1.0)
    level = 0.25 + 1.4 * math.exp(-((hour - 14.0) ** 2) / 18.0)  # activity
    return level * (1.3 if holiday else 1.0)


def arrivals(rng: random.Random, t0: float, t1: float, per_hour: float,
             shape: Any = None) -> Iterator[float]:
    """Times of a Poisson process of ``per_hour`` on average over [t0, t1), thinned by
    ``shape(ts)`` (a relative rate, at most about 3), so arrivals follow the day's rhythm."""
    peak = per_hour * 3.0 if shape else per_hour
    if peak <= 0:
        return
    t = t0
    while True:
        t += rng.expovariate(peak / 3600.0)
        if t >= t1:
            return
        if shape is None or rng.random() * 3.0 < shape(t):
            yield t


def every(t0: float, t1: float, period: float, phase: float = 0.0) -> Iterator[float]:
    """Regular report times ``phase + k·period`` inside [t0, t1)."""
    k = math.ceil((t0 - phase) / period)
    t = phase + k * period
    while t < t1:
        yield t
        t += period


class Department(ABC):
    """The simulation of one department's streams."""

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.rng = ctx.rng(self.name)

    @abstractmethod
    def plan(self) -> list[Incident]:
        """The incidents of the whole run, decided up front (deterministic for the seed)."""

    @abstractmethod
    def events(self, t0: float, t1: float, incidents: list[Incident]) -> Iterable[Envelope]:
        """Every event with ``t0 <= ts < t1``, background and incidents, in any order.

        Called for consecutive slices; use generators seeded from (seed, slice) — e.g.
        ``self.slice_rng(t0)`` — so a slice's events do not depend on how the run is cut.
        """

    def slice_rng(self, t0: float, purpose: str = "") -> random.Random:
        return self.ctx.rng(f"{self.name}/{purpose}/{int(t0)}")

    def source_hours(self, t0: float, t1: float, lookback: float = 0.0) -> Iterator[float]:
        """Starts of the hours whose happenings may have events in [t0, t1).

        A happening that starts in one hour may have events in the next (a work order is
        accepted 20 minutes later): generate each hour's happenings from ``slice_rng(hour)``
        — the same whichever slice asks — and keep the events that fall in [t0, t1).
        """
        hour = (t0 - lookback - self.ctx.start) // 3600 * 3600 + self.ctx.start
        hour = max(self.ctx.start, hour)
        while hour < t1:
            yield hour
            hour += 3600

    def incident_id(self, model_id: str, n: int) -> str:
        return f"{self.name}-{model_id.rsplit('.', 1)[-1]}-{n}"


def hours(n: float) -> float:
    return n * 3600.0


def parse_start(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CITY_TZ)
    return moment.timestamp()


ONE_DAY = timedelta(days=1).total_seconds()
