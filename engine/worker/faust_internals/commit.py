"""The worker's hooks into Faust's offset commit: each commit waits until the state and outputs
of the events it covers are in Kafka.

``WorkerMonitor`` notes the keys the committed events changed as a commit starts;
``outputs_reach_kafka_before_offsets`` wraps Faust's ``Consumer._commit_offsets`` (Faust has no
hook between flushing its producer and committing) to write that state and wait for it first.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.sensors import Monitor

from engine.worker.in_flight import InFlight
from engine.worker.state import FLUSH_PAUSE_S, TableStore

log = logging.getLogger("yujing.worker")


class WorkerMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping, and the worker's commit hook.

    Faust calls every sensor four to six times per message (in, into the stream, out of it,
    acked, sent, send completed). Its default monitor keeps statistics for Faust's web views,
    which the worker does not serve (its figures are Prometheus metrics counted per batch), so
    those hooks do nothing here; rebalance and commit hooks, a few a minute, keep Faust's.

    ``on_commit_initiated`` notes the keys the committed events changed (Faust reads the
    acknowledged offsets right after it); the commit writes them before the offsets (see
    ``outputs_reach_kafka_before_offsets``), so no committed event's state is missing.
    """

    def __init__(self, store: TableStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.store.mark_for_commit()
        return super().on_commit_initiated(consumer)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None


def outputs_reach_kafka_before_offsets(app: Any, store: TableStore,
                                         in_flight: InFlight) -> None:
    """Make each offset commit wait until the broker has what the committed events produced.

    ``WorkerMonitor`` notes the keys the committed events changed as the commit starts; Faust
    then flushes its own producer (alerts, re-keyed events) and commits, but knows nothing of
    the state. Faust has no hook between the two, so the consumer's ``_commit_offsets`` is
    wrapped to write that state (through the ``ChangelogWriter``) and wait for ``in_flight``
    first."""
    consumer = app.consumer
    commit_offsets = getattr(consumer, "_commit_offsets", None)
    if commit_offsets is None:
        log.warning("this Faust has no Consumer._commit_offsets: offsets may be committed "
                    "before the records their events produced reach Kafka (state is then "
                    "written by the timer only)")
        return

    # Bounded: a commit runs inside a rebalance too, which must finish within the session.
    timeout = app.conf.broker_session_timeout / 3

    async def after_the_outputs(offsets: Any, start_new_transaction: bool = True) -> bool:
        # Pauses let events through while the state is written; with the flow stopped (a
        # rebalance) there are none to let through, and the rebalance waits for the commit.
        await store.flush_for_commit(pause_s=FLUSH_PAUSE_S if consumer.flow_active else 0.0)
        if not await in_flight.delivered(timeout):
            return False  # committed later (or read again by the next owner): at least once
        return bool(await commit_offsets(offsets, start_new_transaction=start_new_transaction))

    consumer._commit_offsets = after_the_outputs
