"""The in-memory unit of work: rows held in memory, changed in place, no database.

One implementation for the two uses: the rule scenarios and unit tests (`bootstrap_in_memory`,
the store keeping the full record), and replays without a database (`complaints simulate`,
consumers/replay_store.py, keeping only the tables the returns read). It keeps what the
database's constraints and transactions give the SQLAlchemy unit of work: a commit keeps a
transaction's changes, a rollback or a failed savepoint takes them away, and a row breaking a
unique key fails the same way (`IntegrityError`), so the processor's careful re-run finds the
message at fault.

It is built for speed (a replay applies a year of a large supplier's events), so:

- A complaint or deadline read is the stored object itself, changed in place. What a
  transaction changed is undone by a log (a shallow copy of a complaint's columns the first
  time the transaction touches it, a deadline's firing, its number, every key claimed), so a
  rollback or a failed savepoint leaves the store as it was, as the database would. The
  handlers assign columns and never change a JSON value in place (the SQL unit of work relies
  on that too), so a shallow copy is the whole complaint. Rows changed in place are seen by
  any reader of the store at once: one unit of work at a time per store. The unique keys a
  transaction claims are its own until it commits.
- Append-only rows are tuples in the table's column order (workflow/bulk.py's), handed at each
  commit to `MemoryStore.sink` (e.g. an executemany into a scratch SQLite), or kept in lists
  (`MemoryStore.rows`; `table` and `rows_of` read them back as model objects); only the tables
  in `MemoryStore.tables` are kept at all (None, the default: every table, the full record),
  and columns in `dropped` are left out (a return reads no letter's context).
- What the handlers read back is always kept: complaints, unfired deadlines, processed ids,
  references, letters' keys, and per complaint its letters and the history entries of
  `record_types` (what a letter summarises, workflow/letter_context.COMMUNICATIONS).
  `record_of` for any other type is refused rather than answered short.

What a store not keeping every table gives up (so a store keeping `tables=None` is the full
record, what `show_complaint` reads): a fired deadline is forgotten once committed, unless
"deadlines" is kept (only its key stays, so it cannot be scheduled twice), and a row of a
table not kept claims no unique key (the outbox's ids are derived from event ids and deadline
keys, which are unique already).
"""

from __future__ import annotations

import marshal
import pickle
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import String

from workflow.letter_context import COMMUNICATIONS
from workflow.queries import complaint_view
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
Row = tuple[Any, ...]
Sink = Callable[[str, list[Row]], None]

# Every table's unique columns (autoincrement ids aside), as the database would refuse them.
_UNIQUE: dict[str, tuple[str, ...]] = {
    name: tuple(c.key for c in table.columns
                if c.unique or (c.primary_key and isinstance(c.type, String)))
    for name, table in Base.metadata.tables.items()}
# The keys the handlers and the processor read back: claimed whatever is kept.
_READ_BACK = {("complaints", "reference"), ("processed_events", "event_id"),
              ("letters", "dedupe_key"), ("letters", "letter_id")}


COMPLAINT_COLUMNS: tuple[str, ...] = tuple(c.key for c in Complaint.__table__.columns)
# An instance as the ORM makes one when loading a row: no constructor, no attribute events.
_new_complaint = Complaint.__mapper__.class_manager.new_instance


def _unmapped(model: type[M]) -> type[M]:
    """A subclass of a mapped model whose columns are plain attributes, for the rows this
    store holds (`_keep`): still a `model` to every reader (the same properties, the same
    handlers), but a column is read from and written to the instance's dict directly, not
    through the ORM's instrumentation (its history and modified flags, kept for a session
    these rows are never in). A replay reads about 40 columns an event: an instrumented read
    cost 0.23 us, a plain one 0.03 us (timeit, a call included), and a replay's CPU fell by
    about a third. Abstract, so never mapped itself; a column unset reads as None, as the
    instrumented attribute gives it."""
    columns = dict.fromkeys(c.key for c in model.__table__.columns)
    return type(f"Stored{model.__name__}", (model,),  # type: ignore[return-value]
                {"__abstract__": True, "__module__": __name__, **columns})


_STORED: dict[type[Base], type[Base]] = {Complaint: _unmapped(Complaint),
                                         Deadline: _unmapped(Deadline)}


def _keep(row: Complaint | Deadline) -> None:
    """The row, now the store's, made an instance of its unmapped subclass (in place: the
    handler that made it goes on with the same object)."""
    row.__class__ = _STORED[type(row)]  # type: ignore[assignment]
# Every table's mapped class, to read kept rows back as objects.
_MODELS: dict[str, type[Base]] = {
    mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}


def insert_columns(table: Table) -> tuple[str, ...]:
    """A table's columns as a row is written: every column but a generated id (the order of
    workflow.bulk.BulkInsert)."""
    return tuple(c.key for c in table.columns if not (c.primary_key and c.autoincrement is True))


@dataclass(frozen=True)
class _Shape:
    """How one append-only table's rows become tuples."""

    columns: tuple[str, ...]  # in insert order, dropped ones left out
    defaults: dict[str, Any]  # scalar defaults; a callable default is called with None

    def row(self, values: dict[str, Any]) -> Row:
        defaults = self.defaults
        return tuple([values[key] if key in values else _default(defaults.get(key))
                      for key in self.columns])


def _default(default: Any) -> Any:
    return default(None) if callable(default) else default


def _shape(table: Table, dropped: Collection[str]) -> _Shape:
    defaults = {c.key: c.default.arg for c in table.columns  # type: ignore[attr-defined]
                if c.default is not None}
    return _Shape(tuple(k for k in insert_columns(table) if k not in dropped), defaults)


@dataclass
class MemoryStore:
    """What a database would hold (complaints and deadlines changed in place, their changes
    undone by the unit of work on a rollback; append-only rows and keys once committed).
    `tables`: the append-only tables whose rows are kept (None: every table, the full
    record); `dropped`: columns left out of kept rows, by table."""

    tables: frozenset[str] | None = None
    dropped: dict[str, frozenset[str]] = field(default_factory=dict)
    sink: Sink | None = None  # given each commit's rows of a kept table, in insert order
    committed: Callable[[], None] | None = None  # called after each commit
    record_types: frozenset[str] = frozenset(COMMUNICATIONS)

    # A complaint not touched by the last `hot_complaints` ones is kept cold: the tuple of its
    # columns (`COMPLAINT_COLUMNS`) pickled (`_freeze`), made an object again when next read.
    # An ORM object was 3.6 KB, a tuple of the same values 2.2 KB (its customer's dict alone
    # 1.3 KB), the pickled tuple 0.6 KB (pickle.dumps 9.7 us, loads 4.8 us, timeit): with a
    # year of a large supplier's million complaints, the cold ones were the most of a replay's
    # memory.
    complaints: dict[str, Complaint | bytes] = field(default_factory=dict)
    hot_complaints: int = 20_000
    # By key: every unfired deadline, and the fired ones while "deadlines" is kept.
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    deadline_keys: dict[int, str] = field(default_factory=dict)  # by id, as `deadlines`
    fired_keys: set[str] = field(default_factory=set)  # fired deadlines forgotten
    next_deadline_id: int = 1
    rows: dict[str, list[Row]] = field(default_factory=dict)  # kept rows, when no sink
    unique: dict[tuple[str, str], set[Any]] = field(default_factory=dict)
    # Per complaint: (type, at, detail) of history entries of `record_types`, and
    # (issued_at, letter_id, kind) of its letters, in insert order.
    history: dict[str, list[tuple[str, datetime, dict[str, Any]]]] = field(
        default_factory=dict)
    letters: dict[str, list[tuple[datetime, str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tables = Base.metadata.tables
        self._shapes = {name: _shape(tables[name], self.dropped.get(name, frozenset()))
                        for name in APPEND_ONLY if self.keeps(name)}
        self._checked = {name: tuple(
            c for c in _UNIQUE[name] if self.keeps(name) or (name, c) in _READ_BACK)
            for name in tables}
        for key in (*_READ_BACK, *((n, c) for n, cs in self._checked.items() for c in cs)):
            self.unique.setdefault(key, set())

        self._hot: OrderedDict[str, None] = OrderedDict()
        # Kept rows by complaint, as far as indexed: (rows indexed, {complaint_id: rows}).
        self._indexed: dict[str, tuple[int, dict[str, list[Row]]]] = {}

    def complaint_rows(self, columns: Collection[str]) -> Iterator[Row]:
        """Every complaint's values of those columns."""
        # A cold one's from its tuple by position (no dict made of it); a column it does not
        # have (none: every key is a complaint's column) reads as None, as `.get` gave it.
        at = {key: i for i, key in enumerate(COMPLAINT_COLUMNS)}
        width = len(COMPLAINT_COLUMNS)
        positions = [at.get(key, width) for key in columns]
        for found in self.complaints.values():
            if type(found) is bytes:
                row = (*_thaw(found), None)
                yield tuple([row[i] for i in positions])
            else:
                values = found.__dict__  # type: ignore[union-attr]
                yield tuple([values.get(key) for key in columns])

    def states(self) -> dict[str, str]:
        """Every complaint's state, by id."""
        at = COMPLAINT_COLUMNS.index("state")
        return {cid: _thaw(found)[at] if type(found) is bytes  # type: ignore[arg-type]
                else found.state  # type: ignore[union-attr]
                for cid, found in self.complaints.items()}

    def _cool(self, touched: Collection[str]) -> None:
        """The complaints just touched are the most recent; the least recent beyond
        `hot_complaints` are kept cold (pickled tuples)."""
        hot = self._hot
        for cid in touched:
            hot[cid] = None
            hot.move_to_end(cid)
        while len(hot) > self.hot_complaints:
            cid, _ = hot.popitem(last=False)
            found = self.complaints.get(cid)
            if found is not None and type(found) is not bytes:
                # map, not a comprehension (1.7 against 2.1 us, timeit).
                self.complaints[cid] = _freeze(tuple(map(found.__dict__.get,
                                                         COMPLAINT_COLUMNS)))

    def _warm(self, complaint_id: str, cold: bytes) -> Complaint:
        found: Complaint = _new_complaint()
        found.__dict__.update(zip(COMPLAINT_COLUMNS, _thaw(cold), strict=True))
        _keep(found)
        self.complaints[complaint_id] = found
        return found

    def keeps(self, table: str) -> bool:
        return self.tables is None or table in self.tables

    def columns(self, table: str) -> tuple[str, ...]:
        """The columns of a kept table's rows, in their order."""
        return self._shapes[table].columns

    def _store_rows(self, table: str, rows: list[Row]) -> None:
        if self.sink is not None:
            self.sink(table, rows)
        else:
            self.rows.setdefault(table, []).extend(rows)

    # -- reading the record back (tests, `show_complaint`) -------------------------------
    def _kept_rows(self, table: str) -> list[Row]:
        if self.sink is not None or not self.keeps(table):
            raise ValueError(f"this store keeps no rows of {table} in memory")
        return self.rows.get(table, [])

    def _objects(self, model: type[M], rows: Collection[Row]) -> list[M]:
        """Kept rows as model objects (detached, made as the ORM loads a row)."""
        Base.registry.configure()  # attribute access needs the mappers configured
        columns = self.columns(model.__tablename__)
        new = model.__mapper__.class_manager.new_instance
        found = []
        for row in rows:
            item = new()
            item.__dict__.update(zip(columns, row, strict=True))
            found.append(item)
        return found

    def table(self, name: str) -> list[Base]:
        """The stored rows of an append-only table, in insert order, as model objects."""
        return self._objects(_MODELS[name], self._kept_rows(name))

    def rows_of(self, model: type[M], complaint_id: str) -> list[M]:
        """A complaint's stored rows of an append-only table, in insert order."""
        table = model.__tablename__
        rows = self._kept_rows(table)
        done, index = self._indexed.get(table, (0, {}))
        if done < len(rows):  # rows are only ever added at the end: index the new ones
            at = self.columns(table).index("complaint_id")
            for row in rows[done:]:
                index.setdefault(row[at], []).append(row)
            self._indexed[table] = (len(rows), index)
        return self._objects(model, index.get(complaint_id, ()))

    def show_complaint(self, complaint_id: str) -> dict[str, Any] | None:
        """`workflow.queries.show_complaint`, read from memory (a store keeping every
        table)."""
        found = self.complaints.get(complaint_id)
        if found is None:
            return None
        if type(found) is bytes:
            complaint: Complaint = _new_complaint()
            complaint.__dict__.update(zip(COMPLAINT_COLUMNS, _thaw(found), strict=True))
        else:
            complaint = found  # type: ignore[assignment]
        if not self.keeps("deadlines"):
            raise ValueError("this store forgets fired deadlines")
        deadlines = sorted((d for d in self.deadlines.values()
                            if d.complaint_id == complaint_id), key=lambda d: (d.due_at, d.id))
        letters = sorted(self.rows_of(Letter, complaint_id),
                         key=lambda x: (x.issued_at, x.letter_id))
        ids = {x.letter_id for x in letters}
        deliveries = {d.letter_id: d.status for d in self.rows_of(Delivery, complaint_id)
                      if d.letter_id in ids}
        return complaint_view(complaint, self.rows_of(HistoryEntry, complaint_id), deadlines,
                              letters, deliveries, {})


def _freeze(row: Row) -> bytes:
    """A cold complaint's columns, serialised: exactly the values again when thawed (equal,
    of the same types, not the same objects: the handlers assign columns and never change a
    value in place).

    marshal, its instants in UTC as tuples of their fields (a column's value is never a
    tuple otherwise): about 13 + 14 us against pickle's 24 + 19 (timeit, a year's complaint
    of the 63 s stream), a year of a large supplier's replay freezing and thawing complaints
    once its hot set is full. marshal refuses any type it would not give back exactly
    (a subclass, a date, an instant inside a JSON value): then, or with an instant in another
    zone or a tuple, pickled as before. The first byte says which."""
    values = list(row)
    for i, value in enumerate(values):
        kind = type(value)
        if kind is datetime:
            if value.tzinfo is not UTC:
                return _pickled(row)
            values[i] = (value.year, value.month, value.day, value.hour, value.minute,
                         value.second, value.microsecond, value.fold)
        elif kind is tuple:
            return _pickled(row)
    try:
        return _MARSHALLED + marshal.dumps(tuple(values))
    except ValueError:  # "unmarshallable object"
        return _pickled(row)


_MARSHALLED, _PICKLED = b"M", b"P"


def _pickled(row: Row) -> bytes:
    return _PICKLED + pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)


def _thaw(cold: bytes) -> Row:
    if cold[:1] == _PICKLED:
        row: Row = pickle.loads(cold[1:])  # noqa: S301 - only ever this store's own `_freeze`
        return row
    return tuple([datetime(v[0], v[1], v[2], v[3], v[4], v[5], v[6], UTC, fold=v[7])
                  if type(v) is tuple else v
                  for v in marshal.loads(memoryview(cold)[1:])])


def _refused(table: str, column: str, value: Any) -> IntegrityError:
    return IntegrityError(f"INSERT INTO {table}", None,
                          ValueError(f"{table}.{column} {value!r} exists already"))


# Undo log entries, undone last first.
_DISCARD, _DELETE, _RESTORE, _UNFIRE, _UNNUMBER = range(5)


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._undo: list[tuple[Any, ...]] = []
        self._claimed: dict[tuple[str, str], set[Any]] = {}  # keys claimed, until the commit
        self._touched: set[str] = set()  # complaints whose columns the log holds
        self._fired: list[Deadline] = []  # stored deadlines fired in this transaction
        self._rows: list[tuple[str, Row]] = []
        self._history: dict[str, list[tuple[str, datetime, dict[str, Any]]]] = {}
        self._letters: dict[str, list[tuple[datetime, str, str]]] = {}
        # Read by every handler that would emit (about four times an event): once, here.
        self._publishes = store.keeps("outbox")
        self._history_kept = store.keeps("history")
        self._contexts = store.keeps("letters") and "context" not in store.dropped.get(
            "letters", frozenset())

    @property
    def publishes(self) -> bool:
        return self._publishes

    @property
    def keeps_letter_contexts(self) -> bool:
        return self._contexts

    def records_history(self, entry_type: str) -> bool:
        """Whether `append(HistoryEntry, ...)` of this type would keep anything (history
        rows claim no unique key, so one kept nowhere changes nothing)."""
        return self._history_kept or entry_type in self.store.record_types

    # -- transactions ------------------------------------------------------------------
    def commit(self) -> None:
        store = self.store
        by_table: dict[str, list[Row]] = {}
        for table, row in self._rows:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            store._store_rows(table, rows)
        for cid, entries in self._history.items():
            store.history.setdefault(cid, []).extend(entries)
        for cid, letters in self._letters.items():
            store.letters.setdefault(cid, []).extend(letters)
        for key, values in self._claimed.items():
            store.unique[key].update(values)
        if not store.keeps("deadlines"):
            for deadline in self._fired:
                columns = deadline.__dict__  # read as stored: no instrumented read each
                fired_key: str = columns["deadline_key"]  # set by `add`, as every column
                if columns.get("fired_at") is not None and store.deadlines.pop(
                        fired_key, None) is not None:
                    del store.deadline_keys[columns["id"]]
                    store.fired_keys.add(fired_key)
        store._cool(self._touched)
        self._forget()
        if store.committed is not None:
            store.committed()

    def rollback(self) -> None:
        self._undo_to(0)
        self._forget()

    def close(self) -> None:
        self.rollback()

    def _forget(self) -> None:
        self._undo = []
        self._claimed = {}
        self._touched = set()
        self._fired = []
        self._rows = []
        self._history = {}
        self._letters = {}

    def _undo_to(self, mark: int) -> None:
        store, undo = self.store, self._undo
        while len(undo) > mark:
            entry = undo.pop()
            op = entry[0]
            if op == _DISCARD:
                entry[1].discard(entry[2])
            elif op == _DELETE:
                del entry[1][entry[2]]
            elif op == _RESTORE:
                columns = entry[1].__dict__
                columns.clear()
                columns.update(entry[2])
            elif op == _UNFIRE:  # the deadline's dict, as `record_firing` changed it
                entry[1]["fired_at"], entry[1]["outcome"] = entry[2], entry[3]
            else:  # _UNNUMBER: a new deadline
                del store.deadlines[entry[1]]
                del store.deadline_keys[entry[2]]
                store.next_deadline_id = entry[2]

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A savepoint (the careful re-run of a failed batch, message by message)."""
        mark, rows, touched = len(self._undo), len(self._rows), self._touched
        history = {cid: list(v) for cid, v in self._history.items()}
        letters = {cid: list(v) for cid, v in self._letters.items()}
        fired = len(self._fired)
        self._touched = set()  # columns copied again inside, so the savepoint can undo
        try:
            yield
        except BaseException:
            self._undo_to(mark)
            del self._rows[rows:]
            del self._fired[fired:]
            self._history, self._letters = history, letters
            raise
        finally:
            self._touched = touched | self._touched

    # -- reads -------------------------------------------------------------------------
    def prefetch_complaints(self, complaint_ids: set[str]) -> set[str]:
        """Nothing to fetch ahead, and none named: what this returns feeds
        `prefetch_references` (a reference candidate is a SHA-256 and a Luhn check each),
        which here fetches nothing either."""
        return set()

    def complaint(self, complaint_id: str) -> Complaint | None:
        stored = self.store.complaints.get(complaint_id)
        if stored is None:
            return None
        found: Complaint = (self.store._warm(complaint_id, stored) if type(stored) is bytes
                            else stored)  # type: ignore[assignment]
        if complaint_id not in self._touched:
            self._touched.add(complaint_id)
            self._undo.append((_RESTORE, found, found.__dict__.copy()))
        return found

    def prefetch_references(self, candidates: set[str]) -> None:
        """Nothing to fetch ahead: every look-up is a dict's."""

    def reference_taken(self, reference: str) -> bool:
        return self._taken(("complaints", "reference"), reference)

    def prefetch_processed(self, event_ids: list[str]) -> None:
        """Nothing to fetch ahead."""

    def is_processed(self, event_id: str) -> bool:
        return self._taken(("processed_events", "event_id"), event_id)

    def letter_exists(self, complaint_id: str, dedupe_key: str) -> bool:
        return self._taken(("letters", "dedupe_key"), dedupe_key)

    def record_of(self, complaint_id: str, types: Collection[str], *,
                  letters: bool = True) -> Record:
        missing = set(types) - self.store.record_types
        if missing:
            raise ValueError(f"this store keeps no history of {sorted(missing)}")
        store = self.store
        history = [entry for entry in (*store.history.get(complaint_id, ()),
                                       *self._history.get(complaint_id, ()))
                   if entry[0] in types]
        if not letters:
            return history, []
        stored = sorted(store.letters.get(complaint_id, ()), key=lambda x: (x[0], x[1]))
        issued = [(kind, at) for at, _, kind in (*stored, *self._letters.get(complaint_id, ()))]
        return history, issued

    def deadline_by_key(self, deadline_key: str) -> Deadline | None:
        return self.store.deadlines.get(deadline_key)

    def deadline(self, deadline_id: int) -> Deadline | None:
        key = self.store.deadline_keys.get(deadline_id)
        return None if key is None else self.store.deadlines.get(key)

    def pending_deadlines(self) -> list[tuple[datetime, int]]:
        return [(d.due_at, d.id) for d in self.store.deadlines.values() if d.fired_at is None]

    # -- writes ------------------------------------------------------------------------
    def add(self, row: Complaint | Deadline) -> None:
        store = self.store
        if isinstance(row, Complaint):
            if row.complaint_id in store.complaints:
                raise _refused("complaints", "complaint_id", row.complaint_id)
            values = row.__dict__
            # Unset columns at their defaults, as an INSERT would leave them; straight into
            # the object's dict (it is in no session: nothing to track).
            _fill_defaults(values, _complaint_defaults())
            self._claim("complaints", values)
            if type(row) is Complaint:
                _keep(row)
            store.complaints[row.complaint_id] = row
            self._touched.add(row.complaint_id)
            self._undo.append((_DELETE, store.complaints, row.complaint_id))
            return
        key = row.deadline_key
        if key in store.deadlines or key in store.fired_keys:
            raise _refused("deadlines", "deadline_key", key)
        values = row.__dict__
        _fill_defaults(values, _deadline_defaults())
        if type(row) is Deadline:
            _keep(row)
        values["id"] = ident = store.next_deadline_id  # as the defaults: no session to tell
        store.next_deadline_id = ident + 1
        store.deadlines[key] = row
        store.deadline_keys[ident] = key
        self._undo.append((_UNNUMBER, key, ident))

    def record_firing(self, deadline: Deadline, at: datetime, outcome: str) -> None:
        # Into the object's dict, as `add` fills it: the store's deadlines are in no session,
        # so the instrumented set's history and modified flag would be bookkeeping for no
        # one (two of them a firing, about a third of a replay's attribute sets).
        values = deadline.__dict__
        self._undo.append((_UNFIRE, values, values.get("fired_at"), values.get("outcome")))
        values["fired_at"], values["outcome"] = at, outcome
        self._fired.append(deadline)

    def append(self, model: type[Base], **values: Any) -> None:
        table = model.__tablename__
        store = self.store
        if model is HistoryEntry:
            if values["type"] in store.record_types:
                self._history.setdefault(values["complaint_id"], []).append(
                    (values["type"], values["at"], values["detail"]))
        elif model is Letter:
            self._letters.setdefault(values["complaint_id"], []).append(
                (values["issued_at"], values["letter_id"], values["kind"]))
        elif table not in APPEND_ONLY:
            raise TypeError(f"{model.__name__} rows are not append-only")
        self._claim(table, values)
        shape = store._shapes.get(table)
        if shape is not None:
            self._rows.append((table, shape.row(values)))

    def mark_processed(self, event_id: str, now: datetime) -> None:
        self.append(ProcessedEvent, event_id=event_id, applied_at=now)

    # -- unique keys -------------------------------------------------------------------
    def _taken(self, key: tuple[str, str], value: Any) -> bool:
        """Taken in the store (committed) or by this transaction."""
        if value in self.store.unique[key]:
            return True
        claimed = self._claimed.get(key)
        return claimed is not None and value in claimed

    def _claim(self, table: str, values: dict[str, Any]) -> None:
        """Refuse a repeated unique value, as the database's constraint would."""
        checked = self.store._checked[table]
        if not checked:
            return
        for column in checked:
            value = values.get(column)
            if value is not None and self._taken((table, column), value):
                raise _refused(table, column, value)
        claimed = self._claimed
        for column in checked:
            value = values.get(column)
            if value is not None:
                taken = claimed.get((table, column))
                if taken is None:
                    taken = claimed[(table, column)] = set()
                taken.add(value)
                self._undo.append((_DISCARD, taken, value))


def _fill_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> None:
    """The columns missing from `values` at their defaults, as an INSERT would leave them.
    (A test per column: timed, it beats a set difference of the keys and a merged dict.)"""
    for key, default in defaults.items():
        if key not in values:
            values[key] = _default(default)


def _column_defaults(table: Table) -> dict[str, Any]:
    defaults: dict[str, Any] = {"version": 1} if "version" in table.c else {}
    for column in table.columns:
        if column.key == "version" or column.primary_key and column.autoincrement is True:
            continue
        default = column.default
        defaults[column.key] = None if default is None else default.arg  # type: ignore[attr-defined]
    return defaults


_DEFAULTS: dict[str, dict[str, Any]] = {}


def _complaint_defaults() -> dict[str, Any]:
    found = _DEFAULTS.get("complaints")
    if found is None:
        found = _DEFAULTS["complaints"] = _column_defaults(Complaint.__table__)  # type: ignore[arg-type]
    return found


def _deadline_defaults() -> dict[str, Any]:
    found = _DEFAULTS.get("deadlines")
    if found is None:
        found = _DEFAULTS["deadlines"] = _column_defaults(Deadline.__table__)  # type: ignore[arg-type]
    return found
