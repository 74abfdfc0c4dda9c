"""``yujing silence``: set, list and lift silences and maintenance windows."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer

from engine.cli_output import say
from engine.history import clock
from models.durations import parse_duration

silence_app = typer.Typer(no_args_is_help=True,
                          help="Silences and maintenance windows (control.silences).")

Bootstrap = Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")]
MATCHABLE = ("model_id", "key", "grid_id", "town", "district", "severity", "department")


def _matchers(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not value or name not in MATCHABLE:
            raise typer.BadParameter(
                f"{pair!r}: write FIELD=VALUE with FIELD one of {', '.join(MATCHABLE)} "
                "(a value may end in * to match a prefix)")
        out[name] = value
    return out


@silence_app.command("add")
def silence_add(
    match: Annotated[list[str], typer.Option("--match", "-m",
                                             help="FIELD=VALUE; repeat: all must match.")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h, 3d.")],
    reason: Annotated[str, typer.Option(help="Why (shown with every silenced alert).")],
    by: Annotated[str, typer.Option(help="Who sets it.")] = "cli",
    maintenance: Annotated[bool, typer.Option(help="A planned maintenance window.")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Silence matching alerts: still recorded on `alerts`, not dispatched."""
    from engine.kafka_client.admin import ensure_topics
    from engine.silences import new_silence, publish_silence
    from topics.registry import SILENCES

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    silence = new_silence(_matchers(match), seconds, reason, by,
                          "maintenance" if maintenance else "silence")
    asyncio.run(ensure_topics(bootstrap, [SILENCES]))
    asyncio.run(publish_silence(bootstrap, silence))
    say(silence.silence_id)


@silence_app.command("list")
def silence_list(
    all_: Annotated[bool, typer.Option("--all", help="Also expired ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
) -> None:
    """The silences in force (or all of them)."""
    from engine.kafka_client.admin import ensure_topics
    from engine.silences import describe, read_silences
    from topics.registry import SILENCES

    asyncio.run(ensure_topics(bootstrap, [SILENCES]))
    book = asyncio.run(read_silences(bootstrap))
    now = time.time()
    rows = [describe(s, now) for s in book.all() if all_ or s.ends_at > now]
    if as_json:
        say(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        matchers = " ".join(f"{k}={v}" for k, v in row["matchers"].items())  # type: ignore[union-attr]
        ends = clock(row["ends_at"], seconds=False)  # type: ignore[arg-type]
        say(f"{row['silence_id']}  {row['state']:<8} until {ends}  {row['kind']:<11} "
                   f"{matchers}  — {row['reason']} ({row['created_by']})")
    if not rows:
        say("no silences in force")


@silence_app.command("expire")
def silence_expire(silence_id: str, bootstrap: Bootstrap = "127.0.0.1:9092") -> None:
    """Lift a silence now (it stays in the history as expired)."""
    from engine.silences import publish_silence, read_silences

    book = asyncio.run(read_silences(bootstrap))
    found = {s.silence_id: s for s in book.all()}.get(silence_id)
    if found is None:
        say(f"no silence {silence_id}", err=True)
        raise typer.Exit(1)
    asyncio.run(publish_silence(bootstrap, found.model_copy(update={"ends_at": time.time()})))
    say(f"expired {silence_id}")
