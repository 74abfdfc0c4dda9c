"""A fast path for the plain comparisons most rule conditions are, with CEL's exact meaning.

Handing an event's values to the CEL evaluator costs a few microseconds per condition — more
than the comparison itself — and a busy topic has a dozen conditions per event. Conditions made
only of fields, literals, comparisons, ``in`` lists, ``&&``, ``||``, ``!``, arithmetic and
field access (``waybill.status``) are compiled here into Python closures instead. The closures
follow CEL's semantics: equality across types is false, ordering across types is an error,
``!`` and ``&&``/``||`` want booleans, and ``&&``/``||`` absorb an error when the other side
decides. Whatever they are not sure of — arithmetic on anything but two doubles, a field of
something that is not a map holding it, lists compared with lists, any value that is not a
number, string, boolean, timestamp or null — they hand back to CEL for that event, and anything
else (other functions and macros) is never compiled, so the answer is always CEL's. Also
compiled: ``c ? a : b`` (speed limits by road class are written that way), evaluating only
the branch ``c`` chooses; ``list.exists(w, ...)`` over a list, ``s.contains(t)`` of two strings
and ``double(x)`` of a number (keyword lists and occupancy shares are written that way).
``tests/unit/models/test_fastcel.py`` checks this against the CEL evaluator on random
expressions and values.

Only the parser of Python's ``ast`` module is used, on text translated token by token
(``models.fastcel_syntax``); nothing is ever evaluated by Python.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from models.fastcel_syntax import python_text

Fast = Callable[[Mapping[str, Any]], Any]


class Unsure(Exception):
    """The fast path cannot be certain of CEL's answer for these values: ask CEL."""


class CelError(Exception):
    """CEL would fail here (an ordering across types, ``!`` of a number …)."""


def compile_fast(source: str, constants: Mapping[str, Any]) -> Fast | None:
    """A closure for ``source`` when it is in the supported subset, else None."""
    text = python_text(source)
    if text is None:
        return None
    try:
        tree = ast.parse(text, mode="eval").body
        return _build(tree, constants)
    except (SyntaxError, _NotSupported):
        return None


class _NotSupported(Exception):
    pass


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return "timestamp"
    if type(value) is dict:
        return "map"
    if type(value) is list:
        return "list"
    raise Unsure


def _equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb and (ta is float or ta is str or ta is int or ta is bool):
        return a == b
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False  # values of different types are never equal (a map is not null)
    if ka == "map" or ka == "list":
        raise Unsure  # element by element, with CEL's equality: CEL decides
    return a == b


def _order(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        ta, tb = type(a), type(b)
        if (ta is float or ta is int) and (tb is float or tb is int):
            return op(a, b)  # the common case, first
        ka, kb = _kind(a), _kind(b)
        if ka == "map" or ka == "list" or kb == "map" or kb == "list":
            raise Unsure
        if ka != kb or ka == "null":
            raise CelError(f"no ordering between {ka} and {kb}")
        return op(a, b)
    return compare


_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: _equal,
    ast.NotEq: lambda a, b: not _equal(a, b),
    ast.Lt: _order(operator.lt), ast.LtE: _order(operator.le),
    ast.Gt: _order(operator.gt), ast.GtE: _order(operator.ge),
}


def _build(node: ast.AST, constants: Mapping[str, Any]) -> Fast:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, complex | bytes):
            raise _NotSupported
        return lambda data: value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, int | float) \
            and not isinstance(node.operand.value, bool):
        negative = -node.operand.value
        return lambda data: negative
    if isinstance(node, ast.Name):
        name = node.id
        if name in constants:
            constant = constants[name]
            return lambda data: constant
        return lambda data: data.get(name)
    if isinstance(node, ast.List):
        items = [_build(e, constants) for e in node.elts]
        if all(isinstance(e, ast.Constant | ast.UnaryOp) for e in node.elts):
            fixed = [item({}) for item in items]  # a literal list: built once
            return lambda data: fixed
        return lambda data: [item(data) for item in items]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        operand = _build(node.operand, constants)

        def negate(data: Mapping[str, Any]) -> bool:
            value = operand(data)
            if not isinstance(value, bool):
                raise CelError("! wants a bool")
            return not value
        return negate
    if isinstance(node, ast.Attribute):
        return _member(_build(node.value, constants), node.attr)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _arithmetic(_build(node.left, constants), _build(node.right, constants),
                           _ARITHMETIC[type(node.op)])
    if isinstance(node, ast.BoolOp):
        parts = [_build(v, constants) for v in node.values]
        return _logic(parts, isinstance(node.op, ast.And))
    if isinstance(node, ast.Call):
        return _call(node, constants)
    if isinstance(node, ast.IfExp):
        return _conditional(_build(node.test, constants), _build(node.body, constants),
                            _build(node.orelse, constants))
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left = _build(node.left, constants)
        right = _build(node.comparators[0], constants)
        op = type(node.ops[0])
        if op is ast.In:
            general = _membership(left, right)
            if isinstance(node.left, ast.Name) and node.left.id not in constants:
                items = right({}) if _is_fixed(node.comparators[0], constants) else None
                if isinstance(items, list) and items \
                        and all(type(item) is str for item in items):
                    return _field_in_strings(node.left.id, frozenset(items), general)
            return general
        compare = _COMPARE.get(op)
        if compare is None:
            raise _NotSupported
        if isinstance(node.left, ast.Name) and node.left.id not in constants \
                and isinstance(node.comparators[0], ast.Constant):
            # field against literal, the usual shape: one call fewer per evaluation
            name, literal = node.left.id, right({})
            number = _NUMBER_ORDER.get(op)
            if number is not None and type(literal) in (int, float):
                return _field_against_number(name, literal, number, compare)
            if op is ast.Eq and type(literal) is str:
                return _field_is_string(name, literal)
            return lambda data: compare(data.get(name), literal)
        return lambda data: compare(left(data), right(data))
    raise _NotSupported


_NUMBER_ORDER: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _field_against_number(name: str, literal: float, op: Callable[[Any, Any], bool],
                          compare: Callable[[Any, Any], bool]) -> Fast:
    # `speed_kmh > 80.0`, most conditions of a city: a number compares in place, anything
    # else takes the general comparison with its checks.
    def field_against_number(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        kind = type(value)
        if kind is float or kind is int:
            return op(value, literal)
        return compare(value, literal)
    return field_against_number


def _field_is_string(name: str, literal: str) -> Fast:
    # `kind == "fire"`: a string compares in place; CEL's equality across types is false.
    def field_is_string(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        if type(value) is str:
            return value == literal
        return _equal(value, literal)
    return field_is_string


def _is_fixed(node: ast.AST, constants: Mapping[str, Any]) -> bool:
    """A literal list, or the name of a constant: the same for every event."""
    if isinstance(node, ast.Name):
        return node.id in constants
    return isinstance(node, ast.List) and all(isinstance(e, ast.Constant) for e in node.elts)


def _field_in_strings(name: str, strings: frozenset[str], general: Fast) -> Fast:
    # `metric in ["a", "b"]`: a string is looked up in a set; anything else is never equal to
    # a string, but a list or map there is CEL's to judge, so the general path takes it.
    def field_in_strings(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        if type(value) is str:
            return value in strings
        return general(data)
    return field_in_strings


_ARITHMETIC: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(left: Fast, right: Fast, op: Callable[[float, float], float]) -> Fast:
    # Doubles only: CEL's int arithmetic overflows and truncates differently, and it has no
    # int-double overloads at all; a division by zero (CEL: infinity) is CEL's too.
    def compute(data: Mapping[str, Any]) -> float:
        a, b = left(data), right(data)
        if type(a) is not float or type(b) is not float or (op is operator.truediv and not b):
            raise Unsure
        return op(a, b)
    return compute


def _member(value: Fast, name: str) -> Fast:
    # A field of a map that has it; anything else (null, a missing key, a list) is CEL's.
    def get(data: Mapping[str, Any]) -> Any:
        found = value(data)
        if type(found) is dict and name in found:
            return found[name]
        raise Unsure
    return get


def _membership(left: Fast, right: Fast) -> Fast:
    def member(data: Mapping[str, Any]) -> bool:
        items = right(data)
        if not isinstance(items, list):
            raise Unsure
        value = left(data)
        return any(_equal(value, item) for item in items)
    return member


def _call(node: ast.Call, constants: Mapping[str, Any]) -> Fast:
    func, args = node.func, node.args
    if node.keywords or any(isinstance(a, ast.Starred) for a in args):
        raise _NotSupported
    if isinstance(func, ast.Name) and func.id == "double" and len(args) == 1:
        return _double(_build(args[0], constants))
    if not isinstance(func, ast.Attribute):
        raise _NotSupported
    if func.attr == "contains" and len(args) == 1:
        return _contains(_build(func.value, constants), _build(args[0], constants))
    if func.attr == "exists" and len(args) == 2 and isinstance(args[0], ast.Name) \
            and args[0].id not in constants:
        return _exists(_build(func.value, constants), args[0].id,
                       _build(args[1], constants))
    raise _NotSupported


def _double(value: Fast) -> Fast:
    # A number as a double; a string (parsed), a bool or null are CEL's to judge.
    def double(data: Mapping[str, Any]) -> float:
        found = value(data)
        kind = type(found)
        if kind is float:
            return found
        if kind is int and -(1 << 63) <= found < 1 << 63:
            return float(found)
        raise Unsure
    return double


def _contains(text: Fast, part: Fast) -> Fast:
    def contains(data: Mapping[str, Any]) -> bool:
        found, wanted = text(data), part(data)
        if type(found) is str and type(wanted) is str:
            return wanted in found
        raise Unsure
    return contains


class _Bound(Mapping[str, Any]):
    """The event's fields with a macro's variable bound to the item at hand (CEL's scope)."""

    __slots__ = ("name", "outer", "value")

    def __init__(self, outer: Mapping[str, Any], name: str) -> None:
        self.outer, self.name, self.value = outer, name, None

    def get(self, key: str, default: Any = None) -> Any:
        return self.value if key == self.name else self.outer.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.value if key == self.name else self.outer[key]

    def __iter__(self) -> Iterator[str]:
        return iter({*self.outer, self.name})

    def __len__(self) -> int:
        return len({*self.outer, self.name})


def _exists(items: Fast, name: str, test: Fast) -> Fast:
    # The CEL evaluator's exists: the items in order, true at the first that is, an error (or
    # a value that is not a bool) at the first that gives one. A map's keys are CEL's.
    def exists(data: Mapping[str, Any]) -> bool:
        found = items(data)
        if type(found) is not list:
            raise Unsure
        scope = _Bound(data, name)
        for item in found:
            scope.value = item
            held = test(scope)
            if held is True:
                return True
            if held is not False:
                raise CelError("exists wants a bool")
        return False
    return exists


def _conditional(test: Fast, body: Fast, orelse: Fast) -> Fast:
    # CEL's ?: wants a bool and evaluates only the branch it chooses: an error in the other
    # one does not matter, one in the condition is the answer.
    def choose(data: Mapping[str, Any]) -> Any:
        chosen = test(data)
        if chosen is True:
            return body(data)
        if chosen is False:
            return orelse(data)
        raise CelError("?: wants a bool")
    return choose


def _logic(parts: list[Fast], conjunction: bool) -> Fast:
    # CEL's && and || are commutative about errors: one side that decides (false for &&,
    # true for ||) wins over an error on the other.
    decisive = not conjunction
    if len(parts) == 2:
        return _logic_of_two(parts[0], parts[1], decisive)

    def combine(data: Mapping[str, Any]) -> bool:
        error: Exception | None = None
        for part in parts:
            try:
                value = part(data)
            except CelError as exc:
                error = exc
                continue
            if not isinstance(value, bool):
                error = CelError("&&/|| want bools")
                continue
            if value is decisive:
                return decisive
        if error is not None:
            raise error
        return not decisive
    return combine


def _logic_of_two(first: Fast, second: Fast, decisive: bool) -> Fast:
    # The usual `a && b`, unrolled: the same answers and errors as ``combine``.
    def combine_two(data: Mapping[str, Any]) -> bool:
        try:
            a: Any = first(data)
        except CelError as exc:
            a = exc
        if a is decisive:
            return decisive
        try:
            b: Any = second(data)
        except CelError as exc:
            b = exc
        if b is decisive:
            return decisive
        if type(b) is not bool:
            raise b if isinstance(b, CelError) else CelError("&&/|| want bools")
        if type(a) is not bool:
            raise a if isinstance(a, CelError) else CelError("&&/|| want bools")
        return not decisive
    return combine_two


Guard = tuple[str, frozenset[str]]
"""(field, strings): the condition can only be true when the field holds one of the strings."""


def guard_of(source: str, constants: Mapping[str, Any]) -> Guard | None:
    """A field the condition requires to be one of some string literals, if it has one.

    For ``kind == "fire" && level >= 2`` that is ``("kind", {"fire"})``: the condition is true
    only if every conjunct is, and CEL's ``==`` and ``in`` are true for a string literal only
    when the field holds that very string. The core uses it to skip, by one dict lookup, the
    rules an event cannot concern (most events of a busy topic reach a handful of its rules).

    >>> guard_of('kind == "fire" && level >= 2', {})
    ('kind', frozenset({'fire'}))
    >>> guard_of('metric in names || x', {"names": ["a"]}) is None
    True
    """
    text = python_text(source)
    if text is None:
        return None
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    terms = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) \
        else [tree]
    for term in terms:
        found = _guard_term(term, constants)
        if found is not None:
            return found
    return None


def _guard_term(node: ast.AST, constants: Mapping[str, Any]) -> Guard | None:
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    left, right, op = node.left, node.comparators[0], type(node.ops[0])
    if op is ast.Eq and isinstance(left, ast.Constant) and isinstance(right, ast.Name):
        left, right = right, left  # "fire" == kind
    if not isinstance(left, ast.Name) or left.id in constants:
        return None
    values: list[Any]
    if op is ast.Eq and isinstance(right, ast.Constant):
        values = [right.value]
    elif op is ast.In and isinstance(right, ast.List) \
            and all(isinstance(e, ast.Constant) for e in right.elts):
        values = [e.value for e in right.elts]  # type: ignore[attr-defined]
    elif op is ast.In and isinstance(right, ast.Name) \
            and isinstance(constants.get(right.id), list):
        values = list(constants[right.id])
    else:
        return None
    if not values or not all(isinstance(v, str) for v in values):
        return None  # numbers compare across int/double: not a plain lookup
    return left.id, frozenset(values)
