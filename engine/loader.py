"""Reads rule files, checks them, and compiles them into models the core can run.

Every problem is reported as ``file:line: message`` — the line of the offending key, or of the
mapping that lacks a required one — and a file with any problem is left out whole, so a broken
edit never half-loads. ``load_rules`` returns the good rules and the errors side by side: the
worker keeps running the good ones, ``yujing validate`` exits non-zero on any error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.rulefile import RuleCommon, rule_adapter
from engine.summary import summary_fields
from models import KINDS
from models.base import WarningModel
from models.expr import Expression
from topics.registry import EVENT_TOPICS

# Fields the codec adds to every event for conditions (local hour and weekday).
DERIVED_FIELDS = ("hour", "weekday")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class RuleError:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class CompiledRule:
    """A validated rule file with its model built and its conditions compiled."""

    spec: RuleCommon
    model: WarningModel[Any]
    where: Expression | None
    key_field: str
    state_key: str
    """``id@fingerprint``: state is kept under this, so a changed condition starts afresh."""
    file: Path
    context_fields: tuple[str, ...] = ()
    """Event fields kept with the state, for alerts raised by a deadline (no event at hand)."""

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(slots=True)
class LoadResult:
    rules: list[CompiledRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files under the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.y*ml")) if p.suffix in (".yaml", ".yml"))
        else:
            found.append(path)
    return found


def load_rules(paths: Iterable[Path]) -> LoadResult:
    """Load every rule file under ``paths``; duplicate ids are errors on the later file."""
    result = LoadResult()
    seen: dict[str, Path] = {}
    for path in rule_files(paths):
        rule, errors = load_rule_file(path)
        result.errors.extend(errors)
        if rule is None:
            continue
        if rule.id in seen:
            result.errors.append(RuleError(path, 1, f"id {rule.id!r} is already used by "
                                                    f"{seen[rule.id]}"))
            continue
        seen[rule.id] = path
        result.rules.append(rule)
    return result


def load_rule_file(path: Path) -> tuple[CompiledRule | None, list[RuleError]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError(path, 1, f"cannot read: {exc}")]
    return compile_rule_text(text, path)


def compile_rule_text(text: str, path: Path) -> tuple[CompiledRule | None, list[RuleError]]:
    try:
        raw, lines = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, [RuleError(path, line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    if not isinstance(raw, dict):
        return None, [RuleError(path, 1, "a rule file is a mapping of fields (id, name, kind …)")]

    def err(loc: Path_, message: str) -> RuleError:
        return RuleError(path, _line_of(lines, loc), message)

    try:
        spec = rule_adapter().validate_python(raw)
    except ValidationError as exc:
        errors = [err(loc, msg) for loc, msg in _explain(exc, raw)]
        return None, sorted(errors, key=lambda e: e.line)

    errors = _check_fields(spec, err)
    if errors:
        return None, errors
    kind = KINDS[spec.kind]  # type: ignore[attr-defined]
    params = kind.Params.model_validate(
        {name: getattr(spec, name) for name in kind.Params.model_fields})
    model = kind(params)
    where = Expression(spec.where) if spec.where else None
    key_field = spec.key or EVENT_TOPICS[spec.source].key_field
    context: tuple[str, ...] = ()
    if kind.uses_deadlines:
        wanted = (*summary_fields(spec.summary), "grid_id", "district")
        context = tuple(f for f in dict.fromkeys(wanted) if f in schema_fields(spec.source))
    return CompiledRule(spec=spec, model=model, where=where, key_field=key_field,
                        state_key=f"{spec.id}@{_fingerprint(spec, params)}", file=path,
                        context_fields=context), []


def schema_fields(topic: str) -> set[str]:
    return set(EVENT_TOPICS[topic].schema.model_fields) | set(DERIVED_FIELDS)


def _check_fields(spec: RuleCommon, err: Any) -> list[RuleError]:
    """Names in conditions and field parameters must be fields of the source topic."""
    known = schema_fields(spec.source)
    hint = f"{spec.source} has: {', '.join(sorted(known))}"
    kind = KINDS[spec.kind]  # type: ignore[attr-defined]
    errors = []
    if spec.key is not None and spec.key not in known:
        errors.append(err(("key",), f"unknown field {spec.key!r}; {hint}"))
    for name in kind.event_fields:
        value = getattr(spec, name)
        if value is not None and value not in known:
            errors.append(err((name,), f"unknown field {value!r}; {hint}"))
    for name in ("where", *kind.event_expressions):
        source = getattr(spec, name)
        if source is None:
            continue
        unknown = [v for v in Expression(source).variables
                   if v not in known and f"({v}," not in source.replace(" ", "")]
        if unknown:
            errors.append(err((name,), f"unknown field {', '.join(map(repr, unknown))} in "
                                       f"{name}; {hint}"))
    return errors


def _fingerprint(spec: RuleCommon, params: Any) -> str:
    basis = {"kind": spec.kind, "params": params.model_dump(mode="json"),  # type: ignore
             "source": spec.source, "key": spec.key, "where": spec.where}
    return hashlib.blake2b(json.dumps(basis, sort_keys=True).encode(), digest_size=4).hexdigest()


def _explain(exc: ValidationError, raw: dict[str, Any]) -> list[tuple[Path_, str]]:
    """Pydantic's errors in a modeller's words, each with the path into the file."""
    out = []
    kind = raw.get("kind")
    for error in exc.errors(include_url=False):
        loc: Path_ = tuple(error["loc"])
        if loc and loc[0] == kind:
            loc = loc[1:]  # the discriminator's tag, not a key of the file
        where = ".".join(str(p) for p in loc)
        etype = error["type"]
        if etype == "union_tag_invalid":
            out.append((("kind",), f"kind: unknown kind {kind!r}; known: {', '.join(KINDS)}"))
        elif etype == "union_tag_not_found":
            out.append(((), f"kind: missing; say which kind of model this is "
                            f"({', '.join(KINDS)})"))
        elif etype == "missing":
            out.append((loc[:-1], f"{where}: required field is missing"))
        elif etype == "extra_forbidden":
            allowed = _allowed_fields(kind, loc)
            out.append((loc, f"{where}: unknown field" + (f" (allowed here: {allowed})"
                                                          if allowed else "")))
        else:
            message = error["msg"].removeprefix("Value error, ")
            out.append((loc, f"{where}: {message}" if where else message))
    return out


def _allowed_fields(kind: Any, loc: Path_) -> str:
    if len(loc) != 1 or kind not in KINDS:
        return ""
    params = list(KINDS[kind].Params.model_fields)
    return f"kind {kind} takes {', '.join(params)}" if params else ""


def _parse_yaml(text: str) -> tuple[Any, dict[Path_, int]]:
    """The document and the 1-based line of every key and list item in it."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.load(text, Loader=yaml.SafeLoader)
    lines: dict[Path_, int] = {}

    def walk(n: yaml.Node, path: Path_) -> None:
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return data, lines


def _line_of(lines: dict[Path_, int], loc: Path_) -> int:
    """The line of the deepest part of ``loc`` present in the file."""
    for end in range(len(loc), -1, -1):
        prefix = tuple(loc[:end])
        if prefix in lines:
            return lines[prefix]
    return 1
