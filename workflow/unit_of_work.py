"""The unit-of-work seam: what the handlers and the message processor need of a store.

Two implementations: `workflow.uow.UnitOfWork` (SQLAlchemy: the speed layer, bulk writes,
plan handling, all behind this seam) and `workflow.memory_uow.MemoryUnitOfWork` (rows held
in memory, changed in place with an undo log: the rule scenarios in milliseconds, and the
replays of `complaints simulate` without a database, consumers/replay_store.py).
`workflow.bootstrap` hands out either.

The repositories, by what they hold:
- complaints: `complaint`, `prefetch_complaints`, `add`, `reference_taken`,
  `prefetch_references`; a complaint read in a transaction is changed in place and written at
  its commit;
- deadlines: `add`, `deadline_by_key`, `deadline`, `pending_deadlines`, `record_firing`;
- letters: `letter_exists`, and with the history, `record_of`;
- processed ids: `mark_processed`, `is_processed`, `prefetch_processed`;
- append-only rows (history, outbox, letters, deliveries, rejections, raw events, receipts,
  category changes, resolutions, contacts, accounts snapshots): `append(Model, **values)`.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from workflow.schema import Base, Complaint, Deadline

Record = tuple[list[tuple[str, datetime, dict[str, Any]]], list[tuple[str, datetime]]]


class AbstractUnitOfWork(Protocol):
    """How rows are written (buffered, bulk, through a session) is the implementation's own
    affair: a caller only commits, rolls back, or wraps a message in `atomic()`."""

    # False for a record that publishes nothing (a what-if replay keeping no outbox): the
    # handlers then build no outbox payloads, about 7 % of a replay's time.
    @property
    def publishes(self) -> bool: ...

    # False for a record that keeps no letter's context (a what-if replay counting returns):
    # the handlers then build none (three model dumps and a dozen dates a letter).
    @property
    def keeps_letter_contexts(self) -> bool: ...

    # False where a history entry of this type would be kept nowhere (a what-if replay keeps
    # only what letters summarise): the handlers then build no entry (an event's full dump).
    def records_history(self, entry_type: str) -> bool: ...

    # -- transactions
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def atomic(self) -> AbstractContextManager[None]:
        """A savepoint: one message's changes land together or not at all."""
        ...

    # -- complaints
    def prefetch_complaints(self, complaint_ids: set[str]) -> set[str]:
        """Load a batch's complaints; returns those that do not exist yet, for
        `prefetch_references` (a store with nothing to fetch ahead may name none)."""
        ...
    def complaint(self, complaint_id: str) -> Complaint | None: ...
    def prefetch_references(self, candidates: set[str]) -> None: ...
    def reference_taken(self, reference: str) -> bool: ...

    # -- processed ids
    def prefetch_processed(self, event_ids: list[str]) -> None: ...
    def is_processed(self, event_id: str) -> bool: ...
    def mark_processed(self, event_id: str, now: datetime) -> None: ...

    # -- letters and the record a letter summarises
    def letter_exists(self, complaint_id: str, dedupe_key: str) -> bool: ...
    def record_of(self, complaint_id: str, types: Collection[str], *,
                  letters: bool = True) -> Record:
        """History entries `(type, at, detail)` of the given types in applied order, and (if
        asked) letters `(kind, issued_at)` stored in issue order then this transaction's."""
        ...

    # -- deadlines
    def deadline_by_key(self, deadline_key: str) -> Deadline | None: ...
    def deadline(self, deadline_id: int) -> Deadline | None: ...
    def pending_deadlines(self) -> list[tuple[datetime, int]]:
        """(due, id) of every stored unfired deadline."""
        ...
    def record_firing(self, deadline: Deadline, at: datetime, outcome: str) -> None: ...

    # -- writes
    def add(self, row: Complaint | Deadline) -> None:
        """A new complaint or deadline: rows read back and changed later."""
        ...
    def append(self, model: type[Base], **values: Any) -> None:
        """A row that is only ever inserted."""
        ...
