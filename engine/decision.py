"""From readings to alerts: the ``for`` duration, episodes and stable alert ids.

The same for every model kind. An *episode* starts when a key first breaches; it fires once the
breach has been seen holding for ``for`` seconds (judged at events and deadlines — nothing is
assumed between them; a reading that is not a breach starts the clock over) and resolves at the
first clear reading. Its alert id is a hash of the
model id, the key and the episode's start, so reprocessing the same events gives the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from models.base import Reading, Verdict

Transition = Literal["firing", "resolved"]


@dataclass(slots=True)
class DecisionState:
    pending_since: float | None = None
    """Event time the current breach began (firing or not)."""
    firing: bool = False
    alert_id: str | None = None
    """Id of the latest episode (kept after it resolves, for the resolved record)."""
    episode_start: float | None = None
    last_ts: float | None = None
    evidence: dict[str, Any] | None = None


def alert_id_for(model_id: str, key: str, episode_start: float) -> str:
    """Stable id of one alert episode.

    >>> alert_id_for("hazchem.tank.level_high", "T1", 1714501800.0)
    '6b97aa2772c9dd9b3bff78a5'
    """
    digest = hashlib.blake2b(f"{model_id}|{key}|{episode_start:.3f}".encode(), digest_size=12)
    return digest.hexdigest()


def decide(
    state: DecisionState, reading: Reading, ts: float, hold_for: float, model_id: str, key: str
) -> Transition | None:
    """Apply one reading at event time ``ts``; return the alert transition it causes, if any."""
    verdict = reading.verdict
    if verdict is Verdict.BREACH:
        if state.pending_since is None:
            state.pending_since = ts
        state.last_ts = ts
        state.evidence = reading.evidence
        if not state.firing and ts - state.pending_since >= hold_for:
            state.firing = True
            state.episode_start = state.pending_since
            state.alert_id = alert_id_for(model_id, key, state.pending_since)
            return "firing"
        return None
    if verdict is Verdict.BAND:
        if not state.firing:
            state.pending_since = None
        return None
    if verdict is Verdict.CLEAR:
        was_firing = state.firing
        state.pending_since = None
        state.firing = False
        if was_firing:
            state.last_ts = ts
            state.evidence = reading.evidence
            return "resolved"
    return None
