"""The configuration (``engine.config``) put under the command line: every command's flags
take their defaults from it, through click's ``default_map`` (a flag given, or its
``YUJING_…`` variable, wins over the file; the file over the declared default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.config import ConfigError, YujingConfig


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) of every command under a click group (typer's, which has its own
    click)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


def default_map(root: Any, config: YujingConfig) -> dict[str, Any]:
    """Defaults per command path, from the shared tables and each command's own table.
    Raises ``ConfigError`` for a key no command of its table takes."""
    # Every HTTP endpoint binds where [http] says: the services' metrics, the console.
    shared = {"bootstrap": config.kafka.bootstrap, "metrics_host": config.http.bind,
              "host": config.http.bind}
    defaults: dict[str, Any] = {}
    taken: dict[str, set[str]] = {name: set() for name in config.commands}
    known: dict[str, set[str]] = {name: set() for name in config.commands}
    for path, command in _leaves(root):
        params = {p.name for p in command.params if p.name}
        table = config.commands.get(path[0], {})
        if path[0] in known:
            known[path[0]] |= params
        # Not where the flag is off unless given (``simulate --bootstrap``: a file otherwise).
        takes_shared = {p.name for p in command.params if p.name in shared
                        and p.default is not None}
        values = {k: v for k, v in shared.items() if k in takes_shared}
        for key, value in table.items():
            if key in params:
                values[key] = value
                taken[path[0]].add(key)
        if not values:
            continue
        level = defaults
        for name in path[:-1]:
            level = level.setdefault(name, {})
        level[path[-1]] = values
    for name, table in config.commands.items():
        for key in table:
            if key not in taken[name]:
                flags = ", ".join(sorted(known[name] - {"bootstrap"})) or "none"
                raise ConfigError(f"{config.file}: {name}.{key}: no such setting for "
                                  f"yujing {name} (its settings: {flags})")
    return defaults
