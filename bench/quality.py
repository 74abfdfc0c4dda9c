"""Detection quality: a fixed-seed simulated city through the scoring core, against its truth.

    python bench/quality.py                      # the published run: seed 2024, two days
    python bench/quality.py --department hazchem --seed 1 --duration 6h   # while developing

Every simulated incident names the model meant to catch it and the key its alert carries. An
incident is *detected* when that model fires for that key between the incident's start (less a
minute of clock slack) and an hour after its end; the delay is from the incident's start to the
first such alert. A firing alert that matches none of its model's incidents is a false alarm
unless another model's incident was under way at its key then (an unusual flow on a segment
during a recorded congestion; a tanker in the grid cell of a site crowded by a recorded
incident): a second signal of a real situation, which the duty officer sees
grouped with the first — counted as correct, never as a detection. Per model and per department
it prints precision (alerts about a recorded situation / all alerts), recall (incidents
detected / incidents) and the median and worst delay.

A city that has run for years has a past its learned models (``anomaly``, ``surge``, ``novelty``,
``drift``, ``forecast``) know; a cold start has none. So before the scored span, the same city's
previous ``--history`` (default ten days: the longest any learned rule learns before judging;
background only, no incidents) goes through the learned rules — longer for a rule that remembers
longer (a ``novelty`` rule's ``unseen_for``: a value is new only if the past it knows lacks it);
their state carries into the scored span, and nothing raised in the history is scored. The other
rules start the scored span afresh, as they would after a restart.

The rules are never tuned on this run: rule-file tests and the simulator's tests use other seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.core import MemoryStore, ScoringCore
from engine.reference_records import track_lookup_event
from engine.rule_files.loader import load_rules
from models.durations import format_duration, parse_duration
from simulator.base import Incident, SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.codec import Event, decode
from topics.records import Alert

SLACK_BEFORE = 60.0
SLACK_AFTER = 3600.0
LEARNED_KINDS = frozenset({"anomaly", "surge", "novelty", "drift", "forecast"})
"""Kinds whose verdicts rest on a key's past: they see the history before the scored span."""


@dataclass
class ModelScore:
    department: str
    incidents: int = 0
    detected: int = 0
    alerts: int = 0
    matched_alerts: int = 0
    """Alerts about a recorded situation: one of this model's incidents, or (``coincident``)
    another model's under way at the same key."""
    coincident: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.matched_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None


def run_quality(seed: int, start: str, duration: str, departments: list[str] | None,
                rules_dir: Path, rate: float = 1.0, history: str = "0s"
                ) -> tuple[dict[str, ModelScore], dict]:
    loaded = load_rules([rules_dir])
    for error in loaded.errors:
        print(f"rule file rejected: {error}", file=sys.stderr)
    begin = parse_start(start)
    city = reference_city(rules_dir)
    ctx = SimContext(seed=seed, start=begin, end=begin + parse_duration(duration), rate=rate,
                     city=city)
    sim = Simulation(ctx, only=departments)
    topics = {t for d in sim.departments for t in d.topics}
    rules = [r for r in loaded.rules if set(r.spec.sources) & topics]
    reference = loaded.env.reference
    store = MemoryStore()
    started = time.perf_counter()
    by_history: dict[float, list] = defaultdict(list)
    if parse_duration(history) > 0:
        for r in rules:
            if r.spec.kind in LEARNED_KINDS:
                by_history[history_needed(r, parse_duration(history))].append(r)
    past_events = 0
    for span in sorted(by_history, reverse=True):  # the latest reference records last
        past_events += _learn_history(by_history[span], store, SimContext(
            seed=seed, start=begin - span, end=begin, rate=rate, city=city,
            incidents_per_model=0), reference)
    core = ScoringCore(rules, store)
    alerts: list[Alert] = []
    events = bad = 0
    clock = float("-inf")
    for envelope in sim.events():
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        if not isinstance(decoded, Event):
            bad += 1
            continue
        events += 1
        track_lookup_event(reference, decoded)
        if decoded.ts > clock:
            clock = decoded.ts
            alerts += core.advance(clock)
        alerts += core.process((decoded,))
    alerts += core.advance(ctx.end)  # not beyond: the run ends, the city does not
    elapsed = time.perf_counter() - started
    scores = score(sim.truth, alerts, {r.id: r.file.parent.name for r in rules})
    return scores, {"events": events, "bad": bad, "alerts": len(alerts), "seconds": elapsed,
                    "rules": len(rules), "incidents": len(sim.truth),
                    "history": ", ".join(f"{format_duration(span)} ({len(by_history[span])} "
                                         f"rule{'s' if len(by_history[span]) > 1 else ''})"
                                         for span in sorted(by_history)) or "no history",
                    "history_events": past_events, "alert_records": alerts, "truth": sim.truth}


def history_needed(rule: Any, history: float) -> float:
    """Seconds of the past ``rule`` should know before the scored span: the run's history, or
    what the rule remembers (``unseen_for``) when that is longer."""
    return max(history, getattr(rule.model.params, "unseen_for", 0.0) or 0.0)


def _learn_history(learned: list, store: MemoryStore, past: SimContext, reference) -> int:
    """Run the city's background over ``past`` through the learned rules only, into ``store``;
    return the number of events. Its alerts are dropped: the history is not scored."""
    topics = {t for r in learned for t in r.spec.sources}
    sim = Simulation(past, only=None)  # ``past`` plans no incidents: background only
    sim.departments = [d for d in sim.departments if set(d.topics) & topics]
    core = ScoringCore(learned, store)
    clock = float("-inf")
    count = 0
    for envelope in sim.events():
        if envelope.topic not in topics:
            continue
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        if not isinstance(decoded, Event):
            continue
        count += 1
        track_lookup_event(reference, decoded)
        if decoded.ts > clock:
            clock = decoded.ts
            core.advance(clock)
        core.process((decoded,))
    core.advance(past.end)
    return count


def score(truth: list[Incident], alerts: list[Alert], departments: dict[str, str]
          ) -> dict[str, ModelScore]:
    scores: dict[str, ModelScore] = {m: ModelScore(d) for m, d in departments.items()}
    by_model_key: dict[tuple[str, str], list[Incident]] = defaultdict(list)
    by_key: dict[str, list[Incident]] = defaultdict(list)
    for incident in truth:
        scores.setdefault(incident.model_id, ModelScore(incident.department)).incidents += 1
        by_model_key[(incident.model_id, incident.key)].append(incident)
        by_key[incident.key].append(incident)
        if incident.grid is not None and incident.grid != incident.key:
            by_key[incident.grid].append(incident)
    first_alert: dict[str, float] = {}
    for alert in alerts:
        if alert.state != "firing":
            continue
        model = scores.setdefault(alert.model_id, ModelScore("?"))
        model.alerts += 1
        hits = [i for i in by_model_key.get((alert.model_id, alert.key), ())
                if i.start - SLACK_BEFORE <= alert.last_ts <= i.end + SLACK_AFTER]
        if not hits and any(i.start - SLACK_BEFORE <= alert.last_ts <= i.end + SLACK_AFTER
                            for i in by_key.get(alert.key, ())):
            # Another model's incident was under way at this key (a flow collapse during a
            # recorded congestion): a second signal of a real situation, not a false alarm —
            # and not a detection of this model's incidents either.
            model.matched_alerts += 1
            model.coincident += 1
            continue
        if hits:
            model.matched_alerts += 1
            for incident in hits:
                if incident.incident_id not in first_alert:
                    first_alert[incident.incident_id] = alert.last_ts
                    model.detected += 1
                    model.delays.append(max(0.0, alert.last_ts - incident.start))
    return scores


def _pct(value: float | None) -> str:
    return "  —  " if value is None else f"{100 * value:5.1f}%"


def _delay(values: list[float]) -> str:
    if not values:
        return "    —"
    return f"{statistics.median(values) / 60:6.1f} / {max(values) / 60:6.1f}"


def render(scores: dict[str, ModelScore], meta: dict) -> str:
    lines = [f"{'model':48} {'incid':>5} {'found':>5} {'alerts':>6} {'precision':>9} "
             f"{'recall':>7}  delay min (median / max)"]
    by_dept: dict[str, ModelScore] = defaultdict(lambda: ModelScore(""))
    for model_id in sorted(scores, key=lambda m: (scores[m].department, m)):
        s = scores[model_id]
        lines.append(f"{model_id:48} {s.incidents:5} {s.detected:5} {s.alerts:6} "
                     f"{_pct(s.precision):>9} {_pct(s.recall):>7}  {_delay(s.delays)}")
        d = by_dept[s.department]
        d.incidents += s.incidents
        d.detected += s.detected
        d.alerts += s.alerts
        d.matched_alerts += s.matched_alerts
        d.coincident += s.coincident
        d.delays += s.delays
    lines += ["", f"{'department':48} {'incid':>5} {'found':>5} {'alerts':>6} {'precision':>9} "
                  f"{'recall':>7}  delay min (median / max)"]
    total = ModelScore("all")
    for dept in sorted(by_dept):
        d = by_dept[dept]
        lines.append(f"{dept:48} {d.incidents:5} {d.detected:5} {d.alerts:6} "
                     f"{_pct(d.precision):>9} {_pct(d.recall):>7}  {_delay(d.delays)}")
        total.incidents += d.incidents
        total.detected += d.detected
        total.alerts += d.alerts
        total.matched_alerts += d.matched_alerts
        total.coincident += d.coincident
        total.delays += d.delays
    lines.append(f"{'all':48} {total.incidents:5} {total.detected:5} {total.alerts:6} "
                 f"{_pct(total.precision):>9} {_pct(total.recall):>7}  {_delay(total.delays)}")
    lines.append("")
    lines.append(f"precision counts {total.coincident} alerts that came while another model's "
                 "incident was under way at their key: a second signal of a real situation")
    lines.append(f"{meta['events']} events ({meta['bad']} invalid) after history for the learned "
                 f"rules of {meta['history']} ({meta['history_events']} events), "
                 f"{meta['rules']} rules, {meta['incidents']} incidents, {meta['alerts']} alert "
                 f"records; scored in {meta['seconds']:.1f} s "
                 f"({(meta['events'] + meta['history_events']) / max(meta['seconds'], 1e-9):,.0f}"
                 " events/s)")
    return "\n".join(lines)


def render_markdown(scores: dict[str, ModelScore]) -> str:
    """The per-model table as the README shows it: models with incidents or alerts."""
    lines = ["| model | incidents | found | alerts | precision | recall | median delay |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for model_id in sorted(scores, key=lambda m: (scores[m].department, m)):
        s = scores[model_id]
        if not (s.incidents or s.alerts):
            continue
        delay = f"{statistics.median(s.delays) / 60:.1f} min" if s.delays else "—"
        lines.append(f"| `{model_id}` | {s.incidents} | {s.detected} | {s.alerts} | "
                     f"{_pct(s.precision).strip()} | {_pct(s.recall).strip()} | {delay} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--start", default="2024-06-03T00:00:00")
    parser.add_argument("--duration", default="2d")
    parser.add_argument("--history", default="10d",
                        help="background the learned rules see before the scored span (0s: none)")
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--department", action="append")
    parser.add_argument("--rules", type=Path, default=REPO / "rules")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="also write the per-model table in Markdown (as in the README)")
    args = parser.parse_args()
    scores, meta = run_quality(args.seed, args.start, args.duration, args.department,
                               args.rules, args.rate, args.history)
    print(render(scores, meta))
    if args.markdown:
        args.markdown.write_text(render_markdown(scores) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
