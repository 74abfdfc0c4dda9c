"""Faust's fetch loop with messages delivered inline (engine/worker/faust_internals/fetch_drain.py).

``deliver`` runs a delivery inline and finishes one that has to wait in a task, as asyncio
would have; the loop itself is Faust's, run here on a real (unstarted) Faust consumer whose
``getmany`` hands out made-up messages."""

import asyncio
import difflib
import inspect
import textwrap
from types import SimpleNamespace

import faust
import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from engine.worker.faust_internals import fetch_drain
from engine.worker.faust_internals.fetch_drain import deliver, drain_inline

TOPIC = "events.hazchem.facility"
TP0 = TP(TOPIC, 0)


async def test_a_delivery_that_does_not_wait_runs_inline_without_a_task():
    queue: asyncio.Queue = asyncio.Queue()
    tasks_before = len(asyncio.all_tasks())

    async def callback(message):
        await queue.put(message)  # room in the queue: no wait

    assert deliver(callback, "m1") is None
    assert queue.get_nowait() == "m1"
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_delivery_that_waits_is_finished_in_a_task_with_its_result():
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    queue.put_nowait("old")
    steps = []

    async def callback(message):
        steps.append("before")
        await queue.put(message)  # full: waits for a get
        await asyncio.sleep(0)  # a bare yield on the way
        steps.append("after")
        return f"delivered {message}"

    task = deliver(callback, "m1")
    assert task is not None and not task.done()
    assert steps == ["before"]
    assert queue.get_nowait() == "old"
    assert await asyncio.wait_for(task, 1) == "delivered m1"
    assert steps == ["before", "after"]
    assert queue.get_nowait() == "m1"


async def test_an_error_after_the_wait_reaches_the_task():
    waited: asyncio.Future = asyncio.get_running_loop().create_future()

    async def callback(message):
        await waited
        raise ValueError(f"cannot decode {message}")

    task = deliver(callback, "m1")
    waited.set_result(None)
    with pytest.raises(ValueError, match="cannot decode m1"):
        await asyncio.wait_for(task, 1)


async def test_the_outcome_of_what_it_waited_for_reaches_the_coroutine():
    waited: asyncio.Future = asyncio.get_running_loop().create_future()

    async def callback(message):
        try:
            await waited
        except KeyError as exc:
            return f"saw {exc}"
        return "no error"

    task = deliver(callback, "m1")
    waited.set_exception(KeyError("gone"))
    assert await asyncio.wait_for(task, 1) == "saw 'gone'"


async def test_a_cancelled_delivery_stops_where_it_waits_and_puts_nothing():
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    queue.put_nowait("old")
    seen = []

    async def callback(message):
        try:
            await queue.put(message)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = deliver(callback, "m1")
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]
    assert queue.get_nowait() == "old"
    assert queue.empty()  # the put gave up: nothing is put once there is room


async def test_a_delivery_cancelled_after_its_wait_ended_still_sees_the_cancellation():
    waited: asyncio.Future = asyncio.get_running_loop().create_future()
    seen = []

    async def callback(message):
        try:
            await waited
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = deliver(callback, "m1")
    await asyncio.sleep(0)
    waited.set_result(None)  # done, but the task has not resumed the coroutine yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert seen == ["cancelled"]


# -- the loop, on a real Faust consumer ----------------------------------------------------


@pytest.fixture
async def consumer(tmp_path):
    # Made in the test's loop: the consumer's events and waits belong to the loop it is made in.
    app = faust.App("test-drain", broker="kafka://127.0.0.1:1", store="memory://",
                    datadir=str(tmp_path))
    consumer = app.consumer
    drain_inline(consumer)
    return consumer


def run_loop(consumer, offsets, callback, timeout=2.0):
    """Run the installed loop over messages at ``offsets`` of one partition, then stop it."""
    fetcher = SimpleNamespace(_stopped=SimpleNamespace(is_set=lambda: fetched["done"]))
    fetched = {"done": False}

    async def getmany(timeout):
        for offset in offsets:
            yield TP0, SimpleNamespace(offset=offset, topic=TOPIC, key=b"k", value=b"v")
        fetched["done"] = True

    consumer.getmany = getmany
    consumer.callback = callback
    consumer._read_offset[TP0] = None
    return asyncio.wait_for(consumer._drain_messages(fetcher), timeout)


async def test_the_loop_hands_each_message_on_in_order_and_moves_the_read_offset(consumer):
    handed = []

    async def callback(message):
        handed.append(message.offset)

    await run_loop(consumer, [5, 6, 7], callback)
    assert handed == [5, 6, 7]
    assert consumer._read_offset[TP0] == 7


async def test_a_delivery_waiting_when_the_flow_stops_is_given_up_as_faust_does(consumer):
    """A stream's buffer is full and a rebalance stops the flow: the waiting delivery is
    cancelled (read again later from the committed offset) and the loop goes on."""
    full: asyncio.Queue = asyncio.Queue(maxsize=1)
    full.put_nowait("earlier")
    handed, cancelled = [], []

    async def callback(message):
        if message.offset == 6:
            asyncio.get_running_loop().call_later(0.05, consumer.stop_flow)
            try:
                await full.put(message)  # waits: nobody reads the stream meanwhile
            except asyncio.CancelledError:
                cancelled.append(message.offset)
                raise
        handed.append(message.offset)

    await run_loop(consumer, [5, 6, 7], callback)
    assert cancelled == [6]
    assert handed == [5, 7]
    assert list(full._queue) == ["earlier"]


async def test_a_delivery_that_waits_and_finishes_is_handed_on_before_the_next(consumer):
    room: asyncio.Queue = asyncio.Queue(maxsize=1)
    room.put_nowait("earlier")
    handed = []

    async def callback(message):
        if message.offset == 6:
            asyncio.get_running_loop().call_later(0.02, room.get_nowait)
            await room.put(message)
        handed.append(message.offset)

    await run_loop(consumer, [5, 6, 7], callback)
    assert handed == [5, 6, 7]
    assert list(room._queue) == [SimpleNamespace(offset=6, topic=TOPIC, key=b"k", value=b"v")]


def test_the_loop_is_fausts_but_for_the_delivery():
    """A Faust upgrade that changes its loop must be looked at: this copy would hide it."""
    faust_loop = textwrap.dedent(inspect.getsource(Consumer._drain_messages)).splitlines()
    ours = textwrap.dedent(inspect.getsource(fetch_drain._drain_messages)).splitlines()
    changed = [line for line in difflib.unified_diff(faust_loop, ours, lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover",
        "+async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover",
        "-    consumer_should_stop = cast(Service, self)._stopped.is_set",
        "-    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set",
        "+    consumer_should_stop = self._stopped.is_set",
        "+    fetcher_should_stop = fetcher._stopped.is_set",
        "-            ait = cast(AsyncIterator, getmany(timeout=1.0))",
        "+            ait = cast(Any, getmany(timeout=1.0))",
        "-                        await self.wait_first(",
        "-                            callback(message), self.suspend_flow.wait()",
        "-                        )",
        "+                        # yujing: inline, and raced with a rebalance only when it waits.",
        "+                        waits = deliver(callback, message)",
        "+                        if waits is not None:",
        "+                            await self.wait_first(waits, self.suspend_flow.wait())",
    ]


def test_the_worker_installs_the_inline_loop(tmp_path):
    from engine.worker import Worker, WorkerSettings
    from tests.rulekit import FACILITY, rule_text

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "hot.yaml").write_text(rule_text(
        id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60"),
        encoding="utf-8")
    worker = Worker(WorkerSettings(rules=[tmp_path / "rules"], data_dir=tmp_path / "data",
                                   reload_interval_s=0))
    assert worker.app.consumer._drain_messages.__func__ is fetch_drain._drain_messages
