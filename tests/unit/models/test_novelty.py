"""novelty: what counts as new, the count within the period, warm-up, the clock, pickling."""

import pickle

from engine.core import MemoryStore, ScoringCore
from tests.rulekit import drive, event, rule

TICKETS = "events.hotline.ticket"
H, D = 3600.0, 86400.0


def ticket(ts: float, category: str, grid: str = "G1"):
    return event(TICKETS, ts, ticket_id=f"K{ts}", grid_id=grid, category=category, status="new")


def novelty_rule(**extra):
    fields = {"field": "category", "unseen_for": "30d", "within": "1d", "min_count": 3,
              "warmup": "1d"} | extra
    return rule(id="test.novelty", source=TICKETS, key="grid_id", kind="novelty", **fields)


def run(core, events, until=None):
    alerts = drive(core, events, until)
    return [(a.state, a.last_ts, a.key, a.evidence.get("group"), a.evidence.get("value"))
            for a in alerts]


def watched(grid: str = "G1"):
    """The grid's first ticket: its watch (and warm-up) starts at 0."""
    return ticket(0, "road", grid)


def test_the_count_that_reaches_min_count_fires_and_the_period_end_resolves():
    core = ScoringCore([novelty_rule()], MemoryStore())
    new = [ticket(D + h * H, "pests") for h in (1, 2, 3)]
    assert run(core, [watched(), *new], until=3 * D) == [
        ("firing", D + 3 * H, "G1", "pests", 3), ("resolved", 2 * D + H, "G1", None, None)]


def test_exactly_unseen_for_is_not_new_and_a_moment_longer_is():
    events = [ticket(0, "pests")] + [ticket(30 * D + i, "pests") for i in range(3)]
    assert run(ScoringCore([novelty_rule()], MemoryStore()), events) == []
    events = [ticket(0, "pests")] + [ticket(30 * D + 1 + i, "pests") for i in range(3)]
    assert run(ScoringCore([novelty_rule()], MemoryStore()), events)[0][:4] == (
        "firing", 30 * D + 3, "G1", "pests")


def test_tickets_after_the_period_do_not_count_and_the_value_is_then_old_news():
    core = ScoringCore([novelty_rule()], MemoryStore())
    events = [watched(), ticket(D + H, "pests"), ticket(D + 2 * H, "pests"),
                          ticket(2 * D + H, "pests"), ticket(2 * D + 2 * H, "pests")]
    assert run(core, events, until=5 * D) == []


def test_warm_up_and_keys_are_separate():
    core = ScoringCore([novelty_rule()], MemoryStore())
    early = [ticket(H * h, "pests") for h in (1, 2, 3)]  # within the first day: not judged
    other_grid = [watched("G2"), *(ticket(D + h * H, "pests", "G2") for h in (1, 2, 3))]
    assert [a[:3] for a in run(core, [watched(), *early, *other_grid])] == [
        ("firing", D + 3 * H, "G2")]


def test_another_category_does_not_end_a_firing_novelty():
    core = ScoringCore([novelty_rule()], MemoryStore())
    events = [watched(), *(ticket(D + h * H, "pests") for h in (1, 2, 3)),
              ticket(D + 4 * H, "road"), ticket(D + 5 * H, "dead_fish")]
    assert [a[0] for a in run(core, events)] == ["firing"]


def test_out_of_order_tickets_of_a_new_value_count():
    core = ScoringCore([novelty_rule()], MemoryStore())
    events = [watched(), ticket(D + 2 * H, "pests"), ticket(D + 3 * H, "pests"),
                          ticket(D + 2.5 * H, "pests")]
    assert run(core, events)[0][:2] == ("firing", D + 3 * H)


def test_state_pickles_and_forgets_values_unseen_for_longer_than_unseen_for():
    store = MemoryStore()
    core = ScoringCore([novelty_rule()], store)
    run(core, [watched(), ticket(D + H, "pests")])
    store.data = pickle.loads(pickle.dumps(store.data))
    assert run(core, [ticket(D + 2 * H, "pests"), ticket(D + 3 * H, "pests")])[0][:2] == (
        "firing", D + 3 * H)
    run(core, [ticket(40 * D, "noise")], until=41 * D)
    (entity,) = [e for _, _, e in store.entities()]
    (state,) = entity.values()
    assert set(state.model.last_seen) == {"noise"} and set(state.model.fresh) == {"noise"}
