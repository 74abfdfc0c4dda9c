"""The CEL subset the fast path (``models.fastcel``) compiles, as Python text of the same tree.

CEL and Python agree on the tree of these expressions once a few tokens are renamed (``&&`` as
``and``, ``!`` as ``~``, ``null`` as ``None``) and ``c ? a : b`` is rearranged, so Python's
parser can read them; anything else translates to None and stays with CEL.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
    |(?P<str>"[^"\\\n]*"|'[^'\\\n]*')
    |(?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\],*/+.-])
    |(?P<name>[A-Za-z_]\w*)
    |(?P<other>\S))""", re.X)
_WORDS = {"null": "None", "true": "True", "false": "False", "in": "in"}


def python_text(source: str) -> str | None:
    """CEL text as Python text with the same tree, or None when it is outside the subset."""
    out = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            if source[pos:].strip():
                return None
            break
        pos = match.end()
        kind = match.lastgroup
        token = match.group(kind)
        if kind == "other":
            if token in ("?", ":"):
                out.append(token)  # a conditional: rearranged below
                continue
            return None  # {, arithmetic and the rest: CEL only
        if kind == "op":
            if token in ("&&", "||"):
                token = " and " if token == "&&" else " or "
            elif token == "!":
                token = "~"  # binds like CEL's !, tighter than comparisons (Python's not is looser)
        elif kind == "name":
            if token in ("and", "or", "not", "is", "lambda", "if", "else", "None", "True",
                         "False"):
                return None  # Python words that are not CEL's
            token = _WORDS.get(token, token)
            if token not in _CALLS and pos < len(source) and source[pos:].lstrip().startswith("("):
                return None  # a function call
        out.append(token)
    tokens = _conditionals(out)
    return None if tokens is None else " ".join(tokens)


_CALLS = frozenset({"exists", "contains", "double"})
"""The functions and macros compiled (as ``list.exists(w, ...)``, ``s.contains(t)``,
``double(x)``); any other call leaves the expression to CEL."""

_OPEN = ("(", "[")
_CLOSE = (")", "]")


def _conditionals(tokens: list[str]) -> list[str] | None:
    """CEL's ``c ? a : b`` as Python's ``(a) if (c) else (b)``, at every level of brackets.

    In CEL ``?:`` binds loosest and nests to the right, so the first ``?`` outside brackets
    ends the condition and the ``:`` that matches it ends the first branch.
    """
    question = _outside_brackets(tokens, "?")
    if question < 0:
        return _within_brackets(tokens)
    condition, rest = tokens[:question], tokens[question + 1:]
    colon = _outside_brackets(rest, ":")
    if colon < 0:
        return None
    parts = [_conditionals(part) for part in (condition, rest[:colon], rest[colon + 1:])]
    if any(not part for part in parts):
        return None
    test, body, orelse = parts
    return ["(", *body, ")", "if", "(", *test, ")", "else", "(", *orelse, ")"]  # type: ignore[misc]


def _outside_brackets(tokens: list[str], wanted: str) -> int:
    """Where ``wanted`` (``?``, or the ``:`` of a ``?`` before it) is outside brackets; -1 if
    nowhere. A ``?`` met on the way to a ``:`` is a nested conditional that takes the next one."""
    depth = pending = 0
    for i, token in enumerate(tokens):
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            depth -= 1
        elif depth == 0 and token == wanted and not pending:
            return i
        elif depth == 0 and wanted == ":" and token == "?":
            pending += 1
        elif depth == 0 and wanted == ":" and token == ":":
            pending -= 1
    return -1


def _within_brackets(tokens: list[str]) -> list[str] | None:
    """``tokens`` (no ``?`` outside brackets) with the conditionals inside brackets rewritten:
    each list item or bracketed group is an expression of its own."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, token in enumerate(tokens):
        if token in _OPEN:
            if depth == 0:
                out.append(token)
                start = i + 1
            depth += 1
        elif token in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
            if depth == 0:
                inner = _items(tokens[start:i])
                if inner is None:
                    return None
                out.extend(inner)
                out.append(token)
        elif depth == 0:
            if token in ("?", ":"):
                return None  # a : without its ?
            out.append(token)
    return out if depth == 0 else None


def _items(tokens: list[str]) -> list[str] | None:
    """The inside of a bracket, each comma-separated item rewritten on its own."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, token in enumerate([*tokens, ","]):
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            depth -= 1
        elif token == "," and depth == 0:
            item = tokens[start:i]
            if item:
                rewritten = _conditionals(item)
                if rewritten is None:
                    return None
                out.extend(rewritten)
            if i < len(tokens):
                out.append(",")
            start = i + 1
    return out
