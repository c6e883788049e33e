"""The ops API's reader processes: the work queue's database reads (search, timeline, the
lists behind counts, trends), each done in a spawned process of a small pool and returned
as the JSON bytes the server sends.

Why processes: a read costs 2-5 ms of Python (SQLAlchemy, the rows, the document, its JSON),
and in threads of the server those milliseconds hold the interpreter lock that the event loop
(the live view, `/backlog`, `/risk`, the token check) needs too; 20 clients of the database
endpoints were one core's worth of Python queued behind one lock. Here the server keeps the
port, the live view, the token check, `/metrics` and the dashboard, and only forwards bytes.
Copies of the whole server on one port (SO_REUSEPORT) were rejected: each would hold its own
live view at its own offset.

Each process opens one PostgreSQL connection (autocommit: a read is its statements and no
BEGIN/ROLLBACK around them; the timeline's record of the read is committed by its INSERT
before the bytes go back) and keeps it for its lifetime. The documents are those of the
in-process reads, encoded as `aiohttp.web.json_response` encodes them (`json.dumps`), so the
bytes are the same.

Only for PostgreSQL: SQLite (a file, or a memory database only the server's engine sees)
reads in the server's threads as before (reporting/web.py `RecordReads`), and so does
PostgreSQL with `COMPLAINTS_OPS_READERS=0`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

log = logging.getLogger(__name__)

DEFAULT_READERS: Final = 4
READERS_VARIABLE: Final = "COMPLAINTS_OPS_READERS"


class ReadersStopped(Exception):
    """The reader processes stopped twice in a row for one request (the caller answers 503)."""


def reader_processes(environ: Mapping[str, str]) -> int:
    """COMPLAINTS_OPS_READERS (default 4, 0-32): the ops API's reader processes for the work
    queue's PostgreSQL reads; 0 reads in the server's own threads (COMPLAINTS_OPS_READ_THREADS)."""
    text = environ.get(READERS_VARIABLE) or str(DEFAULT_READERS)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{READERS_VARIABLE} must be a number, not {text!r}") from None
    if not 0 <= value <= 32:
        raise ValueError(f"{READERS_VARIABLE} {value} is out of range (0-32)")
    return value


# --------------------------------------------------------------------------- in each reader
_sessions: Any = None  # the process's session factory over its one connection


def _open(url: str) -> None:
    """A reader's initializer: its engine of one connection, opened at its first read."""
    global _sessions  # noqa: PLW0603 - one engine per reader process, for its lifetime
    from workflow.database import make_engine, session_factory

    engine = make_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False,
                         isolation_level="AUTOCOMMIT")
    _sessions = session_factory(engine)


def _encoded(document: Any) -> bytes:
    # What aiohttp's json_response sends: json.dumps with its defaults, as UTF-8.
    return json.dumps(document).encode("utf-8")


def read_search(text: str) -> bytes:
    from reporting.workqueue import search

    with _sessions() as session:
        return _encoded({"query": text, "complaints": search(session, text)})


def read_timeline(complaint_id: str, reader: str) -> bytes | None:
    """The timeline's document, its read of personal data recorded (committed) first; None
    for an unknown complaint (nothing recorded)."""
    from reporting.workqueue import timeline

    with _sessions() as session:
        document = timeline(session, complaint_id)
        if document is None:
            return None
        # On the read's own connection; autocommit: committed when it returns.
        session.connection().execute(recorded_read(), {
            "read_at": datetime.now(UTC), "reader": reader, "complaint_id": complaint_id,
            "what": "timeline"})
        session.commit()
    return _encoded(document)


@cache
def recorded_read() -> Any:
    """The INSERT of a personal-data read, built once (building it and running it through
    the ORM session cost a millisecond of the timeline's three)."""
    from sqlalchemy import bindparam, insert

    from workflow.schema import PersonalDataRead

    return insert(PersonalDataRead).values(
        read_at=bindparam("read_at", type_=PersonalDataRead.read_at.type),
        reader=bindparam("reader"), complaint_id=bindparam("complaint_id"),
        what=bindparam("what"))


def read_listing(arguments: dict[str, Any]) -> bytes:
    """`reporting.workqueue.listing(**arguments)`; its ValueError (a malformed `after`)
    comes back as the exception."""
    from reporting.workqueue import listing

    with _sessions() as session:
        return _encoded(listing(session, **arguments))


def read_behind(count: str, arguments: dict[str, Any]) -> bytes:
    from reporting.countlists import behind

    with _sessions() as session:
        return _encoded(behind(session, count, **arguments))


def read_trends(as_of: datetime, days: int) -> bytes:
    from reporting.trends import trends

    with _sessions() as session:
        return _encoded(trends(session, as_of, days))


def _ping(hold: float) -> int:
    """A reader's process id, after holding it `hold` seconds (so that the pings that start
    a pool each find every reader before them busy, and start one more)."""
    import os
    import time

    time.sleep(hold)
    return os.getpid()


# --------------------------------------------------------------------------- in the server
class ReaderPool:
    """`processes` spawned readers over the record at `url` (started as the reads come;
    spawned, not forked, from a server with threads and an event loop running).

    A reader that dies (killed, out of memory) breaks the executor and every read in flight
    on it: the pool is replaced by a fresh one and each of those reads is asked once more
    there; a second break in a row for the same read raises ReadersStopped."""

    def __init__(self, url: str, processes: int) -> None:
        self.url = url
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self.restarts = 0
        self.closed = False

    def executor(self) -> ProcessPoolExecutor:
        if self.closed:
            raise RuntimeError("the reader pool is closed")
        if self._executor is None:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_open, initargs=(self.url,))
        return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Only once per break: the other reads that were in flight on it see it gone.
        if self._executor is broken:
            self._executor = None
            self.restarts += 1
            log.warning("an ops reader process stopped; starting new ones")
            broken.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Any, *arguments: Any) -> Any:
        """`function(*arguments)` in a reader: its result (bytes), or its exception."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self.executor()
            try:
                return await loop.run_in_executor(executor, function, *arguments)
            except BrokenProcessPool:
                self._replace(executor)
                if attempt == 2:
                    raise ReadersStopped from None
        raise AssertionError("unreachable")

    def pids(self) -> list[int]:
        """The reader processes running now (for tests and diagnostics)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [pid for pid, process in list(processes.items()) if process.is_alive()]

    async def start(self) -> list[int]:
        """Start every reader now (the executor starts one for a task only when none is
        idle: pings that hold their reader a moment, as many as there are readers); their
        process ids."""
        loop = asyncio.get_running_loop()
        for _ in range(3):
            executor = self.executor()
            await asyncio.gather(*(loop.run_in_executor(executor, _ping, 0.05)
                                   for _ in range(self.processes)))
            if len(self.pids()) >= self.processes:
                break
        return self.pids()

    def close(self, wait: bool = True) -> None:
        """Stop the readers (reads still queued are cancelled); later reads are refused."""
        self.closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)


def pool_for(record: Any, processes: int) -> ReaderPool | None:
    """A reader pool over `record`'s database: PostgreSQL only, and processes > 0."""
    if processes <= 0 or record is None:
        return None
    url = record.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    return ReaderPool(url.render_as_string(hide_password=False), processes)
