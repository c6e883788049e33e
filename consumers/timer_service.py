"""The timer service: due deadline rows become messages on `complaints.deadlines`.

Each round claims the due rows (earliest first), publishes them keyed by complaint id, waits
for the broker's acknowledgement, and only then marks them published. Firing happens in the
workflow consumer, which re-checks the complaint and ignores a deadline already fired, so a
message published twice (a crash between publish and mark, or the re-publish of a message
that never arrived) is harmless.

Claiming: PostgreSQL `FOR UPDATE SKIP LOCKED`, so several timer services share the work; on
SQLite run one. The claim reads the partial index on `due_at` over unfired rows, so a round
costs what is due, not what is pending.

The round and the loop are the outbox relay's too (consumers/publish_loop.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import Select, or_, select, update

from consumers.producer import OwnedProducer
from consumers.publish_loop import publish_round, run_rounds
from consumers.settings import Settings
from workflow.bootstrap import App
from workflow.clock import Clock, SystemClock
from workflow.schema import Deadline

log = logging.getLogger(__name__)

# A published deadline still unfired after this long is published again: its message may have
# been lost (e.g. a topic recreated). The consumer's fire is idempotent.
REPUBLISH_AFTER = timedelta(minutes=10)


@dataclass
class TimerStats:
    published: int = 0
    republished: int = 0
    rounds: int = 0


def deadline_message(key: str, complaint_id: str, kind: str, due_at: datetime) -> dict[str, Any]:
    return {"event_id": f"deadline:{key}", "deadline_key": key, "complaint_id": complaint_id,
            "kind": kind, "due_at": due_at.isoformat()}


class TimerService:
    def __init__(self, app: App, settings: Settings, *, producer: KafkaProducer | None = None,
                 clock: Clock | None = None, batch: int = 1000, interval: float = 1.0,
                 republish_after: timedelta | None = None) -> None:
        self.app = app
        self.topic = settings.topics.deadlines
        self.clock = clock or SystemClock()
        self.batch = batch
        self.interval = interval
        # COMPLAINTS_DEADLINE_REPUBLISH_S (600 s, REPUBLISH_AFTER) unless given.
        self.republish_after = republish_after or timedelta(seconds=settings.deadline_republish_s)
        self._producer = OwnedProducer(settings, producer)
        self._stop: threading.Event | None = None  # set by run(): bounds a stop's waits
        self.stats = TimerStats()
        self.skip_locked = app.engine.dialect.name == "postgresql"

    @property
    def producer(self) -> KafkaProducer:
        return self._producer.get()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        log.info("timer service publishing due deadlines to %s", self.topic)
        try:
            # A full round means more may be due right now: the next starts at once.
            run_rounds(stop, self.run_once, batch=self.batch, interval=self.interval)
        finally:
            self.close()

    def close(self) -> None:
        self._producer.close()
        log.info("timer service stopped")

    def claim_query(self, now: datetime) -> Select:  # type: ignore[type-arg]
        query = (
            select(Deadline.id, Deadline.deadline_key, Deadline.complaint_id, Deadline.kind,
                   Deadline.due_at, Deadline.published_at)
            .where(Deadline.fired_at.is_(None), Deadline.due_at <= now,
                   or_(Deadline.published_at.is_(None),
                       Deadline.published_at < now - self.republish_after))
            .order_by(Deadline.due_at, Deadline.id)
            .limit(self.batch)
        )
        if self.skip_locked:
            query = query.with_for_update(skip_locked=True)
        return query

    def run_once(self) -> int:
        """Claim, publish and mark one round of due deadlines; returns how many."""
        started = time.monotonic()
        now = self.clock.now()
        rows = publish_round(
            self.app, lambda: self.producer, self.claim_query(now), self._send,
            lambda rows: (update(Deadline).where(Deadline.id.in_([r.id for r in rows]))
                          .values(published_at=now)),
            skip_locked=self.skip_locked, stop=self._stop)
        if not rows:
            return 0
        again = sum(1 for r in rows if r.published_at is not None)
        self.stats.published += len(rows)
        self.stats.republished += again
        self.stats.rounds += 1
        log.info("published %d due deadline(s)%s in %.0f ms", len(rows),
                 f" ({again} again, unfired after {self.republish_after})" if again else "",
                 (time.monotonic() - started) * 1000)
        return len(rows)

    def _send(self, row: Any) -> Any:
        value = deadline_message(row.deadline_key, row.complaint_id, row.kind, row.due_at)
        return self.producer.send(
            self.topic, key=row.complaint_id.encode(),
            value=json.dumps(value, separators=(",", ":")).encode(),
            headers=[("event_id", value["event_id"].encode())])
