"""How long the broker may hold the worker's fetches, set from the rate of events.

Faust's consumer asks the broker for records with ``fetch_min_bytes=1`` (aiokafka's default)
and ``fetch_max_wait_ms=1500``: a fetch returns as soon as any record is there. When idle,
that is one fetch per record or per 1.5 s, which is right. At a few thousand events/s it is
many fetches a second, each bringing a few records and naming every partition the worker reads
(aiokafka has no incremental fetch sessions): CPU for the worker's consumer thread and the
broker alike (``bench/README.md``).

``FetchPacing`` lets the broker gather records for up to ``busy_wait_s`` (or until
``busy_min_bytes``) while events come faster than ``busy_above`` a second, and goes back to
Faust's settings below half of that rate, so an idle worker still waits for its next record
instead of polling. The worker paces only when given ``--fetch-busy-above``: it spares the
broker, but costs throughput on a backlog and median latency.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

FAUST_MIN_BYTES = 1
FAUST_MAX_WAIT_MS = 1500


class Pace(BaseModel, frozen=True):
    """What a fetch asks of the broker: at least ``min_bytes``, waiting at most
    ``max_wait_ms`` for them."""

    min_bytes: int
    max_wait_ms: int


class FetchPacing:
    """Chooses the fetches' pace from the events consumed between two ticks.

    >>> pacing = FetchPacing(busy_above=500, busy_min_bytes=32768, busy_wait_s=0.01)
    >>> pacing.pace
    Pace(min_bytes=1, max_wait_ms=1500)
    >>> pacing.observe(events=2800, seconds=1.0)  # busy: let the broker gather records
    Pace(min_bytes=32768, max_wait_ms=10)
    >>> pacing.observe(events=400, seconds=1.0)  # still over half of busy_above: no change
    Pace(min_bytes=32768, max_wait_ms=10)
    >>> pacing.observe(events=100, seconds=1.0)  # quiet: wake on the first record again
    Pace(min_bytes=1, max_wait_ms=1500)
    """

    def __init__(self, busy_above: float, busy_min_bytes: int, busy_wait_s: float) -> None:
        self.busy_above = busy_above
        self.quiet = Pace(min_bytes=FAUST_MIN_BYTES, max_wait_ms=FAUST_MAX_WAIT_MS)
        self.busy = Pace(min_bytes=busy_min_bytes, max_wait_ms=round(busy_wait_s * 1000))
        self.pace = self.quiet

    def observe(self, events: int, seconds: float) -> Pace:
        """The pace after ``events`` were consumed in ``seconds``. Between half of
        ``busy_above`` and ``busy_above`` the pace stays as it was, so a rate near the
        threshold does not switch it back and forth."""
        rate = events / seconds if seconds > 0 else 0.0
        if rate >= self.busy_above:
            self.pace = self.busy
        elif rate < self.busy_above / 2:
            self.pace = self.quiet
        return self.pace


def apply_pace(kafka_consumer: Any, pace: Pace) -> bool:
    """Set ``pace`` on an aiokafka consumer's fetcher (its next fetch request uses it);
    False when the consumer has no fetcher yet (not started)."""
    fetcher = getattr(kafka_consumer, "_fetcher", None)
    if fetcher is None:
        return False
    # Read by the consumer thread as it builds each request; an attribute write is atomic.
    fetcher._fetch_min_bytes = pace.min_bytes
    fetcher._fetch_max_wait_ms = pace.max_wait_ms
    return True
