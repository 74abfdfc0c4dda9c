"""A warning or error that repeats is written once per interval, with a count.

While the broker is down, aiokafka logs every failed connection, metadata refresh, fetch and
coordinator lookup, ten times a second each: thousands of lines that say one thing. The filter
here sits on the handlers of the root logger (a filter on the ``aiokafka`` logger would not
see the records of ``aiokafka.conn`` and the other children). A record's text with its numbers,
addresses and ids blanked out is its kind: the first record of a kind is written, the next ones
within ``interval_s`` are only counted, and once the interval is over one line says how many
there were ("… (repeated 212 more times in the last 30 s)").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_INTERVAL_S = 30.0
LIBRARIES = ("aiokafka", "faust", "mode", "yujing")
"""The loggers whose repeats are counted (with their children)."""

_VARYING = re.compile(r"0x[0-9a-f]+|[0-9a-f]*\d[0-9a-f]*", re.IGNORECASE)
_SUMMARY = "repeat_summary"
"""Attribute of the summary records, which the filter lets through."""


def kind_of(message: str) -> str:
    """The text of a log message with what varies between repeats (numbers, ports, hex ids and
    addresses) blanked out."""
    return _VARYING.sub("#", message)


@dataclass(slots=True)
class _Repeats:
    since: float
    """When the record of this kind that was written was logged."""
    record: logging.LogRecord
    count: int = 0
    """Records of this kind since then, not written."""


class RepeatFilter(logging.Filter):
    """Attached to one handler: lets the first record of a kind through, counts the repeats
    within ``interval_s``, and (``flush``) hands that handler one line with the count when the
    interval is over."""

    def __init__(self, handler: logging.Handler, interval_s: float = REPEAT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic, min_level: int = logging.WARNING,
                 loggers: tuple[str, ...] = LIBRARIES) -> None:
        super().__init__()
        self.handler = handler
        self.interval_s = interval_s
        self.clock = clock
        self.min_level = min_level
        self.loggers = loggers
        self._kinds: dict[tuple[str, int, str], _Repeats] = {}
        self._lock = threading.Lock()

    def _counted(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level or getattr(record, _SUMMARY, False):
            return False
        name = record.name
        return any(name == lib or name.startswith(lib + ".") for lib in self.loggers)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._counted(record):
            return True
        key = (record.name, record.levelno, kind_of(record.getMessage()))
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(key)
            if seen is not None and now - seen.since < self.interval_s:
                seen.count += 1
                return False
        if seen is not None:
            self.flush()  # the count of the interval just over goes before this record
        with self._lock:
            self._kinds[key] = _Repeats(now, record)
        return True

    def flush(self) -> int:
        """Write the count of every kind whose interval is over and forget those kinds (the
        next record of one is written again); return how many counts were written."""
        now = self.clock()
        with self._lock:
            over = [(key, seen) for key, seen in self._kinds.items()
                    if now - seen.since >= self.interval_s]
            for key, _ in over:
                del self._kinds[key]
        for _, seen in over:
            if seen.count:
                self.handler.handle(self._summary(seen))
        return sum(1 for _, seen in over if seen.count)

    def _summary(self, seen: _Repeats) -> logging.LogRecord:
        first = seen.record
        summary = logging.LogRecord(
            first.name, first.levelno, first.pathname, first.lineno,
            "%s (repeated %d more times in the last %g s)",
            (first.getMessage(), seen.count, self.interval_s), None)
        setattr(summary, _SUMMARY, True)
        return summary


_installed: list[RepeatFilter] = []
_flusher: threading.Thread | None = None


def quiet_repeats(interval_s: float = REPEAT_INTERVAL_S) -> None:
    """Count repeated warnings and errors on every handler of the root logger (call once the
    handlers are set up; a handler already counting is left as it is), and write the counts
    from a daemon thread once their interval is over."""
    global _flusher
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            repeat_filter = RepeatFilter(handler, interval_s)
            handler.addFilter(repeat_filter)
            _installed.append(repeat_filter)
    if _installed and _flusher is None:
        _flusher = threading.Thread(target=_flush_forever, args=(min(1.0, interval_s),),
                                    name="yujing-log-repeats", daemon=True)
        _flusher.start()


def _flush_forever(every_s: float) -> None:
    while True:
        time.sleep(every_s)
        for repeat_filter in list(_installed):
            repeat_filter.flush()
