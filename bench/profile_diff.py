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


def compare(first: Path, last: Path, seconds: float, top: int = 12) -> str:
    """Two tables of busy samples per second of sampling (``seconds`` each): the functions whose
    own time (innermost frame) moved most, and those whose inclusive time did, leaving out the
    frames that hold most samples in both (the entry points every stack passes through)."""
    inc_a, own_a, n_a = shares(first)
    inc_b, own_b, n_b = shares(last)
    if not n_a or not n_b:
        return "no samples"

    def rate(c: Counter[str], name: str) -> float:
        return c[name] / seconds

    def table(title: str, a: Counter[str], b: Counter[str], names: list[str]) -> list[str]:
        rows = [f"{title:<66} {'first':>7} {'last':>7}"]
        moved = sorted(names, key=lambda f: -abs(rate(b, f) - rate(a, f)))
        rows += [f"{name[:66]:<66} {rate(a, name):7.1f} {rate(b, name):7.1f}"
                 for name in moved[:top]]
        return rows

    names = sorted(set(inc_a) | set(inc_b))
    inner = [f for f in names if inc_a[f] < 0.4 * n_a or inc_b[f] < 0.4 * n_b]
    lines = [f"busy samples per second of sampling: first {n_a / seconds:.1f}, last "
             f"{n_b / seconds:.1f} (200 a second per thread at full use)"]
    lines += table("own time moved most (samples/s)", own_a, own_b, names)
    lines += table("inclusive time moved most (samples/s)", inc_a, inc_b, inner)
    return "\n".join(lines)
