"""The outbox relay: output events written with each change reach their topics.

Rows are read in id order, produced with an idempotent producer keyed by complaint id, and
marked published only after the broker acknowledged every one of them. A crash between the
two publishes the same rows again with the same `event_id` header and field, which consumers
downstream recognise (docs/contract.md "Events out").

Order: one relay holds a PostgreSQL advisory lock and publishes; others wait as hot standbys,
so output for one complaint leaves in the order it was written. Rows are still claimed with
`FOR UPDATE SKIP LOCKED`, so a second relay that gets in during a hand-over skips rows being
published instead of duplicating them. On SQLite run one relay.

The round and the loop are the timer service's too (consumers/publish_loop.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import Connection, select, text, update

from consumers.producer import OwnedProducer
from consumers.publish_loop import publish_round, run_rounds
from consumers.settings import OUTBOX_TOPICS, Settings
from workflow.bootstrap import App
from workflow.clock import Clock, SystemClock
from workflow.limits import TRANSPORT_MAX_BYTES
from workflow.schema import OutboxMessage

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID = 0x636F6D706C61696E  # "complain": one relay publishes at a time


@dataclass
class RelayStats:
    published: int = 0
    rounds: int = 0


class OutboxRelay:
    def __init__(self, app: App, settings: Settings, *, producer: KafkaProducer | None = None,
                 clock: Clock | None = None, batch: int = 1000, interval: float = 0.2) -> None:
        self.app = app
        self.topics = {logical: settings.topics.name(logical) for logical in OUTBOX_TOPICS}
        self.clock = clock or SystemClock()
        self.batch = batch
        self.interval = interval
        # Rejected messages carry up to 1 MiB of raw input, base64 when it is not text
        # (workflow/limits.py).
        self._producer = OwnedProducer(settings, producer, max_request_size=TRANSPORT_MAX_BYTES)
        self._stop: threading.Event | None = None  # set by run(): bounds a stop's waits
        self.stats = RelayStats()
        self.postgres = app.engine.dialect.name == "postgresql"
        self._lock_connection: Connection | None = None

    @property
    def producer(self) -> KafkaProducer:
        return self._producer.get()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        log.info("outbox relay publishing to %s", ", ".join(self.topics.values()))
        try:
            run_rounds(stop, self.run_once, batch=self.batch, interval=self.interval,
                       ready=self._hold_lock, drain_on_stop=True)
        finally:
            self.close()

    def close(self) -> None:
        self._producer.close()
        if self._lock_connection is not None:
            self._lock_connection.close()  # ends the session: PostgreSQL releases the lock
            self._lock_connection = None
        log.info("outbox relay stopped")

    def _hold_lock(self) -> bool:
        if not self.postgres:
            return True
        if self._lock_connection is not None:
            return True
        connection = self.app.engine.connect()
        got = connection.scalar(text("SELECT pg_try_advisory_lock(:id)"),
                                {"id": ADVISORY_LOCK_ID})
        connection.commit()
        if got:
            log.info("outbox relay is the active publisher")
            self._lock_connection = connection
            return True
        connection.close()
        log.debug("another outbox relay is publishing; standing by")
        return False

    def run_once(self) -> int:
        """Publish and mark one round of unpublished rows; returns how many."""
        started = time.monotonic()
        query = (select(OutboxMessage.id, OutboxMessage.event_id, OutboxMessage.topic,
                        OutboxMessage.key, OutboxMessage.payload)
                 .where(OutboxMessage.published_at.is_(None))
                 .order_by(OutboxMessage.id).limit(self.batch))
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        rows = publish_round(
            self.app, lambda: self.producer, query, self._send,
            lambda rows: (update(OutboxMessage)
                          .where(OutboxMessage.id.in_([r.id for r in rows]))
                          .values(published_at=self.clock.now())),
            skip_locked=self.postgres, stop=self._stop)
        if not rows:
            return 0
        self.stats.published += len(rows)
        self.stats.rounds += 1
        log.debug("published %d outbox row(s) in %.0f ms", len(rows),
                  (time.monotonic() - started) * 1000)
        return len(rows)

    def _send(self, row: Any) -> Any:
        topic = self.topics.get(row.topic)
        if topic is None:
            raise ValueError(f"outbox row {row.id} names unknown topic {row.topic!r}")
        payload: dict[str, Any] = row.payload
        headers = [("event_id", row.event_id.encode())]
        if isinstance(payload.get("type"), str):
            headers.append(("type", payload["type"].encode()))
        return self.producer.send(
            topic, key=row.key.encode() if row.key else None,
            value=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
            headers=headers)
