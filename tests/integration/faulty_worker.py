"""``yujing`` with one more model kind, for fault injection on the real broker.

``faulty`` is a threshold whose scoring raises a real exception (a defect in the model) when the
event's ``temp_c`` equals ``fail_at``: what any kind could do on an input nobody foresaw. Run as
``python -m tests.integration.faulty_worker worker --rules …``.
"""

from __future__ import annotations

from typing import Any

import models
from models.base import Reading
from models.threshold import Threshold, ThresholdParams


class FaultyParams(ThresholdParams):
    fail_at: float


class Faulty(Threshold):
    kind = "faulty"
    Params = FaultyParams

    def score_one(self, state: None, event: Any) -> Reading:
        if event.data.get("temp_c") == self.params.fail_at:  # type: ignore[attr-defined]
            raise ZeroDivisionError("injected defect: division by zero")
        return super().score_one(state, event)


if __name__ == "__main__":  # registered only here: importing this module changes nothing
    models.KINDS["faulty"] = Faulty
    from engine.cli import main

    main()
