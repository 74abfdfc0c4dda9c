"""From readings to an alert's states: the ``for`` duration, episodes, stable alert ids, the
clear that must last (``clear_for``) and the cooldown that re-opens an alert.

The same for every model kind. An *episode* starts when a key first breaches; it fires once the
breach has been seen holding for ``for`` seconds (judged at events and deadlines — nothing is
assumed between them; a reading that is not a breach starts the clock over) and resolves at the
first clear reading. Its alert id is a hash of the
model id, the key and the episode's start, so reprocessing the same events gives the same ids.

Readings are judged in event time, not arrival order: events of one key that reach the engine
through different partitions (a producer that does not key by the entity, or a rule keyed by
another field) can arrive out of order. A reading older than the newest reading of the other
kind is superseded by it and changes nothing; an older breach still extends the current breach
backwards. Readings that arrive before an older one they depend on are judged as they stand: a
``for`` can be met before a late clear reading shows the breach was broken (no decision waits
for stragglers).
"""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal

from models.base import Reading, Verdict, pickled_by_position
from topics.records import Severity

Transition = Literal["firing", "resolved"]


@pickled_by_position
@dataclass(slots=True)
class DecisionState:
    pending_since: float | None = None
    """Event time the current breach began (firing or not)."""
    firing: bool = False
    alert_id: str | None = None
    """Id of the latest episode (kept after it resolves, for the resolved record)."""
    episode_start: float | None = None
    last_ts: float | None = None
    """Event time of the newest breach (or of the clear that resolved the episode)."""
    evidence: dict[str, Any] | None = None
    last_break: float | None = None
    """Event time of the newest reading that was not a breach (band or clear)."""
    clearing_since: float | None = None
    """While firing with a ``clear_for``: event time the condition was first seen clear."""
    resolved_at: float | None = None
    """Event time the latest episode resolved (for the cooldown)."""
    fired_at: float | None = None
    """Event time the alert (last) fired (for escalations ``after``)."""
    reopened: int = 0
    severity: Severity | None = None
    """The level the firing alert has reached (its rule's severity, or an escalation's)."""

    def __post_init__(self) -> None:
        if type(self.severity) is str:  # pickled when the level was kept as its name
            self.severity = Severity(self.severity)

    def __setstate__(self, state: list[Any]) -> None:
        # Reads state pickled as a list of fields (before ``pickled_by_position``), which may
        # have fewer fields (new ones are only ever added at the end): those keep their
        # defaults, so an upgraded worker resumes from its changelog.
        for name, default in _DEFAULTS:
            object.__setattr__(self, name, default)
        for name, value in zip(_FIELD_NAMES, state, strict=False):
            object.__setattr__(self, name, value)
        self.__post_init__()


_FIELD_NAMES = tuple(f.name for f in fields(DecisionState))
_DEFAULTS = tuple((f.name, f.default) for f in fields(DecisionState))
assert all(f.default_factory is MISSING for f in fields(DecisionState)), \
    "a field with a default_factory needs its own line in __setstate__"


def alert_id_for(model_id: str, key: str, episode_start: float) -> str:
    """Stable id of one alert episode.

    >>> alert_id_for("hazchem.tank.level_high", "T1", 1714501800.0)
    '6b97aa2772c9dd9b3bff78a5'
    """
    digest = hashlib.blake2b(f"{model_id}|{key}|{episode_start:.3f}".encode(), digest_size=12)
    return digest.hexdigest()


def decide(
    state: DecisionState, reading: Reading, ts: float, hold_for: float, model_id: str, key: str,
    clear_for: float = 0.0, cooldown: float = 0.0,
) -> Transition | None:
    """Apply one reading at event time ``ts``; return the alert transition it causes, if any.

    ``clear_for``: a clear reading resolves the alert only once the clear has lasted that long
    (see ``settle`` for the clock); ``cooldown``: a breach that soon after a resolution re-opens
    the same alert.

    >>> s = DecisionState()
    >>> breach, clear = Reading(Verdict.BREACH), Reading(Verdict.CLEAR)
    >>> decide(s, breach, 140.0, 30.0, "m", "k")        # pending since 140
    >>> decide(s, breach, 100.0, 30.0, "m", "k")        # arrives late: pending since 100
    'firing'
    >>> s.episode_start, s.last_ts
    (100.0, 140.0)
    >>> decide(s, clear, 120.0, 30.0, "m", "k")         # older than the breach at 140: no effect
    >>> decide(s, clear, 150.0, 30.0, "m", "k")
    'resolved'
    """
    verdict = reading.verdict
    if verdict is Verdict.BREACH:
        if state.last_break is not None and ts < state.last_break:
            return None  # a newer reading already said the condition does not hold
        if state.firing:
            if state.clearing_since is not None and ts >= state.clearing_since:
                state.clearing_since = None  # the clear did not last
            if state.last_ts is None or ts >= state.last_ts:
                state.last_ts = ts
                state.evidence = reading.evidence
            return None
        if state.pending_since is None or ts < state.pending_since:
            state.pending_since = ts
        if state.last_ts is None or ts >= state.last_ts or state.last_ts < state.pending_since:
            state.last_ts = ts
            state.evidence = reading.evidence
        if state.last_ts - state.pending_since >= hold_for:
            state.firing = True
            state.fired_at = state.last_ts
            state.clearing_since = None
            if (cooldown and state.alert_id is not None and state.resolved_at is not None
                    and state.pending_since - state.resolved_at < cooldown):
                state.reopened += 1  # the same alert again: episode start and id unchanged
            else:
                state.reopened = 0
                state.episode_start = state.pending_since
                state.alert_id = alert_id_for(model_id, key, state.pending_since)
            return "firing"
        return None
    if verdict is Verdict.HOLD:
        return None
    if state.last_break is None or ts > state.last_break:
        state.last_break = ts
    if state.pending_since is not None and state.last_ts is not None and ts < state.last_ts:
        # Older than the newest breach, which stands; a run still waiting for ``for`` is broken
        # by it, so the wait restarts at the newest breach (the earliest one known after it).
        if not state.firing and ts >= state.pending_since:
            state.pending_since = state.last_ts
        return None
    if verdict is Verdict.BAND:
        if not state.firing:
            state.pending_since = None
        return None
    if state.firing and clear_for:
        if state.clearing_since is None:
            state.clearing_since = ts
        if ts - state.clearing_since < clear_for:
            return None
    return _resolve(state, ts, reading.evidence) if state.firing else _quiet(state)


def applied_quietly(state: DecisionState, verdict: Verdict, ts: float) -> bool:
    """Apply a reading to a key with no breach pending and no alert firing, if it cannot
    start one (anything but a breach); True if it did, False if ``decide`` must.

    Most readings of a city are of this kind, and this is exactly what ``decide`` would do
    with them, without its arguments and branches.

    >>> s = DecisionState()
    >>> applied_quietly(s, Verdict.CLEAR, 50.0), s.last_break
    (True, 50.0)
    >>> applied_quietly(s, Verdict.BREACH, 60.0)
    False
    """
    if verdict is Verdict.BREACH or state.firing or state.pending_since is not None:
        return False
    if verdict is not Verdict.HOLD and (state.last_break is None or ts > state.last_break):
        state.last_break = ts
    return True


def _quiet(state: DecisionState) -> None:
    state.pending_since = None
    return None


def _resolve(state: DecisionState, ts: float, evidence: dict[str, Any] | None) -> Transition:
    state.pending_since = None
    state.firing = False
    state.clearing_since = None
    state.resolved_at = ts
    state.last_ts = ts
    if evidence is not None:
        state.evidence = evidence
    return "resolved"


def clear_deadline(state: DecisionState, clear_for: float) -> float | None:
    """When a firing alert whose condition is clearing resolves if nothing breaches first."""
    if state.firing and state.clearing_since is not None and clear_for:
        return state.clearing_since + clear_for
    return None


def settle(state: DecisionState, now: float, clear_for: float) -> Transition | None:
    """The clock's part of ``decide``: resolve an alert whose clear has lasted ``clear_for``.

    >>> s = DecisionState()
    >>> breach, clear = Reading(Verdict.BREACH), Reading(Verdict.CLEAR)
    >>> decide(s, breach, 0.0, 0.0, "m", "k", clear_for=60.0)
    'firing'
    >>> decide(s, clear, 10.0, 0.0, "m", "k", clear_for=60.0), clear_deadline(s, 60.0)
    (None, 70.0)
    >>> settle(s, 69.0, 60.0), settle(s, 70.0, 60.0), s.last_ts
    (None, 'resolved', 70.0)
    """
    due = clear_deadline(state, clear_for)
    if due is None or now < due:
        return None
    return _resolve(state, due, None)
