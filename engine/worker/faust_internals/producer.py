"""Faust's aiokafka producer with idempotence on for every output, not only in transactions.

Faust asks aiokafka for ``enable_idempotence`` only while a transaction is open
(``Producer._settings_extra``). Without it a send retried after a lost acknowledgement can be
written twice, and a retried batch can land behind a later one; the worker's alerts, dead
letters and re-keyed events are the records the verifier counts, so they go through an
idempotent producer (which aiokafka requires to wait for all in-sync replicas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Producer


class IdempotentProducer(Producer):
    """Faust's producer asking aiokafka for idempotence and ``acks=all`` on every send."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def idempotent_outputs(app: faust.App) -> None:
    """Make ``app`` build ``IdempotentProducer``s (set before the app starts its producer)."""
    # The transport is built on first use, and the app's producer from it: an attribute on the
    # instance replaces the driver's class-level ``Producer`` for this app only.
    app.transport.Producer = IdempotentProducer
