"""Batches of a Faust stream handed on as soon as the events fetched so far are in.

Faust's ``Stream.take_events(max_, within)`` yields a batch when it holds ``max_`` events or
when ``within`` seconds have passed since it began to wait, and it begins to wait only after
the previous batch was handled. Every event thus waits for the timer; a shorter window helps
the latency but caps the batches at what the stream takes in within it, and with them the
throughput (``bench/README.md``).

``take_ready`` yields a batch as soon as the stream's channel has nothing more queued (all
that the fetch loop has handed on is in the batch), or when the batch holds ``max_`` events:
"natural" batching. At a low rate a batch is the few events of the last fetch, scored at
once; under load, events queue while a batch is scored and the next batch is as large as
what queued (up to ``max_``), so the batch size follows the load without a timer. ``within``
stays as a bound: events the stream skips (a rebalance's stale ones) pass no processor, so a
batch can miss the moment its channel ran dry, and then goes after ``within``.

Everything else is ``take_events`` as Faust 0.15.3 writes it (the buffer filled by a
processor while the stream runs passively, acks after the batch is handled, the generator
registered on the stream so that stopping the stream closes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from faust.types import ChannelT
from mode.utils.futures import notify


def _queue_empty(stream: Any) -> Any:
    """The ``empty`` of the stream's channel's queue: what the stream reads next."""
    channel = stream.channel
    if isinstance(channel, ChannelT):
        return channel.queue.empty
    return None


def take_ready(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Events of ``stream`` in lists of at most ``max_``, each list yielded as soon as the
    stream's channel has no more queued, or at the latest ``within`` seconds after the wait for
    it began. The events are acknowledged once the consumer of the list asks for the next.
    """
    agen = _take_ready(stream, max_, within)
    stream._active_agens.add(agen)  # closed when the stream stops, as Faust's take_events
    return agen


async def _take_ready(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    events: list[Any] = []
    event_add = events.append
    ready = asyncio.Event()
    """Set when the batch should go: full, or nothing more queued."""
    consumed = asyncio.Event()
    queue_empty = _queue_empty(stream)
    stream_enable_acks: bool = stream.enable_acks
    consuming: asyncio.Future[Any] | None = None

    async def add_to_batch(value: Any) -> Any:
        try:
            nonlocal consuming
            if consuming is not None:
                try:
                    await consuming  # the batch being handled is not added to
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_ready found current_event is None")
            event_add(event)
            if len(events) >= max_:
                ready.set()
                # At most max_ events a batch: wait until this one is handled.
                consumed.clear()
                await stream.wait(consumed)
            elif queue_empty is not None and queue_empty():
                ready.set()
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            stream.log.exception("Error adding to batch: %r", exc)
            await stream.crash(exc)
        return value

    # The batch's events are acknowledged here, once handled, not as the stream passes them.
    stream.enable_acks = False
    stream.add_processor(add_to_batch)
    stream._enable_passive(stream.channel)
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(ready, timeout=within)
            if events:
                consuming = stream.loop.create_future()
                try:
                    yield list(events)
                finally:
                    for event in events:
                        await stream.ack(event)
                    events.clear()
                    notify(consuming)
                    ready.clear()
                    consumed.set()
            else:
                ready.clear()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_batch)
