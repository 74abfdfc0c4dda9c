"""joined: an event beside the record it names, and a planned route against zones."""

from datetime import datetime
from pathlib import Path

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.joined import JoinedParams
from models.refdata import ModelEnv, ReferenceData
from tests.rulekit import event, rule, rule_text

VEHICLES = "events.hazchem.vehicle"
WAYBILLS = "events.hazchem.waybill"
T0 = datetime.fromisoformat("2024-06-03T10:00:00+08:00").timestamp()


def _reference() -> ReferenceData:
    ref = ReferenceData()
    ref.put(WAYBILLS, "W1", {"waybill_id": "W1", "vehicle_id": "V1", "cargo_un": "1203",
                             "status": "started",
                             "window_start": "2024-06-03T08:00:00+08:00",
                             "window_end": "2024-06-03T12:00:00+08:00"})
    ref.put("reference.zones", "Z1", {"name": "School", "kind": "school",
                                      "center": {"lat": 30.0, "lon": 120.0}, "radius_m": 300})
    return ref


def _core(**fields):
    compiled = rule(id="test.joined", source=fields.pop("source", VEHICLES), kind="joined",
                    **fields)
    return ScoringCore([compiled.with_env(ModelEnv(reference=_reference()))], MemoryStore())


def _states(core, topic, cases):
    out = []
    for ts, fields in cases:
        alerts = core.process([event(topic, ts, **fields)])
        out.append(alerts[0].state if alerts else None)
    return out


def test_cargo_compared_with_the_waybill_record():
    core = _core(table=WAYBILLS, via="waybill_id", record="waybill",
                 condition="waybill != null && cargo_un != waybill.cargo_un")
    base = {"vehicle_id": "V1", "lat": 30.1, "lon": 120.1, "speed_kmh": 40, "waybill_id": "W1"}
    assert _states(core, VEHICLES, [(T0, base | {"cargo_un": "1203"}),
                                    (T0 + 30, base | {"cargo_un": "1005"}),
                                    (T0 + 60, base | {"cargo_un": "1203"})]) == [
        None, "firing", "resolved"]


def test_a_new_version_of_the_record_is_seen_at_the_next_event():
    # records are kept normalised between events: a changed waybill is a new record
    compiled = rule(id="test.joined", source=VEHICLES, kind="joined", table=WAYBILLS,
                    via="waybill_id", record="waybill",
                    condition="waybill != null && cargo_un != waybill.cargo_un")
    reference = _reference()
    core = ScoringCore([compiled.with_env(ModelEnv(reference=reference))], MemoryStore())
    base = {"vehicle_id": "V1", "lat": 30.1, "lon": 120.1, "speed_kmh": 40, "waybill_id": "W1",
            "cargo_un": "1005"}
    assert _states(core, VEHICLES, [(T0, base)]) == ["firing"]
    reference.put(WAYBILLS, "W1", {**reference.get(WAYBILLS, "W1"), "cargo_un": "1005"})
    assert _states(core, VEHICLES, [(T0 + 30, base)]) == ["resolved"]


def test_missing_record_is_null_and_times_compare():
    core = _core(table=WAYBILLS, via="waybill_id", record="waybill",
                 condition="waybill == null || ts > waybill.window_end")
    base = {"vehicle_id": "V1", "lat": 30.1, "lon": 120.1, "speed_kmh": 40}
    noon = datetime.fromisoformat("2024-06-03T12:00:00+08:00").timestamp()
    assert _states(core, VEHICLES, [(noon, base | {"waybill_id": "W1"}),
                                    (noon + 1, base | {"waybill_id": "W1"})]) == [
        None, "firing"]
    other = _core(table=WAYBILLS, via="waybill_id", record="waybill",
                  condition="waybill == null")
    assert _states(other, VEHICLES, [(T0, base | {"waybill_id": "W9"})]) == ["firing"]
    assert _states(other, VEHICLES, [(T0, base | {"vehicle_id": "V2"})]) == ["firing"]


def test_route_through_a_zone():
    core = _core(source=WAYBILLS, route_zones=["school"], condition="route_zone != null")
    base = {"vehicle_id": "V1", "company_id": "C1", "status": "issued"}
    through = [{"lat": 29.99, "lon": 120.0}, {"lat": 30.01, "lon": 120.0}]
    # 310 m east of the circle's centre: 10 m outside its 300 m radius
    past = [{"lat": 29.99, "lon": 120.00323}, {"lat": 30.01, "lon": 120.00323}]
    assert _states(core, WAYBILLS, [(T0, base | {"waybill_id": "W2", "route": past}),
                                    (T0 + 1, base | {"waybill_id": "W3", "route": through})]) \
        == [None, "firing"]
    alert = core.process([event(WAYBILLS, T0 + 2, **base, waybill_id="W4", route=through)])[0]
    assert alert.evidence["route_zone_id"] == "Z1"


def test_siblings_are_the_other_records_sharing_a_field():
    core = _core(source=WAYBILLS, key="vehicle_id", table=WAYBILLS, via="waybill_id",
                 siblings_by="vehicle_id",
                 condition='status == "started" && siblings.exists(w, w.status == "started")')
    base = {"company_id": "C1", "waybill_id": "W2"}
    # W1 (vehicle V1, started) is in the reference; W2 of V2 has no sibling, W2 of V1 has.
    assert _states(core, WAYBILLS, [(T0, base | {"vehicle_id": "V2", "status": "started"}),
                                    (T0 + 1, base | {"vehicle_id": "V1", "status": "issued"}),
                                    (T0 + 2, base | {"vehicle_id": "V1", "status": "started"}),
                                    (T0 + 3, base | {"vehicle_id": "V1", "status": "finished"})]
                   ) == [None, None, "firing", "resolved"]
    # A record is never its own sibling.
    alone = _core(source=WAYBILLS, table=WAYBILLS, via="waybill_id", siblings_by="vehicle_id",
                  condition="siblings.size() > 0")
    assert _states(alone, WAYBILLS, [(T0, {"company_id": "C1", "waybill_id": "W1",
                                           "vehicle_id": "V1", "status": "started"})]) == [None]


def test_unknown_fields_and_incomplete_params_are_rejected():
    _, errors = compile_rule_text(rule_text(id="test.joined", source=VEHICLES, kind="joined",
                                            table=WAYBILLS, via="waybill_id", record="waybill",
                                            condition="waybill.cargo_un != cargo_nr"),
                                  Path("r.yaml"))
    assert any("cargo_nr" in str(e) for e in errors)
    with pytest.raises(ValueError):
        JoinedParams.model_validate({"table": WAYBILLS, "condition": "true"})
    with pytest.raises(ValueError):
        JoinedParams.model_validate({"condition": "true"})
    with pytest.raises(ValueError):
        JoinedParams.model_validate({"condition": "true", "siblings_by": "vehicle_id",
                                     "route_zones": ["school"]})
