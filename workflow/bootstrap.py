"""The one place that wires database, procedure, clock and unit of work together.

Entry points (command line, consumers, tests) call `bootstrap` and then ask it for a
workflow with the clock they need; tests pass a fake clock or an in-memory database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from workflow.clock import Clock, EventClock
from workflow.database import database_url, make_engine, migrate, session_factory
from workflow.handlers import Workflow
from workflow.procedure import Procedure, load_procedure
from workflow.service import MessageProcessor
from workflow.uow import UnitOfWork


@dataclass
class App:
    engine: Engine
    sessions: sessionmaker[Session]
    procedure: Procedure

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def workflow(self, clock: Clock, uow: UnitOfWork | None = None) -> Workflow:
        return Workflow(uow or self.unit_of_work(), self.procedure, clock)

    def event_time_processor(self, uow: UnitOfWork | None = None) -> MessageProcessor:
        """Offline processing: the clock is event time and deadlines fire as it passes them."""
        clock = EventClock()
        return MessageProcessor(self.workflow(clock, uow), event_clock=clock)

    def processor(self, clock: Clock, uow: UnitOfWork | None = None) -> MessageProcessor:
        """Online processing: deadlines arrive as messages from the timer service."""
        return MessageProcessor(self.workflow(clock, uow))


def bootstrap(
    db: str | None = None,
    procedure: str | Path | Procedure | None = None,
    *,
    run_migrations: bool = True,
) -> App:
    engine = make_engine(database_url(db))
    if run_migrations:
        migrate(engine)
    chosen = procedure if isinstance(procedure, Procedure) else load_procedure(procedure)
    return App(engine=engine, sessions=session_factory(engine), procedure=chosen)
