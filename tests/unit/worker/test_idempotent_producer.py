"""The worker's outputs go through an idempotent producer waiting for all in-sync replicas
(Faust asks for idempotence only inside transactions)."""

import asyncio

from engine.worker.app import build_app
from engine.worker.faust_internals.producer import IdempotentProducer
from engine.worker.settings import WorkerSettings


def test_the_worker_app_builds_an_idempotent_aiokafka_producer(tmp_path):
    app = build_app(WorkerSettings(data_dir=tmp_path / "data"))
    producer = app.producer
    assert isinstance(producer, IdempotentProducer)

    async def built():
        # The aiokafka producer Faust would start, without connecting it.
        return producer._new_producer()

    kafka_producer = asyncio.run(built())
    assert kafka_producer._txn_manager is not None  # aiokafka's sequence numbers per partition
    assert kafka_producer._sender._acks == -1  # "all"


def test_a_plain_faust_app_keeps_faust_s_own_producer(tmp_path):
    import faust

    app = faust.App("plain", broker="kafka://127.0.0.1:1", store="memory://",
                    datadir=str(tmp_path))
    assert type(app.producer) is not IdempotentProducer
