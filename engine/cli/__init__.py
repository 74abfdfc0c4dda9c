"""``yujing``: the command line of the engine (rules, replay, broker, worker, demo)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaConnectionError

from engine.cli_output import say
from engine.log_format import LogFormatOption
from engine.worker.settings import DEFAULTS as WORKER
from engine.worker.settings import WorkerSettings
from models.durations import format_duration

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  # Every flag also from YUJING_<COMMAND>_<FLAG> (engine.config).
                  context_settings={"auto_envvar_prefix": "YUJING"},
                  help="yujing 预警 — stream-processing early-warning engine.")
reference_app = typer.Typer(no_args_is_help=True, help="Reference data (zones, lists).")
app.add_typer(reference_app, name="reference")
config_app = typer.Typer(no_args_is_help=True, help="The configuration every command reads.")
app.add_typer(config_app, name="config")
from engine.dispatch.cli import dispatch_app  # noqa: E402  (dispatch, 联动指挥)

app.add_typer(dispatch_app, name="dispatch")
from engine.cli.silence import silence_app  # noqa: E402  (a sub-command group of its own)

app.add_typer(silence_app, name="silence")
from engine.cli.alerts import alerts_app  # noqa: E402  (a sub-command group of its own)
from engine.cli.broker import broker_app  # noqa: E402  (a sub-command group of its own)
from engine.cli.console import console, console_user  # noqa: E402  (the web console)
from engine.tracking.cli import report, track  # noqa: E402  (performance tracking, 行政问效)

app.add_typer(alerts_app, name="alerts")
app.add_typer(broker_app, name="broker")
app.command()(track)
app.command()(report)
app.command()(console)
app.command("console-user")(console_user)

RulePaths = Annotated[list[Path] | None, typer.Argument(help="Rule files or folders.")]
DEFAULT_RULES = [Path("rules")]


def _say(text: str = "", err: bool = False) -> None:
    say(text, err=err)


@app.command()
def validate(paths: RulePaths = None) -> None:
    """Check rule files; print each problem as file:line: message. Exit 1 on any.

    Also warns (file:line: warning: message; the exit code is not affected) of conditions a
    missing optional field silences without a fallback."""
    from engine.rule_files.loader import load_rules

    result = load_rules(paths or DEFAULT_RULES, strict_reference=True, warn_absent_fields=True)
    for problem in sorted([*result.errors, *result.warnings],
                          key=lambda p: (str(p.file), p.line)):
        _say(str(problem), err=True)
    _say(f"{len(result.rules)} rule files valid, {len(result.errors)} problems, "
         f"{len(result.warnings)} warnings")
    raise typer.Exit(1 if result.errors else 0)


@app.command("test")
def test_rules(paths: RulePaths = None) -> None:
    """Run the tests inside rule files; show a diff for each failure. Exit 1 on any."""
    from engine.cli.progress import tracked
    from engine.offline.ruletest import run_rule_tests
    from engine.rule_files.loader import load_rules

    result = load_rules(paths or DEFAULT_RULES)
    for error in result.errors:
        _say(str(error), err=True)
    outcomes = run_rule_tests(result.rules, lambda pairs: tracked(pairs, "rule tests", len(pairs)))
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        _say(f"FAIL {outcome.file}: {outcome.rule_id}: {outcome.test}")
        for problem in outcome.problems:
            _say("  " + problem.replace("\n", "\n  "))
    _say(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    raise typer.Exit(1 if failed or result.errors else 0)


@app.command()
def schema(out: Annotated[Path | None, typer.Option(help="Write here, not stdout.")] = None
           ) -> None:
    """Print the JSON Schema of rule files (for editors: yaml-language-server)."""
    from engine.rule_files.format import json_schema

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@app.command()
def explain(
    rule_id: Annotated[str, typer.Argument(help="The rule's id.")],
    rules: Annotated[list[Path], typer.Option(help="Rule files or folders.")] = DEFAULT_RULES,
    events: Annotated[Path | None, typer.Option(
        help="Replay this JSONL to show state size and the last verdicts.")] = None,
) -> None:
    """What a rule watches, its state size and its last verdicts (over --events)."""
    from engine.offline.explain import explain as explain_rule
    from engine.offline.explain import render
    from engine.rule_files.loader import load_rules

    loaded = load_rules(rules)
    found = [r for r in loaded.rules if r.id == rule_id]
    if not found:
        _say(f"no rule {rule_id!r} in {', '.join(map(str, rules))}", err=True)
        raise typer.Exit(1)
    _say(render(explain_rule(found[0], events)))


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="JSONL: envelopes, or bare events with --topic")],
    rules: Annotated[list[Path], typer.Option(help="Rule files or folders.")] = DEFAULT_RULES,
    out: Annotated[Path | None, typer.Option(help="Write alerts here (JSONL).")] = None,
    topic: Annotated[str | None, typer.Option(help="Lines are bare events of this topic.")] = None,
    max_event_age: Annotated[str, typer.Option(
        help="Events dated further back than the newest seen are bad lines (0: no horizon).")
    ] = "7d",
) -> None:
    """Run the scoring core over a file of events in event time, without a broker."""
    from engine.cli.progress import tracked
    from engine.offline.replay import replay
    from engine.rule_files.loader import load_rules
    from topics.codec import EventTimePolicy

    loaded = load_rules(rules)
    for error in loaded.errors:
        _say(f"rule file rejected: {error}", err=True)
    if not loaded.rules:
        _say(f"yujing replay: no valid rule file in {', '.join(map(str, rules))} "
             f"({len(loaded.errors)} problems): nothing to replay against", err=True)
        raise typer.Exit(1)
    policy = EventTimePolicy(max_age_s=_duration("--max-event-age", max_event_age))
    try:
        with events.open("rb") as handle:
            lines = tracked(handle, f"replaying {events.name}", events.stat().st_size, len)
            result = replay(lines, loaded.rules, topic, time_policy=policy)
    except OSError as exc:
        _say(f"yujing replay: cannot read {events}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    for bad in result.bad_lines:
        _say(f"{events}:{bad}", err=True)
    for failed in result.failures:
        _say(f"{events}:{failed}", err=True)
    for (rule_id, cause), count in sorted(result.unused.items()):
        _say(f"{rule_id}: {count} {'late' if cause == 'late' else f'skipped ({cause})'} "
             "readings not used", err=True)
    for rule_id, count in sorted(result.undecided.items()):
        _say(f"{rule_id}: {count} events undecided (a field its condition needs was missing)",
             err=True)
    lines = [alert.model_dump_json() for alert in result.alerts]
    if out:
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        for line in lines:
            _say(line)
    _say(result.summary(len(loaded.rules)), err=True)


@app.command()
def worker(
    rules: Annotated[list[Path], typer.Option(help="Rule files or folders.")] = WORKER.rules,
    bootstrap: Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")] = WORKER.bootstrap,
    metrics_port: Annotated[int, typer.Option(
        help="Prometheus /metrics port (0: off).")] = WORKER.metrics_port,
    metrics_host: Annotated[str, typer.Option(
        help="Address /metrics, /healthz and /readyz listen on (0.0.0.0: every network).")
    ] = WORKER.metrics_host,
    app_id: Annotated[str, typer.Option(
        help="Consumer group and changelog prefix.")] = WORKER.app_id,
    reload_interval: Annotated[float, typer.Option(
        help="Seconds between checks of the rule files for changes (0: never).")
    ] = WORKER.reload_interval_s,
    batch_max: Annotated[int, typer.Option(
        help="Most events scored as one batch.")] = WORKER.batch_max,
    batch_within: Annotated[float, typer.Option(
        help="Seconds a batch waits at most: it goes as soon as the events fetched so far "
             "are in, or when it holds --batch-max.")] = WORKER.batch_within_s,
    commit_interval: Annotated[float, typer.Option(
        help="Seconds between offset commits, each writing the changed state first.")
    ] = WORKER.commit_interval_s,
    fetch_busy_above: Annotated[float, typer.Option(
        help="Events/s above which the broker may hold a fetch 10 ms to gather records "
             "(0: never, each fetch returns at its first record; 500 spares the broker at a "
             "few thousand events/s, and costs about 10% of the throughput on a backlog).")
    ] = WORKER.fetch_busy_above,
    rekey_here: Annotated[bool, typer.Option(
        help="Score an event re-keyed to a key this worker owns at once, not through the "
             "re-keying topic.")] = WORKER.rekey_here,
    stream_buffer: Annotated[int, typer.Option(
        help="Events fetched and not yet scored that a stream holds (Faust's "
             "stream_buffer_maxsize; its default is 4096).")] = WORKER.stream_buffer,
    max_future: Annotated[str, typer.Option(
        help="Events dated further ahead of the wall clock are dead-lettered.")
    ] = format_duration(WORKER.max_future_s),
    max_event_age: Annotated[str, typer.Option(
        help="Events dated further back than this are dead-lettered (0: no horizon, for a "
             "backfill of old data; nothing before 2000 is ever accepted).")
    ] = format_duration(WORKER.max_event_age_s),
    loglevel: str = "info",
    log_format: LogFormatOption = "text",
) -> None:
    """Consume the department topics, score every event, publish alerts (a Faust worker)."""
    from engine.worker.faust_internals.versions import UnsupportedVersionError, check_versions

    try:
        check_versions()  # before Faust is imported: the patches of its internals need it
    except UnsupportedVersionError as exc:
        _say(f"yujing worker: {exc}", err=True)
        raise typer.Exit(1) from None
    from engine.kafka_client.access import ensure_access
    from engine.worker import NoRulesError, run_worker

    ensure_access(bootstrap)

    settings = WorkerSettings(bootstrap=bootstrap, rules=rules, metrics_port=metrics_port,
                              metrics_host=metrics_host,
                              app_id=app_id, reload_interval_s=reload_interval,
                              batch_max=batch_max, batch_within_s=batch_within,
                              commit_interval_s=commit_interval,
                              fetch_busy_above=fetch_busy_above, rekey_here=rekey_here,
                              stream_buffer=stream_buffer,
                              max_future_s=_duration("--max-future", max_future),
                              max_event_age_s=_duration("--max-event-age", max_event_age))
    try:
        run_worker(settings, loglevel=loglevel, log_format=log_format)
    except NoRulesError as exc:
        _say(f"yujing worker: {exc}", err=True)
        raise typer.Exit(1) from None


def _duration(option: str, text: str) -> float:
    from models.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command("create-topics")
def create_topics(
    bootstrap: Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")] = "127.0.0.1:9092",
    fix: Annotated[bool, typer.Option(
        help="Add missing partitions and set the cleanup policy of existing topics that "
             "differ (adding partitions moves keys: stop the workers first).")] = False,
    replication_factor: Annotated[int | None, typer.Option(
        min=1, envvar="YUJING_REPLICATION_FACTOR",
        help="Replicas of each topic created (default 1; 3 on a cluster of three).")] = None,
    min_insync_replicas: Annotated[int | None, typer.Option(
        min=1, envvar="YUJING_MIN_INSYNC_REPLICAS",
        help="In-sync replicas a write needs (default 2 with 3 replicas or more, else 1).")
    ] = None,
) -> None:
    """Create every yujing topic with its partition count, and report existing ones whose
    partition count or cleanup policy differs (exit 1 while any is left)."""
    from engine.kafka_client.admin import check_topics, ensure_topics

    created = asyncio.run(ensure_topics(bootstrap, replication=replication_factor,
                                        min_insync=min_insync_replicas))
    _say(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
    problems = asyncio.run(check_topics(bootstrap, fix=fix))
    for problem in problems:
        _say(str(problem))
    if any(not p.fixed for p in problems):
        raise typer.Exit(1)


@app.command()
def demo(
    rules: Annotated[list[Path], typer.Option(help="Rule files or folders.")] = DEFAULT_RULES,
    wait: Annotated[float, typer.Option(
        help="Seconds to watch the scene: alerts, work orders, replies, escalation.")] = 30.0,
    keep: Annotated[bool, typer.Option(help="Leave the broker running afterwards.")] = False,
    kafka_port: Annotated[int, typer.Option(
        help="The demo broker's client port (its controller on the next one).")] = 9092,
    metrics_port: Annotated[int, typer.Option(
        help="The worker's /metrics port; dispatch's and tracking's are the two after.")
    ] = 9464,
    console_port: Annotated[int, typer.Option(help="The web console's port.")] = 8080,
) -> None:
    """The whole loop in a minute: broker, worker, dispatch, tracking and a simulated city;
    a scripted scene, the departments' replies, an escalation, the scorecards."""
    from simulator.demo import run_demo

    raise typer.Exit(run_demo(rules, wait_s=wait, keep=keep, kafka_port=kafka_port,
                              metrics_port=metrics_port, console_port=console_port))


@app.command()
def simulate(
    cli: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Write events here (JSONL envelopes).")] = None,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth here (JSONL).")] = None,
    seed: int = 1,
    start: Annotated[str, typer.Option(help="Local start time.")] = "2024-06-03T00:00:00",
    duration: Annotated[str, typer.Option(help="How long, e.g. 6h, 1d.")] = "1d",
    rate: Annotated[float, typer.Option(help="Background rate multiplier.")] = 1.0,
    incidents: Annotated[int, typer.Option(help="Incidents per model.")] = 2,
    department: Annotated[list[str] | None, typer.Option(help="Only these departments.")] = None,
    rules: Annotated[Path, typer.Option(help="Rule folder (for its reference zones).")] = Path(
        "rules"),
    bootstrap: Annotated[str | None, typer.Option(
        envvar="YUJING_BOOTSTRAP",
        help="Send to this Kafka (without --out: to the configured one; with --out, only "
             "when given here).")] = None,
    speed: Annotated[float | None, typer.Option(
        help="With --bootstrap: pace events (1 = real time, 60 = an hour a minute).")] = None,
) -> None:
    """Simulate the city's department streams with injected incidents and ground truth."""
    from models.durations import parse_duration
    from simulator.base import SimContext, parse_start
    from simulator.run import (
        Simulation,
        reference_city,
        send_to_kafka,
        write_jsonl,
        write_truth,
    )

    begin = parse_start(start)
    ctx = SimContext(seed=seed, start=begin, end=begin + parse_duration(duration), rate=rate,
                     incidents_per_model=incidents, city=reference_city(rules))
    sim = Simulation(ctx, only=department)
    _track_simulated_time(sim, ctx.start, ctx.end)
    given = cli.get_parameter_source("bootstrap")
    if out is None or (bootstrap and given is not None and given.name == "COMMANDLINE"):
        from engine.kafka_client import connection

        if truth:
            write_truth(sim, truth)
        sent = asyncio.run(send_to_kafka(sim, bootstrap or connection.current().bootstrap,
                                         speed))
        _say(f"sent {sent} events, {len(sim.truth)} incidents")
        return
    count = write_jsonl(sim, out, truth)
    _say(f"wrote {count} events and {len(sim.truth)} incidents")


def _track_simulated_time(sim: Any, start: float, end: float) -> None:
    """Show the run's progress through simulated time (on a terminal)."""
    from engine.cli.progress import tracked

    plain = sim.events
    reached = [start]

    def step(envelope: Any) -> float:
        moved = max(0.0, envelope.ts - reached[0])
        reached[0] = max(reached[0], envelope.ts)
        return moved

    sim.events = lambda: tracked(plain(), "simulating", end - start, step)


@reference_app.command("publish")
def reference_publish(
    paths: RulePaths = None,
    bootstrap: Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")] = "127.0.0.1:9092",
) -> None:
    """Send the reference files' records (rules/reference/) to the reference.* topics."""
    from engine.kafka_client.admin import ensure_topics
    from engine.kafka_client.reference import publish_reference
    from engine.rule_files.loader import load_rules

    loaded = load_rules(paths or DEFAULT_RULES)
    problems = [e for e in loaded.errors if "reference" in str(e.file)]
    for error in problems:
        _say(str(error), err=True)
    asyncio.run(ensure_topics(bootstrap))
    sent = asyncio.run(publish_reference(bootstrap, loaded.env.reference))
    _say(f"published {sent} reference records")
    raise typer.Exit(1 if problems else 0)


SERVICES = {"worker", "dispatch", "track", "demo", "broker"}
"""Commands that run on and report their own connection troubles (quietly, with a count)."""


def _bootstrap_named(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--bootstrap" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--bootstrap="):
            return arg.split("=", 1)[1]
    from engine.kafka_client import connection

    return connection.current().bootstrap


def main() -> None:
    """The ``yujing`` command: a command that cannot reach Kafka says so in one line and exits
    2 (with ``--debug``, anywhere on the line: the traceback instead)."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    if not debug and command not in SERVICES:
        # aiokafka logs each failed connection attempt; the one line below says it all.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    from engine.kafka_client.access import AccessRefused, check_access

    try:
        app()
    except AccessRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KafkaConnectionError, ConnectionRefusedError) as exc:
        if debug:
            raise
        bootstrap = _bootstrap_named(sys.argv)
        try:  # aiokafka says "Unable to bootstrap" for a refused password or certificate too
            asyncio.run(check_access(bootstrap))
        except AccessRefused as refused:
            print(f"error: {refused}", file=sys.stderr)
            sys.exit(2)
        print(f"error: cannot reach Kafka at {bootstrap} ({exc}); is the "
              "broker running? (`yujing broker start` runs one; --debug shows the traceback)",
              file=sys.stderr)
        sys.exit(2)


def _version(value: bool) -> None:
    if value:
        from engine import installed_version

        typer.echo(f"yujing {installed_version() or '(not installed as a package)'}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of an error (allowed anywhere on the line).")
    ] = False,
    config_file: Annotated[Path | None, typer.Option(
        "--config", envvar="YUJING_CONFIG", dir_okay=False,
        help="Configuration file (TOML or YAML): [kafka], [http] and a table of flags per "
             "command; the environment and the flags override it.")] = None,
) -> None:
    """yujing 预警 — stream-processing early-warning engine."""
    from engine.cli.configured import default_map
    from engine.config import ConfigError, load_config
    from engine.kafka_client import connection
    from topics import personal_data

    try:
        config = load_config(config_file)
        if os.environ.get("YUJING_BOOTSTRAP") and not os.environ.get("YUJING_KAFKA__BOOTSTRAP"):
            # The older name of the variable, which every command's --bootstrap reads.
            config = config.model_copy(update={"kafka": config.kafka.model_copy(
                update={"bootstrap": os.environ["YUJING_BOOTSTRAP"]})})
        ctx.default_map = default_map(ctx.command, config)
    except ConfigError as exc:
        _say(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    connection.use(config.kafka)
    key = config.personal_data.secret()
    if key is not None:
        personal_data.use_key(key)
    ctx.obj = config


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective configuration (file, environment, defaults), secrets masked."""
    from engine.config import shown

    _say(shown(ctx.find_root().obj).rstrip("\n"))


if __name__ == "__main__":
    main()
