"""The service's Kafka producers: idempotent, made on first use, closed by their owner."""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from consumers.settings import Settings
from consumers.stopping import KAFKA_CALL_TIMEOUT_S


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """An idempotent producer (kafka-python 3's default, stated here because it matters)."""
    config: dict[str, Any] = {
        **settings.client_config(),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        # send() waits for metadata at most this long (kafka-python: 60 s), so that a component
        # with the broker gone notices a stop in time; flushes are bounded by their callers.
        "max_block_ms": 10_000,
        "bootstrap_timeout_ms": 5_000,  # made while the broker is down: kafka-python waits 30 s
    }
    config.update(overrides)
    return config


class OwnedProducer:
    """A component's producer: the one handed in (tests share one, and close it themselves),
    or one made from the settings on first use, which `close` then closes."""

    def __init__(self, settings: Settings, given: KafkaProducer | None = None,
                 **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._producer = given
        self._owned = given is None

    def get(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(**producer_config(self._settings, **self._overrides))
        return self._producer

    def close(self, *, flush: bool = False) -> None:
        if self._producer is None:
            return
        if flush:
            with contextlib.suppress(KafkaTimeoutError):
                self._producer.flush(timeout=KAFKA_CALL_TIMEOUT_S)
        if self._owned:
            # Bounded: what is not acknowledged by then was not marked published, and goes
            # out again on the next start.
            self._producer.close(timeout=KAFKA_CALL_TIMEOUT_S)
            self._producer = None
