"""YAML that people write (rule, vocabulary, reference and routing files), read safely and with
the line of every key, so each problem can be reported as ``file:line: message``.

A rule file is untrusted input: it is bounded in size (``RULE_FILE_MAX_BYTES``), parsed once with
PyYAML's safe loader (plain data, no Python objects), and refused before anything walks it when
its aliases would expand to more than ``YAML_MAX_VALUES`` values (a billion-laughs file is 914
bytes), when an alias refers to the value containing it, or when it nests deeper than
``YAML_MAX_DEPTH``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
"""Where in a document: the keys and list indexes from its root."""


@dataclass(frozen=True, slots=True)
class RuleError:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


RULE_FILE_MAX_BYTES = 512 * 1024
"""A rule, vocabulary or reference file: the largest shipped is 19 KB."""
YAML_MAX_VALUES = 100_000
"""Values in a file once its aliases are expanded (a billion-laughs file has 10**9)."""
YAML_MAX_DEPTH = 64
"""Nesting of mappings and lists."""


class UnsafeYaml(ValueError):
    """A document that would take unbounded memory or time to use, with the line to blame."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


Parsed = tuple[Any, dict[Path_, int]]
"""A document and the line of every key and list item in it."""


RULE_MAPPING = "a rule file is a mapping of fields (id, name, kind …)"


def read_document(path: Path, mapping: str = RULE_MAPPING
                  ) -> tuple[Parsed | None, list[RuleError]]:
    """A file's mapping and its lines, or why there is none (``file:line: reason``;
    ``mapping`` says what the file should be when it is not a mapping)."""
    try:
        size = path.stat().st_size
        if size > RULE_FILE_MAX_BYTES:
            return None, [RuleError(path, 1, f"file is {size} bytes, more than the "
                                             f"{RULE_FILE_MAX_BYTES} a rule file may have")]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError(path, 1, f"cannot read: {exc}")]
    return parse_document(text, path, mapping)


def parse_document(text: str, path: Path, mapping: str = RULE_MAPPING
                   ) -> tuple[Parsed | None, list[RuleError]]:
    if len(text.encode("utf-8", errors="replace")) > RULE_FILE_MAX_BYTES:
        return None, [RuleError(path, 1, f"more than the {RULE_FILE_MAX_BYTES} bytes a rule "
                                         "file may have")]
    try:
        raw, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, [RuleError(path, line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    except UnsafeYaml as exc:
        return None, [RuleError(path, exc.line, str(exc))]
    except RecursionError:
        return None, [RuleError(path, 1, f"nested more than {YAML_MAX_DEPTH} levels deep")]
    if not isinstance(raw, dict):
        return None, [RuleError(path, 1, mapping)]
    return (raw, lines), []


def parse_yaml(text: str) -> tuple[Any, dict[Path_, int]]:
    """The document and the 1-based line of every key and list item in it.

    Parsed once, with PyYAML's safe loader (plain data, no Python objects). A document whose
    aliases would expand to more than ``YAML_MAX_VALUES`` values, that refers to itself, or that
    nests deeper than ``YAML_MAX_DEPTH`` raises ``UnsafeYaml`` before anything walks it.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_size(node)
        try:
            data = loader.construct_document(node)
        except (ValueError, OverflowError) as exc:  # a value PyYAML parses but cannot build
            raise UnsafeYaml(f"a value cannot be read: {str(exc)[:200]}",
                             _scalar_line(node)) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    # Each aliased node is walked once (its lines are those of the anchor): bounded by the
    # file's size, not by what its aliases expand to.
    stack: list[tuple[yaml.Node, Path_]] = [(node, ())]
    walked: set[int] = set()
    while stack:
        n, path = stack.pop()
        lines.setdefault(path, n.start_mark.line + 1)
        if id(n) in walked:
            continue
        walked.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                stack.append((value_node, (*path, key)))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(n.value))
    return data, lines


def _check_size(root: yaml.Node) -> None:
    """How many values the document holds with its aliases expanded, counted over the node
    graph (an alias is the anchor's node itself, so each node is counted once, times its
    uses), and how deep it nests; raise ``UnsafeYaml`` past the limits."""
    values: dict[int, int] = {}
    depth: dict[int, int] = {}
    # Iterative post-order: a node is finished once all its children are.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        ident = id(node)
        children = _children(node)
        if not children_done:
            if ident in values:
                continue
            if ident in open_:
                raise UnsafeYaml("a YAML alias refers to the value that contains it",
                                 node.start_mark.line + 1)
            open_.add(ident)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in values)
            if len(open_) > YAML_MAX_DEPTH:
                raise UnsafeYaml(f"nested more than {YAML_MAX_DEPTH} levels deep",
                                 node.start_mark.line + 1)
            continue
        open_.discard(ident)
        values[ident] = 1 + sum(values[id(child)] for child in children)
        depth[ident] = 1 + max((depth[id(child)] for child in children), default=0)
        if values[ident] > YAML_MAX_VALUES:
            raise UnsafeYaml(f"its YAML aliases expand to more than {YAML_MAX_VALUES} values "
                             "(an expansion bomb?)", node.start_mark.line + 1)
        if depth[ident] > YAML_MAX_DEPTH:
            raise UnsafeYaml(f"nested more than {YAML_MAX_DEPTH} levels deep",
                             node.start_mark.line + 1)


def _scalar_line(root: yaml.Node) -> int:
    """The line of the longest scalar (what an over-long number that cannot be built is)."""
    longest, line = -1, 1
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and len(node.value) > longest:
            longest, line = len(node.value), node.start_mark.line + 1
        stack.extend(_children(node))
    return line


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def line_of(lines: dict[Path_, int], loc: Path_) -> int:
    """The line of the deepest part of ``loc`` present in the file."""
    for end in range(len(loc), -1, -1):
        prefix = tuple(loc[:end])
        if prefix in lines:
            return lines[prefix]
    return 1


ROUTING_FOLDER = "routing"
"""Dispatch's routing files live beside the rules (``rules/routing/``) but are not rules."""


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files under the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.y*ml")) if p.suffix in (".yaml", ".yml")
                         and ROUTING_FOLDER not in p.relative_to(path).parts)
        else:
            found.append(path)
    return found
