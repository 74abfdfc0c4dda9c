"""``yujing report``: the scorecards of a period as a readable report (or CSV, or JSON).

Departments come worst SLA first, models noisiest first (highest false-alarm rate), so the top
of each table is where to look. The records come from the topics (read once, to their end) or
from three JSONL files of records as the topics carry them, which needs no broker:

>>> from topics.records import WorkOrder
>>> t0 = 1717372800.0  # 2024-06-03 08:00 in Shanghai
>>> records = LifeRecords()
>>> records.add_order(WorkOrder(order_id="O1", incident_id="I1", alert_ids=["A1"],
...     model_ids=["hazchem.tank.level_high"], department="fire", severity="red", key="T1",
...     summary="tank high", created_at=t0, ack_due=t0 + 300, acknowledged_at=t0 + 130,
...     state="resolved", resolved_at=t0 + 1500))
>>> print(render_table(build_report(records, since_s=86400, until=t0 + 3600)))
yujing report 2024-06-02 09:00 – 2024-06-03 09:00 (Asia/Shanghai)
<BLANKLINE>
Departments, worst SLA first
department  orders  ack p50  ack p90  resolve p50  resolve p90  SLA         backlog  false alarms
fire             1    2m10s    2m10s          25m          25m  100% (1/1)        0             0
<BLANKLINE>
Models, noisiest first
model                    alerts  not dispatched  orders  closed  false alarms  false-alarm rate
hazchem.tank.level_high       0               0       1       1             0  0% (0/1)
<BLANKLINE>
Command levels (each from when it got the order), lowest first
level     reached  took  ack p50  ack p90  resolve p50  SLA         holds
district        1     1    2m10s    2m10s          25m  100% (1/1)      0
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from engine.kafka_client.whole_topics import read_to_end
from engine.tracking.scores import DEFAULT_SLA_SECONDS, scorecards
from engine.tracking.store import TRACKED_TOPICS, LifeRecords, add_lines, alert_time
from topics.records import Scorecard, Severity
from topics.registry import ALERTS, FEEDBACK, ORDERS
from topics.schemas import CITY_TZ


@dataclass(frozen=True, slots=True)
class Report:
    period_start: float
    period_end: float
    departments: list[Scorecard]
    """Worst SLA compliance first; departments with nothing judged yet last."""
    models: list[Scorecard]
    """Highest false-alarm rate first; models without verdicts last."""
    levels: list[Scorecard] = field(default_factory=list)
    """The command levels with orders, lowest first (town, district, city)."""


def build_report(records: LifeRecords, since_s: float, until: float,
                 sla_seconds: Mapping[Severity, float] = DEFAULT_SLA_SECONDS) -> Report:
    """The scorecards of ``(until - since_s, until]``, ordered for reading."""
    cards = scorecards(records.alerts.values(), records.orders.values(), records.feedback,
                       until - since_s, until, sla_seconds)
    departments = sorted((c for c in cards if c.scope == "department"), key=lambda c: (
        c.sla_compliance is None, c.sla_compliance or 0.0, -c.open_backlog, c.name))
    models = sorted((c for c in cards if c.scope == "model"), key=lambda c: (
        c.false_alarm_rate is None, -(c.false_alarm_rate or 0.0), -c.false_alarms,
        -c.not_dispatched, -c.alerts, c.name))
    levels = [c for c in cards if c.scope == "level"]  # already lowest first
    return Report(until - since_s, until, departments, models, levels)


def latest_time(records: LifeRecords) -> float | None:
    """The newest wall-clock time any record mentions: where a file snapshot ends."""
    times = [alert_time(a) for a in records.alerts.values()]
    times += [f.at for f in records.feedback]
    for order in records.orders.values():
        times += [t for t in (order.created_at, order.acknowledged_at, order.on_scene_at,
                              order.resolved_at) if t is not None]
        times += [event.at for event in order.history]
    return max(times, default=None)


def load_files(alerts: Path, orders: Path, feedback: Path) -> tuple[LifeRecords, list[str]]:
    """Records from JSONL files (one record a line, as on the topics; a later order line
    supersedes an earlier one); return them and the problems, each as ``file: line N: …``."""
    records = LifeRecords()
    problems = []
    for path, topic in ((alerts, ALERTS.name), (orders, ORDERS.name),
                        (feedback, FEEDBACK.name)):
        with path.open("rb") as lines:
            problems += [f"{path}: {p}" for p in add_lines(records, topic, lines)]
    return records, problems


async def load_topics(bootstrap: str) -> tuple[LifeRecords, list[str]]:
    """Records from the topics, read once to their end; return them and the problems."""
    records = LifeRecords()
    problems = []
    for record in await read_to_end(bootstrap, TRACKED_TOPICS):
        problem = records.add(record.topic, record.key, record.value)
        if problem:
            problems.append(problem)
    return records, problems


# -- rendering ---------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    """The report as ``table``, ``csv`` or ``json``."""
    renderers = {"table": render_table, "csv": render_csv, "json": render_json}
    if fmt not in renderers:
        raise ValueError(f"no report format {fmt!r}: choose {', '.join(renderers)}")
    return renderers[fmt](report)


def render_table(report: Report) -> str:
    departments = [[c.name, str(c.orders), duration(c.ack_p50_s), duration(c.ack_p90_s),
                    duration(c.resolve_p50_s), duration(c.resolve_p90_s),
                    share(c.sla_met, c.sla_total), str(c.open_backlog), str(c.false_alarms)]
                   for c in report.departments]
    models = [[c.name, str(c.alerts), str(c.not_dispatched), str(c.orders), str(c.closed),
               str(c.false_alarms), share(c.false_alarms, c.closed)] for c in report.models]
    levels = [[c.name, str(c.orders), str(c.acknowledged), duration(c.ack_p50_s),
               duration(c.ack_p90_s), duration(c.resolve_p50_s), share(c.sla_met, c.sla_total),
               str(c.open_backlog)] for c in report.levels]
    return "\n".join([
        f"yujing report {local_time(report.period_start)} – {local_time(report.period_end)} "
        f"({CITY_TZ.key})",
        "",
        "Departments, worst SLA first",
        *table_lines(["department", "orders", "ack p50", "ack p90", "resolve p50",
                      "resolve p90", "SLA", "backlog", "false alarms"], departments,
                     numeric={1, 2, 3, 4, 5, 7, 8}),
        "",
        "Models, noisiest first",
        *table_lines(["model", "alerts", "not dispatched", "orders", "closed", "false alarms",
                      "false-alarm rate"], models, numeric={1, 2, 3, 4, 5}),
        "",
        "Command levels (each from when it got the order), lowest first",
        *table_lines(["level", "reached", "took", "ack p50", "ack p90", "resolve p50", "SLA",
                      "holds"], levels, numeric={1, 2, 3, 4, 5, 7}),
    ])


def render_csv(report: Report) -> str:
    """Every scorecard field, one row per scorecard (departments, models, then levels)."""
    out = io.StringIO()
    fields = list(Scorecard.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for card in [*report.departments, *report.models, *report.levels]:
        writer.writerow({k: "" if v is None else v for k, v in card.model_dump().items()})
    return out.getvalue().rstrip("\n")


def render_json(report: Report) -> str:
    return json.dumps({
        "period_start": report.period_start, "period_end": report.period_end,
        "departments": [c.model_dump(mode="json") for c in report.departments],
        "models": [c.model_dump(mode="json") for c in report.models],
        "levels": [c.model_dump(mode="json") for c in report.levels],
    }, ensure_ascii=False, indent=2)


def local_time(epoch: float) -> str:
    """``2024-06-03 08:00`` in the city's time zone (``YUJING_TZ``)."""
    return datetime.fromtimestamp(epoch, CITY_TZ).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """A duration for people, to the largest two units: ``–`` for none.

    >>> [duration(s) for s in (45, 130, 1500, 3600, 3900, 183600, None)]
    ['45s', '2m10s', '25m', '1h', '1h05m', '2d03h', '–']
    """
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    if whole < 86400:
        hours, rest = divmod(whole, 3600)
        return f"{hours}h{rest // 60:02d}m" if rest // 60 else f"{hours}h"
    days, rest = divmod(whole, 86400)
    return f"{days}d{rest // 3600:02d}h" if rest // 3600 else f"{days}d"


def share(part: int, whole: int) -> str:
    """``'50% (1/2)'``; ``–`` when there is nothing to divide.

    >>> share(1, 3), share(0, 0)
    ('33.3% (1/3)', '–')
    """
    if not whole:
        return "–"
    return f"{100 * part / whole:.1f}".removesuffix(".0") + f"% ({part}/{whole})"


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]
                ) -> list[str]:
    """Aligned columns (numbers to the right), two spaces apart; Chinese counts double."""
    if not rows:
        return ["(none)"]
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in numeric else cell + pad)
        lines.append("  ".join(cells).rstrip())
    return lines


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
