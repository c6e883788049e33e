"""Engines, sessions and migrations. Nothing connects at import time."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///complaints.db"


def database_url(explicit: str | None = None) -> str:
    """`--db`, else COMPLAINTS_DATABASE_URL, else a SQLite file in the working directory."""
    return explicit or os.environ.get("COMPLAINTS_DATABASE_URL") or DEFAULT_URL


def normalise_url(url: str) -> str:
    # psycopg 3 is the PostgreSQL driver we install; accept the plain scheme people type.
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    # hide_parameters: an error message or log line never quotes a row's values (customer
    # names, addresses, summaries), only the statement.
    engine = create_engine(url, future=True, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take control.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_session)
    return engine


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares a statement run five times, and PostgreSQL may then keep a generic plan
    # made while a table was still empty (a new database, a consumer's first minute). Firing a
    # deadline by key then scanned every pending deadline through the partial "pending" index
    # instead of one row through the unique key: 0.7 ms a row and growing, against 0.05 ms.
    # Custom plans are made with the statistics of the moment; the parse is still saved.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET inside a transaction would roll back with it
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.autocommit = autocommit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (ops, reports) never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


def alembic_config(engine: Engine) -> Config:
    migrations = Path(str(resources.files("workflow").joinpath("migrations")))
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
