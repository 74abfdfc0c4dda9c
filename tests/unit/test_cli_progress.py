"""Progress bars change nothing but the terminal: the items pass through unchanged and in order
with a bar (forced here) and without one (not a terminal: pipes, logs, tests)."""

import pytest

from engine.cli import progress


def test_items_pass_through_with_and_without_a_bar(monkeypatch, capsys):
    items = [{"ts": t} for t in range(0, 3000, 7)]
    assert list(progress.tracked(iter(items), "plain", 3000, lambda i: 7)) == items
    assert capsys.readouterr().err == ""  # not a terminal: no bar drawn
    monkeypatch.setattr(progress, "shown", lambda: True)
    assert list(progress.tracked(iter(items), "with a bar", 3000, lambda i: 7)) == items


@pytest.mark.slow
def test_simulate_into_a_pipe_draws_no_bar(tmp_path):
    import subprocess
    import sys

    events = tmp_path / "events.jsonl"
    done = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--out", str(events),
                           "--duration", "20m", "--department", "police"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("wrote "), done.stderr
    assert "━" not in done.stderr  # rich's bar is never drawn into a pipe
