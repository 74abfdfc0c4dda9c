"""The windowed early-detection score of streaming anomaly detection (the Numenta Anomaly
Benchmark's, Lavin and Ahmad 2015), for detectors that say yes or no at each reading.

Each labelled anomaly gets a window centred on it; the windows of a series share 10% of its
length. Only the first detection in a window counts, scored on a scaled sigmoid of how early it
came (1 at the window's start, 0 at its end); a window with no detection costs ``fn``; every
detection outside the windows costs up to ``fp`` (less just after a window, where a late
detection of the same anomaly is likely). Three profiles weigh false positives and negatives
differently. A corpus's score is normalised so that a detector that never fires scores 0 and
one that fires at the first reading of every window scores 100.

>>> series = Series("s", length=1000, labels=[500])
>>> window, = series.windows()
>>> window
(450, 550)
>>> round(raw_score(series, [455], PROFILES["standard"]), 3)       # early in the window
0.983
>>> round(raw_score(series, [455, 460, 900], PROFILES["standard"]), 3)   # one more: late FP
0.873
>>> normalised([(series, [450])], PROFILES["standard"])
100.0
>>> normalised([(series, [])], PROFILES["standard"])
0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WINDOW_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class Profile:
    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "low_fp": Profile(tp=1.0, fp=0.22, fn=1.0),
    "low_fn": Profile(tp=1.0, fp=0.11, fn=2.0),
}
"""NAB's three application profiles (``reward_low_FP_rate``, ``reward_low_FN_rate``)."""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    length: int
    labels: Sequence[int] = field(default_factory=tuple)
    """Indexes of the labelled anomalies."""

    def windows(self) -> list[tuple[int, int]]:
        """(first, last) index of each anomaly window, overlapping ones merged."""
        if not self.labels:
            return []
        half = int(WINDOW_SHARE * self.length / len(self.labels)) // 2
        merged: list[tuple[int, int]] = []
        for label in sorted(self.labels):
            lo, hi = max(0, label - half), min(self.length - 1, label + half)
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return merged


def scaled_sigmoid(position: float) -> float:
    """1 → -1 as ``position`` goes from -1 (a window's start) through 0 (its end) onwards."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def raw_score(series: Series, detections: Iterable[int], profile: Profile) -> float:
    windows = series.windows()
    found: set[int] = set()
    total = 0.0
    for index in sorted(set(detections)):
        inside = next((w for w, (lo, hi) in enumerate(windows) if lo <= index <= hi), None)
        if inside is not None:
            if inside in found:
                continue
            found.add(inside)
            lo, hi = windows[inside]
            total += profile.tp * scaled_sigmoid(-(hi - index + 1) / (hi - lo + 1))
            continue
        before = [(lo, hi) for lo, hi in windows if hi < index]
        if not before:
            total -= profile.fp
            continue
        lo, hi = before[-1]
        total += profile.fp * scaled_sigmoid((index - hi) / max(1, hi - lo))
    return total - profile.fn * (len(windows) - len(found))


def bounds(series: Series, profile: Profile) -> tuple[float, float]:
    """(never firing, firing at every window's first reading): the scores normalising maps to
    0 and 100."""
    windows = series.windows()
    return (-profile.fn * len(windows),
            raw_score(series, [lo for lo, _ in windows], profile))


def normalised(results: Iterable[tuple[Series, Sequence[int]]], profile: Profile) -> float:
    raw = null = perfect = 0.0
    for series, detections in results:
        raw += raw_score(series, detections, profile)
        low, high = bounds(series, profile)
        null += low
        perfect += high
    if perfect == null:
        return 0.0
    return round(100.0 * (raw - null) / (perfect - null), 1)
