"""Stopping the child processes yujing starts (the demo's services, and tests' and benchmarks'
workers): each runs in a process group of its own, so a stop reaches whatever it started too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group of ``proc`` (started with ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for ``proc`` to exit; SIGKILL its group if it does not.
    The exit code, or None when it had to be killed."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait()
        return None


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM the group (a yujing service finishes its batch and commits), then as
    ``wait_or_kill``. The exit code of a process that had already ended is returned as is."""
    if proc.poll() is not None:
        return proc.returncode
    signal_group(proc, signal.SIGTERM)
    return wait_or_kill(proc, timeout)
