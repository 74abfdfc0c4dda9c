"""Size limits of what yujing reads and writes, and the one way it cuts text to fit them.

Kafka refuses a record larger than the producer's ``max.request.size`` (Faust's default
1,000,000 bytes) or the topic's ``max.message.bytes``; a worker that hands one over stops, and a
restarted worker meets the same input again. So every record yujing writes is bounded by
construction — free text cut at decode, alert summaries and evidence capped, a dead letter keeping
a prefix of what it reports with its size and hash — and ``fits`` is the last check before a send.

>>> cut("x" * 30, 24)
'xxxxxxxx…[cut: 30 chars]'
>>> cut("short", 10)
'short'
"""

from __future__ import annotations

MAX_RECORD_BYTES = 1_000_000
"""The largest record (key and value) any yujing producer sends: Faust's default
``producer_max_request_size``, under the broker's default ``message.max.bytes`` (1,048,588)."""

FIELD_MAX_CHARS = 512
"""Any string field of an event or reference record (ids, names, categories): longer is
rejected, since cutting an id would change what it names."""
TEXT_MAX_CHARS = 4096
"""Free text (a 12345 ticket's description, a list entry's note): longer is cut with a marker
and the event scored."""

SUMMARY_MAX_CHARS = 1000
"""An alert's one-line summary."""
EVIDENCE_VALUE_MAX_CHARS = 1000
"""A string inside an alert's evidence (the condition as written, a record's field)."""
EVIDENCE_MAX_BYTES = 16384
"""An alert's evidence as JSON; beyond it only the condition and a note are kept."""
FORMAT_WIDTH_MAX = 100
"""Largest width or precision of a ``{field:fmt}`` placeholder in a summary."""

DEADLETTER_VALUE_BYTES = 16384
"""Bytes of the original record a dead letter keeps (it says the full size and SHA-256)."""
REASON_MAX_CHARS = 2000
"""A dead letter's reason (error messages can quote their input)."""
KEY_MAX_CHARS = 512
"""A dead letter's copy of the record key."""


def cut(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else as much of it as fits in ``limit``
    with a marker saying how long it was (so text cut once is not cut again)."""
    if len(text) <= limit:
        return text
    marker = f"…[cut: {len(text)} chars]"
    return text[:max(0, limit - len(marker))] + marker


def fits(key: bytes | None, value: bytes | None) -> bool:
    """Whether a record of this key and value can be sent (with room for Kafka's overhead)."""
    return len(key or b"") + len(value or b"") + 512 <= MAX_RECORD_BYTES
