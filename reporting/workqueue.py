"""The operations work queue's reads from the record: find a complaint by reference or id,
and one complaint's timeline (served on the ops API, `reporting/web.py`)."""

from __future__ import annotations

import weakref
from bisect import bisect_left, insort
from collections import namedtuple
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final

from sqlalchemy import (
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from workflow import queries
from workflow.calendar import start_of_date
from workflow.counting import with_the_ombudsman
from workflow.schema import (
    Complaint,
    Deadline,
    Delivery,
    Dispatch,
    HistoryEntry,
    Letter,
    PersonalDataRead,
    Receipt,
    UTCDateTime,
    aware_utc,
)

SEARCH_LIMIT = 20
# A list's total is counted exactly up to here and given as a lower bound beyond (with
# "total_exact": false): counting a stage of 740,000 complaints for each page would take
# longer than the page (the dashboard's counts, from the live view, are exact).
COUNT_LIMIT = 10_000
# Deeper than this a page is asked for by `after` (the `next` of the page before): an offset
# makes the database read and drop every row before it.
OFFSET_LIMIT = 10_000


# --------------------------------------------------------------------------- running them
# Where a read's statements run: the server's session (any database), or, in a reader
# process (reporting/readers.py), the psycopg connection it keeps for its lifetime.
Source = Session | Any


class Prepared:
    """A statement built once, compiled once for PostgreSQL's psycopg, and run on the
    driver's connection itself with its values: SQLAlchemy's execute costs more than the
    rest of a read's Python (its cache key is built from the statement every call: 0.35 of
    a list page's 0.6 ms in a reader, measured on a kept connection), and a read's
    statements are few and fixed. The rows are tuples of the values SQLAlchemy would give
    (its bind and result processors, from the statement's own types, applied here: aware
    UTC instants, JSON parsed by the driver as before). On another database (SQLite) the
    statement runs through SQLAlchemy as before."""

    __slots__ = ("statement", "_compiled", "_row")

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: tuple[str, dict[str, Any], list[tuple[str, Any]],
                              list[tuple[int, Any]]] | None = None
        # Rows read by index or by column name, as SQLAlchemy's are (names repeated or not
        # identifiers are renamed: read those by index).
        self._row: Any = None
        if getattr(statement, "is_select", False):
            self._row = namedtuple("Row", list(statement.selected_columns.keys()),  # type: ignore[misc]
                                   rename=True)

    def _compile(self) -> tuple[str, dict[str, Any], list[tuple[str, Any]],
                                list[tuple[int, Any]]]:
        if self._compiled is None:
            dialect = _psycopg_dialect()
            compiled = self.statement.compile(dialect=dialect)
            fixed: dict[str, Any] = {}
            given: list[tuple[str, Any]] = []
            for name, parameter in compiled.binds.items():
                processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
                if parameter.required:
                    given.append((name, processor))
                else:  # a value written in the statement (a kind, a state)
                    value = parameter.effective_value
                    fixed[name] = processor(value) if processor is not None else value
            results = []
            if getattr(self.statement, "is_select", False):
                for n, column in enumerate(self.statement.selected_columns):
                    processor = (aware_utc if isinstance(column.type, UTCDateTime) else
                                 column.type.dialect_impl(dialect).result_processor(dialect,
                                                                                    None))
                    if processor is not None:
                        results.append((n, processor))
            self._compiled = (str(compiled), fixed, given, results)
        return self._compiled

    def parameters(self, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL and the driver's parameters for `values`."""
        sql, fixed, given, _ = self._compile()
        parameters = dict(fixed)
        for name, processor in given:
            value = values[name]
            parameters[name] = processor(value) if processor is not None else value
        return sql, parameters

    def processed(self, rows: Sequence[Any]) -> list[Any]:
        """The driver's rows as SQLAlchemy would give them (tuples)."""
        results = self._compile()[3]
        make = self._row._make
        if not results:
            return [make(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for n, processor in results:
                values[n] = processor(values[n])
            out.append(make(values))
        return out

    def rows(self, source: Source, values: Mapping[str, Any]) -> list[Any]:
        """The statement's rows for `values`, each indexable in its columns' order."""
        driver = driver_connection(source)
        if driver is None:
            result = source.connection().execute(self.statement, values)
            return list(result) if result.returns_rows else []
        sql, parameters = self.parameters(values)
        with driver.cursor() as cursor:
            cursor.execute(sql, parameters)
            return self.processed(cursor.fetchall()) if cursor.description else []


def driver_connection(source: Source) -> Any:
    """The psycopg connection under `source` (a reader's own, or the session's on
    PostgreSQL), or None: run through SQLAlchemy."""
    if not isinstance(source, Session):
        return source
    connection = source.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg" or not _RAW:
        return None
    return connection.connection.driver_connection


_RAW = True  # False: every read through SQLAlchemy (the tests compare the two ways)


@cache
def _psycopg_dialect() -> Dialect:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg()



def search(session: Source, text: str) -> list[dict[str, Any]]:
    """Complaints whose id or reference is `text` or starts with it, in any case (references
    also ignoring spaces), exact matches first, at most SEARCH_LIMIT. The same on SQLite
    and PostgreSQL for ASCII letters (SQLite's LIKE ignores their case, PostgreSQL's does
    not, so the statement compares upper() of both sides; SQLite's upper() folds ASCII
    only, so an id with other letters matches there in the case given)."""
    wanted = text.strip()
    if not wanted:
        return []
    reference = wanted.upper().replace(" ", "")
    # Bound parameters; LIKE wildcards in the input are taken literally.
    escaped = [value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
               for value in (wanted, reference)]
    rows = _SEARCH.rows(session, {"id_upper": escaped[0].upper() + "%",
                                  "reference_prefix": escaped[1] + "%"})
    found = [{"complaint_id": r[0], "reference": r[1], "state": r[2],
              "received_at": queries.iso(r[3]), "owner": queries.owner_name(r[4])}
             for r in rows]
    exact = wanted.upper()
    found.sort(key=lambda c: (c["complaint_id"].upper() != exact and c["reference"] != reference,
                              c["complaint_id"]))
    return found[:SEARCH_LIMIT]


# Built once, run with its values (as the timeline's statements below). upper(complaint_id)
# as well as the id: the expression PostgreSQL's pattern index holds (migration 0012), so
# both prefixes are index ranges over a million complaints.
_SEARCH: Final = Prepared(
    select(Complaint.complaint_id, Complaint.reference, Complaint.state,
           Complaint.received_at, Complaint.owner)
    .where(or_(func.upper(Complaint.complaint_id).like(bindparam("id_upper"), escape="\\"),
               func.upper(Complaint.reference).like(bindparam("reference_prefix"),
                                                    escape="\\")))
    .order_by(Complaint.complaint_id).limit(200))


def timeline(session: Source, complaint_id: str,
             record: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """One complaint as `complaints show` gives it (history, deadlines, letters), plus its
    owner and a single time-ordered list of what happened and what is due.

    With `record` (read_at, reader, what) the read of its personal data is recorded by the
    same trip when the complaint exists (`_RECORDED`): on PostgreSQL the reads and the
    INSERT go in one pipeline, so when this returns the record is in the database, or
    committed with the caller's transaction if one is open (the caller commits before it
    sends the document)."""
    shown = _shown(session, complaint_id, record)
    if shown is None:
        return None
    document, owner = shown
    entries: list[dict[str, Any]] = [
        {"at": h["at"], "what": "event" if not h["type"].startswith("deadline.") else "deadline",
         "type": h["type"], "from": h["from"], "to": h["to"]} for h in document["history"]]
    entries += [{"at": letter["issued_at"], "what": "letter", "type": letter["kind"],
                 "letter_id": letter["letter_id"]} for letter in document["letters"]]
    entries += [{"at": d["due_at"], "what": "due", "type": d["kind"]}
                for d in document["deadlines"] if d["fired_at"] is None]
    entries.sort(key=lambda e: (e["at"], e["what"] == "due"))
    return {**document, "owner": owner, "timeline": entries}


# Built once, run with their values (bindparam): building a select and its cache key took
# two thirds of the Python a statement of the timeline cost (0.3-0.4 of 0.5-0.6 ms).
_COMPLAINT: Final = Prepared(
    select(Complaint.complaint_id, Complaint.reference, Complaint.state, Complaint.category,
           Complaint.channel, Complaint.received_at, Complaint.cycle, Complaint.duplicate_of,
           Complaint.handler, Complaint.closed_by, Complaint.late_referral, Complaint.owner)
    .where(Complaint.complaint_id == bindparam("complaint_id")))
_HISTORY: Final = Prepared(
    select(HistoryEntry.at, HistoryEntry.event_id, HistoryEntry.type, HistoryEntry.from_state,
           HistoryEntry.to_state)
    .where(HistoryEntry.complaint_id == bindparam("complaint_id")).order_by(HistoryEntry.id))
_DEADLINES: Final = Prepared(
    select(Deadline.kind, Deadline.cycle, Deadline.due_at, Deadline.fired_at, Deadline.outcome)
    .where(Deadline.complaint_id == bindparam("complaint_id"))
    .order_by(Deadline.due_at, Deadline.id))
# The complaint's letters with their delivery status (queries.letter_dispatches' first
# statement, by the complaint rather than a list of its letter ids: no second trip).
_LETTERS: Final = Prepared(
    select(Letter.letter_id, Letter.kind, Letter.issued_at, Delivery.status)
    .join_from(Letter, Delivery, Delivery.letter_id == Letter.letter_id, isouter=True)
    .where(Letter.complaint_id == bindparam("complaint_id"))
    .order_by(Letter.issued_at, Letter.letter_id))
# Their attempts, in letter_dispatches' order (by letter, then attempt).
_DISPATCHES: Final = Prepared(
    select(Dispatch.letter_id, Dispatch.attempt, Dispatch.channel, Dispatch.address,
           Dispatch.attempted_at, Dispatch.outcome, Dispatch.receipt)
    .join_from(Dispatch, Letter, Letter.letter_id == Dispatch.letter_id)
    .where(Letter.complaint_id == bindparam("complaint_id"))
    .order_by(Dispatch.letter_id, Dispatch.attempt))
# The record of a read of the complaint's personal data, written only if the complaint
# exists (an unknown complaint's 404 records nothing), so it can go in the reads' trip.
_RECORDED: Final = Prepared(
    insert(PersonalDataRead).from_select(
        ["read_at", "reader", "complaint_id", "what"],
        select(bindparam("read_at", type_=PersonalDataRead.read_at.type),
               bindparam("reader", type_=PersonalDataRead.reader.type),
               bindparam("complaint_id", type_=PersonalDataRead.complaint_id.type),
               bindparam("what", type_=PersonalDataRead.what.type))
        .where(select(Complaint.complaint_id)
               .where(Complaint.complaint_id == bindparam("complaint_id")).exists())))
_SHOWN: Final = (_COMPLAINT, _HISTORY, _DEADLINES, _LETTERS, _DISPATCHES)


def _shown(session: Source, complaint_id: str,
           record: Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None] | None:
    """`queries.show_complaint`'s document (its own formatter, `complaint_view`) and the
    complaint's owner (RULES s.6, `queries.owner_name`), from the
    columns it shows read as plain rows: no ORM objects of every column (a complaint's 38,
    each letter's context parsed from JSON) to build and drop for each request.

    On PostgreSQL the five reads (and the record) are one pipeline: one trip to the database
    instead of six or seven, each statement still on its own (autocommit) or in the caller's
    transaction."""
    values = {"complaint_id": complaint_id, **(record or {})}
    driver = driver_connection(session)
    if driver is None:
        complaint, history, deadlines, letters, attempts = (
            statement.rows(session, values) for statement in _SHOWN)
        if complaint and record is not None:
            _RECORDED.rows(session, values)
    else:
        statements = _SHOWN if record is None else (*_SHOWN, _RECORDED)
        cursors = []
        with driver.pipeline():
            for statement in statements:
                cursor = driver.cursor()
                cursor.execute(*statement.parameters(values))
                cursors.append(cursor)
        complaint, history, deadlines, letters, attempts = (
            statement.processed(cursor.fetchall()) for statement, cursor
            in zip(_SHOWN, cursors, strict=False))
        for cursor in cursors:
            cursor.close()
    if not complaint:
        return None
    deliveries = {x.letter_id: x.status for x in letters if x.status is not None}
    dispatches: dict[str, list[dict[str, Any]]] = {}
    for d in attempts:
        dispatches.setdefault(d.letter_id, []).append(
            {"attempt": d.attempt, "channel": d.channel, "address": d.address,
             "at": queries.iso(d.attempted_at), "outcome": d.outcome, "receipt": d.receipt})
    # Rows with the attributes the formatter reads, where it names the mapped classes.
    view: Any = queries.complaint_view
    return (view(complaint[0], history, deadlines, letters, deliveries, dispatches),
            queries.owner_name(complaint[0].owner))


def listing(session: Source, *, state: str | None = None, overdue: str | None = None,
            received: date | None = None, as_of: datetime | None = None, offset: int = 0,
            limit: int = 50, after: str | None = None) -> dict[str, Any]:
    """The complaints behind one of the dashboard's counts, oldest first, paginated: those in
    a state, those with a deadline of a kind overdue at `as_of` (the backlog's count: unfired
    and due before it; remedies also when their deadline fired and the remedy is still not
    implemented), or those received (a registration or a reopen) on a local date.

    A page is `limit` rows from `offset` (at most OFFSET_LIMIT), or after `after` (the `next`
    of the page before: keyset pagination, as fast at the millionth row as at the first).
    `total` is exact up to COUNT_LIMIT (`total_exact`), a lower bound beyond.

    One statement per page (one trip, one snapshot): the page's keys (its sort key) are read
    from the list's own index and skipped there, and only the `limit` rows kept are joined to
    their complaints; the total is a scalar subquery over the same index beside them. Each
    shape of statement is built once (`_list_statements`) and run with the page's values."""
    values: dict[str, Any]
    if state is not None:
        shape, values = "state", {"state": state}
    elif overdue is not None:
        shape = "remedy" if overdue == "remedy" else "overdue"
        values = {"kind": overdue, "moment": as_of or datetime.now(UTC)}
    elif received is not None:
        shape = "received"
        values = {"start": start_of_date(received),
                  "end": start_of_date(received + timedelta(days=1))}
    else:
        raise ValueError("give a state, an overdue deadline kind or a date")
    if offset > OFFSET_LIMIT:
        raise ValueError(f"offset must be at most {OFFSET_LIMIT:,}: page on with after=next")
    keys = _KEY_COLUMNS[shape]
    cursor = _cursor_values(after, keys) if after is not None else None
    values.update(page_rows=limit + 1, count_rows=COUNT_LIMIT + 1)
    driver = driver_connection(session)
    if driver is not None and _between_transactions(driver):
        rows, counted, keys_at = _read_known(driver, shape, values, offset, cursor)
    else:
        page, count_only = _list_statements(shape, cursor is not None)
        values.update(_cursor_parameters(cursor) if cursor is not None else {"offset": offset})
        rows = page.rows(session, values)
        if rows:
            counted = int(rows[0].counted)
        else:  # nothing on this page (past the end): the total on its own
            counted = count_only.rows(session, values)[0][0] or 0
        keys_at = _KEYS_AT
    more, rows = len(rows) > limit, rows[:limit]
    complaints = []
    for row in rows:
        entry = {"complaint_id": row.complaint_id, "reference": row.reference,
                 "state": row.state, "received_at": queries.iso(row.received_at),
                 "owner": queries.owner_name(row.owner)}
        if overdue is not None:
            entry["due_at"] = queries.iso(row[keys_at])
        if received is not None:
            entry["receipt_at"] = queries.iso(row[keys_at])
        complaints.append(entry)
    return {
        "total": min(counted, COUNT_LIMIT), "total_exact": counted <= COUNT_LIMIT,
        "offset": offset, "limit": limit, "complaints": complaints,
        # The next page's `after`: where this one ended in the list's order.
        "next": _cursor(rows[-1][keys_at:keys_at + keys]) if more and rows else None}


_COLUMNS: Final = (Complaint.complaint_id, Complaint.reference, Complaint.state,
                   Complaint.received_at, Complaint.owner)
_KEYS_AT: Final = 1 + len(_COLUMNS)  # where a page row's sort key starts (after the total)
# How many columns each list's sort key has: an instant and the complaint id, and for
# deadlines and receipts the row id.
_KEY_COLUMNS: Final = {"state": 2, "overdue": 3, "remedy": 3, "received": 3}


def _cursor_parameters(cursor: Sequence[Any]) -> dict[str, Any]:
    """The values of a keyset page's parameters: after the key `cursor`, no offset."""
    return {**{f"after_{n}": value for n, value in enumerate(cursor)}, "offset": 0}


@cache
def _list_statements(shape: str, keyset: bool) -> tuple[Prepared, Prepared]:
    """A list's page statement (its total beside its rows) and the total alone; the values
    are bound parameters (see `listing`). A keyset page (`after`) also skips `offset` rows
    after its key (0 for `after`; more where a page starts from a known row before it,
    `_read_known`)."""
    return _page(shape, keyset, counted=True, snapshot=False), _total(shape, snapshot=False)


@cache
def _page(shape: str, keyset: bool, *, counted: bool, snapshot: bool) -> Prepared:
    """A page's statement: its rows' columns, then (`counted`) its total before them, then
    the sort key, then (`snapshot`, PostgreSQL's) the snapshot it was read in."""
    keys, _ = _list_keys(shape)
    order = tuple(keys.selected_columns)
    chosen = keys.order_by(*order)
    if keyset:
        cursor = [bindparam(f"after_{n}", type_=column.type) for n, column in enumerate(order)]
        chosen = chosen.where(tuple_(*order) > tuple_(*cursor))
    chosen = chosen.offset(bindparam("offset", type_=Integer))
    page_keys = chosen.limit(bindparam("page_rows", type_=Integer)).subquery("page_keys")
    key_columns = list(page_keys.c)
    leading = [_total_of(shape).label("counted")] if counted else []
    rows = page_keys.join(Complaint, Complaint.complaint_id == key_columns[1])
    if snapshot:
        # One row even when the page has none (its columns null): the snapshot (and the
        # total) of a page past the end, in the same trip.
        moment = select(_SNAPSHOT.label("snapshot")).subquery("moment")
        page = (select(*leading, *_COLUMNS, *key_columns, moment.c.snapshot)
                .select_from(moment.outerjoin(rows, true())))
    else:
        page = select(*leading, *_COLUMNS, *key_columns).select_from(rows)
    return Prepared(page.order_by(*key_columns))


@cache
def _total(shape: str, *, snapshot: bool) -> Prepared:
    """The list's total alone (capped), and (`snapshot`) the snapshot it was counted in."""
    return Prepared(select(_total_of(shape), *([_SNAPSHOT] if snapshot else [])))


def _total_of(shape: str) -> Any:
    _, counted_rows = _list_keys(shape)
    return (select(func.count())
            .select_from(counted_rows.limit(bindparam("count_rows", type_=Integer)).subquery())
            .scalar_subquery())


# PostgreSQL's snapshot of the statement (which transactions' writes it sees): two statements
# that give the same one read the same record.
_SNAPSHOT: Final = cast(func.pg_current_snapshot(), Text)


# --------------------------------------------------------------------------- known lists
class _Known:
    """What one list was found to be in one snapshot of the record: its capped total, and
    the sort keys of the rows its pages held, by position (0: the first row)."""

    __slots__ = ("snapshot", "counted", "keys", "positions")

    def __init__(self, snapshot: str, counted: int) -> None:
        self.snapshot = snapshot
        self.counted = counted
        self.keys: dict[int, tuple[Any, ...]] = {}
        self.positions: list[int] = []  # of `keys`, ascending

    def learn(self, first: int, rows: Sequence[Any], at: int, width: int,
              every: bool) -> int:
        """Keep the keys of a page's rows from position `first`: `every` row's (a page can
        then be read by its ids), or its last two only (where the next page, and the one
        after it, start from); how many were new."""
        learnt = 0
        for n in range(0 if every else max(0, len(rows) - 2), len(rows)):
            position = first + n
            if position > _KNOWN_POSITIONS:
                break
            if position not in self.keys:
                self.keys[position] = tuple(rows[n][at:at + width])
                insort(self.positions, position)
                learnt += 1
        return learnt

    def page(self, offset: int, rows: int) -> list[tuple[Any, ...]] | None:
        """The keys of the page of `rows` rows from `offset` when each is known (fewer at the
        list's end, when its total is exact), else None."""
        end = offset + rows
        if self.counted <= COUNT_LIMIT:
            end = min(end, self.counted)
        keys = self.keys
        if end > offset and (offset not in keys or end - 1 not in keys):
            return None
        try:
            return [keys[position] for position in range(offset, end)]
        except KeyError:
            return None

    def before(self, offset: int) -> int | None:
        """The last known position before `offset` (None: none is known)."""
        n = bisect_left(self.positions, offset)
        return self.positions[n - 1] if n else None


# Past the deepest offset's page (OFFSET_LIMIT plus the largest limit and its extra row).
_KNOWN_POSITIONS: Final = OFFSET_LIMIT + 501
# Per connection, at most so many lists and so many keys of theirs: all are forgotten when
# more would be kept (a list read at `as_of` now is a new list at each request).
_KNOWN_LISTS: Final = 256
_KNOWN_KEYS: Final = 100_000


class _Lists(dict[tuple[Any, ...], _Known]):
    """What one connection knows of each list (by its shape and values), and how many keys."""

    keys_known = 0

    def forget(self, key: tuple[Any, ...]) -> None:
        self.keys_known -= len(self.pop(key).keys)


_known: weakref.WeakKeyDictionary[Any, _Lists] = weakref.WeakKeyDictionary()


def _between_transactions(driver: Any) -> bool:
    """Whether the connection has no transaction open (a reader's, in autocommit): each
    statement then reads a snapshot of committed writes only, so two with the same snapshot
    read the same rows (inside a transaction its own uncommitted writes would not show in
    the snapshot)."""
    from psycopg.pq import TransactionStatus

    return bool(driver.info.transaction_status == TransactionStatus.IDLE)


def _read_known(driver: Any, shape: str, values: dict[str, Any], offset: int,
                cursor: Sequence[Any] | None) -> tuple[list[Any], int, int]:
    """A page's rows, its capped total and where its rows' sort key starts, on PostgreSQL
    outside a transaction: the total counted once per snapshot of the record, not per page.

    Each list's total (and the sort keys of the rows its pages held) is kept with the
    snapshot it was read in (`_Known`). A page of a known list is read alone, with its
    snapshot; if that is the known one, nothing was committed in between, so the known
    total is this page's, as exactly as if counted beside it. Its rows are then read from
    the known row before it when there is one (the list's keyset seek, `after` that row's
    key, skipping only the rows between): the database skips the offset's rows only once
    per snapshot. Otherwise (something was committed, or the list is new) the page and its
    total are read together, as before, and become what is known of the list."""
    lists = _known.setdefault(driver, _Lists())
    key = (shape, *sorted((name, value) for name, value in values.items()
                          if name != "page_rows"))
    known = lists.get(key)
    width = _KEY_COLUMNS[shape]
    if known is not None and cursor is None and shape == "remedy":
        wanted = known.page(offset, values["page_rows"])
        if wanted is not None:
            # Every row of the page is known: only their complaints are read (by id), with
            # the snapshot that says they are still the page's. For the overdue remedies
            # only: a page of theirs cannot start from a known row (each is the union of
            # two reads, all of it sorted for any page), and the other lists' pages from a
            # known row read little more than this, in less of the reader's Python (the ids
            # sent as an array, the rows built here).
            found = _BY_IDS.rows(driver, {"ids": [k[1] for k in wanted]})
            if found[0].snapshot == known.snapshot:
                complaints = {row[1]: row[1:] for row in found if row[1] is not None}
                return ([_KnownRow(*complaints[k[1]], *k) for k in wanted], known.counted,
                        len(_COLUMNS))
            lists.forget(key)  # the record changed: read again with the total
            known = None
    if known is not None:
        start = None if cursor is not None or offset == 0 else known.before(offset)
        if cursor is not None:
            given = {**values, **_cursor_parameters(cursor)}
        elif start is not None:
            given = {**values, **_cursor_parameters(known.keys[start]),
                     "offset": offset - 1 - start}
        else:
            given = {**values, "offset": offset}
        rows = _page(shape, cursor is not None or start is not None, counted=False,
                     snapshot=True).rows(driver, given)
        if rows[0].snapshot == known.snapshot:
            rows = _filled(rows)
            if cursor is None:
                lists.keys_known += known.learn(offset, rows, len(_COLUMNS), width,
                                                shape == "remedy")
            return rows, known.counted, len(_COLUMNS)
        lists.forget(key)  # the record changed: read again with the total
    given = {**values, **(_cursor_parameters(cursor) if cursor is not None
                          else {"offset": offset})}
    rows = _page(shape, cursor is not None, counted=True, snapshot=True).rows(driver, given)
    counted, snapshot = int(rows[0].counted or 0), rows[0].snapshot
    rows = _filled(rows)
    if len(lists) >= _KNOWN_LISTS or lists.keys_known >= _KNOWN_KEYS:
        lists.clear()
        lists.keys_known = 0
    known = lists[key] = _Known(snapshot, counted)
    if cursor is None:
        lists.keys_known += known.learn(offset, rows, _KEYS_AT, width, shape == "remedy")
    return rows, counted, _KEYS_AT


# The complaints of a page whose rows are known, with the snapshot (one row of nulls when
# there are none).
_BY_IDS_MOMENT: Final = select(_SNAPSHOT.label("snapshot")).subquery("moment")
_BY_IDS: Final = Prepared(
    select(_BY_IDS_MOMENT.c.snapshot, *_COLUMNS).select_from(_BY_IDS_MOMENT.outerjoin(
        Complaint, Complaint.complaint_id == any_(
            bindparam("ids", type_=ARRAY(Complaint.complaint_id.type))))))
# A known page's row: its complaint's columns, then its sort key (as a page's rows).
_KnownRow = namedtuple("_KnownRow", ["complaint_id", "reference", "state", "received_at",
                                     "owner", "key_0", "key_1", "key_2"], defaults=(None,))


def _filled(rows: list[Any]) -> list[Any]:
    """A page's rows without the row of nulls that says it had none."""
    return [] if rows[0].complaint_id is None else rows


@cache
def _list_keys(shape: str) -> tuple[Any, Any]:
    """The list's sort key (an instant, the complaint id, and for deadlines and receipts the
    row id) as a select over the table the list is of, and the select its total counts.

    The total counts the list's own rows (deadlines, receipts) without joining their
    complaints, as the backlog counts them: every deadline and receipt is its complaint's
    (receipts by a foreign key, deadlines as the handlers make them; no complaint is ever
    deleted), so the join removes none, and without it the count is read from the index
    alone whatever the planner estimates (a join planned for thousands of rows hashed every
    complaint: 140 ms for 38 overdue acknowledgements over 200,000 complaints)."""
    if shape == "state":
        in_state = Complaint.state == bindparam("state")
        return (select(Complaint.received_at, Complaint.complaint_id).where(in_state),
                select(Complaint.complaint_id).where(in_state))
    if shape in ("overdue", "remedy"):
        unfired = and_(Deadline.kind == bindparam("kind"), Deadline.fired_at.is_(None),
                       Deadline.due_at < bindparam("moment", type_=Deadline.due_at.type))
        keyed = (Deadline.due_at, Deadline.complaint_id, Deadline.id)
        if shape == "remedy":
            # The two ways a remedy is overdue as a union (an OR across the join would make
            # the database read every remedy deadline and complaint), read once for the
            # page and its total (a CTE named twice is computed once).
            remedies = union(
                select(*keyed).where(unfired),
                select(*keyed).join(Complaint, Deadline.complaint_id == Complaint.complaint_id)
                .where(Deadline.kind == "remedy", Complaint.remedy_overdue.is_(True),
                       with_the_ombudsman(Complaint.state),
                       # the latest decision's deadline only, as reporting/countlists.py
                       Deadline.cause == Complaint.remedy_decision_event_id)).cte("remedies")
            return (select(remedies.c.due_at, remedies.c.complaint_id, remedies.c.id),
                    select(remedies.c.complaint_id))
        return select(*keyed).where(unfired), select(Deadline.complaint_id).where(unfired)
    if shape == "received":
        during = and_(Receipt.received_at >= bindparam("start", type_=Receipt.received_at.type),
                      Receipt.received_at < bindparam("end", type_=Receipt.received_at.type))
        return (select(Receipt.received_at, Receipt.complaint_id, Receipt.id).where(during),
                select(Receipt.complaint_id).where(during))
    raise ValueError(f"no list {shape!r}")


def _cursor(key: Any) -> str:
    """The sort key of a page's last row, as text: its instant, complaint id (and row id)."""
    return "|".join([queries.iso(key[0]) or "", *(str(value) for value in key[1:])])


def _cursor_values(after: str, keys: int) -> list[Any]:
    parts = after.split("|")
    if len(parts) != keys:
        raise ValueError("after: not a `next` of this list")
    try:
        instant = datetime.fromisoformat(parts[0])
        ids = [int(part) for part in parts[2:]]
    except ValueError:
        raise ValueError("after: not a `next` of this list") from None
    return [instant, parts[1], *ids]
