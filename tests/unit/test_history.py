"""Alert history views from records: the list, one alert's story, the tail line."""

from __future__ import annotations

from engine.history import (
    alert_line,
    alert_story,
    alert_views,
    find_alert_id,
    render_list,
    render_story,
    select_alerts,
)
from engine.tracking.store import LifeRecords
from tests.unit.tracking.recordkit import T0, alert, feedback, incident, order


def life(alerts=(), orders=(), fb=(), incidents=()) -> LifeRecords:
    records = LifeRecords()
    for a in alerts:
        records.add_alert(a)
    for o in orders:
        records.add_order(o)
    for f in fb:
        records.add_feedback(f)
    for i in incidents:
        records.add_incident(i)
    return records


TANK = [
    alert("a1b2c3", "hazchem.tank.level_high", at=0, key="T3", grid_id="G1",
          summary="tank T3 at 96%"),
    alert("a1b2c3", "hazchem.tank.level_high", at=0, key="T3", grid_id="G1",
          summary="tank T3 at 96%"),  # redelivered
    alert("a1b2c3", "hazchem.tank.level_high", "resolved", at=1500, key="T3", grid_id="G1",
          summary="tank T3 at 89%"),
]
GAS = [alert("d4e5f6", "hazchem.tank.lel", at=600, key="T3", severity="orange",
             summary="gas at T3 30% LEL"),
       alert("ffff01", "hazchem.tank.lel", at=700, key="T9", severity="orange",
             summary="gas at T9 28% LEL", silenced_by=["maint-7"])]


def test_views_show_each_alert_once_in_its_latest_state_newest_first():
    views = alert_views([*TANK, *GAS])
    assert [(v.alert_id, v.state, v.changes, v.open) for v in views] == [
        ("a1b2c3", "resolved", 2, False), ("ffff01", "firing", 1, True),
        ("d4e5f6", "firing", 1, True)]


def test_filters_select_by_time_model_prefix_key_state_and_openness():
    views = alert_views([*TANK, *GAS])

    def ids(**filters):
        return [v.alert_id for v in select_alerts(views, **filters)]

    assert ids(changed_after=T0 + 650) == ["a1b2c3", "ffff01"]
    assert ids(model="hazchem.tank.l*") == ["a1b2c3", "ffff01", "d4e5f6"]
    assert ids(model="hazchem.tank.lel", key="T3") == ["d4e5f6"]
    assert ids(state="resolved") == ["a1b2c3"]
    assert ids(open_only=True) == ["ffff01", "d4e5f6"]
    assert ids(model="hazchem.tank") == []  # no star: the exact id only


def test_list_rendering():
    assert render_list(alert_views(GAS)) == "\n".join([
        "changed                     severity  state              model             key  changes"
        "  alert id  summary",
        "2024-06-03 08:11:40 +08:00  orange    firing (silenced)  hazchem.tank.lel  T9         1"
        "  ffff01    gas at T9 28% LEL",
        "2024-06-03 08:10:00 +08:00  orange    firing             hazchem.tank.lel  T3         1"
        "  d4e5f6    gas at T3 30% LEL",
        "2 alerts",
    ])


def test_tail_line():
    assert alert_line(GAS[1]) == ("2024-06-03 08:11:40 +08:00  [ORANGE] firing (silenced) "
                                  "hazchem.tank.lel  T9  gas at T9 28% LEL  (ffff01)")


def test_story_tells_what_fired_who_got_it_and_what_happened():
    records = life(
        alerts=[*TANK, *GAS],
        incidents=[incident("INC-1", ["a1b2c3", "d4e5f6"],
                            ["hazchem.tank.level_high", "hazchem.tank.lel"], at=5)],
        orders=[order("O1", created=10, ack=170, resolved=1490, alert_ids=("a1b2c3", "d4e5f6"),
                      models=("hazchem.tank.level_high", "hazchem.tank.lel")),
                order("O2", created=10, department="environment", alert_ids=("a1b2c3",),
                      escalations=1, level="city")],
        fb=[feedback("O1", "acknowledged", at=180, by="王工"),
            feedback("O1", "resolved", at=1500, by="王工", note="valve closed"),
            feedback("O9", "resolved", at=1500)])
    story = alert_story(records, "a1b2c3")
    assert story is not None
    assert render_story(story) == "\n".join([
        "alert a1b2c3",
        "  model hazchem.tank.level_high v1, key T3, departments fire, grid G1",
        "",
        "What fired",
        "  2024-06-03 08:00:00 +08:00  firing    red    tank T3 at 96%",
        "  2024-06-03 08:25:00 +08:00  resolved  red    tank T3 at 89%",
        "",
        "Incident INC-1 (grid:G1, open, red): opened 2024-06-03 08:00:05 +08:00, 2 alerts of "
        "hazchem.tank.level_high, hazchem.tank.lel",
        "",
        "Who got it",
        "  order O1 → fire (district level), red, created 2024-06-03 08:00:10 +08:00, "
        "acknowledge by 2024-06-03 08:05:10 +08:00, now resolved",
        "    2024-06-03 08:00:10 +08:00  created by dispatch",
        "    2024-06-03 08:03:00 +08:00  acknowledged by duty",
        "    2024-06-03 08:25:00 +08:00  resolved by duty",
        "    2024-06-03 08:03:00 +08:00  feedback: acknowledged from fire by 王工",
        "    2024-06-03 08:25:00 +08:00  feedback: resolved from fire by 王工: valve closed",
        "  order O2 → environment (city level), red, created 2024-06-03 08:00:10 +08:00, "
        "acknowledge by 2024-06-03 08:05:10 +08:00, now open, escalated 1×",
        "    2024-06-03 08:00:10 +08:00  created by dispatch",
        "",
        "What happened",
        "  O1: resolved; acknowledged after 2m50s (within the red limit of 5m); "
        "resolved after 24m50s",
        "  O2: still open; not acknowledged (the red limit is 5m)",
    ])


def test_a_silenced_alert_shows_it_was_not_dispatched():
    story = alert_story(life(alerts=GAS), "ffff01")
    assert story is not None
    text = render_story(story)
    assert ("  2024-06-03 08:11:40 +08:00  firing    orange gas at T9 28% LEL  "
            "[silenced by maint-7: not dispatched]") in text
    assert text.endswith("Who got it\n  no work order names this alert")


def test_alert_ids_are_found_by_a_unique_prefix_and_unknown_ones_tell_none():
    records = life(alerts=[*TANK, *GAS, alert("a1ffff")],
                   orders=[order("O1", alert_ids=("0rder-only",))])
    assert find_alert_id(records, "a1b") == "a1b2c3"
    assert find_alert_id(records, "0rder") == "0rder-only"  # known only from its order
    assert find_alert_id(records, "a1") is None  # two alerts begin so
    assert find_alert_id(records, "zzz") is None
    assert alert_story(records, "zzz") is None
    story = alert_story(records, "0rder-only")
    assert story is not None and "no alert records left on the topic" in render_story(story)


def test_the_story_says_who_held_an_order_that_climbed_the_command_levels():
    holds = [{"level": "town", "place": "xihu.lingyin", "since": T0 + 10, "ack_within_s": 180},
             {"level": "district", "place": "xihu", "since": T0 + 190, "ack_within_s": 300},
             {"level": "city", "since": T0 + 490, "ack_within_s": 300}]
    records = life(alerts=TANK, orders=[order("O1", created=10, alert_ids=("a1b2c3",),
                                              escalations=2, level="city", levels=holds)])
    story = alert_story(records, "a1b2c3")
    assert story is not None
    assert ("    held by: town xihu.lingyin from 2024-06-03 08:00:10 +08:00 → district xihu "
            "from 2024-06-03 08:03:10 +08:00 → city from 2024-06-03 08:08:10 +08:00"
            ) in render_story(story).splitlines()
