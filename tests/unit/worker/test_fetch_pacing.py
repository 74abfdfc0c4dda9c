"""The pace of the worker's fetches, set from the rate of events
(engine/worker/faust_internals/fetch_pacing.py)."""

import asyncio
import inspect
import time
from types import SimpleNamespace

from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import SubscriptionState

from engine.worker.faust_internals.fetch_pacing import FetchPacing, Pace, apply_pace
from tests.unit.worker.test_worker_intake import record, worker  # noqa: F401 (the fixture)

BUSY = Pace(min_bytes=32768, max_wait_ms=10)
QUIET = Pace(min_bytes=1, max_wait_ms=1500)


def test_busy_above_the_rate_quiet_below_half_of_it_unchanged_between():
    pacing = FetchPacing(busy_above=500, busy_min_bytes=32768, busy_wait_s=0.01)
    assert pacing.observe(events=499, seconds=1.0) == QUIET
    assert pacing.observe(events=1000, seconds=2.0) == BUSY  # 500/s
    assert pacing.observe(events=250, seconds=1.0) == BUSY
    assert pacing.observe(events=249, seconds=1.0) == QUIET
    assert pacing.observe(events=300, seconds=1.0) == QUIET
    assert pacing.observe(events=10, seconds=0.0) == QUIET  # no time passed: no rate


async def test_the_pace_is_set_where_aiokafka_reads_it_for_each_fetch_request():
    client = SimpleNamespace(_loop=asyncio.get_running_loop(), _metadata_max_age_ms=300_000)
    fetcher = Fetcher(client, SubscriptionState(), fetch_min_bytes=1, fetch_max_wait_ms=1500)
    try:
        assert apply_pace(SimpleNamespace(_fetcher=fetcher), BUSY)
        assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (32768, 10)
        # Each fetch request is built from those two attributes (an aiokafka that renamed
        # them would leave the pace unread).
        builds = inspect.getsource(Fetcher._get_actions_per_node)
        assert "self._fetch_max_wait_ms,\n                self._fetch_min_bytes," in builds
    finally:
        await fetcher.close()


def test_a_consumer_not_started_has_no_fetcher_to_pace():
    assert not apply_pace(SimpleNamespace(), BUSY)


def test_the_worker_paces_its_consumer_from_the_events_it_consumed(worker):  # noqa: F811
    worker.settings.fetch_busy_above = 500.0
    worker.fetch_pacing = FetchPacing(500.0, 32768, 0.01)
    fetcher = SimpleNamespace(_fetch_min_bytes=1, _fetch_max_wait_ms=1500)
    worker.app.consumer._thread._consumer = SimpleNamespace(_fetcher=fetcher, assignment=set)
    worker.handle_intake([record(offset, 0) for offset in range(600)])
    # 600 events in a second: the second counted from after scoring them, which on a busy
    # machine can take more than the fifth of a second that would bring the rate under 500.
    worker._paced_at = time.monotonic() - 1.0
    worker.handle_tick(time.time())
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (32768, 10)
    worker._paced_at = time.monotonic() - 1.0
    worker.handle_tick(time.time())  # none in the next
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 1500)


def test_by_default_the_worker_leaves_faust_s_fetches_alone(worker):  # noqa: F811
    fetcher = SimpleNamespace(_fetch_min_bytes=1, _fetch_max_wait_ms=1500)
    worker.app.consumer._thread._consumer = SimpleNamespace(_fetcher=fetcher, assignment=set)
    worker._paced_at = time.monotonic() - 1.0
    worker.handle_intake([record(offset, 0) for offset in range(600)])
    worker.handle_tick(time.time())
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 1500)
