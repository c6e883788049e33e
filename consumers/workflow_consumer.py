"""The workflow consumer: `complaints.events` and `complaints.deadlines` into the record.

A batch is polled, every record goes through the same `MessageProcessor` as offline ingest, the
database commits, and only then are the Kafka offsets committed (DESIGN.md "Processing an
event, exactly once in effect"). A crash between the two repeats the batch; the
processed-events table turns the repeat into duplicates, and a rejected record leaves an
outbox row (`rejected:<topic>:<partition>:<offset>`) that marks it as already handled.

Failures: a database error rolls the batch back and seeks to the batch's first offsets, so it
is polled again (concurrent consumers racing on a complaint lose on the version column and
retry from the stored state). A batch that keeps failing is retried one record at a time, and
a record that still fails on its own while the database answers is quarantined as a rejection
("internal error ..."), so no message can stop the loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from consumers.logtext import short
from consumers.offsets import (
    AssignmentWatch,
    DoneOffsets,
    ForgetRevoked,
    Record,
    first_offsets,
    next_offsets,
)
from consumers.settings import Settings
from consumers.stopping import close_consumer
from workflow.bootstrap import App
from workflow.clock import Clock, SystemClock
from workflow.limits import MAX_MESSAGE_BYTES, TRANSPORT_MAX_BYTES
from workflow.rejections import bytes_field
from workflow.schema import OutboxMessage, Rejection
from workflow.service import Message, Outcome
from workflow.uow import UnitOfWork

log = logging.getLogger(__name__)

ATTEMPTS = 3  # failures of one batch (then of one record) before narrowing down
# Quarantines in a row, with nothing applied between them, that mean the fault is not in the
# messages (a broken deploy, a schema out of date): stop quarantining, retry and wait instead
# of moving the whole stream to the rejections.
QUARANTINE_STREAK = 3


class Processor(Protocol):
    def run_batch(self, messages: Sequence[Message]) -> list[Outcome]: ...


ProcessorFactory = Callable[[UnitOfWork], Processor]


@dataclass
class ConsumerStats:
    """Running totals, read by `complaints up` for its log lines and exit summary."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    quarantined: int = 0
    rebalances: int = 0  # partition assignments received (the first one included)

    def count(self, outcome: Outcome) -> None:
        self.records += 1
        if outcome.status == "applied":
            self.applied += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1


def position_of(record: Record) -> str:
    return f"{record.partition}/{record.offset}"


def rejection_event_id(record: Record) -> str:
    return f"rejected:{record.topic}:{record.partition}:{record.offset}"


def _outbox_key(key: bytes | None) -> str:
    """The rejected message's key for the outbox column (64 chars): as received when it fits."""
    if key is None:
        return ""
    try:
        text_key = key.decode("utf-8")
        if len(text_key) <= 64:
            return text_key
    except UnicodeDecodeError:
        pass
    return "sha256:" + hashlib.sha256(key).hexdigest()[:57]


def rejection_message(record: Record, reason: str, event_id: str | None,
                      rejected_at: datetime) -> OutboxMessage:
    """The `complaints.rejected` message for a record, as an outbox row."""
    raw: bytes = record.value or b""
    payload = {
        "event_id": rejection_event_id(record),
        "type": "message.rejected",
        "reason": reason,
        "rejected_at": rejected_at.isoformat(),
        "source": record.topic,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "position": position_of(record),
        "timestamp_ms": record.timestamp,
        "original_event_id": event_id,
        "key": bytes_field(record.key),
        "headers": [{"key": k, **bytes_field(v)} for k, v in (record.headers or [])],
        "raw": bytes_field(raw[:MAX_MESSAGE_BYTES]),
        "raw_size": len(raw),
        "raw_truncated": len(raw) > MAX_MESSAGE_BYTES,
    }
    return OutboxMessage(event_id=payload["event_id"], topic="rejected",
                         key=_outbox_key(record.key), payload=payload, created_at=rejected_at)


def consumer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **settings.client_config(),
        "group_id": settings.group_id,
        "client_id": f"complaints-workflow-{socket.gethostname()}-{os.getpid()}",
        "enable_auto_commit": False,  # offsets follow the database commit, never precede it
        "auto_offset_reset": "earliest",  # a new group starts from the first retained event
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.session_timeout_ms // 3),
        "max_poll_records": 500,
        # A message over the contract's 1 MiB limit must still be fetched, to be rejected.
        "max_partition_fetch_bytes": TRANSPORT_MAX_BYTES,
        # Made while the broker is down, the consumer gives up (and is made again after a
        # back-off) within a stop's bound instead of kafka-python's 30 s.
        "bootstrap_timeout_ms": 5_000,
    }
    config.update(overrides)
    return config


class WorkflowConsumer:
    """One consumer-group member. `run(stop)` until `stop` is set, then commit and close."""

    def __init__(self, app: App, settings: Settings, *, clock: Clock | None = None,
                 processor_factory: ProcessorFactory | None = None,
                 config: Mapping[str, Any] | None = None, poll_timeout_ms: int = 500) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock or SystemClock()
        self.processor_factory: ProcessorFactory = (
            processor_factory or (lambda uow: app.processor(self.clock, uow)))
        self.config = consumer_config(settings, **(config or {}))
        self.poll_timeout_ms = poll_timeout_ms
        self.stats = ConsumerStats()
        self.topics = (settings.topics.events, settings.topics.deadlines)
        self._offsets = DoneOffsets("workflow")
        self._failures = 0  # consecutive failed attempts at the current batch
        self._one_at_a_time = 0  # records still to take singly after repeated failures
        self._quarantine_streak = 0
        self._listener = ForgetRevoked(self._offsets, self._count_rebalance)

    def assigned_partitions(self) -> int | None:
        """Partitions owned now; None before the group assigned any (consumers.health)."""
        assigned = self._listener.assigned
        return None if assigned is None else len(assigned)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        consumer = KafkaConsumer(**self.config)
        self._listener.assigned = None  # a new member: not joined yet
        consumer.subscribe(list(self.topics), listener=self._listener)
        log.info("workflow consumer in group %s on %s", self.settings.group_id,
                 ", ".join(self.topics))
        watch = AssignmentWatch(self._listener, consumer, self.settings.assignment_timeout_s)
        try:
            while not stop.is_set():
                self.poll_once(consumer)
                watch.check()
        finally:
            self._commit_kafka(consumer, {})
            close_consumer(consumer)
            log.info("workflow consumer closed")

    def poll_once(self, consumer: KafkaConsumer) -> int:
        """Poll one batch and process it; returns the number of records taken."""
        max_records = 1 if self._one_at_a_time else None
        polled = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=max_records)
        records = [r for batch in polled.values() for r in batch]
        if not records:
            self._commit_kafka(consumer, {})  # retries a commit that failed earlier
            return 0
        started = time.monotonic()
        try:
            counts = self._apply(records)
        except Exception as exc:  # noqa: BLE001 - every failure is retried or quarantined
            self._failed(consumer, records, exc)
            return len(records)
        self._failures = 0
        self._quarantine_streak = 0
        self._one_at_a_time = max(0, self._one_at_a_time - len(records))
        self._commit_kafka(consumer, next_offsets(records))
        self.stats.batches += 1
        log.debug("batch of %d in %.0f ms: %s", len(records),
                  (time.monotonic() - started) * 1000, counts)
        return len(records)

    # -- one batch, one database transaction -------------------------------------------------
    def _apply(self, records: list[Record]) -> dict[str, int]:
        # A fresh unit of work per batch: nothing read before a rebalance (when another
        # member may have changed a complaint) is trusted after it.
        uow = _RejectionsToOutbox(self.app.sessions, self.clock)
        try:
            take_write_lock(uow)
            handled = self._already_rejected(uow, records)
            todo = [r for r in records if rejection_event_id(r) not in handled]
            outcomes = [Outcome("duplicate", None, "rejected before")] * (len(records) - len(todo))
            if todo:
                uow.expect(todo)
                messages = [Message(r.value if r.value is not None else b"", r.topic,
                                    position_of(r),
                                    "deadline" if r.topic == self.settings.topics.deadlines
                                    else "event")
                            for r in todo]
                # Commits (with the rejected records' outbox rows, see _RejectionsToOutbox).
                outcomes += self.processor_factory(uow).run_batch(messages)
            else:
                uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()
        counts: dict[str, int] = {}
        for outcome in outcomes:
            self.stats.count(outcome)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    @staticmethod
    def _already_rejected(uow: UnitOfWork, records: list[Record]) -> set[str]:
        """Records of this batch rejected by an earlier, committed attempt (one query)."""
        ids = [rejection_event_id(r) for r in records]
        found = uow.session.scalars(
            select(OutboxMessage.event_id).where(OutboxMessage.event_id.in_(ids)))
        return set(found)

    # -- failures -----------------------------------------------------------------------------
    def _failed(self, consumer: KafkaConsumer, records: list[Record], exc: Exception) -> None:
        self.stats.retries += 1
        self._failures += 1
        first = records[0]
        log.warning("batch of %d from %s %s failed (attempt %d): %s: %s", len(records),
                    first.topic, position_of(first), self._failures, type(exc).__name__,
                    short(exc))
        if len(records) == 1 and self._failures >= ATTEMPTS and self._poison(exc):
            self._quarantine(consumer, first, exc)
            return
        # Narrowing down finds a record that fails on its own; with the database gone every
        # record fails, and the batch would then be applied one record per transaction once
        # it is back: retry it whole instead.
        if self._failures >= ATTEMPTS and len(records) > 1 and not _database_gone(exc):
            self._one_at_a_time = len(records)  # find the record that fails on its own
            self._failures = 0
        self._rewind(consumer, records)
        time.sleep(min(5.0, 0.1 * 2 ** min(self._failures, 6)))

    def _poison(self, exc: Exception) -> bool:
        """A failure that follows the message, not the infrastructure or the code."""
        if self._quarantine_streak >= QUARANTINE_STREAK:
            log.error("%d records in a row failed alone: not quarantining more; retrying "
                      "until the fault is fixed", self._quarantine_streak)
            return False
        if isinstance(exc, OperationalError | InterfaceError) or (
                isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return False
        try:  # the database answers, so the record itself is the problem
            with self.app.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            return False
        return True

    def _quarantine(self, consumer: KafkaConsumer, record: Record, exc: Exception) -> None:
        reason = f"internal error while processing: {type(exc).__name__}: {short(exc)}"
        now = self.clock.now()
        raw: bytes = record.value or b""
        uow = self.app.unit_of_work()
        try:
            if not self._already_rejected(uow, [record]):
                uow.session.add(Rejection(
                    rejected_at=now, source=record.topic, position=position_of(record),
                    reason=reason, raw=raw[:MAX_MESSAGE_BYTES], event_id=None))
                uow.session.add(rejection_message(record, reason, None, now))
            uow.commit()
        finally:
            uow.close()
        log.error("quarantined %s %s: %s", record.topic, position_of(record), reason)
        self.stats.quarantined += 1
        self._quarantine_streak += 1
        self.stats.rejected += 1
        self.stats.records += 1
        self._failures = 0
        self._one_at_a_time = max(0, self._one_at_a_time - 1)
        self._commit_kafka(consumer, next_offsets([record]))

    @staticmethod
    def _rewind(consumer: KafkaConsumer, records: list[Record]) -> None:
        """Seek every partition of the batch back to its first record, to poll it again."""
        assigned = consumer.assignment()
        for tp, offset in first_offsets(records).items():
            if tp in assigned:  # a revoked partition is re-read by its new owner instead
                consumer.seek(tp, offset)

    # -- Kafka offsets ----------------------------------------------------------------------
    def _commit_kafka(self, consumer: KafkaConsumer,
                      offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit offsets whose records are committed in the database (and earlier leftovers)."""
        self._offsets.commit(consumer, offsets)

    def _count_rebalance(self) -> None:
        self.stats.rebalances += 1


class _RejectionsToOutbox(UnitOfWork):
    """Adds a `complaints.rejected` outbox row for every record of the batch that the
    processor rejected, in the transaction that stores the rejection, just before it commits.

    The processor records rejections in the `rejections` table; the rows of this batch are
    those above the highest id seen before it began, from this batch's topic positions.
    """

    def __init__(self, sessions: Callable[[], Session], clock: Clock) -> None:
        super().__init__(sessions)
        self.clock = clock
        self._records: dict[tuple[str, str], Record] = {}
        self._before = 0

    def expect(self, records: list[Record]) -> None:
        self._records = {(r.topic, position_of(r)): r for r in records}
        self._before = self.session.scalar(select(func.max(Rejection.id))) or 0

    def commit(self) -> None:
        if self._records:
            self.flush()
            rows = self.session.execute(
                select(Rejection.source, Rejection.position, Rejection.reason,
                       Rejection.event_id)
                .where(Rejection.id > self._before,
                       Rejection.source.in_({topic for topic, _ in self._records})))
            now = self.clock.now()
            for row in rows:
                record = self._records.get((row.source, row.position))
                if record is not None:
                    self.session.add(rejection_message(record, row.reason, row.event_id, now))
        super().commit()
        self._records = {}


def take_write_lock(uow: UnitOfWork) -> None:
    """SQLite: make the batch's transaction a writer from its first statement.

    A transaction that reads first and writes later fails at once with "database is locked"
    when another connection (the relay, the timer) committed in between: SQLite cannot
    upgrade a stale read snapshot. A first statement that writes waits (busy_timeout) for
    the lock instead, and every read after it sees the latest data. PostgreSQL: nothing.
    """
    if uow.session.get_bind().dialect.name == "sqlite":
        uow.session.execute(text("DELETE FROM outbox WHERE 0"))


def _database_gone(exc: BaseException) -> bool:
    """The connection failed (server down, restarting, unreachable), not a statement."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)
