"""A PostgreSQL cluster of the test's own: initdb, start, stop (even ``immediate``), cleanup.

For tests that must crash or inspect the database server itself (fault tests, on-disk file
checks), which must never be done to the machine's shared server. Usage::

    with PostgresCluster() as cluster:          # initdb + start on a free loopback port
        engine = create_engine(cluster.sqlalchemy_url())
        ...
        cluster.stop(mode="immediate")          # a crash: no checkpoint, WAL replay at start
        cluster.start()                         # same port, same data directory
        path = cluster.relation_path("letters") # the table's main fork under data_dir
    # stopped and deleted here

or the ``pg_cluster`` fixture in ``tests/conftest.py``. The API:

- ``data_dir``: the cluster's data directory (``PGDATA``); ``port``: its TCP port on 127.0.0.1.
- ``url(dbname)`` (libpq form) and ``sqlalchemy_url(dbname)`` (psycopg 3 driver); trust auth,
  user ``postgres``. ``create_database(name)`` makes another database.
- ``start()``, ``stop(mode="fast"|"smart"|"immediate")``, ``running``, ``cleanup()``.
- ``execute(sql, dbname)`` runs one statement and returns its rows (e.g. ``CHECKPOINT``);
  ``relation_path(name, dbname)`` is ``data_dir / pg_relation_filepath(name)``.

The machine's binaries are found under ``/usr/lib/postgresql/<version>/bin`` (the newest;
``COMPLAINTS_TEST_PG_BIN`` overrides). ``initdb`` refuses to run as root, so as root every
server command runs as the ``postgres`` user (``runuser -u postgres``) in a temporary directory
that user owns; as any other user they run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

StopMode = Literal["smart", "fast", "immediate"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bin_dir() -> Path:
    """The directory holding initdb/pg_ctl/postgres: the newest /usr/lib/postgresql/*/bin."""
    override = os.environ.get("COMPLAINTS_TEST_PG_BIN")
    if override:
        return Path(override)
    candidates = [
        Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()
    ]
    if not candidates:
        which = shutil.which("initdb")
        if which:
            return Path(which).parent
        raise PostgresUnavailable("no initdb under /usr/lib/postgresql/*/bin nor on PATH")

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(candidates, key=version)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One throwaway PostgreSQL cluster (initdb'd on construction, started by ``start()``)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        start: bool = True,
    ) -> None:
        self.bin_dir = find_bin_dir()
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        # /tmp, not pytest's tmp_path: the postgres user must be able to reach the directory
        # (pytest's base directory is private to root).
        self.base_dir = Path(tempfile.mkdtemp(prefix="complaints-pg-"))
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self._running = False
        try:
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            )
            conf = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.base_dir}'",
                "max_connections": "50",
                "shared_buffers": "32MB",
                "logging_collector": "off",
            }
            conf.update(settings or {})
            with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as handle:
                handle.write("\n# tests/pgcluster.py\n")
                for key, value in conf.items():
                    handle.write(f"{key} = {value}\n")
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    # -- commands ------------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 60) -> str:
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base_dir,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{self.log_tail()}"
            )
        return result.stdout

    def start(self, timeout: float = 60) -> None:
        """Start the server (after initdb or a stop of any mode) and wait until it accepts."""
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--wait",
            "--timeout",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        self._running = True

    def stop(self, mode: StopMode = "fast", timeout: float = 60) -> None:
        """Stop the server. ``immediate`` is a crash: no shutdown checkpoint, recovery at start."""
        self._run(
            "pg_ctl",
            "stop",
            "--pgdata",
            str(self.data_dir),
            "--mode",
            mode,
            "--wait",
            "--timeout",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def cleanup(self) -> None:
        """Stop the server (immediately) if it runs and delete everything it wrote."""
        if self.data_dir.joinpath("postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop(mode="immediate", timeout=30)
        self._running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- connecting ----------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """libpq form: ``postgresql://postgres@127.0.0.1:PORT/DBNAME`` (trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def sqlalchemy_url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres", params: Any = None) -> list[tuple]:
        """Run one statement in autocommit (so ``CHECKPOINT``, ``CREATE DATABASE`` work)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.sqlalchemy_url(name)

    def relation_path(self, relation: str, dbname: str = "postgres") -> Path:
        """The main fork file of a table, index or TOAST table (``pg_relation_filepath``).

        Run ``execute("CHECKPOINT")`` first to have the buffers written to it.
        """
        rows = self.execute("SELECT pg_relation_filepath(%s::regclass)", dbname, (relation,))
        if not rows or rows[0][0] is None:
            raise LookupError(f"no file for relation {relation!r}")
        return self.data_dir / str(rows[0][0])

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()
