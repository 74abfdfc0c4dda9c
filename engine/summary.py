"""Alert summaries: one line for the duty officer, filled from the event and the evidence."""

from __future__ import annotations

import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


def render_summary(template: str, values: dict[str, Any]) -> str:
    """Fill ``{field}`` and ``{field:fmt}`` from ``values``; an unknown field shows as ``?``.

    >>> render_summary("{plate} at {speed_kmh:.0f} km/h, limit {limit}", {"plate": "浙A1",
    ...                "speed_kmh": 86.4})
    '浙A1 at 86 km/h, limit ?'
    """

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            return "?"
        spec = match.group(2)
        try:
            return format(value, spec) if spec else str(value)
        except (TypeError, ValueError):
            return str(value)

    return _PLACEHOLDER.sub(fill, template)


def summary_fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(template)))
