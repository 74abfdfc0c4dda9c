"""lookup: the entity an event names is on a reference list — or is not, or its entry expired.

Lists live in the ``reference.lists`` table as entries keyed ``<list>:<entity>`` with optional
``valid_from`` / ``valid_until``: a company blacklist (一处失信，处处受限), the drivers holding a
hazardous-goods qualification, vehicles with a valid inspection. ``match`` says what breaches:

- ``listed``: the entity has an entry in force at the event's time (a blacklisted company bids);
- ``expired``: the entity has an entry whose ``valid_until`` has passed (inspection expired);
- ``not_in_force``: no entry in force — missing or expired (a driver without a valid
  qualification).

The opposite clears; an event that names no entity says nothing (``UNDECIDED``, a HOLD the
engine counts). Stateless: nothing is kept per key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from models.base import UNDECIDED, KindParams, Reading, Verdict, WarningModel
from models.refdata import ModelEnv
from topics.codec import Event
from topics.schemas import CITY_TZ

LISTS_TABLE = "reference.lists"


class LookupParams(KindParams):
    list: str
    """The list's name, as in the entries' ``list`` field."""
    field: str
    """The event field naming the entity (company_id, driver_id, vehicle_id …)."""
    match: Literal["listed", "expired", "not_in_force"] = "listed"


class Lookup(WarningModel[None]):
    """Breach according to the entity's entry in a reference list.

    >>> from models.refdata import ModelEnv, ReferenceData
    >>> from topics.codec import Event
    >>> ref = ReferenceData()
    >>> ref.put("reference.lists", "blacklist:C1", {"list": "blacklist", "entity": "C1",
    ...         "valid_until": "2030-01-01T00:00:00+08:00"})
    >>> m = Lookup(LookupParams(list="blacklist", field="company_id"), ModelEnv(reference=ref))
    >>> [m.score_one(None, Event("t", c, 1.7e9, {"company_id": c})).verdict.value
    ...  for c in ("C1", "C2")]
    ['breach', 'clear']
    """

    kind = "lookup"
    Params = LookupParams
    evidence_fields = ("list", "entity", "entry", "valid_from", "valid_until", "note")

    @classmethod
    def reference_problems(cls, params: KindParams, env: ModelEnv
                           ) -> list[tuple[tuple[str | int, ...], str]]:
        assert isinstance(params, LookupParams)
        lists = {str(e.get("list")) for _, e in env.reference.items(LISTS_TABLE)}
        if params.list in lists:
            return []
        return [(("list",), f"list: {params.list!r} is no list of {LISTS_TABLE} (known: "
                            f"{', '.join(sorted(lists)) or 'none'})")]
    event_fields = ("field",)

    def new_state(self) -> None:
        return None

    def score_one(self, state: None, event: Event) -> Reading:
        entity = event.data.get(self.params.field)
        if entity is None:
            return UNDECIDED
        entry = self.env.reference.get(LISTS_TABLE, f"{self.params.list}:{entity}", event.ts)
        status = _status(entry, event.ts)
        evidence: dict[str, Any] = {"list": self.params.list, "entity": entity,
                                    "entry": status}
        if entry is not None:
            evidence.update({k: entry.get(k) for k in ("valid_from", "valid_until", "note")
                             if entry.get(k) is not None})
        breach = {"listed": status == "in_force", "expired": status == "expired",
                  "not_in_force": status != "in_force"}[self.params.match]
        return Reading(Verdict.BREACH if breach else Verdict.CLEAR, evidence)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "list": self.params.list, "field": self.params.field,
                "match": self.params.match}


def _status(entry: Any, ts: float) -> str:
    """'missing', 'not_yet', 'in_force' or 'expired' at event time ``ts``."""
    if entry is None:
        return "missing"
    start, end = _epoch(entry.get("valid_from")), _epoch(entry.get("valid_until"))
    if start is not None and ts < start:
        return "not_yet"
    if end is not None and ts >= end:
        return "expired"
    return "in_force"


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:  # like event times: no zone means the city's local time
        moment = moment.replace(tzinfo=CITY_TZ)
    return moment.timestamp()
