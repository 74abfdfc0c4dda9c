"""One log format for every yujing process: text or JSON lines (``--log-format``).

Text: ``2024-06-03 08:00:31,123 INFO yujing.worker: message``. JSON: one object a line with
``ts`` (ISO 8601 with the zone), ``level``, ``logger``, ``message`` and, for an exception,
``exc`` — what a log shipper reads without a parsing rule. The worker's Faust sets up its own
root handlers; ``apply`` gives them this format too, so a worker's log is one format.

>>> import io, json
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter())
>>> log = logging.getLogger("yujing.example")
>>> log.addHandler(handler); log.propagate = False
>>> log.warning("broker %s not answering", "kafka:9092")
>>> sorted(json.loads(stream.getvalue()))
['level', 'logger', 'message', 'ts']
>>> json.loads(stream.getvalue())["message"]
'broker kafka:9092 not answering'
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

LogFormat = Literal["text", "json"]
LogFormatOption = Annotated[LogFormat, typer.Option(
    envvar="YUJING_LOG_FORMAT", help="Log lines as text or as JSON objects (one a line).")]
"""The ``--log-format`` option of the long-running commands (worker, dispatch run, track)."""
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).astimezone().isoformat(
                   timespec="milliseconds"),
               "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT)


def setup(level: str | int, fmt: LogFormat) -> None:
    """Configure the root logger of a process that has none yet (dispatch, track)."""
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level)
    apply(fmt)


def apply(fmt: LogFormat) -> None:
    """Give every handler of the root logger this format (after Faust made its own)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(fmt))
