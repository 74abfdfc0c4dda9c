"""surge: learned per-group baselines, the Poisson judgement, warm-up, clearing, pickling."""

import pickle

from engine.core import MemoryStore, ScoringCore
from models.base import Verdict
from models.surge import Surge, SurgeParams, poisson_tail
from tests.rulekit import drive, event, rule

TICKETS = "events.hotline.ticket"
H = 3600.0


def ticket(ts: float, category: str = "noise", district: str = "D1", **fields):
    fields.setdefault("ticket_id", f"K{ts}")
    return event(TICKETS, ts, district=district, category=category, status="new", **fields)


def surge_rule(**extra):
    return rule(id="test.surge", source=TICKETS, key="district", kind="surge", bucket="1h",
                group_by="category", warmup=3, **extra)


def run(core, events, until=None):
    alerts = drive(core, events, until)
    return [(a.state, a.last_ts, a.key, a.evidence.get("group"), a.evidence.get("value"))
            for a in alerts]


def steady(hours: int, per_hour: int = 2, category: str = "noise"):
    """``per_hour`` tickets in each of the first ``hours`` clock hours."""
    return [ticket(h * H + (i + 1) * H / (per_hour + 1), category)
            for h in range(hours) for i in range(per_hour)]


def test_poisson_tail_matches_known_values():
    assert abs(poisson_tail(1, 0.5) - (1 - 2.718281828459045 ** -0.5)) < 1e-12
    assert abs(poisson_tail(5, 1.0) - 0.00366) < 1e-5
    assert abs(poisson_tail(60, 40.0) - 0.0018796) < 1e-6  # beyond the mean: summed upwards
    assert poisson_tail(20, 40.0) > 0.999


def test_a_surge_fires_at_the_first_unusual_count_and_resolves_when_it_leaves_the_hour():
    core = ScoringCore([surge_rule()], MemoryStore())
    # two an hour for four hours, then eight within ten minutes of hour 4
    burst = [ticket(4 * H + 60 * i) for i in range(8)]
    alerts = run(core, steady(4) + burst, until=10 * H)
    # baseline 2: P(X >= 8) = 0.0011, P(X >= 9) = 0.00024 < 0.001. The sliding hour holds
    # hour 3's tickets at 3:20 and 3:40, so the seventh of the burst (4:06) makes nine.
    assert alerts[0] == ("firing", 4 * H + 360, "D1", "noise", 9)
    # the burst's eight and the 3:40 ticket are still nine after 4:20; at 4:40 the 3:40 ticket
    # leaves the hour and eight are left: resolved by the clock
    assert alerts[1:] == [("resolved", 4 * H + 2400, "D1", "noise", 8)]


def test_the_limit_is_the_smallest_unusual_count():
    model = Surge(SurgeParams(bucket="1h", warmup=3))
    state = model.new_state()
    for ev in steady(4):
        model.learn_one(state, ev)
    reading = model.score_one(state, ticket(4 * H + 1))
    assert reading.verdict is Verdict.CLEAR
    limit = reading.evidence["limit"]
    mean = reading.evidence["baseline"]
    assert abs(mean - 2.0) < 1e-9
    assert poisson_tail(limit, 2.0) < 0.001 <= poisson_tail(limit - 1, 2.0)


def test_one_short_of_the_limit_stays_silent():
    core = ScoringCore([surge_rule()], MemoryStore())
    model = Surge(SurgeParams(bucket="1h", warmup=3))
    state = model.new_state()
    for ev in steady(4):
        model.learn_one(state, ev)
    limit = model.score_one(state, ticket(4 * H + 1)).evidence["limit"]
    # the sliding hour also holds hour 3's two tickets (3:20 and 3:40)
    assert limit == 9
    burst = [ticket(4 * H + 60 * i) for i in range(limit - 3)]
    assert run(core, steady(4) + burst, until=10 * H) == []


def test_groups_learn_apart_and_another_groups_quiet_ticket_keeps_the_surge():
    core = ScoringCore([surge_rule()], MemoryStore())
    history = sorted(steady(4) + steady(4, 20, "road"), key=lambda e: e.ts)
    burst = [ticket(4 * H + 30 * i) for i in range(12)]  # 12 noise tickets: unusual for noise
    quiet_road = [ticket(4 * H + 400 + i, "road") for i in range(3)]
    alerts = run(core, history + burst + quiet_road)
    assert [a[0] for a in alerts] == ["firing"]
    assert alerts[0][3] == "noise"
    # 12 road tickets in an hour are usual for road (20 an hour)
    core = ScoringCore([surge_rule()], MemoryStore())
    assert run(core, history + [ticket(4 * H + 30 * i, "road") for i in range(12)]) == []


def test_warm_up_holds_and_a_new_group_is_not_judged():
    core = ScoringCore([surge_rule()], MemoryStore())
    # only two hours of history with warmup 3: nothing is judged yet
    assert run(core, steady(2) + [ticket(2 * H + 10 * i) for i in range(30)]) == []
    core = ScoringCore([surge_rule()], MemoryStore())
    fresh = [ticket(4 * H + 10 * i, "gas_smell") for i in range(30)]
    assert run(core, steady(4) + fresh) == []


def test_empty_hours_lower_the_baseline():
    model = Surge(SurgeParams(bucket="1h", warmup=1, halflife=1))
    state = model.new_state()
    for ev in steady(2, 10):
        model.learn_one(state, ev)
    late_reading = model.score_one(state, ticket(12 * H))
    assert late_reading.evidence["baseline"] < 0.1  # ten empty hours at half-life one hour


def test_late_events_are_not_used_and_state_pickles():
    model = Surge(SurgeParams(bucket="1h", group_by="category", warmup=1))
    state = model.new_state()
    for ev in steady(3):
        model.learn_one(state, ev)
    assert model.score_one(state, ticket(100)).verdict is Verdict.LATE
    restored = pickle.loads(pickle.dumps(state))
    probe = ticket(3 * H + 5)
    assert model.score_one(restored, probe).evidence == model.score_one(state, probe).evidence


def share_rule(**extra):
    return surge_rule(baseline="share", halflife=12, p_value=1e-4, **extra)


def rhythm(hours, per_hour, categories, start=0):
    """``per_hour`` tickets of each category in each hour, evenly spread."""
    return sorted((ticket(h * H + (i + 0.5) * H / per_hour, c, ticket_id=f"{c}{h}-{i}")
                   for h in range(start, start + hours) for i in range(per_hour)
                   for c in categories), key=lambda e: e.ts)


def test_share_baseline_cancels_a_rise_of_every_group_but_not_of_one():
    quiet = rhythm(4, 2, ["road", "noise", "housing"])
    # every category goes from 2 to 12 an hour (the morning): usual shares, no alert
    core = ScoringCore([share_rule()], MemoryStore())
    assert run(core, quiet + rhythm(2, 12, ["road", "noise", "housing"], start=4)) == []
    # only road goes to 12 an hour: its share jumps
    core = ScoringCore([share_rule()], MemoryStore())
    alerts = run(core, quiet + rhythm(2, 12, ["road"], start=4)
                 + rhythm(2, 2, ["noise", "housing"], start=4))
    assert alerts and alerts[0][:4] == ("firing", alerts[0][1], "D1", "road")
    # with the own baseline the general rise is a surge
    core = ScoringCore([surge_rule(p_value=1e-4)], MemoryStore())
    assert run(core, quiet + rhythm(2, 12, ["road", "noise", "housing"], start=4))


def test_share_needs_group_by():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs 'group_by'"):
        SurgeParams(bucket="1h", baseline="share")
