"""Children for ``test_rule_sandbox``: what a crashing, looping or hoarding compiler does.

Kept in a module of their own with light imports: a fork-server child imports the module its
target lives in, and importing the test module (the worker, Faust) took seconds on a busy
machine — longer than a test's time budget."""

from __future__ import annotations

import os
import time
from typing import Any


def aborting_child(connection: Any, paths: list[str], memory_bytes: int) -> None:
    os.abort()  # what a native crash looks like


def looping_child(connection: Any, paths: list[str], memory_bytes: int) -> None:
    while True:
        time.sleep(1)


def hoarding_child(connection: Any, paths: list[str], memory_bytes: int) -> None:
    from engine.rule_files import sandbox as rule_sandbox

    rule_sandbox._limit_memory(memory_bytes)
    try:
        hoard = bytearray(8 << 30)  # 8 GiB: beyond the limit
        connection.send(("ok", [], len(hoard)))
    except MemoryError as exc:
        connection.send(("crashed", f"MemoryError: {exc}", 0))
