"""The learned kinds on real data: river's WaterFlow (hourly pipe flow, shipped with river).

    python bench/waterflow.py

The series (1,268 hourly readings from 2022-03-20) has three outages where the flow falls from
about 100 to about 24 l/s: from 03-24 09:00, 03-29 09:00 and 04-27 16:00. For each
configuration of the ``anomaly`` and ``drift`` kinds this prints what they flag, grouped into
runs of consecutive hours, and which outages a flag falls in.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from river import datasets

from models.anomaly import Anomaly, AnomalyParams
from models.base import Verdict, WarningModel
from models.drift import Drift, DriftParams
from topics.codec import Event

OUTAGES = [("03-24 09:00", "2022-03-24T09:00", "2022-03-25T09:00"),
           ("03-29 09:00", "2022-03-29T09:00", "2022-03-30T09:00"),
           ("04-27 16:00", "2022-04-27T16:00", "2022-04-28T16:00")]

CONFIGS: list[tuple[str, WarningModel]] = [
    ("anomaly seasonal likelihood (default)", Anomaly(AnomalyParams(field="flow"))),
    ("anomaly seasonal likelihood, learns 2 days",
     Anomaly(AnomalyParams(field="flow", learn_for="2d"))),
    ("anomaly gaussian, warm-up 100", Anomaly(AnomalyParams(field="flow", detector="gaussian"))),
    ("anomaly gaussian, warm-up 48",
     Anomaly(AnomalyParams(field="flow", detector="gaussian", warmup=48))),
    ("anomaly gaussian, warm-up 48, q 0.99",
     Anomaly(AnomalyParams(field="flow", detector="gaussian", warmup=48, quantile=0.99))),
    ("anomaly predictive (Holt), warm-up 48",
     Anomaly(AnomalyParams(field="flow", detector="predictive", warmup=48))),
    ("anomaly half-space trees + hour features",
     Anomaly(AnomalyParams(field="flow", detector="half_space_trees",
                           features=["hour_of_day"], seed=1))),
    ("drift ADWIN", Drift(DriftParams(field="flow", detector="adwin"))),
    ("drift Page-Hinkley, down", Drift(DriftParams(field="flow", detector="page_hinkley",
                                                   direction="down"))),
]


def flags(model: WarningModel) -> list[datetime]:
    state = model.new_state()
    out = []
    for x, y in datasets.WaterFlow():
        when = x["Time"]
        event = Event("water", "pipe", when.timestamp(),
                      {"flow": y, "hour": when.hour, "weekday": when.isoweekday()})
        reading = model.score_one(state, event)
        model.learn_one(state, event)
        if reading.verdict is Verdict.BREACH:
            out.append(when)
    return out


def runs(times: list[datetime]) -> list[list[datetime]]:
    grouped: list[list[datetime]] = []
    for t in times:
        if grouped and (t - grouped[-1][-1]).total_seconds() <= 3600:
            grouped[-1].append(t)
        else:
            grouped.append([t])
    return grouped


def outage_of(t: datetime) -> str:
    stamp = t.strftime("%Y-%m-%dT%H:%M")
    return next((name for name, a, b in OUTAGES if a <= stamp < b), "—")


def main() -> None:
    for name, model in CONFIGS:
        flagged = flags(model)
        hit = {outage_of(t) for t in flagged} - {"—"}
        print(f"{name}: {len(flagged)} readings flagged; outages caught "
              f"{len(hit)}/3 ({', '.join(sorted(hit)) or 'none'})")
        for run in runs(flagged):
            inside = sorted({outage_of(t) for t in run} - {"—"}) or ["—"]
            print(f"    {run[0]:%m-%d %H:%M} – {run[-1]:%m-%d %H:%M}  {len(run):3} h   "
                  f"outage: {', '.join(inside)}")


if __name__ == "__main__":
    main()
