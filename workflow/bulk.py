"""Many rows through one DB-API `executemany`, without SQLAlchemy's per-row work.

SQLAlchemy builds every row's parameters through the statement's compiled form
(`construct_params`): about 13 µs a row, the largest single cost of applying an event once the
ORM was out of the way. Here a statement is compiled once per dialect, and a row is only its
values passed through each parameter's own bind processor (the same functions SQLAlchemy would
call), so what reaches the driver is identical.

Executed through the session's connection: same transaction, same error wrapping
(`IntegrityError`, `DataError`), same `hide_parameters` logging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect, Table, bindparam, insert
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator, TypeEngine

Processor = Callable[[Any], Any]
# execute_rows' stand-in for a parameter its rows do not give (bound as None).
_ABSENT: Any = object()


def _instants(type_: TypeEngine[Any]) -> bool:
    """Whether a column holds dates or instants (immutable values, often shared by rows)."""
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    try:
        return type_.python_type in (datetime, date)
    except NotImplementedError:
        return False


class Prepared:
    """A DML statement with named bind parameters, compiled once for one dialect."""

    def __init__(self, statement: UpdateBase, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        # qmark/format drivers (sqlite3) take tuples in the compiled order; pyformat drivers
        # (psycopg) take dicts.
        self._positional = compiled.positiontup is not None
        names = tuple(compiled.positiontup) if compiled.positiontup is not None else tuple(
            compiled.binds)
        # (name, the parameter's bind processor or None, whether its values are converted
        # once per distinct object: instants), in the statement's order.
        self._parameters: tuple[tuple[str, Processor | None, bool], ...] = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
             _instants(compiled.binds[name].type))
            for name in names)

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        count = len(rows)
        # dict.get mapped over the rows: no Python-level call per value.
        return self._converted(lambda name: list(map(dict.get, rows, repeat(name, count))))

    def execute(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Run it for every row; returns the rows matched, as the driver counts them."""
        result: CursorResult[Any] = connection.exec_driver_sql(self.sql, self.parameters(rows))
        return result.rowcount

    def execute_rows(self, connection: Connection, rows: Sequence[Sequence[Any]],
                     columns: Sequence[str]) -> int:
        """Run it for rows given as tuples in `columns` order (a replay's,
        workflow/memory_uow.py); a parameter not among them goes in as None (through its
        processor, as any None does)."""
        position = {name: i for i, name in enumerate(columns)}

        def column(name: str) -> list[Any]:
            at = position.get(name)
            return [row[at] for row in rows] if at is not None else [_ABSENT] * len(rows)

        result: CursorResult[Any] = connection.exec_driver_sql(self.sql, self._converted(column))
        return result.rowcount

    def _converted(self, column: Callable[[str], list[Any]]) -> list[Any]:
        """The driver's parameters from each parameter's column of values.

        Column by column: one `map` of a column's processor over every row's value costs
        less than a call and a test per value. None goes through the processor too, as in
        SQLAlchemy (JSON stores it as 'null')."""
        columns = []
        for name, process, by_identity in self._parameters:
            values = column(name)
            if values and values[0] is _ABSENT:
                # A parameter no row gives (execute_rows): None, converted once for them all
                # (a JSON column's 'null' was a json.dumps a row; a processor is a function
                # of its value, so each row's would be the same).
                columns.append([None if process is None else process(None)] * len(values))
            elif process is None:
                columns.append(values)
            elif by_identity:
                # An instant shared by many rows (a batch's clock reading, an event's
                # occurred_at) is converted once: about half of a batch's instants. By
                # identity, not equality: equal aware datetimes of one zone can differ in UTC
                # offset (fold). The rows hold every value, so no id is reused meanwhile.
                distinct = {id(value): value for value in values}
                converted = {ident: process(value) for ident, value in distinct.items()}
                columns.append([converted[id(value)] for value in values])
            else:
                columns.append(list(map(process, values)))
        if self._positional:
            return list(zip(*columns, strict=True))
        names = [name for name, _, _ in self._parameters]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


class BulkInsert(Prepared):
    """`INSERT INTO table (every column but a generated id) VALUES (...)`."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        # Generated ids (`id`, `raw_events.seq`) are left to the database.
        self.keys = tuple(c.key for c in table.columns
                          if not (c.primary_key and c.autoincrement is True))
        # inline(): no RETURNING of the generated id (PostgreSQL would otherwise add one).
        super().__init__(
            insert(table).values({k: bindparam(k) for k in self.keys}).inline(), dialect)
