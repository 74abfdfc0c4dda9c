"""Compiling rule files where a hostile one cannot hurt the process that asked: a child process.

A worker reloads rule files while it scores the city's events. The loader guards against every
hostile file it knows of (``engine.rule_files.yaml_source``, ``models.expr``), but CEL's
compiler is native code: a file that crashes it, loops in it or exhausts memory must cost a
rejected file, not the worker. So a worker first loads the changed rule set in a child process —
forked from a server started once with the loader imported (``forkserver``: no copy of the
worker's threads), with an address-space limit and a time budget — and compiles it itself only
once the child has (``Worker.reload_rules``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from engine.failures import describe

CHILD_MEMORY_BYTES = 2 << 30
"""Memory a child may take beyond what it starts with (a YAML or expression bomb fails there)."""
CHECK_TIMEOUT_S = 60.0

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["engine.rule_files.loader"])
    return _CONTEXT


@dataclass(slots=True)
class ChildVerdict:
    outcome: Literal["ok", "crashed", "timed_out"]
    errors: list[tuple[str, int, str]] = field(default_factory=list)
    """(file, line, message) of every problem the child found (when ``ok``)."""
    rules: int = 0
    detail: str = ""
    """What went wrong with the child (when not ``ok``)."""
    seconds: float = 0.0


def _limit_memory(memory_bytes: int) -> None:
    """Let this process map at most ``memory_bytes`` more than it has (Linux)."""
    try:
        with open("/proc/self/statm") as statm:  # pages of address space
            pages = int(statm.read().split()[0])
    except (OSError, ValueError):
        return
    limit = pages * resource.getpagesize() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(connection: Connection, paths: list[str], memory_bytes: int) -> None:
    _limit_memory(memory_bytes)
    from engine.rule_files.loader import load_rules

    try:
        result = load_rules([Path(p) for p in paths])
        connection.send(("ok", [(str(e.file), e.line, e.message) for e in result.errors],
                         len(result.rules)))
    except BaseException as exc:  # whatever it is, the parent hears of it
        connection.send(("crashed", describe(exc), 0))
    finally:
        connection.close()


def start_server() -> None:
    """Start the fork server now (it imports the loader, a few seconds), so the first reload
    does not wait for it."""
    _context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


async def check_in_child(paths: list[Path], timeout_s: float = CHECK_TIMEOUT_S,
                         memory_bytes: int = CHILD_MEMORY_BYTES,
                         target: Callable[[Connection, list[str], int], None] = _child
                         ) -> ChildVerdict:
    """Load the rules under ``paths`` in a child process; what it found, or how it failed.
    (``target`` is what the child runs: tests give it one that crashes.)"""
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, [str(p) for p in paths],
                                                   memory_bytes), daemon=True)
    # The budget is the child's: starting the fork server (once, a few seconds of imports, more
    # on a busy machine) is not counted against it.
    await asyncio.to_thread(process.start)
    started = time.monotonic()
    sender.close()
    try:
        while True:
            if receiver.poll():
                try:
                    outcome, payload, rules = receiver.recv()
                except (EOFError, OSError):
                    break  # the child died while sending
                elapsed = time.monotonic() - started
                if outcome == "ok":
                    return ChildVerdict("ok", payload, rules, seconds=elapsed)
                return ChildVerdict("crashed", detail=str(payload), seconds=elapsed)
            if not process.is_alive():
                break
            if time.monotonic() - started > timeout_s:
                process.kill()
                return ChildVerdict("timed_out", detail=f"took longer than {timeout_s:.0f} s",
                                    seconds=time.monotonic() - started)
            await asyncio.sleep(0.05)
        process.join(1.0)
        code = process.exitcode
        detail = (f"the compiler process died of signal {-code}" if code is not None and code < 0
                  else f"the compiler process exited with status {code}")
        return ChildVerdict("crashed", detail=detail, seconds=time.monotonic() - started)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join, 5.0)
