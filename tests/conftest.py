"""Shared fixtures: a database per test on SQLite and on PostgreSQL.

PostgreSQL tests run against COMPLAINTS_TEST_POSTGRES_URL (default the CI machine's server).
Locally they skip only when no server answers; under CI=true they fail instead of skipping.
Each PostgreSQL test gets its own schema, so parallel runs never share tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.pgcluster import PostgresCluster, PostgresUnavailable
from workflow.bootstrap import App, Application, bootstrap, bootstrap_in_memory
from workflow.database import normalise_url

POSTGRES_URL = os.environ.get(
    "COMPLAINTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_postgres_ok: bool | None = None


def postgres_available() -> bool:
    global _postgres_ok
    if _postgres_ok is None:
        try:
            engine = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            _postgres_ok = True
        except Exception:  # noqa: BLE001 - any failure means "no server here"
            _postgres_ok = False
    return _postgres_ok


def require_postgres() -> None:
    if postgres_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but {POSTGRES_URL} did not answer")
    pytest.skip(f"no PostgreSQL server at {POSTGRES_URL}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'complaints.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'complaints.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    application = bootstrap(db_url, "kilowatt-connect")
    yield application
    application.engine.dispose()


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """A started PostgreSQL cluster of the test's own (tests/pgcluster.py), deleted afterwards.

    For tests that crash the server (``stop(mode="immediate")``) or read its files
    (``data_dir``, ``relation_path``): never the shared server. Skips locally when the machine
    has no PostgreSQL binaries; fails under CI=true.
    """
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL binaries are required under CI=true: {exc}")
        pytest.skip(str(exc))
    with cluster:
        yield cluster


BACKENDS = ("memory", "sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`backend`: the in-memory unit of work, SQLite and PostgreSQL; a test marked
    `databases_only` (it reads the record through SQL) runs on the two databases."""
    if "backend" not in metafunc.fixturenames:
        return
    names = BACKENDS[1:] if metafunc.definition.get_closest_marker("databases_only") else BACKENDS
    metafunc.parametrize("backend", [
        pytest.param(name, marks=pytest.mark.postgres) if name == "postgresql" else name
        for name in names], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Application]:
    """Makes the app a scenario runs on (given its procedure), on the store of this run."""
    name = request.param
    if name == "memory":
        return bootstrap_in_memory
    url = (f"sqlite:///{tmp_path / 'complaints.db'}" if name == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    return lambda procedure: bootstrap(url, procedure)
