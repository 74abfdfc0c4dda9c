"""``yujing dispatch``: check and try the routing file, run the dispatch service.

Kept light to import (``engine.cli`` imports it at start-up): the work happens in functions
that import what they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli_output import say
from engine.log_format import LogFormatOption

if TYPE_CHECKING:
    from engine.dispatch.routing import Routing

dispatch_app = typer.Typer(no_args_is_help=True,
                           help="Dispatch (联动指挥): routing alerts to departments as work "
                                "orders, escalated when not acknowledged in time.")

DEFAULT_ROUTES = Path("rules/routing/routes.yaml")

RulesFolder = Annotated[Path, typer.Option(
    help="Rule folder: the departments, severity and maturity of a test alert that names only "
         "its model_id.")]


def _say(text: str = "", err: bool = False) -> None:
    say(text, err=err)


def _routing_or_exit(routes: Path) -> Routing:
    from engine.dispatch.routing import load_routing

    routing, errors = load_routing(routes)
    for error in errors:
        _say(str(error), err=True)
    if routing is None:
        _say(f"{routes}: {len(errors)} problems")
        raise typer.Exit(1)
    return routing


@dispatch_app.command("check")
def check(
    routes: Annotated[Path, typer.Argument(help="The routing file.")] = DEFAULT_ROUTES,
    rules: RulesFolder = Path("rules"),
) -> None:
    """Validate a routing file (problems as file:line: message), run its tests; exit 1 on any."""
    from engine.dispatch.routing import rule_catalogue, run_routing_tests

    routing = _routing_or_exit(routes)
    outcomes = run_routing_tests(routing, rule_catalogue(rules))
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        _say(f"FAIL {routes}:{outcome.line}: {outcome.name}")
        for line in outcome.diff():
            _say("  " + line)
    _say(f"{routes}: valid; {len(outcomes) - len(failed)} tests passed, {len(failed)} failed")
    raise typer.Exit(1 if failed else 0)


@dispatch_app.command("test")
def test_route(
    arguments: Annotated[list[str], typer.Argument(
        help="[ROUTES] then alert fields as name=value (lists comma-separated), e.g. "
             "model_id=hazchem.tank.level_high severity=red district=xihu")],
    rules: RulesFolder = Path("rules"),
    expect: Annotated[str | None, typer.Option(
        help="Comma-separated departments the alert must reach; exit 1 if it reaches "
             "others.")] = None,
) -> None:
    """Route one alert and print the routes it lands on and the departments (like amtool)."""
    from pydantic import ValidationError

    from engine.dispatch.routing import alert_from_fields, describe_routed, rule_catalogue

    routes = DEFAULT_ROUTES
    if arguments and "=" not in arguments[0]:
        routes, arguments = Path(arguments[0]), arguments[1:]
    fields: dict[str, object] = {}
    for argument in arguments:
        name, sep, value = argument.partition("=")
        if not sep:
            raise typer.BadParameter(f"{argument!r}: write alert fields as name=value")
        fields[name] = ([v for v in value.split(",") if v]
                        if name in ("departments", "sources", "silenced_by") else value)
    routing = _routing_or_exit(routes)
    try:
        alert = alert_from_fields(fields, rule_catalogue(rules))
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _say(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    routed = routing.route(alert)
    for line in describe_routed(routed):
        _say(line)
    if expect is not None:
        wanted = sorted(d for d in expect.split(",") if d)
        if wanted != sorted(routed.departments):
            _say(f"expected: {', '.join(wanted)}", err=True)
            raise typer.Exit(1)


@dispatch_app.command("run")
def run(
    bootstrap: Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")] = "127.0.0.1:9092",
    routes: Annotated[Path, typer.Option(help="The routing file.")] = DEFAULT_ROUTES,
    group_id: Annotated[str, typer.Option(help="Consumer group of alerts and feedback.")
                        ] = "yujing-dispatch",
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (0: off).")
                            ] = 9465,
    metrics_host: Annotated[str, typer.Option(
        help="Address /metrics, /healthz and /readyz listen on (0.0.0.0: every network).")
    ] = "127.0.0.1",
    loglevel: str = "info",
    log_format: LogFormatOption = "text",
) -> None:
    """Consume alerts and feedback, publish incidents and work orders, escalate on time."""
    import asyncio

    from engine.dispatch.service import DispatchSettings, run_dispatch
    from engine.kafka_client.access import ensure_access
    from engine.log_format import setup as log_format_setup
    from engine.log_repeats import quiet_repeats

    routing = _routing_or_exit(routes)
    ensure_access(bootstrap)
    log_format_setup(loglevel, log_format)
    quiet_repeats()
    asyncio.run(run_dispatch(DispatchSettings(bootstrap=bootstrap, routing=routing,
                                              group_id=group_id, metrics_port=metrics_port,
                                              metrics_host=metrics_host)))
