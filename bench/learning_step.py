"""What a level step during a learned kind's week of learning costs after it: false alarms.

    python bench/learning_step.py [--seeds 4]

The seasonal defaults of ``anomaly`` and ``drift`` judge nothing in a key's first week. A step
inside that week (at 1.5 to 5.5 days; 5 spreads, at least 10, up and down, at the three noise
levels of ``bench/anomaly_detection.py``) is part of the past the key starts from, so every
alert after the week is a false alarm. For each kind this prints the alerts per series and when
they came, in days from the start.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anomaly_detection import DAY, LENGTH, NOISE, START, STEP_S, Case, _base, detections, rule
from detection_score import Series


def stepped(seed: int) -> list[tuple[Case, float]]:
    cases = []
    for noise, sigma in NOISE.items():
        for sign in (1, -1):
            rng = random.Random(seed * 7919 + int(sigma) * 13 + sign)
            values = _base(rng, sigma)
            at = int(DAY * rng.uniform(1.5, 5.5))
            for i in range(at, LENGTH):
                values[i] += sign * max(5.0 * sigma, 10.0)
            times = [START + STEP_S * i for i in range(LENGTH)]
            cases.append((Case(Series(f"step-{seed}-{noise}-{sign:+d}", LENGTH, []), "control",
                               noise, times, values), at / DAY))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    cases = [c for seed in range(args.seeds) for c in stepped(seed)]
    for kind in ("anomaly", "drift"):
        compiled = rule(kind, {})
        total, at_end_of_learning = 0, 0
        for case, step_day in cases:
            days = [round(i / DAY, 1) for i in detections(compiled, case)]
            total += len(days)
            at_end_of_learning += sum(1 for d in days if d < 7.5)
            print(f"{kind:8} {case.series.name:18} step at day {step_day:4.1f}: alerts at {days}")
        print(f"{kind}: {total} alerts in {len(cases)} series ({total / len(cases):.1f} a series; "
              f"{at_end_of_learning} within half a day of the end of learning)\n")


if __name__ == "__main__":
    main()
