"""Shared vocabulary for rule conditions: named lists and macros, in the spirit of Falco's rules.

A *list* is a named constant (``night_ban_classes: [1.1, 2.1, 3]``) that conditions use as a
variable. A *macro* is a named condition (``moving: speed_kmh > 5``) that conditions use as if it
were a field; it is expanded in place, in parentheses, before the condition is compiled. Macros
may use lists and other macros.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# CEL tokens that matter here: string literals (skipped whole) and identifiers.
_TOKEN = re.compile(
    r"""(?P<str>[rRbB]*("([^"\\]|\\.)*"|'([^'\\]|\\.)*'))"""
    r"""|(?P<ident>[A-Za-z_]\w*)""")


class MacroError(ValueError):
    """A macro that refers to itself, directly or through others."""


def expand_macros(source: str, macros: Mapping[str, str], _stack: tuple[str, ...] = (),
                  limit: int | None = None) -> str:
    """``source`` with every macro name replaced by its (expanded) definition in parentheses.

    A name after a dot is a member (``e.moving``), not a macro, and text in quotes is left alone.
    With ``limit``, an expansion longer than that many characters raises ``MacroError`` (macros
    using macros can grow exponentially) before it is built.

    >>> macros = {"moving": "speed_kmh > 5", "night": "hour < 6",
    ...           "night_run": "moving && night"}
    >>> expand_macros('night_run && plate != "moving"', macros)
    '((speed_kmh > 5) && (hour < 6)) && plate != "moving"'
    """
    if not macros:
        return source
    out: list[str] = []
    size = 0
    last = 0
    for match in _TOKEN.finditer(source):
        name = match.group("ident")
        if name is None or name not in macros or _after_dot(source, match.start()):
            continue
        if name in _stack:
            raise MacroError(f"macro {name!r} refers to itself: {' -> '.join((*_stack, name))}")
        out.append(source[last:match.start()])
        out.append("(" + expand_macros(macros[name], macros, (*_stack, name), limit) + ")")
        size += len(out[-2]) + len(out[-1])
        if limit is not None and size > limit:
            raise MacroError(f"with its macros expanded it is more than {limit} characters")
        last = match.end()
    out.append(source[last:])
    return "".join(out)


def _after_dot(source: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and source[i].isspace():
        i -= 1
    return i >= 0 and source[i] == "."
