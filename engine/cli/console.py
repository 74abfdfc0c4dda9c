"""``yujing console`` (the web console) and ``yujing console-user`` (a user for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli_output import say


def console(
    ctx: typer.Context,
    bootstrap: Annotated[str, typer.Option(envvar="YUJING_BOOTSTRAP")] = "127.0.0.1:9092",
    host: Annotated[str, typer.Option(
        help="Address the console listens on (0.0.0.0: every network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The console's port.")] = 8080,
    rules: Annotated[list[Path], typer.Option(
        help="Rule files or folders (the models' descriptions, the map).")] = [Path("rules")],  # noqa: B006
    sessions_file: Annotated[Path, typer.Option(
        help="Where the sign-ins are kept (mode 0600), so a restarted console still knows "
             "them.")] = Path(".yujing/console-sessions.json"),
) -> None:
    """The command centre's web console: the live alert wall, the map, incidents, the work-order
    board, scorecards and silences, for the users the configuration file lists."""
    import logging

    from engine.console import run_console
    from engine.kafka_client.access import ensure_access
    from engine.log_format import setup as log_format_setup

    users = ctx.find_root().obj.users
    if not users:
        say("error: no console users: add [[users]] to the configuration file (`yujing "
            "console-user NAME` prints one)", err=True)
        raise typer.Exit(2)
    ensure_access(bootstrap)
    log_format_setup(logging.INFO, "text")
    say(f"console on http://{host}:{port}/ ({len(users)} users)")
    run_console(bootstrap, users, rules, host=host, port=port, sessions_file=sessions_file)


def console_user(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Option(
        help="command (everything), district, town or department (a desk).")] = "command",
    area: Annotated[str | None, typer.Option(
        help="The district, town or department of a desk.")] = None,
) -> None:
    """Print a [[users]] entry for the configuration file; the password is asked for (twice)
    and only its argon2 hash is printed."""
    from pydantic import ValidationError

    from engine.console.access import ConsoleUser
    from engine.console.sessions import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        user = ConsoleUser(name=name, password_hash=hash_password(password), role=role,  # type: ignore[arg-type]
                           area=area)
    except ValidationError as exc:
        say(f"error: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    say("[[users]]")
    for key, value in user.model_dump(exclude_none=True).items():
        say(f'{key} = "{value}"')
