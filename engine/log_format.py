"""One log format for every yujing process: text or JSON lines (``--log-format``).

Text: ``2024-06-03 08:00:31,123 INFO yujing.worker: message``. JSON: one object a line with
``ts`` (ISO 8601 with the zone), ``level``, ``logger``, ``message`` and, for an exception,
``exc`` — what a log shipper reads without a parsing rule. The worker's Faust sets up its own
root handlers; ``apply`` gives them this format too, so a worker's log is one format.

Both formats mask phone and ID numbers (``topics.personal_data.mask_text``) in the finished line,
message and traceback alike: a line that quotes an event (a bad record, a failed rule) does not
leak a caller's number into the log store.

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
>>> log.warning("bad record %r", {"text": "回电13812345678"})
>>> json.loads(stream.getvalue().splitlines()[1])["message"]
"bad record {'text': '回电138****5678'}"
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

from topics.personal_data import mask_text

LogFormat = Literal["text", "json"]
LogFormatOption = Annotated[LogFormat, typer.Option(
    envvar="YUJING_LOG_FORMAT", help="Log lines as text or as JSON objects (one a line).")]
"""The ``--log-format`` option of the long-running commands (worker, dispatch run, track)."""
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """A record as one line of text (with its traceback), phone and ID numbers masked."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line, phone and ID numbers masked."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).astimezone().isoformat(
                   timespec="milliseconds"),
               "level": record.levelname, "logger": record.name,
               "message": mask_text(record.getMessage())}
        if record.exc_info:
            out["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup(level: str | int, fmt: LogFormat) -> None:
    """Configure the root logger of a process that has none yet (dispatch, track)."""
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level)
    apply(fmt)


def apply(fmt: LogFormat) -> None:
    """Give every handler of the root logger this format (after Faust made its own)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(fmt))
