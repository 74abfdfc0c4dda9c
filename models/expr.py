"""Rule conditions in CEL (Common Expression Language), compiled once and evaluated per event.

CEL is side-effect free and cannot reach Python objects, so a rule file can never run code.
Only the variables an expression names are handed to the evaluator: converting a whole event
into CEL values costs far more than evaluating a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import cel
from pydantic import AfterValidator


class ExpressionError(ValueError):
    """A condition that does not compile, with the evaluator's message."""


class Expression:
    """A compiled CEL expression over event fields and named constants (lists).

    >>> e = Expression("speed_kmh > limit && cargo_class in night_ban", {"limit": 80,
    ...                "night_ban": [1, 2.1, 3]})
    >>> e.variables
    ('cargo_class', 'speed_kmh')
    >>> e.evaluate({"speed_kmh": 85.0, "cargo_class": 3.0})
    True
    >>> e.evaluate({"speed_kmh": 85.0}) is None     # a field the event lacks: no verdict
    True
    """

    __slots__ = ("_constants", "_program", "source", "variables")

    def __init__(self, source: str, constants: Mapping[str, Any] | None = None) -> None:
        self.source = source
        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(_first_line(str(exc))) from None
        constants = constants or {}
        # Comprehension variables (the x in list.exists(x, ...)) show up as names too; they are
        # bound by CEL itself, so a missing one is not an error of the event.
        names = set(self._program.variables())
        self._constants = {n: constants[n] for n in names if n in constants}
        self.variables = tuple(sorted(names - set(self._constants)))

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        """The expression's value, or None when a field it needs is missing or null."""
        env = dict(self._constants)
        for name in self.variables:
            value = data.get(name)
            if value is None:
                if _is_bound_by_comprehension(self.source, name):
                    continue
                return None
            env[name] = value
        try:
            return self._program.execute(env)
        except (RuntimeError, TypeError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def check_cel(source: str) -> str:
    """Pydantic validator for rule-file fields that hold CEL: reject what does not compile."""
    try:
        cel.compile(source)
    except ValueError as exc:
        raise ValueError(f"not a valid CEL expression: {_first_line(str(exc))}") from None
    return source


CelExpr = Annotated[str, AfterValidator(check_cel)]
"""A rule-file field holding a CEL expression."""


def _is_bound_by_comprehension(source: str, name: str) -> bool:
    # exists/all/exists_one/map/filter bind their first argument: `.exists(x,`
    return f"({name}," in source.replace(" ", "")


def _first_line(message: str) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip()]
    return " ".join(lines[:1]) + ("\n" + "\n".join(lines[1:]) if len(lines) > 1 else "")
