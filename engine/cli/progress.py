"""Progress bars for the long offline commands, on a terminal only (never in a pipe, a log or a
test's captured output): ``simulate`` by simulated time, ``replay`` by bytes read, ``test`` by
rule tests run. Drawn by rich (which the CLI's typer already brings) on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def shown() -> bool:
    return sys.stderr.isatty()


def tracked(items: Iterable[T], what: str, total: float | None,
            step: Callable[[T], float] = lambda _: 1.0) -> Iterator[T]:
    """``items`` unchanged; on a terminal, a bar advancing by ``step(item)`` towards ``total``."""
    if not shown():
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  TaskProgressColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        for n, item in enumerate(items):
            yield item
            bar.advance(task, step(item))
            if n % 256 == 0:
                bar.refresh()
