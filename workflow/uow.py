"""The unit of work: one SQLAlchemy session and the queries the handlers need.

Handlers see complaints, deadlines and letters through this, never an engine or a URL.

One write path. New complaints, new deadlines, fired deadlines, changed complaints and
append-only rows (history, outbox, letters, receipts, processed ids, ...) are held here until
the flush, which writes them with one `executemany` per table and statement (workflow/bulk.py)
instead of the ORM's per-object flush: that flush was most of the cost of applying an event.
Updates are checked (a complaint's version, a deadline's `fired_at IS NULL`). The flush runs
at the commit and around each savepoint (`atomic`): what came before it is written first, what
the block recorded is written inside it, so a savepoint's rollback takes a refused message's
rows away with it and nobody outside has to say which way to write.

What this unit of work remembers is declared in three small classes, by how long it holds:
`_Pending` (recorded, not yet written: until the flush), `_Read` (what the transaction has
read: until it ends) and `_Kept` (complaints and their letters' keys: across commits, until a
rollback). Each is replaced whole, so there is no list of caches to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, inspect, select, update
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached, object_session
from sqlalchemy.orm.exc import StaleDataError

from workflow.bulk import BulkInsert, Prepared
from workflow.database import planned_for_their_values
from workflow.schema import Base, Complaint, Deadline, HistoryEntry, Letter, ProcessedEvent

# Rows that are only ever inserted; everything else goes through the ORM.
APPEND_ONLY = frozenset({
    "history", "outbox", "letters", "receipts", "category_changes", "resolutions", "contacts",
    "accounts_snapshots", "rejections", "processed_events", "raw_events",
    "deliveries"})  # deliveries: inserted here, changed by the delivery service only


# Complaints kept between transactions (strongly referenced, most recently used last).
COMPLAINTS_KEPT = 20_000

# Every column of a complaint but the key and the version (which the update sets itself).
_COMPLAINT_COLUMNS = frozenset(
    c.key for c in Complaint.__table__.columns if c.key not in ("complaint_id", "version"))

History = list[tuple[str, datetime, dict[str, Any]]]
Letters = list[tuple[str, datetime]]

# The reads made once per message or letter, built once: building a statement and its cache
# key each time cost about as much as running it.
# `record_of`'s two are Core statements on the tables (run on the session's connection, the
# ORM's execution machinery skipped): the same columns, types and result processing.
_history_table = cast(Table, HistoryEntry.__table__)
_letters_table = cast(Table, Letter.__table__)
_HISTORY_OF = (select(_history_table.c.type, _history_table.c.at, _history_table.c.detail)
               .where(_history_table.c.complaint_id == bindparam("complaint_id"),
                      _history_table.c.type.in_(bindparam("types", expanding=True)))
               .order_by(_history_table.c.id))
_LETTERS_OF = (select(_letters_table.c.kind, _letters_table.c.issued_at)
               .where(_letters_table.c.complaint_id == bindparam("complaint_id"))
               .order_by(_letters_table.c.issued_at, _letters_table.c.letter_id))
_LETTER_KEYS_OF = select(Letter.dedupe_key).where(Letter.complaint_id == bindparam("complaint_id"))
_DEADLINE_BY_KEY = select(Deadline).where(Deadline.deadline_key == bindparam("deadline_key"))


@dataclass
class _Pending:
    """Recorded by this transaction and not yet written: replaced by each flush."""

    complaints: dict[str, Complaint] = field(default_factory=dict)  # new, by id
    # New deadlines by key: a deadline fired in the same transaction goes in fired.
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    # Written earlier, fired now; by key, so recording a firing twice writes it once.
    firings: dict[str, Deadline] = field(default_factory=dict)
    rows: list[tuple[type[Base], dict[str, Any]]] = field(default_factory=list)  # append-only
    # History entries and letters among `rows`, per complaint: what `record_of` adds to the
    # stored ones without scanning every row.
    record: dict[str, tuple[History, Letters]] = field(default_factory=dict)


@dataclass
class _Read:
    """What this transaction has read or taken: true until it ends (commit or rollback), or
    until a savepoint that may have changed it is rolled back."""

    absent: set[str] = field(default_factory=set)  # complaint ids known not to exist
    processed: set[str] = field(default_factory=set)  # event ids marked processed here
    asked: set[str] = field(default_factory=set)  # event ids looked up in one batch query...
    found: set[str] = field(default_factory=set)  # ...and those of them already applied
    references: set[str] = field(default_factory=set)  # taken in this transaction
    free_references: set[str] = field(default_factory=set)  # known free when read


@dataclass
class _Kept:
    """Across commits, until a rollback: the session's identity map is weak, and a complaint
    touched by one event is likely to be touched by the next few (most recently used last)."""

    complaints: dict[str, Complaint] = field(default_factory=dict)
    letter_keys: dict[str, set[str]] = field(default_factory=dict)  # complaint -> issued keys

    def trim(self) -> None:
        if len(self.complaints) > COMPLAINTS_KEPT:
            # Keep the most recently used half: a deadline weeks later finds its complaint
            # still here more often than after a clear (one SELECT each otherwise).
            for complaint_id in list(self.complaints)[:len(self.complaints) // 2]:
                del self.complaints[complaint_id]
                self.letter_keys.pop(complaint_id, None)


class UnitOfWork:
    publishes = True  # the outbox is part of this record
    keeps_letter_contexts = True  # and so is every letter's context

    def records_history(self, entry_type: str) -> bool:
        return True  # and every history entry

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session: Session = session_factory()
        self._pending = _Pending()
        self._read = _Read()
        self._kept = _Kept()
        # Statements compiled once for this session's dialect (not data: never cleared).
        self._bulk_inserts: dict[str, BulkInsert] = {}
        self._complaint_updates: dict[frozenset[str], Prepared] = {}
        self._firing: Prepared | None = None  # the compare-and-set UPDATE of a deadline

    # -- transactions ------------------------------------------------------------------
    def flush(self) -> None:
        """Write changed complaints, new rows (table by table, in the order they were made)
        and fired deadlines, and whatever callers added to the session themselves."""
        pending, self._pending = self._pending, _Pending()
        self._update_complaints()
        self.session.flush()
        by_table: dict[str, list[dict[str, Any]]] = {}
        new_complaints = list(pending.complaints.values())
        if new_complaints:
            by_table["complaints"] = [complete_row(complaint) for complaint in new_complaints]
        if pending.deadlines:
            # Each deadline's own dict is its row (the bulk insert takes its columns with
            # `dict.get`: one never set reads None, as the attribute would), read now, not when
            # added: a deadline fired in the same batch goes in fired.
            by_table["deadlines"] = list(map(vars, pending.deadlines.values()))
        for model, values in pending.rows:
            by_table.setdefault(model.__tablename__, []).append(values)
        if not by_table and not pending.firings:
            return
        connection = self.session.connection()
        for table in Base.metadata.sorted_tables:
            rows = by_table.get(table.name)
            if rows:
                self._bulk(table.name).execute(connection, rows)
        if pending.firings:
            self._record_firings(connection, list(pending.firings.values()))
        for complaint in new_complaints:
            self._as_stored(complaint)

    def _as_stored(self, complaint: Complaint) -> None:
        """Written: into the session as if just loaded, so the ORM's own flush has nothing to
        compare (it spent 2 s of a 60 s ingest of 100,000 events finding no change) and later
        changes are tracked from here. `make_transient_to_detached` is SQLAlchemy's public way
        to reset an object's history."""
        if object_session(complaint) is not None:
            make_transient(complaint)
        make_transient_to_detached(complaint)
        self.session.add(complaint)

    def _bulk(self, table_name: str) -> BulkInsert:
        bulk = self._bulk_inserts.get(table_name)
        if bulk is None:
            dialect = self.session.get_bind().dialect
            bulk = BulkInsert(Base.metadata.tables[table_name], dialect)
            self._bulk_inserts[table_name] = bulk
        return bulk

    def _record_firings(self, connection: Connection, deadlines: list[Deadline]) -> None:
        """Deadlines written by an earlier transaction (or flush) and fired in this one.

        `fired_at IS NULL` makes firing a compare-and-set: a deadline fired meanwhile by
        another writer fails the transaction (StaleDataError), as a changed complaint does.
        """
        if self._firing is None:
            table = cast(Table, Deadline.__table__)
            self._firing = Prepared(
                update(table)
                .where(table.c.deadline_key == bindparam("key_deadline_key"),
                       table.c.fired_at.is_(None))
                .values(fired_at=bindparam("fired_at", type_=table.c.fired_at.type),
                        outcome=bindparam("outcome", type_=table.c.outcome.type)),
                connection.dialect)
        rows = [{"key_deadline_key": d.deadline_key, "fired_at": d.fired_at,
                 "outcome": d.outcome} for d in deadlines]
        with planned_for_their_values(connection):
            _checked_update(connection, self._firing, rows,
                            "deadline(s) were fired by another transaction")

    def _update_complaints(self) -> None:
        """Changed complaints as one version-checked executemany per set of changed columns.

        With a version column the ORM sends one UPDATE per row, since it cannot tell which row
        of an executemany matched nothing: a third of a batch's time. Here a short count fails
        the whole batch (StaleDataError), which is then re-run message by message, where the
        row at fault is found (`_checked_update` goes row by row where the driver cannot count
        an executemany's rows).
        """
        groups: dict[frozenset[str], list[Complaint]] = {}
        for obj in self.session.dirty:
            if isinstance(obj, Complaint):
                state = inspect(obj)
                # Set but unchanged (e.g. the same state again) is no change, as for the ORM:
                # no UPDATE, no new version.
                changed = frozenset(
                    key for key, before in state.committed_state.items()
                    if key in _COMPLAINT_COLUMNS and before != state.dict.get(key))
                if changed:
                    groups.setdefault(changed, []).append(obj)
        if not groups:
            return
        connection = self.session.connection()
        for changed, members in groups.items():
            rows = [{**{key: getattr(obj, key) for key in changed},
                     "key_complaint_id": obj.complaint_id, "key_version": obj.version,
                     "next_version": obj.version + 1} for obj in members]
            _checked_update(connection, self._complaint_update(changed), rows,
                            "complaint(s) were changed by another transaction")
            for obj in members:
                obj.version += 1
                self._as_stored(obj)

    def _complaint_update(self, changed: frozenset[str]) -> Prepared:
        """UPDATE complaints SET the changed columns and the next version WHERE key and
        version are as read; compiled once per set of columns."""
        prepared = self._complaint_updates.get(changed)
        if prepared is None:
            table = cast(Table, Complaint.__table__)
            values: dict[str, Any] = {key: bindparam(key, type_=table.c[key].type)
                                      for key in changed}
            values["version"] = bindparam("next_version", type_=table.c.version.type)
            statement = (
                update(table)
                .where(table.c.complaint_id == bindparam("key_complaint_id"),
                       table.c.version == bindparam("key_version"))
                .values(values)
            )
            prepared = Prepared(statement, self.session.get_bind().dialect)
            self._complaint_updates[changed] = prepared
        return prepared

    def commit(self) -> None:
        self.flush()
        self.session.commit()
        self._read = _Read()
        self._kept.trim()

    def rollback(self) -> None:
        # Out of the session first: complaints written by this transaction were put in it as
        # stored, and the rollback would only expire them. Nothing is kept anyway.
        self.session.expunge_all()
        self.session.rollback()
        self._forget()

    def close(self) -> None:
        self.session.close()
        self._forget()

    def _forget(self) -> None:
        """After a rollback (whole or of a savepoint): nothing read or recorded holds."""
        self._pending, self._read, self._kept = _Pending(), _Read(), _Kept()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A savepoint: one message's changes land together or not at all.

        What was recorded before is written first (outside it), what the block records is
        written at its end (inside it): a failing block takes only its own rows away."""
        self.flush()
        try:
            with self.session.begin_nested():
                yield
                self.flush()
        except BaseException:
            # The session expires what the block changed; a complaint the block's own flush
            # wrote and reset before a later statement failed looks unchanged to it, yet the
            # savepoint took its row back: expired too, to be read again when next asked for.
            self.session.expire_all()
            self._forget()
            raise

    # -- reads -------------------------------------------------------------------------
    def prefetch_complaints(self, complaint_ids: set[str]) -> set[str]:
        """Load a batch's complaints with one query; returns (and remembers) those that do
        not exist yet."""
        kept = self._kept.complaints
        wanted = complaint_ids - kept.keys()
        if not wanted:
            return set()
        with self.session.no_autoflush:
            for complaint in self.session.scalars(
                select(Complaint).where(Complaint.complaint_id.in_(wanted))
            ):
                kept[complaint.complaint_id] = complaint
        self._read.absent = wanted - kept.keys()
        return set(self._read.absent)

    def complaint(self, complaint_id: str) -> Complaint | None:
        kept = self._kept.complaints
        found = kept.pop(complaint_id, None)
        if found is not None:
            kept[complaint_id] = found  # to the end: most recently used
        elif complaint_id not in self._read.absent:
            with self.session.no_autoflush:
                found = self.session.get(Complaint, complaint_id)
            if found is not None:
                kept[complaint_id] = found
        return found

    def prefetch_references(self, candidates: set[str]) -> None:
        """One query for the references a batch's new complaints would take."""
        if not candidates:
            return
        with self.session.no_autoflush:
            taken = set(self.session.scalars(
                select(Complaint.reference).where(Complaint.reference.in_(candidates))))
        self._read.free_references = candidates - taken

    def reference_taken(self, reference: str) -> bool:
        if reference in self._read.references:
            return True
        if reference in self._read.free_references:
            return False
        with self.session.no_autoflush:
            return bool(
                self.session.scalar(select(exists().where(Complaint.reference == reference)))
            )

    def prefetch_processed(self, event_ids: list[str]) -> None:
        """One query for a batch's ids instead of one per message."""
        asked = set(event_ids)
        with self.session.no_autoflush:
            found = set(self.session.scalars(
                select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(asked))
            )) if asked else set()
        self._read.asked, self._read.found = asked, found

    def is_processed(self, event_id: str) -> bool:
        read = self._read
        if event_id in read.processed:
            return True
        if event_id in read.asked:
            return event_id in read.found
        with self.session.no_autoflush:
            return self.session.scalar(
                select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == event_id)
            ) is not None

    def letter_exists(self, complaint_id: str, dedupe_key: str) -> bool:
        return dedupe_key in self._issued_letter_keys(complaint_id)

    def _issued_letter_keys(self, complaint_id: str) -> set[str]:
        keys = self._kept.letter_keys.get(complaint_id)
        if keys is None:
            with self.session.no_autoflush:
                keys = set(self.session.scalars(_LETTER_KEYS_OF, {"complaint_id": complaint_id}))
            self._kept.letter_keys[complaint_id] = keys
        return keys

    def record_of(
        self, complaint_id: str, types: Collection[str], *, letters: bool = True
    ) -> tuple[History, Letters]:
        """(v2) A complaint's history entries `(type, at, detail)` of the given types in
        applied order and (if asked) its letters `(kind, issued_at)` in issue order, with
        those of this transaction not yet written: what a deadlock or 8-week letter
        summarises (docs/rules.md s.6). A query each, so only for those letters."""
        # The rows not yet written are added from `_Pending`; the ORM has none to flush (and
        # the connection's execute does not autoflush).
        connection = self.session.connection()
        history = [(row[0], row[1], row[2]) for row in connection.execute(
            _HISTORY_OF, {"complaint_id": complaint_id, "types": list(types)})]
        issued = ([(row[0], row[1]) for row in connection.execute(
            _LETTERS_OF, {"complaint_id": complaint_id})] if letters else [])
        pending_history, pending_letters = self._pending.record.get(complaint_id, ([], []))
        history += [entry for entry in pending_history if entry[0] in types]
        return history, issued + pending_letters if letters else []

    def deadline_by_key(self, deadline_key: str) -> Deadline | None:
        pending = self._pending.deadlines.get(deadline_key)
        if pending is not None:
            return pending
        with self.session.no_autoflush:
            return self._loose(self.session.scalar(_DEADLINE_BY_KEY,
                                                   {"deadline_key": deadline_key}))

    def deadline(self, deadline_id: int) -> Deadline | None:
        with self.session.no_autoflush:
            return self._loose(self.session.get(Deadline, deadline_id))

    def _loose(self, deadline: Deadline | None) -> Deadline | None:
        """A stored deadline, out of the session: its firing is then written by the
        compare-and-set UPDATE (`record_firing`), not by the ORM's unconditional one, so two
        consumers overlapping in a rebalance cannot both fire it."""
        if deadline is not None and deadline in self.session and not self.session.is_modified(
                deadline):
            self.session.expunge(deadline)
        return deadline

    def pending_deadlines(self) -> list[tuple[datetime, int]]:
        """(due, id) of every unfired deadline written: what an event-time run starts from."""
        with self.session.no_autoflush:
            return [(due, ident) for due, ident in self.session.execute(
                select(Deadline.due_at, Deadline.id).where(Deadline.fired_at.is_(None)))]

    # -- writes ------------------------------------------------------------------------
    def add(self, row: Complaint | Deadline) -> None:
        """A new complaint or deadline: rows that are read back and changed later."""
        if isinstance(row, Complaint):
            self._kept.complaints[row.complaint_id] = row
            self._kept.letter_keys[row.complaint_id] = set()  # new: nothing issued yet
            self._read.absent.discard(row.complaint_id)
            self._read.references.add(row.reference)
            self._pending.complaints[row.complaint_id] = row
            return
        if row.deadline_key in self._pending.deadlines:
            # What the unique key would refuse at the INSERT, refused here (a batch is then
            # re-run message by message, where the message at fault is refused).
            raise ValueError(f"deadline {row.deadline_key} scheduled twice")
        self._pending.deadlines[row.deadline_key] = row

    def record_firing(self, deadline: Deadline, at: datetime, outcome: str) -> None:
        """A deadline has fired (or failed to). Written ones are updated by compare-and-set,
        so a deadline is fired at most once whoever else holds it; one not yet written goes
        in with its INSERT."""
        if object_session(deadline) is not None:
            deadline.fired_at, deadline.outcome = at, outcome
            return  # the ORM's flush carries it
        # Out of the session (new, or loose): nothing tracks its changes, so the values go
        # straight into its dict, without the attribute events.
        vars(deadline).update(fired_at=at, outcome=outcome)
        if deadline.deadline_key not in self._pending.deadlines:  # else its INSERT carries it
            self._pending.firings[deadline.deadline_key] = deadline

    def append(self, model: type[Base], **values: Any) -> None:
        """A row that is only ever inserted (history, outbox, letters, ...)."""
        if model.__tablename__ not in APPEND_ONLY:
            raise TypeError(f"{model.__name__} rows are not append-only")
        pending = self._pending
        pending.rows.append((model, values))
        if model is HistoryEntry:
            pending.record.setdefault(values["complaint_id"], ([], []))[0].append(
                (values["type"], values["at"], values["detail"]))
        elif model is Letter:
            self._issued_letter_keys(values["complaint_id"]).add(values["dedupe_key"])
            pending.record.setdefault(values["complaint_id"], ([], []))[1].append(
                (values["kind"], values["issued_at"]))

    def mark_processed(self, event_id: str, now: datetime) -> None:
        self._read.processed.add(event_id)
        self.append(ProcessedEvent, event_id=event_id, applied_at=now)


def _checked_update(connection: Connection, update_: Prepared, rows: list[dict[str, Any]],
                    conflict: str) -> None:
    """Run a conditional UPDATE for every row; a row it did not match was changed by another
    writer since it was read, and fails the transaction (StaleDataError)."""
    # Where the driver cannot count the rows of an executemany, one statement a row.
    batches = ([rows] if connection.dialect.supports_sane_multi_rowcount
               else [[row] for row in rows])
    for batch in batches:
        matched = update_.execute(connection, batch)
        if matched != len(batch):
            raise StaleDataError(f"{len(batch) - matched} {conflict} since they were read")


def complete_row(complaint: Complaint) -> dict[str, Any]:
    """A new complaint's row: every column, unset ones at their default, version 1 (as the
    ORM would write it); the object is given the same values, so nothing is left unloaded."""
    values = inspect(complaint).dict
    row: dict[str, Any] = {}
    for column in Complaint.__table__.columns:
        key = column.key
        if key == "version":
            value = 1
        elif key in values:
            value = values[key]
        elif column.default is None:
            value = None
        elif column.default.is_scalar:
            value = column.default.arg  # type: ignore[attr-defined]
        else:
            value = column.default.arg(None)  # type: ignore[attr-defined]
        if values.get(key, _UNSET) is not value:
            setattr(complaint, key, value)
        row[key] = value
    return row


_UNSET = object()
