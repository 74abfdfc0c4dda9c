"""lookup: list membership in force at the event's time."""

from datetime import datetime

from engine.core import MemoryStore, ScoringCore
from models.refdata import ModelEnv, ReferenceData
from tests.rulekit import event, rule

WAYBILLS = "events.hazchem.waybill"
T0 = datetime.fromisoformat("2025-01-01T00:00:00+08:00").timestamp()


def lookup(match):
    ref = ReferenceData()
    ref.put("reference.lists", "drivers:D1", {"list": "drivers", "entity": "D1",
                                              "valid_from": "2024-06-01T00:00:00",
                                              "valid_until": "2025-06-01T00:00:00+08:00"})
    compiled = rule(id="test.lookup", source=WAYBILLS, kind="lookup", list="drivers",
                    field="driver_id", match=match)
    return compiled.with_env(ModelEnv(reference=ref))


def verdicts(match, *cases):
    core = ScoringCore([lookup(match)], MemoryStore())
    out = []
    for i, (ts, driver) in enumerate(cases):
        alerts = core.process([event(WAYBILLS, ts, waybill_id=f"W{i}", vehicle_id="V",
                                     company_id="C", driver_id=driver, status="issued")])
        out.append(alerts[0].evidence["entry"] if alerts else None)
    return out


def test_listed_in_force_only_between_its_bounds():
    before = datetime.fromisoformat("2024-05-31T23:59:59+08:00").timestamp()
    end = datetime.fromisoformat("2025-06-01T00:00:00+08:00").timestamp()
    assert verdicts("listed", (before, "D1"), (T0, "D1"), (end, "D1"), (T0, "D2")) == [
        None, "in_force", None, None]


def test_expired_and_not_in_force():
    end = datetime.fromisoformat("2025-06-01T00:00:00+08:00").timestamp()
    assert verdicts("expired", (T0, "D1"), (end, "D1"), (end, "D9")) == [None, "expired", None]
    assert verdicts("not_in_force", (T0, "D1"), (end, "D1"), (T0, "D9")) == [
        None, "expired", "missing"]
