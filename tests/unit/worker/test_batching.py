"""Batches handed on as soon as the events fetched so far are in
(engine/worker/faust_internals/batching.py).

Run on a real Faust stream over an in-memory channel: whatever is queued when the stream
reaches it forms a batch, at most ``max_`` events, without waiting for ``within`` (given 30 s
here, so a batch that waited for it would time the test out)."""

import asyncio

import faust
import pytest

from engine.worker.faust_internals.batching import take_ready

LONG = 30.0


@pytest.fixture
def app():
    app = faust.App("test-batching", store="memory://")
    app.flow_control.resume()
    return app


async def _queue(channel, values):
    for value in values:
        await channel.send(value=value)


async def _batches(stream, max_, count, within=LONG, on_batch=None):
    """The values of the first ``count`` batches."""
    out = []

    async def take():
        async for batch in take_ready(stream, max_, within):
            out.append([event.value for event in batch])
            if on_batch is not None:
                await on_batch(len(out))
            if len(out) == count:
                return out

    return await asyncio.wait_for(take(), 5)


async def test_what_is_queued_goes_as_one_batch_without_waiting_for_the_window(app):
    channel = app.channel()
    async with app.stream(channel) as stream:
        await _queue(channel, range(5))
        assert await _batches(stream, 100, 1) == [[0, 1, 2, 3, 4]]


async def test_a_batch_holds_at_most_max_events(app):
    channel = app.channel()
    async with app.stream(channel) as stream:
        await _queue(channel, range(7))
        assert await _batches(stream, 3, 3) == [[0, 1, 2], [3, 4, 5], [6]]


async def test_events_that_come_later_form_the_next_batch_at_once(app):
    channel = app.channel()

    async def more(batches_seen):
        if batches_seen == 1:
            await _queue(channel, ["c"])
        elif batches_seen == 2:
            await _queue(channel, ["d", "e"])

    async with app.stream(channel) as stream:
        await _queue(channel, ["a", "b"])
        assert await _batches(stream, 100, 3, on_batch=more) == [["a", "b"], ["c"], ["d", "e"]]


async def test_a_batch_is_acknowledged_once_the_next_is_asked_for(app):
    channel = app.channel()
    acked = []
    seen_acked = []

    async with app.stream(channel) as stream:
        await _queue(channel, range(4))
        ack = stream.ack

        async def record_ack(event):
            acked.append(event.value)
            return await ack(event)

        stream.ack = record_ack

        async def handled(batches_seen):
            seen_acked.append(list(acked))
            if batches_seen == 1:
                await _queue(channel, [4])

        assert await _batches(stream, 100, 2, on_batch=handled) == [[0, 1, 2, 3], [4]]
    assert seen_acked == [[], [0, 1, 2, 3]]


async def test_acks_are_restored_and_the_processor_removed_when_it_ends(app):
    channel = app.channel()
    async with app.stream(channel) as stream:
        await _queue(channel, [1])
        processors = list(stream._processors)
        assert stream.enable_acks
        batches = take_ready(stream, 10, LONG)
        assert await asyncio.wait_for(batches.__anext__(), 5)
        assert not stream.enable_acks
        await batches.aclose()
        assert stream.enable_acks
        assert stream._processors == processors


async def test_a_batch_that_missed_its_moment_goes_after_within(app):
    # An event the stream skips (one of a generation before a rebalance) passes no processor:
    # the queue runs dry without the batch seeing it, and ``within`` sends the batch.
    channel = app.channel()
    async with app.stream(channel) as stream:
        await _queue(channel, ["kept", "stale"])
        stream.channel.queue._queue[-1].message.generation_id = app.consumer_generation_id - 1
        assert await _batches(stream, 100, 1, within=0.05) == [["kept"]]
