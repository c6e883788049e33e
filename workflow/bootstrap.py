"""The one place that wires database, procedure, clock and unit of work together.

Entry points (command line, consumers, tests) call `bootstrap` and then ask it for a
workflow with the clock they need; tests pass a fake clock, and `bootstrap_in_memory` gives
the same wiring over rows held in memory (workflow/memory_uow.py) instead of a database, as
the replays of `complaints simulate` do (consumers/replay_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from workflow import queries
from workflow.clock import Clock, EventClock
from workflow.database import database_url, make_engine, migrate, session_factory
from workflow.handlers import Workflow
from workflow.memory_uow import MemoryStore, MemoryUnitOfWork
from workflow.procedure import Procedure, load_procedure
from workflow.service import MessageProcessor
from workflow.unit_of_work import AbstractUnitOfWork
from workflow.uow import UnitOfWork


class Application:
    """A procedure and a unit of work to apply it with: what every entry point asks for."""

    procedure: Procedure

    def unit_of_work(self) -> AbstractUnitOfWork:
        raise NotImplementedError

    def workflow(self, clock: Clock, uow: AbstractUnitOfWork | None = None) -> Workflow:
        return Workflow(uow or self.unit_of_work(), self.procedure, clock)

    def event_time_processor(self, uow: AbstractUnitOfWork | None = None) -> MessageProcessor:
        """Offline processing: the clock is event time and deadlines fire as it passes them.

        The clock starts where the record's stands (docs/rules.md s.5: it never moves back), so
        a later file's events dated before it are late events: deadlines already due at the
        record's clock fire before each of them, as they would from Kafka."""
        clock = self.event_clock()
        return MessageProcessor(self.workflow(clock, uow), event_clock=clock)

    def event_clock(self) -> EventClock:
        raise NotImplementedError

    def processor(self, clock: Clock, uow: AbstractUnitOfWork | None = None) -> MessageProcessor:
        """Online processing: deadlines arrive as messages from the timer service."""
        return MessageProcessor(self.workflow(clock, uow))

    def show_complaint(self, complaint_id: str) -> dict[str, Any] | None:
        """One complaint with its history, deadlines and letters (`complaints show`)."""
        raise NotImplementedError


@dataclass
class App(Application):
    """The service's wiring: a database (SQLite or PostgreSQL) through SQLAlchemy."""

    engine: Engine
    sessions: sessionmaker[Session]
    procedure: Procedure

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def event_clock(self) -> EventClock:
        with self.sessions() as session:
            return EventClock(queries.record_clock(session))

    def show_complaint(self, complaint_id: str) -> dict[str, Any] | None:
        with self.sessions() as session:
            return queries.show_complaint(session, complaint_id)


@dataclass
class MemoryApp(Application):
    """The same wiring over one in-memory store: for tests and replays without a record
    (a store keeping every table by default; a replay passes one keeping less)."""

    procedure: Procedure
    store: MemoryStore = field(default_factory=MemoryStore)
    # The store's clock, as long-lived as the store (a database's is read back from its rows:
    # queries.record_clock): one file after another continues it, never moving it back.
    clock: EventClock = field(default_factory=EventClock)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store)

    def event_clock(self) -> EventClock:
        return self.clock

    def show_complaint(self, complaint_id: str) -> dict[str, Any] | None:
        return self.store.show_complaint(complaint_id)


def _procedure(procedure: str | Path | Procedure | None) -> Procedure:
    return procedure if isinstance(procedure, Procedure) else load_procedure(procedure)


def bootstrap(
    db: str | None = None,
    procedure: str | Path | Procedure | None = None,
    *,
    run_migrations: bool = True,
) -> App:
    engine = make_engine(database_url(db))
    if run_migrations:
        migrate(engine)
    return App(engine=engine, sessions=session_factory(engine), procedure=_procedure(procedure))


def bootstrap_in_memory(procedure: str | Path | Procedure | None = None) -> MemoryApp:
    """The workflow over rows held in memory (workflow/memory_uow.py): nothing is kept."""
    return MemoryApp(procedure=_procedure(procedure))
