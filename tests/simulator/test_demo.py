"""What the demo prints of the scorecards it saw."""

from simulator.demo import Seen, scorecard_lines
from topics.records import Scorecard


def test_a_models_false_alarm_rate_is_shown_with_the_orders_closed_it_is_over():
    seen = Seen()
    for name, orders, closed, false_alarms, rate in (
            ("hazchem.tank.gas_first_alarm", 2, 1, 1, 1.0),  # the other order is still open
            ("hazchem.tank.level_high", 3, 3, 1, 1 / 3),
            ("hazchem.tank.level_high_high", 1, 0, 0, None)):  # no false alarm: not shown
        card = Scorecard(scope="model", name=name, period_start=0, period_end=1, orders=orders,
                         closed=closed, false_alarms=false_alarms, false_alarm_rate=rate)
        seen.cards[f"model:{name}"] = card.model_dump(mode="json")
    assert scorecard_lines(seen)[-3:] == [
        "  model with false alarms                  orders closed  false false-alarm rate",
        "  hazchem.tank.gas_first_alarm                  2      1      1        100% of 1",
        "  hazchem.tank.level_high                       3      3      1         33% of 3",
    ]


def test_the_demo_routes_give_every_level_the_demo_s_limits(tmp_path):
    from engine.dispatch.cli import DEFAULT_ROUTES
    from simulator.demo import write_demo_routes

    routing, problems = write_demo_routes(DEFAULT_ROUTES, tmp_path / "demo-routes.yaml")
    assert problems == [] and routing is not None
    assert routing.chain == ("town", "district", "city")
    assert routing.level_limits("red") == {"town": 6.0, "district": 6.0, "city": 6.0}


def _order(level: str, holds: list[tuple[str, str | None, float]], escalations: int,
           history: list[dict] | None = None) -> dict:
    return {"order_id": "o1", "key": "DEMO-T3", "department": "fire_rescue", "severity": "red",
            "level": level, "state": "open", "summary": "tank", "alert_ids": ["a1"],
            "escalations": escalations, "created_at": 100.0,
            "history": history or [{"what": "escalated", "at": 100.0, "note": "up"}],
            "levels": [{"level": lv, "place": place, "since": since}
                       for lv, place, since in holds]}


def test_the_command_centre_answers_only_once_the_order_reached_the_city(capsys):
    from simulator.demo import Watch, climbed_three_levels, level_lines

    watch = Watch("command_center")
    watch.seen.scene_alert_ids.add("a1")
    town = [("town", "gongshu.gongchenqiao", 100.0)]
    district = [*town, ("district", "gongshu", 106.0)]
    city = [*district, ("city", None, 112.0)]
    watch._order(_order("town", town, 0))
    watch._order(_order("district", district, 1))
    assert watch.replies == []  # nobody at the town or the district answers it
    acked = [{"what": "acknowledged", "at": 115.0, "by": "command_center duty desk"}]
    watch._order(_order("city", city, 2))
    assert [(r.department, r.status) for r in watch.replies] == [
        ("command_center", "acknowledged")]
    watch.seen.orders["o1"]["history"] = acked
    assert climbed_three_levels(watch.seen) == 1
    assert level_lines(watch.seen) == [
        "orders that climbed the command levels (镇街 → 县区 → 市):",
        "  fire_rescue DEMO-T3: town gongshu.gongchenqiao +0s → district gongshu +6s → city +12s"
        " → acknowledged by command_center duty desk +15s"]
    assert "escalated" in capsys.readouterr().out
