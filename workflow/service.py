"""One message in, exactly one outcome out: applied, duplicate or rejected.

The same path serves offline ingest (event time) and the Kafka consumer (wall-clock time):
decode, de-duplicate, validate, apply, and store any rejection with its reason, source and
position. Nothing here raises for bad input.

Batches run in one transaction. Every check that can refuse an event runs before its first
change, so the fast path needs no savepoint per message. Should applying a message fail in a
way nobody foresaw (a bug), the batch is rolled back and run again message by message, each
in its own savepoint: that message is then refused as an internal error and the rest apply.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from workflow import events as ev
from workflow.clock import Clock, EventClock, SystemClock
from workflow.handlers import Rejected, Workflow
from workflow.limits import MAX_MESSAGE_BYTES
from workflow.rejections import file_rejection
from workflow.schema import Deadline, OutboxMessage, RawEvent, Rejection
from workflow.unit_of_work import AbstractUnitOfWork

log = logging.getLogger(__name__)

Status = Literal["applied", "duplicate", "rejected"]
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    status: Status
    event_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Message:
    raw: bytes
    source: str  # file path or topic
    position: str  # "line 12" or "partition/offset"
    kind: Literal["event", "deadline"] = "event"


class PoisonedBatch(Exception):
    """An unforeseen error mid-batch: roll back and run the batch carefully."""


class MessageProcessor:
    """Applies raw messages through the workflow; optionally runs event-time deadlines."""

    def __init__(self, workflow: Workflow, event_clock: EventClock | None = None,
                 wall_clock: Clock | None = None) -> None:
        self.workflow = workflow
        self.uow = workflow.uow
        self.wall_clock = wall_clock or SystemClock()
        self.event_clock = event_clock
        self.careful = False
        self._due: DueQueue | None = None
        if event_clock is not None:
            self._due = DueQueue(self.uow)
            workflow.on_deadline_created = self._due.push

    # -- batches --------------------------------------------------------------------------
    def run_batch(self, messages: Sequence[Message]) -> list[Outcome]:
        """Apply messages in one transaction and commit it."""
        return self._transaction(lambda: self._apply_all(messages))

    def run_clock_to(self, until: datetime) -> int:
        """Event time: fire everything due at or before `until` and commit."""
        return self._transaction(lambda: self.advance_to(until))

    def _transaction(self, work: Callable[[], T]) -> T:
        clock_at_start = self.event_clock.now() if self.event_clock else None
        try:
            result = work()
            self.uow.commit()
            return result
        # A constraint or a value the database refuses (IntegrityError, DataError; sqlite3
        # raises OverflowError for an integer beyond 64 bits), or a complaint changed under us
        # (StaleDataError), names no message: find it by re-running the batch one message at
        # a time.
        except (PoisonedBatch, IntegrityError, DataError, OverflowError,
                StaleDataError) as failure:
            log.error("transaction failed (%s); retrying message by message",
                      type(failure.__cause__ or failure).__name__)
            self.uow.rollback()
        if self.event_clock is not None and clock_at_start is not None:
            self.event_clock.rewind_to(clock_at_start)
        if self._due is not None:
            self._due.forget()
        self.careful = True  # each message in its own savepoint (`_guarded`)
        try:
            result = work()
            self.uow.commit()
            return result
        finally:
            self.careful = False

    def _apply_all(self, messages: Sequence[Message]) -> list[Outcome]:
        # Each event's JSON decoded once for the batch's look-ups and its own processing
        # (json.loads was about a tenth of a replay's CPU when both decoded it).
        decoded = [_decode(m.raw) if m.kind == "event" else None for m in messages]
        keys = [_keys(m, d) for m, d in zip(messages, decoded, strict=True)]
        self.uow.prefetch_processed([event_id for event_id, _ in keys if event_id])
        self.workflow.prefetch({cid for _, cid in keys if cid})
        return [
            self._process(m.raw, m.source, m.position, d) if d is not None
            else self.process_deadline(m.raw, m.source, m.position)
            for m, d in zip(messages, decoded, strict=True)
        ]

    # -- one message ----------------------------------------------------------------------
    def process(self, raw: bytes | str, source: str, position: str) -> Outcome:
        raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
        return self._process(raw_bytes, source, position, _decode(raw_bytes))

    def _process(self, raw_bytes: bytes, source: str, position: str,
                 decoded: dict[str, Any] | ev.InvalidEvent) -> Outcome:
        """`process`, given the message's decoded object (or why it cannot be decoded)."""
        if isinstance(decoded, ev.InvalidEvent):
            return self._reject(raw_bytes, source, position, str(decoded), None)
        document = decoded
        event_id = document.get("event_id") if isinstance(document.get("event_id"), str) else None
        if event_id is not None and self.uow.is_processed(event_id):
            return Outcome("duplicate", event_id)
        if self.event_clock is not None:
            clocked = ev.clock_fields(document)
            if clocked is not None:
                self.advance_to(clocked[1])
        try:
            event = ev.validate(document)
        except ev.InvalidEvent as exc:
            return self._reject(raw_bytes, source, position, str(exc), event_id)
        try:
            self._guarded(lambda: self._apply(event, raw_bytes, source, position))
        except Rejected as exc:
            return self._reject(raw_bytes, source, position, str(exc), event_id)
        return Outcome("applied", event.event_id)

    def _apply(self, event: ev.Event, raw: bytes, source: str, position: str) -> None:
        """Apply the event and keep its raw bytes in the global applied order (raw_events),
        in the same transaction (and savepoint) as the change."""
        self.workflow.apply(event)
        self.uow.append(RawEvent,
            event_id=event.event_id, type=event.type,
            complaint_id=getattr(event, "complaint_id", None), occurred_at=event.occurred_at,
            source=source, position=position, raw=raw[:MAX_MESSAGE_BYTES],
            applied_at=self.workflow.clock.now(),
        )

    def process_deadline(self, raw: bytes, source: str, position: str) -> Outcome:
        """A due deadline from the timer service (`complaints.deadlines`): fire it once."""
        try:
            document = ev.decode(raw)
            key = document.get("deadline_key")
            if not isinstance(key, str) or not key:
                raise ev.InvalidEvent("deadline_key is required")
        except ev.InvalidEvent as exc:
            return self._reject(raw, source, position, str(exc), None)
        deadline = self.uow.deadline_by_key(key)
        if deadline is None:
            return self._reject(raw, source, position, f"unknown deadline {key}", None)
        if deadline.fired_at is not None:
            return Outcome("duplicate", f"deadline:{key}")
        self._fire(deadline)
        return Outcome("applied", f"deadline:{key}")

    def _guarded(self, action: Callable[[], object]) -> None:
        if not self.careful:
            try:
                action()
            except Rejected:
                raise
            except Exception as exc:
                raise PoisonedBatch from exc
            return
        pushed = self._due.pushed if self._due is not None else 0
        try:
            with self.uow.atomic():
                action()
        except Exception as exc:
            if self._due is not None and self._due.pushed != pushed:
                # The savepoint took the deadlines it created away: reload the queue from the
                # record, or they would fire later for a complaint that was never stored.
                self._due.forget()
            if isinstance(exc, (Rejected, StaleDataError)):
                # A complaint changed by another writer even on the careful re-run is no fault
                # of the message: the transaction fails, and the consumer reads it again.
                raise
            log.exception("internal error while applying a message")
            raise Rejected(
                f"internal error ({type(exc).__name__}) while applying; nothing was changed "
                "and the event may be sent again once the fault is fixed"
            ) from exc

    def _fire(self, deadline: Deadline) -> None:
        try:
            self._guarded(lambda: self.workflow.fire(deadline))
        except Rejected as exc:
            # Recorded as fired with the failure, so it is visible and does not loop.
            self.uow.record_firing(deadline, self.workflow.clock.now(), f"failed: {exc}")

    # -- event-time deadlines -------------------------------------------------------------
    def advance_to(self, instant: datetime) -> int:
        """Move the event clock forward and fire every deadline now due, in due order."""
        assert self.event_clock is not None
        self.event_clock.advance_to(instant)
        return self.fire_due(self.event_clock.now())

    def fire_due(self, until: datetime) -> int:
        """Fire deadlines due at or before `until`, in (due, creation) order, including those
        created while firing."""
        assert self._due is not None
        fired = 0
        while (deadline := self._due.pop_due(until)) is not None:
            self._fire(deadline)
            fired += 1
        return fired

    # -- rejections -----------------------------------------------------------------------
    def _reject(self, raw: bytes, source: str, position: str, reason: str,
                event_id: str | None) -> Outcome:
        rejected_at = self.wall_clock.now()
        self.uow.append(Rejection,
            rejected_at=rejected_at, source=source, position=position,
            reason=reason, raw=raw[:MAX_MESSAGE_BYTES], event_id=event_id,
        )
        if self.event_clock is not None and self.uow.publishes:
            # Offline (a file's line): its `complaints.rejected` message goes with it. From
            # Kafka the consumer writes the record's own (consumers/workflow_consumer.py).
            self.uow.append(OutboxMessage, **file_rejection(raw, source, position, reason,
                                                             event_id, rejected_at))
        log.info("rejected message at %s %s", source, position)
        return Outcome("rejected", event_id, reason)


class DueQueue:
    """Pending deadlines in (due, creation) order, for event-time processing.

    Offline, this processor is the only one firing deadlines, so it keeps them in a heap
    (loaded once, then fed as deadlines are created) instead of asking the database before
    every event which deadline comes next.
    """

    def __init__(self, uow: AbstractUnitOfWork) -> None:
        self.uow = uow
        self._heap: list[tuple[datetime, int, Deadline | None]] = []
        self._next_order = 0
        self._loaded = False

    def forget(self) -> None:
        """After a rollback: reload from the database when next needed."""
        self._heap, self._loaded = [], False

    @property
    def pushed(self) -> int:
        """Changes whenever a deadline is pushed (a marker, not a count)."""
        return self._next_order

    def push(self, deadline: Deadline) -> None:
        self._load()
        heapq.heappush(self._heap, (deadline.due_at, self._next_order, deadline))
        self._next_order += 1

    def pop_due(self, until: datetime) -> Deadline | None:
        self._load()
        while self._heap and self._heap[0][0] <= until:
            _, order, deadline = heapq.heappop(self._heap)
            if deadline is None:
                deadline = self.uow.deadline(order)  # stored: its order is its id
            if deadline is not None and deadline.fired_at is None:
                return deadline
        return None

    def _load(self) -> None:
        if self._loaded:
            return
        pending = self.uow.pending_deadlines()
        # Stored deadlines order by id; new ones come after all of them, in creation order.
        self._heap = [(due, ident, None) for due, ident in pending]
        heapq.heapify(self._heap)
        self._next_order = max((ident for _, ident in pending), default=0) + 1
        self._loaded = True


def _decode(raw: bytes) -> dict[str, Any] | ev.InvalidEvent:
    """The message's object, or the reason it has none (raised later, where it is rejected)."""
    try:
        return ev.decode(raw)
    except ev.InvalidEvent as exc:
        return exc


def _keys(message: Message,
          decoded: dict[str, Any] | ev.InvalidEvent | None) -> tuple[str | None, str | None]:
    """(event_id, complaint_id) of a message, when it has them: for batch look-ups. Given the
    event's decoded object, read from it: `json.loads` of the same UTF-8 bytes gives the same
    object. Only a message `ev.decode` refuses is read by `json.loads` as before (which
    takes a few such, e.g. one after a byte order mark)."""
    if message.kind != "event":
        return None, None
    if isinstance(decoded, dict):
        document: Any = decoded
    else:
        try:
            document = json.loads(message.raw)
        except ValueError:
            return None, None
    if not isinstance(document, dict):
        return None, None
    event_id, complaint_id = document.get("event_id"), document.get("complaint_id")
    return (event_id if isinstance(event_id, str) else None,
            complaint_id if isinstance(complaint_id, str) else None)
