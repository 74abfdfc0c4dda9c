"""The command line as an operator meets it: a Kafka it cannot reach is one line and exit 2
(the traceback only with --debug), and --version."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def yujing(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again when the test runs


@pytest.mark.parametrize("command", [["silence", "list"], ["create-topics"],
                                     ["reference", "publish"]])
@pytest.mark.slow
def test_a_kafka_that_does_not_answer_is_one_line_and_exit_2(closed_port, command):
    done = yujing(*command, "--bootstrap", closed_port)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot reach Kafka at {closed_port} ")


def test_debug_anywhere_on_the_line_shows_the_traceback(closed_port):
    done = yujing("silence", "list", "--bootstrap", closed_port, "--debug")
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "KafkaConnectionError" in done.stderr


def test_version():
    done = yujing("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("yujing ") and done.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_log_format_that_is_not_text_or_json_is_refused_by_name(how):
    import os

    args, env = ["track", "--metrics-port", "0"], dict(os.environ)
    if how == "flag":
        args += ["--log-format", "json\n--debug"]
    else:
        env["YUJING_LOG_FORMAT"] = "yaml"
    done = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--log-format'" in done.stderr
    assert "is not one of 'text', 'json'" in done.stderr
