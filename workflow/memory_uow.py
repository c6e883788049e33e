"""A unit of work over rows held in memory: dicts and lists, no database.

For unit tests (the rule scenarios run in milliseconds) and for anything that replays events
without keeping a record. It keeps what the database's constraints and transactions give the
SQLAlchemy unit of work: a commit makes a transaction's rows visible, a rollback or a failed
savepoint takes them away, and a row breaking a unique key fails the same way
(`IntegrityError`), so the processor's careful re-run finds the message at fault.

A complaint or deadline read in a transaction is a copy of the stored one: changing it
changes the store only at the commit.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any, TypeVar

from sqlalchemy import Table, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import String

from workflow.schema import (
    Base,
    Complaint,
    Deadline,
    Delivery,
    HistoryEntry,
    Letter,
    ProcessedEvent,
)
from workflow.unit_of_work import Record
from workflow.uow import APPEND_ONLY

M = TypeVar("M", bound=Base)


def _unique_columns(table: Table) -> tuple[str, ...]:
    """The columns a database would refuse a repeated value in (autoincrement ids aside)."""
    return tuple(c.key for c in table.columns
                 if c.unique or (c.primary_key and isinstance(c.type, String)))


_UNIQUE: dict[str, tuple[str, ...]] = {
    name: _unique_columns(table) for name, table in Base.metadata.tables.items()}


def _with_defaults(row: M) -> M:
    """Unset columns at their defaults, as an INSERT would leave them."""
    values = inspect(row).dict
    for column in row.__table__.columns:
        if column.key in values:
            continue
        default = column.default
        if column.key == "version":
            value: Any = 1
        elif default is None:
            value = None
        elif default.is_scalar:
            value = default.arg  # type: ignore[attr-defined]
        else:
            value = default.arg(None)  # type: ignore[attr-defined]
        setattr(row, column.key, value)
    return row


def _clone(row: M) -> M:
    """A detached copy: changing it leaves the stored row as it was."""
    return type(row)(**{c.key: copy.deepcopy(getattr(row, c.key))
                        for c in row.__table__.columns})


@dataclass
class MemoryStore:
    """What a database would hold: committed rows only."""

    complaints: dict[str, Complaint] = field(default_factory=dict)
    deadlines: dict[str, Deadline] = field(default_factory=dict)  # by key
    deadline_keys: dict[int, str] = field(default_factory=dict)  # by id
    rows: dict[str, list[Base]] = field(default_factory=dict)  # append-only, by table
    unique: dict[tuple[str, str], set[Any]] = field(default_factory=dict)
    # Per complaint: history entries and letters in insert order (what record_of reads).
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    letters: dict[str, list[Letter]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: count(1))

    def table(self, name: str) -> list[Base]:
        """The stored rows of an append-only table, in insert order."""
        return self.rows.get(name, [])

    def show_complaint(self, complaint_id: str) -> dict[str, Any] | None:
        """`workflow.queries.show_complaint`, read from memory."""
        from workflow.queries import complaint_view

        complaint = self.complaints.get(complaint_id)
        if complaint is None:
            return None
        deadlines = sorted((d for d in self.deadlines.values()
                            if d.complaint_id == complaint_id), key=lambda d: (d.due_at, d.id))
        letters = sorted(self.letters.get(complaint_id, []),
                         key=lambda x: (x.issued_at, x.letter_id))
        ids = {x.letter_id for x in letters}
        deliveries = {d.letter_id: d.status for d in self.table("deliveries")
                      if isinstance(d, Delivery) and d.letter_id in ids}
        return complaint_view(complaint, self.history.get(complaint_id, []), deadlines,
                              letters, deliveries, {})


class MemoryUnitOfWork:
    publishes = True  # the outbox is part of this record

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._complaints: dict[str, Complaint] = {}  # read or added in this transaction
        self._deadlines: dict[str, Deadline] = {}  # read, added or fired in this transaction
        self._new_deadlines: list[str] = []  # keys, in the order added
        self._rows: list[tuple[str, Base]] = []
        self._unique: dict[tuple[str, str], set[Any]] = {}

    # -- transactions ------------------------------------------------------------------
    def commit(self) -> None:
        store = self.store
        store.complaints.update(self._complaints)
        for key in self._new_deadlines:
            deadline = self._deadlines[key]
            deadline.id = next(store.ids)
            store.deadline_keys[deadline.id] = key
        # Copies: a deadline handed out (to an event-time queue, say) and fired in a later
        # transaction that rolls back must not have changed the stored one.
        store.deadlines.update((key, _clone(d)) for key, d in self._deadlines.items())
        for table, row in self._rows:
            store.rows.setdefault(table, []).append(row)
            if isinstance(row, HistoryEntry):
                store.history.setdefault(row.complaint_id, []).append(row)
            elif isinstance(row, Letter):
                store.letters.setdefault(row.complaint_id, []).append(row)
        for unique_key, values in self._unique.items():
            store.unique.setdefault(unique_key, set()).update(values)
        self._forget()

    def rollback(self) -> None:
        self._forget()

    def close(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._complaints = {}
        self._deadlines = {}
        self._new_deadlines = []
        self._rows = []
        self._unique = {}

    @contextmanager
    def atomic(self) -> Iterator[None]:
        complaints = {cid: _clone(c) for cid, c in self._complaints.items()}
        deadlines = {key: _clone(d) for key, d in self._deadlines.items()}
        new_deadlines, rows = list(self._new_deadlines), len(self._rows)
        unique = {key: set(values) for key, values in self._unique.items()}
        try:
            yield
        except BaseException:
            self._complaints, self._deadlines = complaints, deadlines
            self._new_deadlines, self._unique = new_deadlines, unique
            del self._rows[rows:]
            raise

    # -- reads -------------------------------------------------------------------------
    def prefetch_complaints(self, complaint_ids: set[str]) -> set[str]:
        return {cid for cid in complaint_ids
                if cid not in self._complaints and cid not in self.store.complaints}

    def complaint(self, complaint_id: str) -> Complaint | None:
        found = self._complaints.get(complaint_id)
        if found is None:
            stored = self.store.complaints.get(complaint_id)
            if stored is not None:
                found = self._complaints[complaint_id] = _clone(stored)
        return found

    def prefetch_references(self, candidates: set[str]) -> None:
        """Nothing to fetch ahead: every look-up is a dict's."""

    def reference_taken(self, reference: str) -> bool:
        return self._taken("complaints", "reference", reference)

    def prefetch_processed(self, event_ids: list[str]) -> None:
        """Nothing to fetch ahead."""

    def is_processed(self, event_id: str) -> bool:
        return self._taken("processed_events", "event_id", event_id)

    def letter_exists(self, complaint_id: str, dedupe_key: str) -> bool:
        return self._taken("letters", "dedupe_key", dedupe_key)

    def record_of(self, complaint_id: str, types: Collection[str], *,
                  letters: bool = True) -> Record:
        pending = [row for _, row in self._rows
                   if getattr(row, "complaint_id", None) == complaint_id]
        history = [(h.type, h.at, h.detail)
                   for h in [*self.store.history.get(complaint_id, []),
                             *(r for r in pending if isinstance(r, HistoryEntry))]
                   if h.type in types]
        if not letters:
            return history, []
        stored = sorted(self.store.letters.get(complaint_id, []),
                        key=lambda x: (x.issued_at, x.letter_id))
        issued = [(x.kind, x.issued_at)
                  for x in [*stored, *(r for r in pending if isinstance(r, Letter))]]
        return history, issued

    def deadline_by_key(self, deadline_key: str) -> Deadline | None:
        found = self._deadlines.get(deadline_key)
        if found is None:
            stored = self.store.deadlines.get(deadline_key)
            if stored is not None:
                found = self._deadlines[deadline_key] = _clone(stored)
        return found

    def deadline(self, deadline_id: int) -> Deadline | None:
        key = self.store.deadline_keys.get(deadline_id)
        return None if key is None else self.deadline_by_key(key)

    def pending_deadlines(self) -> list[tuple[datetime, int]]:
        return [(d.due_at, d.id) for d in self.store.deadlines.values() if d.fired_at is None]

    # -- writes ------------------------------------------------------------------------
    def add(self, row: Complaint | Deadline) -> None:
        _with_defaults(row)
        if isinstance(row, Complaint):
            if row.complaint_id in self._complaints or row.complaint_id in self.store.complaints:
                raise _refused("complaints", "complaint_id", row.complaint_id)
            self._claim("complaints", row)
            self._complaints[row.complaint_id] = row
        else:
            if row.deadline_key in self._deadlines or row.deadline_key in self.store.deadlines:
                raise _refused("deadlines", "deadline_key", row.deadline_key)
            self._deadlines[row.deadline_key] = row
            self._new_deadlines.append(row.deadline_key)

    def record_firing(self, deadline: Deadline, at: datetime, outcome: str) -> None:
        deadline.fired_at, deadline.outcome = at, outcome
        self._deadlines[deadline.deadline_key] = deadline

    def append(self, model: type[Base], **values: Any) -> None:
        table = model.__tablename__
        if table not in APPEND_ONLY:
            raise TypeError(f"{model.__name__} rows are not append-only")
        row = _with_defaults(model(**values))
        self._claim(table, row)
        self._rows.append((table, row))

    def mark_processed(self, event_id: str, now: datetime) -> None:
        self.append(ProcessedEvent, event_id=event_id, applied_at=now)

    # -- unique keys -------------------------------------------------------------------
    def _taken(self, table: str, column: str, value: Any) -> bool:
        return (value in self._unique.get((table, column), ())
                or value in self.store.unique.get((table, column), ()))

    def _claim(self, table: str, row: Base) -> None:
        """Refuse a repeated unique value, as the database's constraint would."""
        for column in _UNIQUE[table]:
            value = getattr(row, column)
            if value is None:
                continue
            if self._taken(table, column, value):
                raise _refused(table, column, value)
        for column in _UNIQUE[table]:
            value = getattr(row, column)
            if value is not None:
                self._unique.setdefault((table, column), set()).add(value)


def _refused(table: str, column: str, value: Any) -> IntegrityError:
    return IntegrityError(f"INSERT INTO {table}", None,
                          ValueError(f"{table}.{column} {value!r} exists already"))
