"""The scoring core's CPU instructions per event, counted by valgrind: a figure that does not
move with the machine's load, for comparing two builds of the core.

    python bench/core_instructions.py [--duration 1h] [--seed 5]

Wall-clock figures on this project's machine swing by a third from run to run (``bench/core.py``
alternated with the same code gave 12,400-15,700 events/s); instruction counts repeat to
within 0.3%. The script runs itself under callgrind with counting switched off, switches it on
only while the core scores the simulated events (decoded beforehand), and prints the count.
It takes about two minutes for an hour of the city. Needs valgrind (``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INNER = "YUJING_UNDER_CALLGRIND"


def count_inside() -> None:
    """Under callgrind: build the city's events, then count only the core's work on them."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from core import simulated_events, time_core  # type: ignore[import-not-found]

    from engine.rule_files.loader import load_rules

    duration, seed = sys.argv[1], int(sys.argv[2])
    loaded = load_rules([REPO / "rules"])
    events = simulated_events(duration, 1.0, seed)
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    time_core(loaded.rules, events, 1000, loaded.env.reference)
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
    print(f"events {len(events)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={tmp}/callgrind.out", sys.executable, __file__,
             args.duration, str(args.seed)],
            env={**os.environ, INNER: "1", "PYTHONHASHSEED": "0"}, cwd=REPO,
            capture_output=True, text=True)
    events = re.search(r"^events (\d+)$", out.stdout, re.M)
    collected = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode or events is None or collected is None:
        sys.exit(f"the count failed:\n{out.stdout}\n{out.stderr[-2000:]}")
    n, instructions = int(events.group(1)), int(collected.group(1))
    print(f"{n:,} simulated events over {args.duration} (seed {args.seed}): "
          f"{instructions:,} instructions in the scoring core, "
          f"{instructions / n:,.0f} per event")


if __name__ == "__main__":
    if os.environ.get(INNER):
        count_inside()
    else:
        main()
