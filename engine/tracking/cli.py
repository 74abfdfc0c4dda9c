"""``yujing track`` and ``yujing report`` (registered on the main app in ``engine.cli``).

Heavy imports (aiokafka, prometheus) wait inside the commands, so ``yujing --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from engine.cli_output import say
from engine.log_format import LogFormatOption
from engine.tracking.scores import DEFAULT_SLA_SECONDS
from topics.records import Severity

Bootstrap = Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP", help="Kafka HOST:PORT.")]


class ReportFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


SlaOption = Annotated[list[str] | None, typer.Option(
    "--sla", help="An acknowledgement limit, severity=duration (repeat for several); "
    "defaults red=5m orange=15m yellow=1h blue=4h.")]


def track(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    every: Annotated[str, typer.Option(help="How often to publish scorecards.")] = "60s",
    window: Annotated[str, typer.Option(help="The period the scorecards cover.")] = "24h",
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (0: off).")] = 9466,
    metrics_host: Annotated[str, typer.Option(
        help="Address /metrics, /healthz and /readyz listen on (0.0.0.0: every network).")
    ] = "127.0.0.1",
    sla: SlaOption = None,
    log_format: LogFormatOption = "text",
) -> None:
    """Keep per-department and per-model scorecards current on performance.scorecards."""
    from engine.kafka_client.access import ensure_access
    from engine.log_format import setup as log_format_setup
    from engine.log_repeats import quiet_repeats
    from engine.tracking.service import TrackSettings, run_tracker
    from models.durations import parse_duration

    ensure_access(bootstrap)
    log_format_setup(logging.INFO, log_format)
    quiet_repeats()
    try:
        settings = TrackSettings(bootstrap=bootstrap, every_s=parse_duration(every),
                                 window_s=parse_duration(window), metrics_port=metrics_port,
                                 metrics_host=metrics_host,
                                 sla_seconds=parse_sla(sla))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    run_tracker(settings)


def report(
    since: Annotated[str, typer.Option(help="The period: this long before --until.")] = "24h",
    until: Annotated[str | None, typer.Option(
        help="End of the period (ISO-8601, local time without a zone, or epoch seconds); "
        "default now, or the newest record of --from-files.")] = None,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.TABLE,
    from_files: Annotated[tuple[Path, Path, Path] | None, typer.Option(
        exists=True, dir_okay=False,
        help="Read ALERTS ORDERS FEEDBACK JSONL files instead of Kafka.")] = None,
    sla: SlaOption = None,
) -> None:
    """A report of the period: departments worst SLA first, models noisiest first."""
    from engine.tracking.report import build_report, latest_time, load_files, load_topics, render
    from models.durations import parse_duration

    try:
        since_s, limits = parse_duration(since), parse_sla(sla)
        end = parse_time(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if from_files:
        records, problems = load_files(*from_files)
        end = end or latest_time(records) or time.time()
    else:
        from aiokafka.errors import KafkaError

        try:
            records, problems = asyncio.run(load_topics(bootstrap))
        except (KafkaError, TimeoutError) as exc:
            say(f"cannot read the topics from {bootstrap}: {exc!r}", err=True)
            raise typer.Exit(1) from None
        end = end or time.time()
    for problem in problems:
        say(f"skipped: {problem}", err=True)
    say(render(build_report(records, since_s, end, limits), fmt.value))


def parse_sla(items: list[str] | None) -> dict[Severity, float]:
    """``["red=10m"]`` over the default limits.

    >>> parse_sla(["red=10m"])[Severity.RED], parse_sla(None)[Severity.BLUE]
    (600.0, 14400.0)
    """
    from models.durations import parse_duration

    limits = dict(DEFAULT_SLA_SECONDS)
    for item in items or []:
        name, sep, text = item.partition("=")
        try:
            if not sep:
                raise ValueError("no '='")
            limits[Severity(name.strip())] = parse_duration(text.strip())
        except ValueError as exc:
            raise ValueError(f"--sla {item!r}: write severity=duration, e.g. red=5m "
                             f"({exc})") from None
    return limits


def parse_time(text: str) -> float:
    """Epoch seconds, or ISO-8601 (local time when it names no zone).

    >>> parse_time("1717372800"), parse_time("2024-06-03T08:00:00")
    (1717372800.0, 1717372800.0)
    """
    from topics.schemas import CITY_TZ

    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CITY_TZ)
    return moment.timestamp()
