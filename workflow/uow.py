"""The unit of work: one SQLAlchemy session and the queries the handlers need.

Handlers see complaints, deadlines and letters through this, never an engine or a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from workflow.schema import Complaint, Deadline, Letter, ProcessedEvent


class UnitOfWork:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory
        self.session: Session = session_factory()

    # -- transactions ------------------------------------------------------------------
    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def close(self) -> None:
        self.session.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A savepoint: one message's changes land together or not at all."""
        with self.session.begin_nested():
            yield

    # -- reads -------------------------------------------------------------------------
    def complaint(self, complaint_id: str) -> Complaint | None:
        return self.session.get(Complaint, complaint_id)

    def reference_taken(self, reference: str) -> bool:
        return bool(
            self.session.scalar(select(exists().where(Complaint.reference == reference)))
        )

    def is_processed(self, event_id: str) -> bool:
        return self.session.get(ProcessedEvent, event_id) is not None

    def letter_exists(self, dedupe_key: str) -> bool:
        return bool(self.session.scalar(select(exists().where(Letter.dedupe_key == dedupe_key))))

    def deadline_exists(self, deadline_key: str) -> bool:
        return bool(
            self.session.scalar(select(exists().where(Deadline.deadline_key == deadline_key)))
        )

    def deadline_by_key(self, deadline_key: str) -> Deadline | None:
        return self.session.scalar(select(Deadline).where(Deadline.deadline_key == deadline_key))

    def next_due_deadline(self, until: datetime) -> Deadline | None:
        """The earliest unfired deadline due at or before `until` (ties: creation order)."""
        return self.session.scalar(
            select(Deadline)
            .where(Deadline.fired_at.is_(None), Deadline.due_at <= until)
            .order_by(Deadline.due_at, Deadline.id)
            .limit(1)
        )

    def earliest_pending_due(self) -> datetime | None:
        return self.session.scalar(
            select(Deadline.due_at)
            .where(Deadline.fired_at.is_(None))
            .order_by(Deadline.due_at, Deadline.id)
            .limit(1)
        )

    # -- writes ------------------------------------------------------------------------
    def add(self, row: object) -> None:
        self.session.add(row)

    def mark_processed(self, event_id: str, now: datetime) -> None:
        self.session.add(ProcessedEvent(event_id=event_id, applied_at=now))
