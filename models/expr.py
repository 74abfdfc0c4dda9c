"""Rule conditions in CEL (Common Expression Language), compiled once and evaluated per event.

CEL is side-effect free and cannot reach Python objects, so a rule file can never run code.
Only the variables an expression names are handed to the evaluator: converting a whole event
into CEL values costs far more than evaluating a comparison.

Rule files are untrusted input, and CEL's compiler is not built for hostile text (100,000 nested
parentheses make it panic; a 2 MB condition takes a minute and a gigabyte). So a condition is at
most ``CONDITION_MAX_CHARS`` as written and ``EXPANDED_MAX_CHARS`` with its macros expanded, and
nests at most ``NESTING_MAX`` brackets deep; a panic or a recursion limit while compiling is an
``ExpressionError`` like any other.
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


CONDITION_MAX_CHARS = 2000
"""A condition as written (the catalogue's longest is 135)."""
EXPANDED_MAX_CHARS = 10_000
"""A condition with its macros expanded."""
NESTING_MAX = 32
"""Brackets (``(``, ``[``, ``{``) open at once."""


class ExpressionError(ValueError):
    """A condition that does not compile, with the evaluator's message."""


def shape_problem(source: str, limit: int = CONDITION_MAX_CHARS) -> str | None:
    """Why a condition is too large to compile safely, if it is.

    >>> shape_problem("(" * 40 + "x" + ")" * 40)
    'brackets nest 40 deep (at most 32)'
    >>> shape_problem('name == "((((((((((((((((((((((((((((((((((((("') is None
    True
    """
    if len(source) > limit:
        return f"{len(source)} characters long (at most {limit})"
    depth = deepest = 0
    quote = None
    escaped = False
    for char in source:
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > NESTING_MAX:
        return f"brackets nest {deepest} deep (at most {NESTING_MAX})"
    return None


def _compile(source: str) -> Any:
    """``cel.compile``, with whatever it does on hostile text turned into ``ExpressionError``."""
    try:
        return cel.compile(source)
    except ValueError as exc:
        raise ExpressionError(_first_line(str(exc))) from None
    except RecursionError:
        raise ExpressionError("nested too deeply to compile") from None
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise ExpressionError(f"the CEL compiler failed on it ({exc})") from None


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
        problem = shape_problem(source)
        if problem is not None:
            raise ExpressionError(f"the condition is {problem}")
        self.expanded = expand_macros(source, macros or {}, limit=EXPANDED_MAX_CHARS)
        problem = shape_problem(self.expanded, EXPANDED_MAX_CHARS)
        if problem is not None:
            raise ExpressionError(f"with its macros expanded, the condition is {problem}")
        self._program = _compile(self.expanded)
        constants = constants or {}
        # Comprehension variables (the x in list.exists(x, ...)) show up as names too; CEL binds
        # them itself, so they are not fields of the event.
        names = set(self._program.variables()) - set(_BOUND.findall(self.expanded))
        self._constants = {n: constants[n] for n in names if n in constants}
        self.variables = tuple(sorted(names - set(self._constants)))
        try:
            self._fast = compile_fast(self.expanded, self._constants)
            self.guard = guard_of(self.expanded, self._constants)
        except RecursionError:
            raise ExpressionError("nested too deeply to compile") from None
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
    problem = shape_problem(source)
    if problem is not None:
        raise ValueError(f"the condition is {problem}")
    try:
        _compile(source)
    except ExpressionError as exc:
        raise ValueError(f"not a valid CEL expression: {exc}") from None
    for literal in _REGEX_LITERAL.findall(source):
        problem = _regex_problem(literal)
        if problem:
            raise ValueError(f"matches({literal}): {problem}")
    return source


_REGEX_LITERAL = re.compile(r"""\.\s*matches\s*\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\)""")


def _regex_problem(literal: str) -> str | None:
    """What CEL's regex engine says of a pattern (too large, not valid), tried once here
    rather than failing on every event."""
    try:
        _compile(f'"".matches({literal})').execute({})
    except CEL_ERRORS as exc:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return text.removeprefix("Function 'matches' error: ").removesuffix(
            " Check function arguments and their types.")[:300]
    except ExpressionError as exc:
        return str(exc)
    return None


CelExpr = Annotated[str, AfterValidator(check_cel)]
"""A rule-file field holding a CEL expression."""


_BOUND = re.compile(r"\.\s*(?:exists_one|exists|all|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def _first_line(message: str) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip()]
    return " ".join(lines[:1]) + ("\n" + "\n".join(lines[1:]) if len(lines) > 1 else "")
