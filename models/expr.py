"""Rule conditions in CEL (Common Expression Language), compiled once and evaluated per event.

CEL is side-effect free and cannot reach Python objects, so a rule file can never run code.
Only the variables an expression names are handed to the evaluator: converting a whole event
into CEL values costs far more than evaluating a comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import cel
from pydantic import AfterValidator

from models.fastcel import CelError, Unsure, compile_fast, guard_of
from models.vocabulary import expand_macros

CEL_ERRORS = (RuntimeError, TypeError, ValueError, KeyError, IndexError, ArithmeticError)
"""What the CEL evaluator raises when an expression has no value for an event (a missing map
key comes back as KeyError): the condition is undecided."""


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
    >>> e.evaluate({"cargo_class": 3.0}) is None     # a field the event lacks: no verdict
    True
    >>> Expression("lel_pct >= 25.0 || toxic_ppm > 7.0").evaluate({"lel_pct": 30})
    True

    A missing field is null, so ``x == null`` tests for it, and ``||`` / ``&&`` decide on the
    fields that are there when that is enough (CEL's error-absorbing logic).
    """

    __slots__ = ("_constants", "_fast", "_program", "expanded", "guard", "identity", "source",
                 "variables")

    def __init__(self, source: str, constants: Mapping[str, Any] | None = None,
                 macros: Mapping[str, str] | None = None) -> None:
        self.source = source
        """As written in the rule file (macro names and all): what alerts show."""
        self.expanded = expand_macros(source, macros or {})
        try:
            self._program = cel.compile(self.expanded)
        except ValueError as exc:
            raise ExpressionError(_first_line(str(exc))) from None
        constants = constants or {}
        # Comprehension variables (the x in list.exists(x, ...)) show up as names too; CEL binds
        # them itself, so they are not fields of the event.
        names = set(self._program.variables()) - set(_BOUND.findall(self.expanded))
        self._constants = {n: constants[n] for n in names if n in constants}
        self.variables = tuple(sorted(names - set(self._constants)))
        self._fast = compile_fast(self.expanded, self._constants)
        self.guard = guard_of(self.expanded, self._constants)
        """(field, strings) the expression needs the field to be one of, if it says so."""
        self.identity = (self.expanded, repr(sorted(self._constants.items())))
        """Equal for expressions that always give the same value (the core evaluates a
        ``where`` that several rules share once per event)."""

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        """The expression's value, or None when it cannot be decided (a needed field is null)."""
        fast = self._fast
        if fast is not None:
            try:
                return fast(data)
            except CelError:
                return None
            except Unsure:
                pass  # CEL decides
            except Exception:  # a defect of the fast path: CEL decides
                pass
        return self._by_cel(data)

    def _by_cel(self, data: Mapping[str, Any]) -> Any:
        env = dict(self._constants)
        for name in self.variables:
            env[name] = data.get(name)
        try:
            return self._program.execute(env)
        except CEL_ERRORS:
            return None
        except BaseException as exc:  # the evaluator panicking (Rust): no verdict either
            if not _is_panic(exc):
                raise
            return None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _is_panic(exc: BaseException) -> bool:
    """pyo3's ``PanicException`` (a Rust panic), which derives from BaseException only."""
    return type(exc).__name__ == "PanicException"


def check_cel(source: str) -> str:
    """Pydantic validator for rule-file fields that hold CEL: reject what does not compile."""
    try:
        cel.compile(source)
    except ValueError as exc:
        raise ValueError(f"not a valid CEL expression: {_first_line(str(exc))}") from None
    return source


CelExpr = Annotated[str, AfterValidator(check_cel)]
"""A rule-file field holding a CEL expression."""


_BOUND = re.compile(r"\.\s*(?:exists_one|exists|all|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def _first_line(message: str) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip()]
    return " ".join(lines[:1]) + ("\n" + "\n".join(lines[1:]) if len(lines) > 1 else "")
