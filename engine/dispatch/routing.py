"""Who gets a work order for an alert: a routing tree in the spirit of Alertmanager's routes.

A routing file has ``defaults`` (the chain of command levels an unacknowledged order climbs and
how soon each level must acknowledge each severity — ``engine.dispatch.levels`` —, the city's
command centre, how long alerts of one place are grouped), a root ``route`` with nested
``routes``, and ``tests`` that name the departments an alert must reach, like
``amtool config routes test``.

Matching works as in Alertmanager. The root takes every alert. At each route the child routes are
tried in order; an alert that matches one descends into it and stops there unless that child says
``continue: true``; a route none of whose children match is where the alert lands. Every route the
alert lands on sends work orders to its ``departments``, inherited from the parent when not given;
``$alert`` stands for the alert's own ``departments`` (the root's default). ``ack_within`` set on a
route applies to it and the routes below it, at every level; ``levels: {town: {red: 1m}}`` sets a
route's limits at one level.

>>> routing, errors = parse_routing('''
... route:
...   routes:
...     - name: red also to the command centre
...       match: {severity: red}
...       departments: [command_center]
...       continue: true
...     - name: tanks
...       match: {model_id: "hazchem.tank.*"}
...       departments: [$alert, fire_rescue]
...       ack_within: {red: 2m}
...     - name: own departments
... ''', Path("routes.yaml"))
>>> alert = alert_from_fields({"model_id": "hazchem.tank.level_high_high", "severity": "red",
...                            "departments": ["emergency_management"]})
>>> routed = routing.route(alert)
>>> [" > ".join(m.path) for m in routed.matches]
['root > red also to the command centre', 'root > tanks']
>>> routed.level, routed.ack_within_s
('city', {'command_center': 300.0, 'emergency_management': 120.0, 'fire_rescue': 120.0})
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.dispatch.levels import (
    TOP_LEVEL,
    TWO_LEVEL_CHAIN,
    LevelSpec,
    chain_problems,
    rank,
    start_level,
)

# YAML read as the rule loader reads it: routing files live beside the rules and report problems
# the same way (file:line: message).
from engine.rule_files.yaml_source import (
    Path_,
    RuleError,
    line_of,
    parse_document,
    read_document,
    rule_files,
)
from models.durations import Duration, format_duration
from topics.departments import DEPARTMENTS
from topics.records import Alert, OrderLevel, Severity

ALERT_DEPARTMENTS = "$alert"
"""In a ``departments`` list: the departments the alert itself names."""

MatchField = Literal["model_id", "department", "severity", "district", "town", "grid_id", "key",
                     "maturity", "source"]
MATCH_FIELDS: tuple[str, ...] = typing.get_args(MatchField)

DEFAULT_ACK_WITHIN: dict[Severity, float] = {
    Severity.RED: 300.0, Severity.ORANGE: 900.0, Severity.YELLOW: 3600.0, Severity.BLUE: 14400.0}


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Patterns = Annotated[list[str], BeforeValidator(_as_list)]
"""One value or a list (any of them); a value ending in ``*`` is a prefix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


LevelLimits = dict[OrderLevel, dict[Severity, float]]
"""Per level of the chain (lowest first), how soon each severity must be acknowledged there."""


class Defaults(_Strict):
    ack_within: dict[Severity, Duration] = Field(default_factory=dict)
    """How soon an order must be acknowledged, per severity, at every level that does not set
    its own (unset ones: 5m/15m/1h/4h)."""
    levels: list[LevelSpec] | None = None
    """The chain of command levels, lowest first, ending at the city; none given: the two-level
    chain district → city, both with ``ack_within``."""
    escalate_to: str = "command_center"
    """The city level's command centre: it may acknowledge any order held at the city level,
    and takes the alerts that name no department."""
    group_within: Duration = 1800.0
    """Alerts of one place join one incident while it has a firing alert and this long after."""

    def ack_limits(self) -> dict[Severity, float]:
        return {**DEFAULT_ACK_WITHIN, **self.ack_within}

    @property
    def chain(self) -> tuple[OrderLevel, ...]:
        return TWO_LEVEL_CHAIN if self.levels is None else tuple(s.level for s in self.levels)

    def level_limits(self) -> LevelLimits:
        own = {s.level: s.ack_within for s in self.levels or ()}
        return {level: {**self.ack_limits(), **own.get(level, {})} for level in self.chain}


class RouteSpec(_Strict):
    name: str | None = None
    match: dict[MatchField, Patterns] = Field(default_factory=dict)
    departments: list[str] | None = None
    continue_: bool = Field(default=False, alias="continue")
    ack_within: dict[Severity, Duration] = Field(default_factory=dict)
    levels: dict[OrderLevel, dict[Severity, Duration]] = Field(default_factory=dict)
    """This route's limits at one level of the chain (over ``ack_within``)."""
    routes: list[RouteSpec] = Field(default_factory=list)


class RouteTestSpec(_Strict):
    name: str = Field(min_length=1)
    alert: dict[str, Any]
    """Alert fields; ``departments``, ``severity``, ``maturity`` and ``sources`` left out are
    taken from the model's rule file when the rules are at hand."""
    expect: list[str]
    """The departments that get a work order, in any order."""
    level: OrderLevel | None = None
    """The command level the orders start at (the alert's ``town``/``district`` decide)."""


class RoutingFile(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    route: RouteSpec
    tests: list[RouteTestSpec] = Field(default_factory=list)


# -- the compiled tree ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    label: str
    matchers: tuple[tuple[str, tuple[str, ...]], ...]
    departments: tuple[str, ...]
    """Resolved through inheritance; may hold ``$alert``."""
    continue_: bool
    ack_within: LevelLimits
    """Resolved through inheritance, every level of the chain and severity present."""
    routes: tuple[Route, ...] = ()

    def matches(self, alert: Alert) -> bool:
        return all(any(_glob(p, v) for p in patterns for v in _values(alert, name))
                   for name, patterns in self.matchers)


def _values(alert: Alert, name: str) -> list[str]:
    if name == "department":
        return alert.departments
    if name == "source":
        return alert.sources
    value = getattr(alert, name)
    return [] if value is None else [str(value)]


def _glob(pattern: str, value: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One route an alert landed on."""

    path: tuple[str, ...]
    departments: tuple[str, ...]
    """With ``$alert`` replaced by the alert's departments."""
    limits: dict[OrderLevel, float]
    """The route's limit for the alert's severity at each level of the chain."""


@dataclass(frozen=True, slots=True)
class Routed:
    """Where an alert goes: the routes it landed on, the level its orders start at, and each
    department's acknowledgement limit per level from there up (the shortest of the routes that
    name the department)."""

    matches: tuple[RouteMatch, ...]
    level: OrderLevel
    """The level of the alert's place in the chain: where its orders start."""
    limits: dict[str, dict[OrderLevel, float]]
    """Per department, its limit at each level from the one its order starts at (the place's;
    the city's for the command centre, a city body) up to the city."""

    @property
    def departments(self) -> list[str]:
        return list(self.limits)

    @property
    def ack_within_s(self) -> dict[str, float]:
        """Each department's limit at the level its order starts at."""
        return {department: next(iter(by_level.values()))
                for department, by_level in self.limits.items()}


@dataclass(slots=True)
class Routing:
    """A validated routing file, ready to route alerts."""

    file: Path
    defaults: Defaults
    root: Route
    tests: list[tuple[RouteTestSpec, int]] = field(default_factory=list)
    """Each test with its line in the file."""

    @property
    def ack_limits(self) -> dict[Severity, float]:
        return self.defaults.ack_limits()

    @property
    def escalate_to(self) -> str:
        return self.defaults.escalate_to

    @property
    def group_within_s(self) -> float:
        return self.defaults.group_within

    @property
    def chain(self) -> tuple[OrderLevel, ...]:
        return self.defaults.chain

    def level_limits(self, severity: Severity) -> dict[OrderLevel, float]:
        """The defaults' limit for ``severity`` at each level of the chain."""
        return {level: by_severity[severity]
                for level, by_severity in self.defaults.level_limits().items()}

    def route(self, alert: Alert) -> Routed:
        level = start_level(self.chain, alert.town, alert.district)
        matches: list[RouteMatch] = []
        for path, route in _landed(self.root, alert, (self.root.label,)):
            departments: list[str] = []
            for name in route.departments:
                departments += alert.departments if name == ALERT_DEPARTMENTS else [name]
            matches.append(RouteMatch(path, tuple(dict.fromkeys(departments)), {
                lvl: by_severity[alert.severity] for lvl, by_severity in route.ack_within.items()}))
        limits: dict[str, dict[OrderLevel, float]] = {}
        for match in matches:
            for department in match.departments:
                known = limits.setdefault(department, dict(match.limits))
                for lvl, seconds in match.limits.items():
                    known[lvl] = min(known[lvl], seconds)
        if not limits:
            # An alert that names no department still reaches someone: the city level.
            limits[self.escalate_to] = self.level_limits(alert.severity)
        for department, by_level in limits.items():
            start = TOP_LEVEL if department == self.escalate_to else level
            limits[department] = {lvl: s for lvl, s in by_level.items() if rank(lvl) >= rank(start)}
        return Routed(tuple(matches), level, limits)


def _landed(route: Route, alert: Alert, path: tuple[str, ...]
            ) -> list[tuple[tuple[str, ...], Route]]:
    """The routes below ``route`` (or itself) the alert lands on; ``route`` already matched."""
    found: list[tuple[tuple[str, ...], Route]] = []
    for child in route.routes:
        if not child.matches(alert):
            continue
        found += _landed(child, alert, (*path, child.label))
        if not child.continue_:
            break
    return found or [(path, route)]


def _compile(spec: RouteSpec, parent: Route | None, index: int | None,
             inherited: LevelLimits) -> Route:
    departments = tuple(spec.departments) if spec.departments is not None else (
        parent.departments if parent else (ALERT_DEPARTMENTS,))
    ack_within = {level: {**limits, **spec.ack_within, **spec.levels.get(level, {})}
                  for level, limits in inherited.items()}
    label = spec.name or ("root" if parent is None else _describe_match(spec, index))
    node = Route(label, tuple((k, tuple(v)) for k, v in spec.match.items()), departments,
                 spec.continue_, ack_within)
    return replace(node, routes=tuple(_compile(child, node, i, ack_within)
                                      for i, child in enumerate(spec.routes)))


def _describe_match(spec: RouteSpec, index: int | None) -> str:
    if not spec.match:
        return f"routes[{index}]"
    parts = [f"{k}={v[0] if len(v) == 1 else '|'.join(v)}" for k, v in spec.match.items()]
    return "{" + ", ".join(parts) + "}"


# -- loading --------------------------------------------------------------------------------


ROUTING_MAPPING = "a routing file is a mapping: defaults, route, tests"


def load_routing(path: Path) -> tuple[Routing | None, list[RuleError]]:
    """Read and check a routing file; ``None`` and every problem as ``file:line: message``."""
    parsed, errors = read_document(path, ROUTING_MAPPING)
    return (None, errors) if parsed is None else _routing(*parsed, path)


def parse_routing(text: str, path: Path) -> tuple[Routing | None, list[RuleError]]:
    parsed, errors = parse_document(text, path, ROUTING_MAPPING)
    return (None, errors) if parsed is None else _routing(*parsed, path)


def _routing(raw: Any, lines: dict[Path_, int], path: Path
             ) -> tuple[Routing | None, list[RuleError]]:
    try:
        spec = RoutingFile.model_validate(raw)
    except ValidationError as exc:
        problems = _explain(exc)
    else:
        problems = _meaning_problems(spec)
    if problems:
        errors = [RuleError(path, line_of(lines, loc), msg) for loc, msg in problems]
        return None, sorted(errors, key=lambda e: e.line)
    root = _compile(spec.route, None, None, spec.defaults.level_limits())
    tests = [(t, line_of(lines, ("tests", i))) for i, t in enumerate(spec.tests)]
    return Routing(path, spec.defaults, root, tests), []


def _meaning_problems(spec: RoutingFile) -> list[tuple[Path_, str]]:
    """What pydantic cannot see: known departments and severities, a root that takes all."""
    problems: list[tuple[Path_, str]] = []
    if spec.defaults.levels is not None:
        problems += chain_problems(spec.defaults.levels)
    if spec.defaults.escalate_to not in DEPARTMENTS:
        problems.append((("defaults", "escalate_to"), _unknown_department(
            "defaults.escalate_to", spec.defaults.escalate_to)))
    if spec.route.match:
        problems.append((("route", "match"), "route.match: the root route takes every alert; "
                                             "put matchers on the routes below it"))
    if spec.route.continue_:
        problems.append((("route", "continue"), "route.continue: the root route has no "
                                                "siblings to continue to"))

    def walk(route: RouteSpec, loc: Path_) -> None:
        where = ".".join(map(str, loc))
        for name, patterns in route.match.items():
            known = {"severity": [s.value for s in Severity], "department": list(DEPARTMENTS),
                     "maturity": ["stable", "incubating", "disabled"]}.get(name)
            for i, pattern in enumerate(patterns):
                if "*" in pattern[:-1]:
                    problems.append(((*loc, "match", name, i), f"{where}.match.{name}: "
                                     f"{pattern!r}: '*' may only end a value (a prefix)"))
                elif known and not pattern.endswith("*") and pattern not in known:
                    problems.append(((*loc, "match", name, i), f"{where}.match.{name}: "
                                     f"unknown {name} {pattern!r}; known: {', '.join(known)}"))
        for level in route.levels:
            if level not in spec.defaults.chain:
                problems.append(((*loc, "levels", level), f"{where}.levels.{level}: the chain "
                                 f"(defaults.levels) has no {level} level; it has "
                                 f"{', '.join(spec.defaults.chain)}"))
        for i, department in enumerate(route.departments or []):
            if department != ALERT_DEPARTMENTS and department not in DEPARTMENTS:
                problems.append(((*loc, "departments", i), _unknown_department(
                    f"{where}.departments", department, in_route=True)))
        for i, child in enumerate(route.routes):
            walk(child, (*loc, "routes", i))

    walk(spec.route, ("route",))
    for i, test in enumerate(spec.tests):
        for j, department in enumerate(test.expect):
            if department not in DEPARTMENTS:
                problems.append((("tests", i, "expect", j), _unknown_department(
                    f"tests.{i}.expect", department)))
    return problems


def _unknown_department(where: str, name: str, in_route: bool = False) -> str:
    own = f"{ALERT_DEPARTMENTS} (the alert's own), " if in_route else ""
    return f"{where}: unknown department {name!r}; known: {own}{', '.join(DEPARTMENTS)}"


def _explain(exc: ValidationError) -> list[tuple[Path_, str]]:
    """Pydantic's errors in an operator's words, each with the path into the file."""
    out: list[tuple[Path_, str]] = []
    for error in exc.errors(include_url=False):
        is_key = "[key]" in error["loc"]
        loc: Path_ = tuple(p for p in error["loc"] if p != "[key]")
        where = ".".join(str(p) for p in loc)
        if error["type"] == "missing":
            out.append((loc[:-1], f"{where}: required field is missing"))
        elif error["type"] == "extra_forbidden":
            allowed = _allowed_fields(loc)
            out.append((loc, f"{where}: unknown field" +
                        (f" (allowed here: {', '.join(allowed)})" if allowed else "")))
        elif is_key and loc[-2:-1] == ("match",):
            out.append((loc, f"{where}: alerts cannot be matched on {loc[-1]!r}; match on "
                             f"{', '.join(MATCH_FIELDS)}"))
        elif is_key:
            out.append((loc, f"{where}: not a valid key here: {error['msg']}"))
        else:
            message = error["msg"].removeprefix("Value error, ")
            out.append((loc, f"{where}: {message}" if where else message))
    return out


def _allowed_fields(loc: Path_) -> list[str]:
    """The field names of the model that the mapping at ``loc[:-1]`` is validated as."""
    model: type[BaseModel] | None = RoutingFile
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        model = _model_in(info.annotation) if info else None
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None


# -- tests ----------------------------------------------------------------------------------


ModelCatalogue = dict[str, dict[str, Any]]
"""Per model id, the alert fields its rule file fixes: departments, severity, maturity, sources."""


def rule_catalogue(rules: Path) -> ModelCatalogue:
    """The departments, severity, maturity and sources of every rule file under ``rules``.

    Only the top-level keys are read (no compiling), so a routing check stays quick.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: ModelCatalogue = {}
    for path in rule_files([rules]) if rules.exists() else []:
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # `yujing validate` reports broken rule files; routing tests skip them
        if not isinstance(raw, dict) or "id" not in raw:
            continue
        source = raw.get("source", [])
        found[str(raw["id"])] = {
            "departments": raw.get("departments", []), "severity": raw.get("severity"),
            "maturity": raw.get("maturity", "stable"),
            "sources": [source] if isinstance(source, str) else source}
    return found


def alert_from_fields(fields: dict[str, Any], catalogue: ModelCatalogue | None = None) -> Alert:
    """An alert for a routing test: the given fields, the model's own from ``catalogue``, and
    placeholders for what routing does not read. ValidationError if a field is wrong."""
    known = (catalogue or {}).get(str(fields.get("model_id")), {})
    values: dict[str, Any] = {
        "alert_id": "routing-test", "model_id": "routing.test", "model_version": 1,
        "state": "firing", "departments": [], "key": "routing-test", "sources": [],
        "first_ts": 0.0, "last_ts": 0.0, "summary": "routing test",
        **{k: v for k, v in known.items() if v is not None}, **fields}
    return Alert.model_validate(values)


@dataclass(slots=True)
class RouteTestOutcome:
    name: str
    line: int
    expected: list[str]
    actual: list[str]
    paths: list[str]
    problem: str | None = None
    expected_level: OrderLevel | None = None
    """None: the test does not say."""
    actual_level: OrderLevel | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None and sorted(self.expected) == sorted(self.actual) and \
            self.expected_level in (None, self.actual_level)

    def diff(self) -> list[str]:
        """What differs, one line each."""
        if self.problem:
            return [self.problem]
        missing = [d for d in self.expected if d not in self.actual]
        extra = [d for d in self.actual if d not in self.expected]
        lines = [f"expected: {', '.join(sorted(self.expected)) or '(none)'}",
                 f"actual:   {', '.join(sorted(self.actual)) or '(none)'}"]
        lines += [f"missing:  {', '.join(missing)}"] if missing else []
        lines += [f"unexpected: {', '.join(extra)}"] if extra else []
        if self.expected_level not in (None, self.actual_level):
            lines += [f"level:    expected {self.expected_level}, starts at {self.actual_level}"]
        lines += [f"routes:   {' | '.join(self.paths)}"]
        return lines


def run_routing_tests(routing: Routing, catalogue: ModelCatalogue | None = None
                      ) -> list[RouteTestOutcome]:
    outcomes = []
    for test, line in routing.tests:
        outcome = RouteTestOutcome(test.name, line, list(test.expect), [], [],
                                   expected_level=test.level)
        try:
            alert = alert_from_fields(test.alert, catalogue)
        except ValidationError as exc:
            outcome.problem = "the test's alert is not valid: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            outcomes.append(outcome)
            continue
        if not alert.departments and "departments" not in test.alert:
            outcome.problem = (f"model {alert.model_id!r} is not in the rule catalogue: give "
                               "the alert's departments")
            outcomes.append(outcome)
            continue
        routed = routing.route(alert)
        outcome.actual = routed.departments
        outcome.actual_level = routed.level
        outcome.paths = [" > ".join(m.path) for m in routed.matches]
        outcomes.append(outcome)
    return outcomes


def describe_routed(routed: Routed) -> list[str]:
    """Lines for ``yujing dispatch test``: each route landed on, then the departments."""
    lines = [f"route: {' > '.join(m.path)} -> {', '.join(m.departments) or '(none)'}"
             for m in routed.matches]
    lines.append(f"starts at the {routed.level} level")
    lines.append("departments: " + ", ".join(
        f"{d} (acknowledge within " + ", ".join(
            f"{format_duration(s)} at {level}" for level, s in by_level.items()) + ")"
        for d, by_level in routed.limits.items()))
    return lines

