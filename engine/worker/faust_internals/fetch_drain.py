"""Faust's fetch loop, handing each message to its streams without four tasks per message.

Faust's ``Consumer._drain_messages`` delivers each fetched message with
``wait_first(callback(message), suspend_flow.wait())``. mode's ``wait_first`` makes a task of
each of the two and of the service's stopped and crashed events, waits for the first to
finish and cancels the other three, for every message, where awaiting a delivery that does
not wait costs next to nothing (``bench/faust_path.py`` measures the loop).
The race is for a callback that has to wait (a stream's buffer is full, the producer's
buffer is over its limit, the flow is stopped for a rebalance) while a rebalance begins:
the message is given up, to be read again from the committed offset, rather than holding
the fetch loop.

``drain_inline`` installs the same loop with one change: the callback runs inline, and only
a callback that has to wait is finished in a task and raced against ``suspend_flow`` as
Faust does. Nearly every callback finishes without waiting, and costs no task.

The loop is Faust 0.15.3's; ``tests/unit/worker/test_fetch_drain.py`` compares it with the installed
Faust's, line by line, so an upgrade that changes Faust's loop fails there first.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING


async def finish(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    """Run the rest of ``coro``, which was started outside any task and yielded ``waiting``
    (the future it waits for, or None for a bare yield): what an asyncio task does with a
    coroutine from its second step on, cancellation included."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False
                # Waits without taking the outcome: the coroutine reads it when resumed.
                await asyncio.wait((waiting,))
            step = coro.send
            arg: Any = None
        except asyncio.CancelledError as cancelled:
            # As a task does: cancel what the coroutine waits for, and let it see that; if
            # that is finished already, throw the cancellation in.
            if waiting is not None and waiting.cancel():
                step, arg = coro.send, None
            else:
                step, arg = coro.throw, cancelled
        try:
            waiting = step(arg)
        except StopIteration as done:
            return done.value


def deliver(callback: Any, message: Any) -> asyncio.Future[Any] | None:
    """Hand ``message`` to ``callback`` inline: None once delivered, or the task finishing
    a delivery that has to wait."""
    coro = callback(message)
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(finish(coro, waiting))


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover
    # This is the background thread started by Fetcher, used to
    # constantly read messages using Consumer.getmany.
    # It takes Fetcher as argument, because we must be able to
    # stop it using `await Fetcher.stop()`.
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = cast(Any, getmany(timeout=1.0))

            # Sleeping because sometimes getmany is called in a loop
            # never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # We have a gap in income messages
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        # yujing: inline, and raced with a rebalance only when it waits.
                        waits = deliver(callback, message)
                        if waits is not None:
                            await self.wait_first(waits, self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev(
                            "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                            offset,
                            message.key,
                            message.value,
                        )
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


def drain_inline(consumer: Any) -> None:
    """Make Faust's ``consumer`` deliver fetched messages inline (before the app starts:
    its fetcher looks the loop up when it starts)."""
    consumer._drain_messages = types.MethodType(_drain_messages, consumer)
