"""The fault verifier: each input event scored, dead-lettered or lost; each alert replay expects
present, missing, extra, duplicated or re-issued under a new id; timer rules judged apart."""

from engine.offline.replay import replay
from engine.offline.verify import ProducedEvent, skipped_ranges, verify
from tests.rulekit import FACILITY, VEHICLE, rule

T0 = 1717372800.0
BASE = {"facility_id": "F1"}


def tank(offset, tank_id, ts, level, partition=0):
    return ProducedEvent(topic=FACILITY, key=tank_id, partition=partition, offset=offset,
                         value={"event_id": f"e{offset}", "ts": ts, "tank_id": tank_id,
                                "level_pct": level, **BASE})


def rules():
    return [rule(id="test.tank.high", source=FACILITY, kind="threshold",
                 condition="level_pct >= 90", clear="level_pct < 80"),
            rule(id="test.vehicle.lost", source=VEHICLE, kind="absence", timeout="5m")]


EVENTS = [
    tank(0, "T1", T0, 95),
    tank(1, "T2", T0 + 1, 96),
    ProducedEvent(topic=VEHICLE, key="V1", partition=0, offset=0,  # no position: a bad line
                  value={"event_id": "v0", "ts": T0 + 2, "vehicle_id": "V1", "speed_kmh": 3}),
    ProducedEvent(topic=VEHICLE, key="V1", partition=1, offset=0,
                  value={"event_id": "v1", "ts": T0 + 3, "vehicle_id": "V1", "lat": 30.0,
                         "lon": 120.0, "speed_kmh": 3}),
    tank(2, "T1", T0 + 600, 50),
]


def expected_alerts():
    return [a.model_dump() for a in
            replay((e.envelope_line() for e in EVENTS), rules()).alerts]


def letter(topic, partition, offset, reason_class="schema"):
    return {"source_topic": topic, "partition": partition, "offset": offset,
            "reason": "lat: Field required", "reason_class": reason_class}


COMMITTED = {(FACILITY, 0): 3, (VEHICLE, 0): 1, (VEHICLE, 1): 1}


def test_a_complete_run_accounts_for_every_event_and_alert():
    alerts = expected_alerts()
    by_model = {a["model_id"] for a in alerts}
    assert by_model == {"test.tank.high", "test.vehicle.lost"}
    published = [*alerts, alerts[0]]  # delivered twice: at least once
    report = verify(EVENTS, published, [letter(VEHICLE, 0, 0)], COMMITTED, rules())
    assert (report.events_in, report.scored, report.dead_lettered, report.lost) == (5, 4, 1, 0)
    assert report.dead_letter_reasons == {"schema": 1}
    events, timers = report.event_rules, report.timer_rules
    assert (events.expected, events.missing, events.extra, events.duplicates) == (3, 0, 0, 1)
    assert (timers.expected, timers.missing, timers.extra) == (1, 0, 0)


def test_uncommitted_undead_lettered_and_jumped_over_events_are_lost():
    committed = {**COMMITTED, (FACILITY, 0): 2}  # the last tank reading never committed
    # the bad vehicle reading committed past without a dead letter; T2's offset jumped over
    report = verify(EVENTS, expected_alerts(), [], committed, rules(),
                    skipped=[(FACILITY, 0, 1, 1)])
    assert (report.scored, report.dead_lettered, report.lost) == (2, 0, 3)
    assert report.skipped_by_consumer == 1
    assert sorted(e.split(": ", 1)[1] for e in report.lost_examples) == [
        "jumped over by the consumer", "offset not committed",
        "replay rejects it and no dead letter"]


def test_a_dead_letter_replay_would_have_scored_is_counted():
    report = verify(EVENTS, expected_alerts(), [letter(VEHICLE, 0, 0), letter(FACILITY, 0, 1)],
                    COMMITTED, rules())
    assert (report.scored, report.dead_lettered, report.dead_letters_replay_scored) == (3, 2, 1)


def test_missing_extra_and_reissued_alerts():
    alerts = expected_alerts()
    firing_t1 = next(a for a in alerts if a["key"] == "T1" and a["state"] == "firing")
    reissued = {**firing_t1, "alert_id": "another-id"}
    stranger = {**firing_t1, "alert_id": "x", "key": "T9"}
    published = [a for a in alerts if a is not firing_t1] + [reissued, stranger]
    report = verify(EVENTS, published, [letter(VEHICLE, 0, 0)], COMMITTED, rules())
    events = report.event_rules
    assert (events.missing, events.extra, events.reissued, events.duplicates) == (1, 2, 1, 0)
    assert events.missing_examples == [
        f"test.tank.high key T1 firing {firing_t1['alert_id']} first_ts {T0}"]


def test_skipped_ranges_are_read_from_the_worker_log():
    log = ("WARNING events.hazchem.vehicle[2]: offsets 10-14 are not in the log any more "
           "(retention, or an aborted transaction): 5 events not scored\n")
    assert skipped_ranges(log) == [("events.hazchem.vehicle", 2, 10, 14)]
