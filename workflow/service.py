"""One message in, exactly one outcome out: applied, duplicate or rejected.

The same path serves offline ingest (event time) and the Kafka consumer (wall-clock time):
decode, de-duplicate, validate, apply inside a savepoint, and store any rejection with its
reason, source and position. Nothing here raises for bad input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from workflow import events as ev
from workflow.clock import Clock, EventClock, SystemClock
from workflow.handlers import Rejected, Workflow
from workflow.schema import Deadline, Rejection

log = logging.getLogger(__name__)
RAW_LIMIT = ev.MAX_MESSAGE_BYTES

Status = Literal["applied", "duplicate", "rejected"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    event_id: str | None = None
    reason: str | None = None


class MessageProcessor:
    """Applies raw messages through the workflow; optionally runs event-time deadlines."""

    def __init__(self, workflow: Workflow, event_clock: EventClock | None = None,
                 wall_clock: Clock | None = None) -> None:
        self.workflow = workflow
        self.wall_clock = wall_clock or SystemClock()
        self.uow = workflow.uow
        self.event_clock = event_clock
        self._next_due: datetime | None = None
        self._next_due_known = False
        if event_clock is not None:
            workflow.on_deadline_created = self._deadline_created

    def process(self, raw: bytes | str, source: str, position: str) -> Outcome:
        raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
        try:
            document = ev.decode(raw_bytes)
        except ev.InvalidEvent as exc:
            return self._reject(raw_bytes, source, position, str(exc), None)
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
            with self.uow.atomic():
                self.workflow.apply(event)
        except Rejected as exc:
            return self._reject(raw_bytes, source, position, str(exc), event_id)
        return Outcome("applied", event.event_id)

    # -- event-time deadlines -------------------------------------------------------------
    def advance_to(self, instant: datetime) -> int:
        """Move the event clock forward and fire every deadline now due, in due order."""
        assert self.event_clock is not None
        self.event_clock.advance_to(instant)
        return self.fire_due(self.event_clock.now())

    def fire_due(self, until: datetime) -> int:
        """Fire deadlines due at or before `until`, including those created while firing."""
        fired = 0
        while self._might_be_due(until):
            deadline = self.uow.next_due_deadline(until)
            if deadline is None:
                self._next_due_known = False
                break
            with self.uow.atomic():
                self.workflow.fire(deadline)
            fired += 1
            self._next_due_known = False
        return fired

    def _might_be_due(self, until: datetime) -> bool:
        # Skips the query on the common path (nothing due) during ingest: the processor
        # creates every deadline itself, so it knows the earliest pending one.
        if not self._next_due_known:
            self._next_due = self.uow.earliest_pending_due()
            self._next_due_known = True
        return self._next_due is not None and self._next_due <= until

    def _deadline_created(self, deadline: Deadline) -> None:
        if self._next_due_known and (self._next_due is None or deadline.due_at < self._next_due):
            self._next_due = deadline.due_at

    # -- rejections -----------------------------------------------------------------------
    def _reject(self, raw: bytes, source: str, position: str, reason: str,
                event_id: str | None) -> Outcome:
        self.uow.add(Rejection(
            rejected_at=self.wall_clock.now(), source=source, position=position,
            reason=reason, raw=raw[:RAW_LIMIT], event_id=event_id,
        ))
        log.info("rejected %s at %s: %s", source, position, reason)
        return Outcome("rejected", event_id, reason)
