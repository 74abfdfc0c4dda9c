"""Where a process spends its time, and how that moved between two samples of it.

``record(pid, seconds, path)`` samples a running process with py-spy (collapsed stacks, idle
frames left out); ``shares(path)`` reads such a file into each function's share of the samples
— inclusive (the function is anywhere on the stack) and self (it is the innermost frame);
``compare(first, last)`` prints the functions whose inclusive share moved the most. Used by
``bench/soak.py --profile``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

# "name (path/to/module.py:123)" -> "name (module.py)": lines differ from sample to sample.
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^():]*?)(?::\d+)?\)$")


def record(pid: int, seconds: float, path: Path) -> bool:
    """Sample ``pid`` for ``seconds`` into ``path``; False when py-spy is missing or fails."""
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv/bin/py-spy")
    if not Path(spy).exists():
        return False
    done = subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                           "--rate", "200", "--format", "raw", "--output", str(path),
                           "--nonblocking"], capture_output=True, text=True)
    return done.returncode == 0 and path.exists()


def _frame(raw: str) -> str:
    match = _FRAME.match(raw.strip())
    if not match:
        return raw.strip()
    return f"{match['name']} ({Path(match['file']).name})"


def shares(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """Inclusive and self sample counts per function, and the number of samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    return inclusive, own, total


def compare(first: Path, last: Path, top: int = 15) -> str:
    """A table of the functions whose inclusive share of samples moved the most."""
    inc_a, own_a, n_a = shares(first)
    inc_b, own_b, n_b = shares(last)
    if not n_a or not n_b:
        return "no samples"
    names = set(inc_a) | set(inc_b)

    def pct(c: Counter[str], n: int, name: str) -> float:
        return 100.0 * c[name] / n

    moved = sorted(names, key=lambda f: -abs(pct(inc_b, n_b, f) - pct(inc_a, n_a, f)))
    lines = [f"samples: first {n_a}, last {n_b} (a sample is one moment the process was busy)",
             f"{'function':<64} {'incl first':>10} {'incl last':>9} {'self first':>10} "
             f"{'self last':>9}"]
    for name in moved[:top]:
        lines.append(f"{name[:64]:<64} {pct(inc_a, n_a, name):9.1f}% {pct(inc_b, n_b, name):8.1f}% "
                     f"{pct(own_a, n_a, name):9.1f}% {pct(own_b, n_b, name):8.1f}%")
    return "\n".join(lines)
