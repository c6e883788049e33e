"""The service's Kafka producers: idempotent, made on first use, closed by their owner."""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from consumers.settings import Settings
from consumers.stopping import FLUSH_WAIT_S, KAFKA_CALL_TIMEOUT_S, await_delivery


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
        """Bounded: what is not acknowledged by then was not marked published, and goes out
        again on the next start.

        kafka-python's own flush, and the flush its `close` begins with, wait their timeout
        for each incomplete batch in turn (a relay round can hold dozens): 3 s became 10 s
        past a stop with the broker gone, and the close then gave up anyway. So the flush is
        bounded here (`await_delivery`); what is still unacknowledged then is abandoned."""
        if self._producer is None:
            return
        flushed = True
        # Only a caller that asks waits: what the relay and the timer sent and saw
        # acknowledged is marked published, and what is still in flight was not, so waiting
        # for it here would only spare a re-send (which the consumers ignore).
        if flush or self._owned:
            try:
                await_delivery(self._producer, [],
                               timeout_s=KAFKA_CALL_TIMEOUT_S if flush else FLUSH_WAIT_S)
            except KafkaTimeoutError:
                flushed = False
        if self._owned:
            if not flushed:
                abandon_unacknowledged(self._producer)
            with contextlib.suppress(KafkaTimeoutError):
                self._producer.close(timeout=KAFKA_CALL_TIMEOUT_S)
            self._producer = None


def abandon_unacknowledged(producer: KafkaProducer) -> None:
    """Stop the producer's sender without waiting for the broker, failing its unsent batches.

    kafka-python has no public call for this: `close(timeout=0)` still begins with a flush,
    which raises at the first incomplete batch, and leaves the producer open; its `__del__`
    then closes it again with a 1 s wait per batch whenever it is collected. The sender's own
    `force_close` (what `close` falls back to after a timed-out join) aborts the incomplete
    batches, so the `close` that follows has nothing to wait for."""
    sender = getattr(producer, "_sender", None)
    if sender is None or not hasattr(sender, "force_close"):
        return
    sender.force_close()
    sender.join(KAFKA_CALL_TIMEOUT_S)
