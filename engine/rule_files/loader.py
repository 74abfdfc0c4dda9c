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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from engine.failures import describe, is_fatal
from engine.rule_files.absent_fields import absent_field_warnings
from engine.rule_files.format import RuleCommon, rule_adapter
from engine.rule_files.summary import summary_fields, summary_problems
from engine.rule_files.yaml_source import (
    Path_,
    RuleError,
    line_of,
    parse_document,
    read_document,
    rule_files,
)
from models import KINDS
from models.base import WarningModel
from models.expr import CelExpr, Expression, ExpressionError
from models.refdata import ModelEnv, ReferenceData
from models.vocabulary import MacroError
from topics.records import Severity
from topics.reference import REFERENCE_SCHEMAS
from topics.registry import EVENT_TOPICS

# Fields the codec adds to every event for conditions (local hour and weekday).
DERIVED_FIELDS = ("hour", "weekday")

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")]


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
    escalations: tuple[tuple[Severity, Expression | None, float | None], ...] = ()
    """(severity, when, after) of each higher level, lowest first."""
    lifecycle_timers: bool = False
    """The alert itself has deadlines (``clear_for``, an escalation ``after``)."""

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def severities(self) -> list[str]:
        """The levels its alerts can carry: its severity and those it escalates to."""
        return [self.spec.severity.value, *(level.severity.value for level in self.spec.escalate)]

    def with_env(self, env: ModelEnv) -> CompiledRule:
        """The same rule built against other lists, macros or reference data (rule tests)."""
        where = Expression(self.spec.where, env.constants, env.macros) if self.spec.where \
            else None
        return replace(self, model=type(self.model)(self.model.params, env), where=where)


@dataclass(slots=True)
class LoadResult:
    rules: list[CompiledRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    env: ModelEnv = field(default_factory=ModelEnv)
    """The lists, macros and reference data the rules were built with."""
    reference_updates: list[tuple[str, str, Any]] = field(default_factory=list)
    """With ``defer_reference``: the reference files' records, for the caller to put."""
    warnings: list[RuleError] = field(default_factory=list)
    """With ``warn_absent_fields``: loaded rules whose condition a missing field silences
    (``engine.rule_files.absent_fields``); the rules are loaded all the same."""


SHARED_FOLDERS = ("vocabulary", "reference")


def shared_files(paths: Iterable[Path]) -> list[Path]:
    """Vocabulary and reference files that rules given one by one still need: those of the
    nearest enclosing folder that has a ``vocabulary/`` or ``reference/`` folder."""
    found: list[Path] = []
    for path in paths:
        start = path if path.is_dir() else path.parent
        for folder in (start.absolute(), *start.absolute().parents):
            shared = [folder / name for name in SHARED_FOLDERS if (folder / name).is_dir()]
            if shared:
                found += [_relative(f) for f in rule_files(shared)]
                break
    return found


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class VocabularyFile(BaseModel):
    """A file of shared lists and macros (no ``id``): see ``models.vocabulary``."""

    model_config = ConfigDict(extra="forbid")

    lists: dict[Identifier, list[Any]] = Field(default_factory=dict)
    macros: dict[Identifier, CelExpr] = Field(default_factory=dict)


def load_rules(paths: Iterable[Path], reference: ReferenceData | None = None,
               strict_reference: bool = False, defer_reference: bool = False,
               warn_absent_fields: bool = False) -> LoadResult:
    """Load every rule and vocabulary file under ``paths``.

    Vocabulary files (``lists:`` / ``macros:``, no ``id``) are read first and shared by all rules;
    a duplicate rule id is an error on the later file. ``strict_reference`` (``yujing
    validate``): zones and lists a rule names must be in the reference files at hand.
    ``defer_reference``: the reference files' records are returned (``reference_updates``)
    rather than put into ``reference``, which the caller's other threads may be reading.
    ``warn_absent_fields`` (``yujing validate``): ``warnings`` lists the rules a missing
    optional field silences (sampling each condition takes a few milliseconds a rule).
    """
    result = LoadResult()
    documents: list[tuple[Path, Any, dict[Path_, int]]] = []
    paths = list(paths)
    unique = {p.resolve(): p for p in reversed([*rule_files(paths), *shared_files(paths)])}
    for path in sorted(unique.values(), key=lambda p: str(p.resolve())):
        parsed, errors = read_document(path)
        result.errors.extend(errors)
        if parsed is not None:
            documents.append((path, *parsed))
    reference = reference or ReferenceData()
    target = ReferenceData() if defer_reference else reference
    for path, raw, lines in documents:
        if _is_reference(raw):
            result.errors.extend(load_reference_document(raw, lines, path, target))
    if defer_reference:
        result.reference_updates = [(table, key, record) for table in target.tables()
                                    for key, record in target.items(table)]
    vocab_docs = [d for d in documents if _is_vocabulary(d[1])]
    env, errors = build_env(vocab_docs, reference)
    result.errors.extend(errors)
    result.env = env
    seen: dict[str, Path] = {}
    for path, raw, lines in documents:
        if _is_vocabulary(raw) or _is_reference(raw):
            continue
        rule, errors = compile_rule(raw, lines, path, env, strict_reference)
        result.errors.extend(errors)
        if rule is None:
            continue
        if rule.id in seen:
            result.errors.append(RuleError(path, 1, f"id {rule.id!r} is already used by "
                                                    f"{seen[rule.id]}"))
            continue
        seen[rule.id] = path
        result.rules.append(rule)
        if warn_absent_fields:
            result.warnings += [
                RuleError(path, line_of(lines, loc), f"warning: {message}")
                for loc, message in absent_field_warnings(
                    type(rule.model), rule.model.params, rule.spec.sources, rule.spec.where,
                    env, set(rule.spec.silent_without))]
    return result


def build_env(documents: list[tuple[Path, Any, dict[Path_, int]]], reference: ReferenceData
              ) -> tuple[ModelEnv, list[RuleError]]:
    """Merge vocabulary files into one environment; names must be unique and not fields."""
    lists: dict[str, Any] = {}
    macros: dict[str, str] = {}
    where: dict[str, Path] = {}
    errors: list[RuleError] = []
    fields = {f for spec in EVENT_TOPICS.values() for f in spec.schema.model_fields}
    fields |= set(DERIVED_FIELDS)
    for path, raw, lines in documents:
        try:
            vocab = VocabularyFile.model_validate(raw)
        except ValidationError as exc:
            errors += [RuleError(path, line_of(lines, loc), msg)
                       for loc, msg in _explain(exc, raw)]
            continue
        for section, names in (("lists", vocab.lists), ("macros", vocab.macros)):
            for name in names:
                line = line_of(lines, (section, name))
                if name in where:
                    errors.append(RuleError(path, line, f"{name!r} is already defined in "
                                                        f"{where[name]}"))
                elif name in fields:
                    errors.append(RuleError(path, line, f"{name!r} is an event field; a list "
                                                        "or macro of that name would hide it"))
                else:
                    where[name] = path
        lists.update({k: v for k, v in vocab.lists.items() if where.get(k) == path})
        macros.update({k: v for k, v in vocab.macros.items() if where.get(k) == path})
    for name in macros:
        try:
            Expression(name, lists, macros)  # the macro as used: expands it, catching cycles
        except (MacroError, ExpressionError) as exc:
            path = where[name]
            doc = next(d for d in documents if d[0] == path)
            errors.append(RuleError(path, line_of(doc[2], ("macros", name)),
                                    f"macros.{name}: {exc}"))
    return ModelEnv(constants=lists, macros=macros, reference=reference), errors


class ReferenceFile(BaseModel):
    """A file of reference records for one table (``table:`` and ``records:``, no ``id``)."""

    model_config = ConfigDict(extra="forbid")

    table: str
    records: dict[str, dict[str, Any]]


def load_reference_document(raw: dict[str, Any], lines: dict[Path_, int], path: Path,
                            reference: ReferenceData) -> list[RuleError]:
    """Check a reference file's records against their table's schema and load the good ones."""
    try:
        doc = ReferenceFile.model_validate(raw)
    except ValidationError as exc:
        return [RuleError(path, line_of(lines, loc), msg) for loc, msg in _explain(exc, raw)]
    schema = REFERENCE_SCHEMAS.get(doc.table)
    if schema is None:
        return [RuleError(path, line_of(lines, ("table",)),
                          f"unknown reference table {doc.table!r}; known: "
                          f"{', '.join(REFERENCE_SCHEMAS)}")]
    errors = []
    for key, record in doc.records.items():
        try:
            reference.put(doc.table, key, schema.model_validate(record).model_dump(mode="json"))
        except ValidationError as exc:
            errors += [RuleError(path, line_of(lines, ("records", key, *loc)),
                                 f"records.{key}: {msg}") for loc, msg in _explain(exc, record)]
    return errors


def _is_reference(raw: Any) -> bool:
    return isinstance(raw, dict) and "id" not in raw and "table" in raw


def _is_vocabulary(raw: Any) -> bool:
    return isinstance(raw, dict) and "id" not in raw and bool({"lists", "macros"} & set(raw))


def compile_rule_text(text: str, path: Path, env: ModelEnv | None = None
                      ) -> tuple[CompiledRule | None, list[RuleError]]:
    """Compile one rule file's text (used by tests and tools that hold a single rule)."""
    parsed, errors = parse_document(text, path)
    if parsed is None:
        return None, errors
    return compile_rule(*parsed, path, env or ModelEnv())


def compile_rule(raw: dict[str, Any], lines: dict[Path_, int], path: Path, env: ModelEnv,
                 strict_reference: bool = False) -> tuple[CompiledRule | None, list[RuleError]]:
    """A rule file's document compiled, or every problem with it. Whatever the document holds,
    the answer is one of the two: a defect met while compiling is the file's error too."""
    try:
        return _compile_rule(raw, lines, path, env, strict_reference)
    except RecursionError:
        return None, [RuleError(path, 1, "nested too deeply to compile")]
    except BaseException as exc:
        if is_fatal(exc):
            raise
        return None, [RuleError(path, 1, f"could not be compiled: {describe(exc)}")]


def _compile_rule(raw: dict[str, Any], lines: dict[Path_, int], path: Path, env: ModelEnv,
                  strict_reference: bool) -> tuple[CompiledRule | None, list[RuleError]]:
    def err(loc: Path_, message: str) -> RuleError:
        return RuleError(path, line_of(lines, loc), message)

    try:
        spec = rule_adapter().validate_python(raw)
    except ValidationError as exc:
        errors = [err(loc, msg) for loc, msg in _explain(exc, raw)]
        return None, sorted(errors, key=lambda e: e.line)

    kind = KINDS[spec.kind]  # type: ignore[attr-defined]
    params = kind.Params.model_validate(
        {name: getattr(spec, name) for name in kind.Params.model_fields})
    errors = _check_fields(spec, kind, params, env, err)
    if strict_reference:
        errors += [err(loc, msg) for loc, msg in kind.reference_problems(params, env)]
    if errors:
        return None, sorted(errors, key=lambda e: e.line)
    try:
        model = kind(params, env)
        where = Expression(spec.where, env.constants, env.macros) if spec.where else None
        escalations = tuple(
            (level.severity,
             Expression(level.when, env.constants, env.macros) if level.when else None,
             level.after)
            for level in spec.escalate)
    except (ExpressionError, MacroError, ValueError) as exc:
        return None, [err((), f"cannot build the model: {exc}")]
    first = spec.sources[0]
    key_field = spec.key or EVENT_TOPICS[first].key_field
    context: tuple[str, ...] = ()
    # Alerts the clock raises (a deadline, a clear that lasted, a level reached by time) have
    # no event at hand: keep the fields their summary needs with the state.
    if kind.uses_deadlines or spec.clear_for or any(level.after for level in spec.escalate):
        known = set().union(*(schema_fields(t) for t in spec.sources))
        wanted = (*summary_fields(spec.summary), "grid_id", "district")
        context = tuple(f for f in dict.fromkeys(wanted) if f in known)
    return CompiledRule(spec=spec, model=model, where=where, key_field=key_field,
                        state_key=f"{spec.id}@{_fingerprint(spec, params, env)}", file=path,
                        context_fields=context, escalations=escalations,
                        lifecycle_timers=bool(spec.clear_for or any(
                            level.after for level in spec.escalate))), []


def schema_fields(topic: str) -> set[str]:
    return set(EVENT_TOPICS[topic].schema.model_fields) | set(DERIVED_FIELDS)


def _check_fields(spec: RuleCommon, kind: type[WarningModel[Any]], params: Any, env: ModelEnv,
                  err: Any) -> list[RuleError]:
    """Names in conditions and field parameters must be fields of the source topic(s)."""
    sources = spec.sources
    known = set().union(*(schema_fields(t) for t in sources))
    hint = f"{', '.join(sources)} {'has' if len(sources) == 1 else 'have'}: " \
           f"{', '.join(sorted(known))}"
    errors = []
    if spec.key is not None:
        lacking = [t for t in sources if spec.key not in schema_fields(t)]
        if lacking:
            errors.append(err(("key",), f"{spec.key!r} is not a field of {', '.join(lacking)}"))
    for name in kind.event_fields:
        value = getattr(spec, name)
        if value is not None and value not in known:
            errors.append(err((name,), f"unknown field {value!r}; {hint}"))
    for i, name in enumerate(spec.silent_without):
        if name not in known:
            errors.append(err(("silent_without", i), f"silent_without: unknown field "
                                                     f"{name!r}; {hint}"))
    for name in ("where", *kind.event_expressions):
        source = getattr(spec, name)
        if source is None:
            continue
        try:
            variables = Expression(source, env.constants, env.macros).variables
        except (ExpressionError, MacroError) as exc:
            errors.append(err((name,), f"{name}: {exc}"))
            continue
        unknown = [v for v in variables if v not in known]
        if unknown:
            errors.append(err((name,), f"unknown field {', '.join(map(repr, unknown))} in "
                                       f"{name}; {hint}"))
    problems = kind.field_problems(params, sources, schema_fields, env)
    errors += [err(loc, msg) for loc, msg in problems]
    names = kind.summary_names(params)
    exact = known | {"key"} | {n for n in names if not n.endswith("*")}
    for problem in summary_problems(spec.summary, exact, names):
        errors.append(err(("summary",), f"summary: {problem} ({', '.join(sources)} and kind "
                                        f"{spec.kind} give: {', '.join(sorted(exact))})"))
    return errors


def _fingerprint(spec: RuleCommon, params: Any, env: ModelEnv) -> str:
    # What the state means: the kind's parameters, what is read and how it is keyed, and the
    # vocabulary those conditions use (a changed macro changes the condition).
    used = {n: v for n, v in env.macros.items() if n in json.dumps(params.model_dump(mode="json"))
            or (spec.where and n in spec.where)}
    basis = {"kind": spec.kind, "params": params.model_dump(mode="json"),  # type: ignore
             "source": spec.source, "key": spec.key, "where": spec.where, "macros": used}
    return hashlib.blake2b(json.dumps(basis, sort_keys=True, default=str).encode(),
                           digest_size=4).hexdigest()


def _explain(exc: ValidationError, raw: dict[str, Any]) -> list[tuple[Path_, str]]:
    """Pydantic's errors in a modeller's words, each with the path into the file."""
    out = []
    kind = raw.get("kind")
    for error in exc.errors(include_url=False):
        loc: Path_ = tuple(p for p in error["loc"] if p != "[key]")
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


