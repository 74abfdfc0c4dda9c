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
