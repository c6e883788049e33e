"""A replay's store: the in-memory unit of work (workflow/memory_uow.py) writing into a
scratch SQLite, where the return SQL (reporting/measures.py) then counts it.

The return rules stay defined once: a replay does not count in Python, it writes the rows the
measures read (receipts, resolutions, category changes, contacts, letters, accounts snapshots,
complaints) into SQLite with one executemany per table and commit, and runs the same reports.
In memory (`sqlite://`), only those tables; in a file, the whole record, as `complaints
ingest` would have written it (the same rows in the same order, so the same ids).
"""

from __future__ import annotations

import gc
from collections.abc import Collection
from itertools import islice
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.pool import StaticPool

from reporting import measures
from workflow.bootstrap import App
from workflow.bulk import BulkInsert, Prepared
from workflow.database import make_engine, migrate, session_factory
from workflow.letter_context import COMMUNICATIONS
from workflow.memory_uow import MemoryStore, Row, insert_columns
from workflow.procedure import Procedure
from workflow.schema import Base
from workflow.uow import APPEND_ONLY

# Complaints kept as objects between transactions (the rest pickled, workflow/memory_uow.py):
# more than are open at once in a large supplier's year, so that most reads find an object.
# With complaints 1-63 s apart (about a million a year) some 150,000 are open at once, and an
# open one is read again every 10 days (its progress update) and at 8 weeks: against 20,000
# kept, nearly every event warmed a complaint from its cold form.
HOT_COMPLAINTS = 200_000

# The complaints' JSON values no return reads (reporting/measures.py reads a complaint's id
# and subsidiary categories): not written into a replay's scratch record that only counts.
UNCOUNTED_COMPLAINT_VALUES = frozenset({"customer", "taken_by", "handler", "owner",
                                        "senior_manager"})


def measured_tables() -> frozenset[str]:
    """The tables the return measures read (the module's Table objects): what a replay that
    only counts must keep."""
    return frozenset(value.name for value in vars(measures).values()
                     if isinstance(value, Table))


def _drop_indexes(driver: Any, tables: Collection[str]) -> list[str]:
    """Drop the declared indexes of `tables` and the complaints (not the unique constraints'
    own); returns the statements that create them again."""
    wanted = {*tables, "complaints"}
    found = [(name, create) for name, table, create in driver.execute(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' "
        "AND sql IS NOT NULL ORDER BY name") if table in wanted]
    for name, _ in found:  # names the schema declared (workflow/schema.py), quoted
        driver.execute(f'DROP INDEX "{name}"')
    return [create for _, create in found]


class ScratchRecord:
    """The replay's store and its scratch SQLite; `finish` writes the complaints (and, for
    a whole record, the deadlines) once the replay is over."""

    def __init__(self, path: str | None) -> None:
        if path is None:
            self.engine = make_engine("sqlite://", poolclass=StaticPool)
            tables: frozenset[str] | None = measured_tables() & frozenset(APPEND_ONLY)
            # A return reads no letter's context: the largest value of a replay, left out.
            dropped = {"letters": frozenset({"context"})}
            # And so no history is kept for one (what a letter's context quotes of the
            # complaint's communications, workflow/handlers.py `_record`): an event's whole
            # dump each, 1.3 KB, about two a complaint.
            record_types: frozenset[str] = frozenset()
        else:
            self.engine = make_engine(f"sqlite:///{path}")
            tables, dropped, record_types = None, {}, frozenset(COMMUNICATIONS)
        migrate(self.engine)
        self.connection = self.engine.connect()
        # Complaints are written once the replay is over (they change until then), after the
        # rows that name them: the scratch record checks no foreign key while it is written.
        # (On the driver's connection: inside SQLAlchemy's BEGIN the pragma would do nothing.)
        driver = self.connection.connection.driver_connection
        driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        # A replay that only counts builds its tables' indexes once its rows are all in
        # (`finish`): one sorted build instead of every row's insert into each B-tree (letters
        # and receipts have five each). The same indexes, so the same queries read them.
        self._deferred = [] if path is not None else _drop_indexes(driver, tables or ())
        self._whole = path is not None
        self._inserts: dict[str, BulkInsert] = {}
        # gc.freeze after each commit: a replay keeps what it committed alive to the end, so
        # later collections need not re-scan it (young ones still find a batch's own cyclic
        # garbage first). Measured: the same peak memory with and without (404 MiB after
        # 100,000 events); its effect on speed was lost in the shared machine's noise.
        self.store = MemoryStore(tables=tables, dropped=dropped, sink=self._write,
                                 committed=gc.freeze, record_types=record_types,
                                 hot_complaints=HOT_COMPLAINTS)

    def _write(self, table: str, rows: list[Row]) -> None:
        """One executemany of a commit's rows of a table (the columns left out go in as
        None), compiled once per table and bound through each column type's own processor
        (workflow/bulk.py)."""
        insert_rows = self._inserts.get(table)
        if insert_rows is None:
            insert_rows = self._inserts[table] = BulkInsert(Base.metadata.tables[table],
                                                            self.connection.dialect)
        insert_rows.execute_rows(self.connection, rows, self.store.columns(table))

    def finish(self) -> None:
        tables = Base.metadata.tables
        complaints = tables["complaints"]
        write = BulkInsert(complaints, self.connection.dialect)
        # A replay that only counts leaves out the JSON values no return reads (they go in as
        # JSON null): the most of a complaint's row, and of its time to write.
        keys = write.keys if self._whole else tuple(
            k for k in write.keys if k not in UNCOUNTED_COMPLAINT_VALUES)
        rows = self.store.complaint_rows(keys)
        # In slices: the bound parameters of a million complaints at once would double the
        # replay's peak memory.
        while chunk := list(islice(rows, 5_000)):
            write.execute_rows(self.connection, chunk, keys)
        if self.store.keeps("deadlines"):
            deadlines = tables["deadlines"]
            columns = ("id", *insert_columns(deadlines))
            # With their ids: the replay numbered them as the database would have.
            stored = sorted(self.store.deadlines.values(), key=lambda d: d.id)
            statement = insert(deadlines).values({k: bindparam(k) for k in columns}).inline()
            Prepared(statement, self.connection.dialect).execute_rows(
                self.connection, [tuple([getattr(d, k) for k in columns]) for d in stored],
                columns)
        driver = self.connection.connection.driver_connection
        for create in self._deferred:
            driver.execute(create)  # type: ignore[union-attr]
        self.connection.commit()

    def app(self, procedure: Procedure) -> App:
        """The scratch record as an application the reports run on."""
        return App(engine=self.engine, sessions=session_factory(self.engine),
                   procedure=procedure)

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()

