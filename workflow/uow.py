"""The unit of work: one SQLAlchemy session and the queries the handlers need.

Handlers see complaints, deadlines and letters through this, never an engine or a URL.

New complaints, new deadlines and append-only rows (history, outbox, letters, receipts,
processed ids, ...) are held here until the flush, which writes them with one `executemany`
per table (workflow/bulk.py) instead of the ORM's per-object flush: that flush was most of the
cost of applying an event. Changed complaints and fired deadlines are written the same way,
each update checked (a version, `fired_at IS NULL`). While a batch is re-run message by
message (`buffering` off), every row goes through the session instead, so that a savepoint's
rollback takes a refused message's rows away with it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, inspect, select, update
from sqlalchemy.orm import InstanceState, Session, make_transient_to_detached, object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from workflow.bulk import BulkInsert, Prepared
from workflow.database import planned_for_their_values
from workflow.schema import Base, Complaint, Deadline, HistoryEntry, Letter, ProcessedEvent

# Rows that are only ever inserted; everything else goes through the ORM.
APPEND_ONLY = ("history", "outbox", "letters", "receipts", "category_changes", "resolutions",
               "contacts", "accounts_snapshots", "rejections", "processed_events", "raw_events",
               "deliveries")  # deliveries: inserted here, changed by the delivery service only


# Complaints kept between transactions (strongly referenced, most recently used last).
COMPLAINTS_KEPT = 20_000

# Every column of a complaint but the key and the version (which the update sets itself).
_COMPLAINT_COLUMNS = frozenset(
    c.key for c in Complaint.__table__.columns if c.key not in ("complaint_id", "version"))


class UnitOfWork:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session: Session = session_factory()
        self._buffer: list[tuple[type[Base], dict[str, Any]]] = []
        # Strong references: the session's identity map is weak, and a complaint touched by
        # one event is likely to be touched by the next few.
        self._complaints: dict[str, Complaint] = {}
        self._absent: set[str] = set()  # complaint ids known not to exist (this batch)
        self._processed: set[str] = set()
        self._prefetched: tuple[set[str], set[str]] = (set(), set())  # (asked, found applied)
        self._letter_keys: dict[str, set[str]] = {}  # complaint -> dedupe keys issued
        self._references: set[str] = set()  # taken in this transaction
        self._free_references: set[str] = set()  # known free when the transaction read them
        # New complaints and deadlines, until the flush writes them. A deadline's firing in a
        # later transaction is one UPDATE per batch; the ORM only sees deadlines it loaded.
        self._new_complaints: dict[str, Complaint] = {}
        # Written by this transaction and then put in the session as persistent: a rollback
        # must take them out again (the session would only expire them).
        self._attached: list[Complaint] = []
        self._new_deadlines: dict[str, Deadline] = {}  # by key, until the flush writes them
        # Written earlier, fired now; by key, so recording a firing twice writes it once.
        self._fired_deadlines: dict[str, Deadline] = {}
        self._bulk_inserts: dict[str, BulkInsert] = {}
        # (v2) Buffered history entries and letters per complaint, until the flush writes
        # them: what `record_of` adds to the stored ones without scanning the whole buffer.
        self._pending_record: dict[str, tuple[list[tuple[str, datetime, dict[str, Any]]],
                                              list[tuple[str, datetime]]]] = {}
        self._complaint_updates: dict[frozenset[str], Prepared] = {}
        self._firing: Prepared | None = None  # the compare-and-set UPDATE of a deadline
        # Off while retrying a batch message by message: every row then goes through the
        # session, so a savepoint's rollback takes it away too.
        self.buffering = True

    # -- transactions ------------------------------------------------------------------
    def flush(self) -> None:
        """Write changed complaints, new and fired deadlines, and buffered append-only rows
        (table by table, in the order they were made)."""
        if self.buffering:
            self._update_complaints()
        self.session.flush()
        by_table: dict[str, list[dict[str, Any]]] = {}
        new_complaints = list(self._new_complaints.values())
        if new_complaints:
            by_table["complaints"] = [complete_row(complaint) for complaint in new_complaints]
            self._new_complaints.clear()
        if self._new_deadlines:
            # Read now, not when added: a deadline fired in the same batch goes in fired.
            by_table["deadlines"] = [
                {key: getattr(deadline, key) for key in self._bulk("deadlines").keys}
                for deadline in self._new_deadlines.values()]
            self._new_deadlines.clear()
        for model, values in self._buffer:
            by_table.setdefault(model.__tablename__, []).append(values)
        self._buffer.clear()
        self._pending_record.clear()
        if not by_table and not self._fired_deadlines:
            return
        connection = self.session.connection()
        for table in Base.metadata.sorted_tables:
            rows = by_table.get(table.name)
            if rows:
                self._bulk(table.name).execute(connection, rows)
        if self._fired_deadlines:
            self._record_firings(connection, list(self._fired_deadlines.values()))
            self._fired_deadlines.clear()
        for complaint in new_complaints:
            # Written: into the session as if loaded, so later changes are tracked as updates.
            make_transient_to_detached(complaint)
            self.session.add(complaint)
        self._attached.extend(new_complaints)

    def _bulk(self, table_name: str) -> BulkInsert:
        bulk = self._bulk_inserts.get(table_name)
        if bulk is None:
            dialect = self.session.get_bind().dialect
            bulk = BulkInsert(Base.metadata.tables[table_name], dialect)
            self._bulk_inserts[table_name] = bulk
        return bulk

    def _record_firings(self, connection: Connection, deadlines: list[Deadline]) -> None:
        """Deadlines written by an earlier transaction and fired in this one.

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
        the whole batch (StaleDataError), which is then re-run message by message through the
        ORM, where the row at fault is found.
        """
        if not self.session.get_bind().dialect.supports_sane_multi_rowcount:
            return  # the count could not tell a conflict: leave it to the ORM, row by row
        groups: dict[frozenset[str], list[tuple[Complaint, InstanceState[Complaint]]]] = {}
        for obj in self.session.dirty:
            if isinstance(obj, Complaint):
                state = inspect(obj)
                # Set but unchanged (e.g. the same state again) is no change, as for the ORM:
                # no UPDATE, no new version.
                changed = frozenset(
                    key for key, before in state.committed_state.items()
                    if key in _COMPLAINT_COLUMNS and before != state.dict.get(key))
                if changed:
                    groups.setdefault(changed, []).append((obj, state))
        connection = self.session.connection()
        for changed, members in groups.items():
            rows = [{**{key: getattr(obj, key) for key in changed},
                     "key_complaint_id": obj.complaint_id, "key_version": obj.version,
                     "next_version": obj.version + 1} for obj, _ in members]
            _checked_update(connection, self._complaint_update(changed), rows,
                            "complaint(s) were changed by another transaction")
            for obj, state in members:
                set_committed_value(obj, "version", obj.version + 1)
                # Written: what the object holds is now what the database holds. Marking it so
                # (what the session itself does after its flush) leaves the ORM's flush nothing
                # to compare: it spent 2 s of a 60 s ingest of 100,000 events finding no
                # change. A private method, so the SQLAlchemy range is pinned and
                # tests/integration/test_store.py checks that versions and conflicts hold.
                state._commit_all(state.dict, self.session.identity_map)

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
        self._attached.clear()
        self._absent.clear()
        self._processed.clear()
        self._prefetched = (set(), set())
        self._references.clear()
        self._free_references.clear()
        if len(self._complaints) > COMPLAINTS_KEPT:
            # Keep the most recently used half: a deadline weeks later finds its complaint
            # still here more often than after a clear (one SELECT each otherwise).
            for complaint_id in list(self._complaints)[:len(self._complaints) // 2]:
                del self._complaints[complaint_id]
                self._letter_keys.pop(complaint_id, None)

    def rollback(self) -> None:
        for complaint in self._attached:
            if complaint in self.session:
                self.session.expunge(complaint)
        self.session.rollback()
        self._forget()

    def close(self) -> None:
        self.session.close()
        self._forget()

    def _forget(self) -> None:
        self._absent.clear()
        self._buffer.clear()
        self._pending_record.clear()
        self._new_complaints.clear()
        self._attached.clear()
        self._new_deadlines.clear()
        self._fired_deadlines.clear()
        self._complaints.clear()
        self._processed.clear()
        self._prefetched = (set(), set())
        self._letter_keys.clear()
        self._references.clear()
        self._free_references.clear()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A savepoint: one message's changes land together or not at all."""
        assert not self.buffering, "savepoints are for the careful, unbuffered mode"
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            self._complaints.clear()
            self._absent.clear()
            self._processed.clear()
            self._letter_keys.clear()
            self._references.clear()
            self._free_references.clear()
            raise

    # -- reads -------------------------------------------------------------------------
    def prefetch_complaints(self, complaint_ids: set[str]) -> set[str]:
        """Load a batch's complaints with one query; returns (and remembers) those that do
        not exist yet."""
        wanted = complaint_ids - self._complaints.keys()
        if not wanted:
            return set()
        with self.session.no_autoflush:
            for complaint in self.session.scalars(
                select(Complaint).where(Complaint.complaint_id.in_(wanted))
            ):
                self._complaints[complaint.complaint_id] = complaint
        self._absent = wanted - self._complaints.keys()
        return set(self._absent)

    def complaint(self, complaint_id: str) -> Complaint | None:
        found = self._complaints.pop(complaint_id, None)
        if found is not None:
            self._complaints[complaint_id] = found  # to the end: most recently used
        elif complaint_id not in self._absent:
            with self.session.no_autoflush:  # pending complaints are in the cache already
                found = self.session.get(Complaint, complaint_id)
            if found is not None:
                self._complaints[complaint_id] = found
        return found

    def prefetch_references(self, candidates: set[str]) -> None:
        """One query for the references a batch's new complaints would take."""
        if not candidates:
            return
        with self.session.no_autoflush:
            taken = set(self.session.scalars(
                select(Complaint.reference).where(Complaint.reference.in_(candidates))))
        self._free_references = candidates - taken

    def reference_taken(self, reference: str) -> bool:
        if reference in self._references:
            return True
        if reference in self._free_references:
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
        self._prefetched = (asked, found)

    def is_processed(self, event_id: str) -> bool:
        if event_id in self._processed:
            return True
        asked, found = self._prefetched
        if event_id in asked:
            return event_id in found
        with self.session.no_autoflush:
            return self.session.scalar(
                select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == event_id)
            ) is not None

    def letter_exists(self, complaint_id: str, dedupe_key: str) -> bool:
        return dedupe_key in self._issued_letter_keys(complaint_id)

    def _issued_letter_keys(self, complaint_id: str) -> set[str]:
        keys = self._letter_keys.get(complaint_id)
        if keys is None:
            with self.session.no_autoflush:
                keys = set(self.session.scalars(
                    select(Letter.dedupe_key).where(Letter.complaint_id == complaint_id)))
            self._letter_keys[complaint_id] = keys
        return keys

    def record_of(
        self, complaint_id: str, types: Collection[str], *, letters: bool = True
    ) -> tuple[list[tuple[str, datetime, dict[str, Any]]], list[tuple[str, datetime]]]:
        """(v2) A complaint's history entries `(type, at, detail)` of the given types in
        applied order and (if asked) its letters `(kind, issued_at)` in issue order, with
        those of this transaction not yet written: what a deadlock or 8-week letter
        summarises (docs/rules.md s.6). A query each, so only for those letters."""
        history_query = (select(HistoryEntry.type, HistoryEntry.at, HistoryEntry.detail)
                         .where(HistoryEntry.complaint_id == complaint_id,
                                HistoryEntry.type.in_(types))
                         .order_by(HistoryEntry.id))
        letters_query = (select(Letter.kind, Letter.issued_at)
                         .where(Letter.complaint_id == complaint_id)
                         .order_by(Letter.issued_at, Letter.letter_id))
        # Unbuffered, rows go through the session: its autoflush writes them (inside the
        # message's savepoint) in the order they were added, so the queries see them all.
        # Buffered, the ORM must not flush (the buffer comes after it): the buffer is added.
        with self.session.no_autoflush if self.buffering else nullcontext():
            history = [(row[0], row[1], row[2]) for row in self.session.execute(history_query)]
            issued = ([(row[0], row[1]) for row in self.session.execute(letters_query)]
                      if letters else [])
        pending_history, pending_letters = self._pending_record.get(complaint_id, ([], []))
        history += [entry for entry in pending_history if entry[0] in types]
        return history, issued + pending_letters if letters else []

    def deadline_by_key(self, deadline_key: str) -> Deadline | None:
        pending = self._new_deadlines.get(deadline_key)
        if pending is not None:
            return pending
        return self._loose(
            self.session.scalar(select(Deadline).where(Deadline.deadline_key == deadline_key)))

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
        """(due, id) of every unfired deadline: what an event-time run starts from."""
        with self.session.no_autoflush:
            return [(due, ident) for due, ident in self.session.execute(
                select(Deadline.due_at, Deadline.id).where(Deadline.fired_at.is_(None)))]

    # -- writes ------------------------------------------------------------------------
    def add(self, row: Complaint | Deadline) -> None:
        """A new complaint or deadline: rows that are read back and changed later."""
        if isinstance(row, Complaint):
            self._complaints[row.complaint_id] = row
            self._absent.discard(row.complaint_id)
            self._references.add(row.reference)
            self._letter_keys[row.complaint_id] = set()  # new: nothing issued yet
            if self.buffering:
                self._new_complaints[row.complaint_id] = row
                return
        elif self.buffering:
            if row.deadline_key in self._new_deadlines:
                # What the unique key would refuse at the INSERT, refused here (the batch is
                # then re-run message by message, where the database names the message).
                raise ValueError(f"deadline {row.deadline_key} scheduled twice")
            self._new_deadlines[row.deadline_key] = row
            return
        self.session.add(row)

    def record_firing(self, deadline: Deadline, at: datetime, outcome: str) -> None:
        """A deadline has fired (or failed to). Stored ones are written by compare-and-set,
        so a deadline is fired at most once whoever else holds it; one created in this
        transaction goes in with its INSERT (or, re-running message by message, the ORM's)."""
        deadline.fired_at, deadline.outcome = at, outcome
        if object_session(deadline) is not None or deadline.deadline_key in self._new_deadlines:
            return  # the ORM's flush, or the pending INSERT, carries it
        if self.buffering:
            self._fired_deadlines[deadline.deadline_key] = deadline
        else:
            self._record_firings(self.session.connection(), [deadline])

    def append(self, model: type[Base], **values: Any) -> None:
        """A row that is only ever inserted (history, outbox, letters, ...)."""
        if model.__tablename__ not in APPEND_ONLY:
            raise TypeError(f"{model.__name__} rows are not append-only")
        if model is Letter:
            self._issued_letter_keys(values["complaint_id"]).add(values["dedupe_key"])
        if self.buffering:
            self._buffer.append((model, values))
            if model is HistoryEntry or model is Letter:
                history, letters = self._pending_record.setdefault(values["complaint_id"],
                                                                   ([], []))
                if model is HistoryEntry:
                    history.append((values["type"], values["at"], values["detail"]))
                else:
                    letters.append((values["kind"], values["issued_at"]))
        else:
            self.session.add(model(**values))

    def mark_processed(self, event_id: str, now: datetime) -> None:
        self._processed.add(event_id)
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
