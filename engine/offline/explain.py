"""``yujing explain RULE_ID``: what a rule watches, how much state it keeps, what it last said.

The description comes from the rule file and its model. State size and recent verdicts come from
replaying a file of events through the same core the worker runs (``--events``).
"""

from __future__ import annotations

import pickle
import textwrap
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.core import MemoryStore, ScoringCore
from engine.offline.replay import replay
from engine.rule_files.loader import CompiledRule
from models.base import Reading, Verdict
from models.durations import format_duration
from topics.schemas import CITY_TZ


@dataclass(slots=True)
class Explanation:
    rule: CompiledRule
    keys: int = 0
    state_bytes: int = 0
    readings: deque[tuple[str, float, Reading]] = field(default_factory=lambda: deque(maxlen=10))
    verdicts: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    unused: dict[str, int] = field(default_factory=dict)
    """Events the rule could not use: ``late``, or the reason it skipped them."""
    undecided: int = 0
    """Events the rule saw but could not judge: a field its condition needs was missing."""
    bad_lines: int = 0


def explain(rule: CompiledRule, events: Path | None = None) -> Explanation:
    result = Explanation(rule)
    if events is None:
        return result

    def seen(r: CompiledRule, key: str, ts: float, reading: Reading) -> None:
        if r.state_key != rule.state_key or reading.verdict is Verdict.HOLD:
            return
        result.readings.append((key, ts, reading))
        result.verdicts[reading.verdict.value] = result.verdicts.get(reading.verdict.value, 0) + 1

    store = MemoryStore()
    core = ScoringCore([rule], store, on_reading=seen)
    with events.open("rb") as handle:
        replayed = replay(handle, [rule], core=core)
    result.alerts = len(replayed.alerts)
    result.unused = {cause: n for (rule_id, cause), n in replayed.unused.items()
                     if rule_id == rule.id}
    result.undecided = replayed.undecided.get(rule.id, 0)
    result.bad_lines = len(replayed.bad_lines)
    for _, _, entity in store.entities():
        state = entity.get(rule.state_key)
        if state is not None:
            result.keys += 1
            result.state_bytes += len(pickle.dumps(state))
    return result


def render(ex: Explanation) -> str:
    spec = ex.rule.spec
    lines = [
        f"{spec.id} v{spec.version} — {spec.name.zh} / {spec.name.en}",
        f"  file:        {ex.rule.file}",
        f"  reads:       {', '.join(spec.sources)} keyed by {ex.rule.key_field}",
    ]
    if spec.where:
        lines.append(f"  only when:   {spec.where}")
    for name, value in ex.rule.model.describe().items():
        lines.append(f"  {name + ':':12} {_text(value)}")
    if spec.hold_for:
        lines.append(f"  for:         {format_duration(spec.hold_for)}")
    lines += [
        f"  severity:    {spec.severity} ({spec.maturity}); departments: "
        f"{', '.join(spec.departments)}",
        f"  state ttl:   {format_duration(spec.state_ttl)}",
        *textwrap.wrap(" ".join(spec.description.split()), width=96,
                       initial_indent="  description: ", subsequent_indent=" " * 15),
    ]
    if ex.keys or ex.readings:
        per_key = ex.state_bytes / ex.keys if ex.keys else 0
        lines += [
            f"  state:       {ex.keys} keys, {ex.state_bytes} bytes pickled "
            f"({per_key:.0f} per key)",
            f"  verdicts:    {_text(ex.verdicts)}; {ex.alerts} alert records",
            f"  not used:    {_unused(ex)}; {ex.bad_lines} bad lines",
            f"  undecided:   {ex.undecided} events (a field its condition needs was missing)",
            "  last verdicts:",
        ]
        for key, ts, reading in ex.readings:
            when = datetime.fromtimestamp(ts, CITY_TZ).isoformat(timespec="seconds")
            lines.append(f"    {when} {key}: {reading.verdict.value} {_text(reading.evidence)}")
    return "\n".join(lines)


def _unused(ex: Explanation) -> str:
    """``3 late, 2 skipped (unusable_value=2)``: what the rule could not use, and why."""
    skipped = {cause: n for cause, n in ex.unused.items() if cause != "late"}
    why = f" ({_text(skipped)})" if skipped else ""
    return f"{ex.unused.get('late', 0)} late, {sum(skipped.values())} skipped{why}"


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)
