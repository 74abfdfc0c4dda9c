"""``yujing alerts list | show | tail``: the alert history, read from Kafka.

Each command reads the topics it needs whole (every partition, from the beginning, to the end
offsets at start), so it shows the same after a restart of every process; the views themselves
are ``engine.history``'s pure functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli_output import say

if TYPE_CHECKING:
    from engine.tracking.store import LifeRecords

alerts_app = typer.Typer(no_args_is_help=True,
                         help="Alert history: what fired, who got it, what happened.")

Bootstrap = Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP", help="Kafka HOST:PORT.")]


@alerts_app.command("list")
def list_alerts(
    since: Annotated[str, typer.Option(help="Alerts that changed within this long.")] = "24h",
    model: Annotated[str | None, typer.Option(help="Only this model (a trailing * for a "
                                                   "prefix).")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key.")] = None,
    state: Annotated[str | None, typer.Option(help="Only alerts now in this state "
                                                   "(firing, escalated, resolved).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts not resolved.")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Alert episodes, the most recently changed first, each in its current state."""
    from engine.history import alert_views, render_list, select_alerts
    from models.durations import parse_duration
    from topics.registry import ALERTS

    try:
        since_s = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    records = _read(bootstrap, [ALERTS.name])
    views = select_alerts(alert_views(records.alerts.values()),
                          changed_after=time.time() - since_s, model=model, key=key,
                          state=state, open_only=open_only)
    say(render_list(views))


@alerts_app.command("show")
def show_alert(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (or the start of it).")],
    bootstrap: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Every state change of the alert, its incident, its work orders and their feedback."""
    from engine.history import alert_story, find_alert_id, render_story
    from engine.tracking.store import HISTORY_TOPICS

    records = _read(bootstrap, list(HISTORY_TOPICS))
    found = find_alert_id(records, alert_id)
    story = alert_story(records, found) if found else None
    if story is None:
        say(f"no alert {alert_id!r} on the topics (or the prefix names several)",
                   err=True)
        raise typer.Exit(1)
    say(render_story(story))


@alerts_app.command("tail")
def tail_alerts(
    model: Annotated[str | None, typer.Option(help="Only this model (a trailing * for a "
                                                   "prefix).")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key.")] = None,
    bootstrap: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Follow new alert records, one line each, until Ctrl-C."""
    from aiokafka.errors import KafkaError

    try:
        asyncio.run(_tail(bootstrap, model, key))
    except KafkaError as exc:
        say(f"cannot follow alerts on {bootstrap}: {exc!r}", err=True)
        raise typer.Exit(1) from None


async def _tail(bootstrap: str, model: str | None, key: str | None) -> None:
    from engine.history import alert_line, alert_matches
    from engine.kafka_client.whole_topics import assign_whole, partitions_of, whole_topic_consumer
    from engine.tracking.store import alert_record_key, parse_record
    from topics.records import Alert
    from topics.registry import ALERTS

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    # Recent record keys only: enough to drop a redelivered copy, bounded for a tail left
    # running for days.
    recent: dict[tuple[str, str, int, str], None] = {}
    consumer = whole_topic_consumer(bootstrap)
    try:
        await consumer.start()
        partitions = await partitions_of(bootstrap, [ALERTS.name])
        if not partitions:
            say(f"no topic {ALERTS.name} on {bootstrap}", err=True)
            raise typer.Exit(1)
        await assign_whole(consumer, partitions, from_end=True)
        for tp in partitions:
            await consumer.position(tp)  # the end is fixed now: nothing after it is missed
        say("following new alerts (Ctrl-C to stop)", err=True)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    alert = parse_record(ALERTS.name, message.value or b"")
                    if not isinstance(alert, Alert):
                        say(f"skipped: {alert}", err=True)
                        continue
                    if alert_record_key(alert) in recent:
                        continue
                    recent[alert_record_key(alert)] = None
                    if len(recent) > 10_000:
                        del recent[next(iter(recent))]
                    if alert_matches(alert, model=model, key=key):
                        say(alert_line(alert))
                        sys.stdout.flush()
    except asyncio.CancelledError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


def _read(bootstrap: str, topics: list[str]) -> LifeRecords:
    """The records of ``topics`` up to their current end, problems told on stderr."""
    from aiokafka.errors import KafkaError

    from engine.kafka_client.whole_topics import read_to_end
    from engine.tracking.store import LifeRecords

    try:
        read = asyncio.run(read_to_end(bootstrap, topics))
    except (KafkaError, TimeoutError) as exc:
        say(f"cannot read {', '.join(topics)} from {bootstrap}: {exc!r}", err=True)
        raise typer.Exit(1) from None
    records = LifeRecords()
    for record in read:
        problem = records.add(record.topic, record.key, record.value)
        if problem:
            say(f"skipped: {problem}", err=True)
    return records
