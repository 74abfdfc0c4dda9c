"""The records a worker handed to a producer, which an offset commit must see delivered first.

Faust flushes its own producer before it commits, but state goes through the worker's
``ChangelogWriter``, which Faust does not know of: without this, a worker dying right after a
commit could leave offsets past its state.

A record the broker refuses for what it is (too large for the topic's ``max.message.bytes``,
an invalid record) would be refused again after any restart: it must not stop the worker. Such
a failure is kept in ``refused`` with what the record was, for the worker to dead-letter in a
form that fits; any other failure (the broker unreachable, a timeout) raises, so that nothing
is committed past outputs that may be lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import (
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

log = logging.getLogger("yujing.worker")

REFUSED_RECORD = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError,
                  CorruptRecordException)
"""What a broker answers about the record itself: sending it again would get the same."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes


def refused(exc: BaseException) -> bool:
    """Whether a send failed for what the record is (Faust wraps aiokafka's error)."""
    while exc is not None:
        if isinstance(exc, REFUSED_RECORD):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


class InFlight:
    """Futures of records handed to a producer (state, alerts, dead letters, re-keyed events),
    with what each record was where it could be dead-lettered."""

    def __init__(self,
                 on_refused: Callable[[Record | None, BaseException], None] | None = None
                 ) -> None:
        self._futures: list[tuple[Any, Record | None]] = []
        self.on_refused = on_refused
        """Told of each send the broker refused for what the record is (the worker
        dead-letters it: the dead letter is delivered before ``delivered`` returns)."""

    def add(self, future: Any, record: Record | None = None) -> None:
        self._futures.append((future, record))

    def prune(self) -> None:
        """Drop the delivered ones (outputs of the clock alone can wait long for a commit)."""
        kept = []
        for future, record in self._futures:
            if not future.done():
                kept.append((future, record))
            elif not future.cancelled() and future.exception() is not None:
                kept.append((future, record))  # ``delivered`` reports it
        self._futures = kept

    async def delivered(self, timeout: float, _again: bool = True) -> bool:
        """Wait until everything handed over so far is acknowledged by the broker: True, or
        False when ``timeout`` passed first (what is still pending stays to be waited for). A
        record refused for what it is goes to ``on_refused`` (and what that sends is waited for
        too); any other failed send raises: its offsets must not be committed, and the worker
        stops."""
        pending, self._futures = self._futures, []
        if not pending:
            return True
        futures = [future for future, _ in pending]
        try:
            await asyncio.wait_for(asyncio.shield(
                asyncio.gather(*futures, return_exceptions=True)), timeout)
        except TimeoutError:
            log.warning("outputs not confirmed by the broker within %.0f s: offsets not "
                        "committed this time", timeout)
            self._futures = [(f, r) for f, r in pending if not f.done()] + self._futures
            return False
        refused_now = []
        for future, record in pending:
            exc = None if future.cancelled() else future.exception()
            if exc is None:
                continue
            if not refused(exc):
                raise exc
            refused_now.append((record, exc))
        if not refused_now:
            return True
        for record, exc in refused_now:
            if self.on_refused is not None and _again:
                self.on_refused(record, exc)
            else:
                log.error("the broker refused %s as well: %r", _what(record), exc)
        return await self.delivered(timeout, _again=False)


def _what(record: Record | None) -> str:
    return "a state record" if record is None else f"a record for {record.topic}"
