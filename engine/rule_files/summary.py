"""Alert summaries: one line for the duty officer, filled from the event and the evidence."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from topics.bounds import FORMAT_WIDTH_MAX

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]+))?\}")
_FORMAT_SPEC = re.compile(
    r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?"
    r"[bcdeEfFgGnosxX%]?$")


def render_summary(template: str, values: dict[str, Any]) -> str:
    """Fill ``{field}`` and ``{field:fmt}`` from ``values``; an unknown field shows as ``?``.

    A format the value does not take, or one wider than ``FORMAT_WIDTH_MAX`` (which the
    loader rejects anyway), shows the value as it is.

    >>> render_summary("{plate} at {speed_kmh:.0f} km/h, limit {limit}", {"plate": "浙A1",
    ...                "speed_kmh": 86.4})
    '浙A1 at 86 km/h, limit ?'
    >>> render_summary("{speed_kmh:>2000000}", {"speed_kmh": 86.4})
    '86.4'
    """

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            return "?"
        spec = match.group(2)
        if not spec or spec_problem(spec) is not None:
            return str(value)
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)

    return _PLACEHOLDER.sub(fill, template)


def summary_fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(template)))


@lru_cache(maxsize=1024)
def spec_problem(spec: str) -> str | None:
    """What is wrong with a placeholder's format spec, if anything.

    >>> spec_problem(".1f"), spec_problem(">8"), spec_problem(">2000000")
    (None, None, 'width 2000000 is more than 100')
    >>> spec_problem("%Y")
    "'%Y' is not a format spec (write e.g. .1f, >8 or ,d)"
    """
    match = _FORMAT_SPEC.match(spec)
    if match is None:
        return f"{spec!r} is not a format spec (write e.g. .1f, >8 or ,d)"
    for part in ("width", "precision"):
        digits = match.group(part)
        if digits and (len(digits) > 4 or int(digits) > FORMAT_WIDTH_MAX):
            return f"{part} {digits} is more than {FORMAT_WIDTH_MAX}"
    return None


def summary_problems(template: str, known: set[str], patterns: Iterable[str] = ()
                     ) -> list[str]:
    """Placeholders that name nothing the alert will have (``known``: the source's fields and
    the kind's evidence; ``patterns``: prefixes ending in ``*``), and format specs that are
    not formats or are too wide.

    >>> summary_problems("{plate} {sped_kmh:.0f} {x:>999}", {"plate", "x"})
    ['{sped_kmh}: no field or evidence of that name', '{x:>999}: width 999 is more than 100']
    """
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    problems = []
    for match in _PLACEHOLDER.finditer(template):
        name, spec = match.group(1), match.group(2)
        if name not in known and not name.startswith(prefixes or ("\0",)):
            problems.append(f"{{{name}}}: no field or evidence of that name")
        problem = spec_problem(spec[:40]) if spec else None
        if problem is not None:
            problems.append(f"{{{name}:{spec[:40]}}}: {problem}")
    return problems
