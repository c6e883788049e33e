"""A PostgreSQL schema of a benchmark's own in the `test` database, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from workflow.database import normalise_url

POSTGRES_URL = os.environ.get("COMPLAINTS_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


class NoServer(RuntimeError):
    """No PostgreSQL server answers at the URL: the benchmark's PostgreSQL run is skipped."""


@contextmanager
def scratch_schema(base: str = POSTGRES_URL, prefix: str = "bench") -> Iterator[str]:
    """A URL whose search_path is a new schema; the schema is dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(base), connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        raise NoServer(f"no PostgreSQL server at {base}") from exc
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
