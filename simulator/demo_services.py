"""The demo's processes: each ``yujing`` command it runs with its log, and the console's
own user."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from engine.processes import signal_group, wait_or_kill

START_TIMEOUT_S = 120.0
"""For the worker, dispatch and tracking to come up (all at once, on a small machine)."""


@dataclass(slots=True)
class Service:
    """One ``yujing`` subprocess with its log file."""

    name: str
    args: list[str]
    log: Path
    ready: bytes | None
    """What its log says once it is up; ``None``: nothing to wait for."""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", *self.args], stdout=out,
                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True)  # its own group: SIGTERM reaches what it started too

    def failed(self) -> str | None:
        """Why it is no longer doing its job, or ``None``."""
        code = self.proc.poll() if self.proc else None
        if code is None or (code == 0 and self.ready is None):
            return None  # running, or a finite job (the simulator) that finished
        return f"the {self.name} exited with code {code}; see {self.log}"

    def wait_ready(self, deadline: float) -> None:
        while self.ready is not None and self.ready not in self.log.read_bytes():
            if (why := self.failed()) is not None:
                raise RuntimeError(why)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {self.name} was not up after {START_TIMEOUT_S:.0f} s; "
                                   f"see {self.log}")
            time.sleep(0.2)


def stop_all(services: list[Service]) -> None:
    """SIGTERM every service at once (each finishes its batch and commits), then wait."""
    running = [s.proc for s in services if s.proc is not None and s.proc.poll() is None]
    for proc in running:
        signal_group(proc, signal.SIGTERM)
    for proc in running:
        wait_or_kill(proc, 30)


# -- watching the loop and playing the departments -------------------------------------------

def console_service(folder: Path, args: list[str], port: int) -> tuple[Service, str]:
    """The web console for the demo, with one command-centre user and a fresh password."""
    from engine.console.sessions import hash_password

    password = secrets.token_urlsafe(9)
    config = folder / "demo-console.toml"
    config.write_text(f'[[users]]\nname = "duty"\npassword_hash = "{hash_password(password)}"\n',
                      encoding="utf-8")
    config.chmod(0o600)
    return Service("console", ["--config", str(config), "console", *args, "--port", str(port)],
                   folder / "demo-console.log", b"console: "), password
