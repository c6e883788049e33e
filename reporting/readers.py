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
from collections import deque
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)


class ReadersStopped(Exception):
    """The reader processes stopped twice in a row for one request (the caller answers 503)."""


# --------------------------------------------------------------------------- in each reader
_sessions: Any = None  # the process's session factory over its one connection
_engine: Any = None
_kept: Any = None  # the pool's record of the connection the reads run on (see _driver)


def _open(url: str) -> None:
    """A reader's initializer: its engine of one connection, opened at its first read."""
    global _sessions, _engine  # noqa: PLW0603 - one engine per reader process, for its lifetime
    from workflow.database import make_engine, session_factory

    _engine = make_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False,
                          isolation_level="AUTOCOMMIT")
    _sessions = session_factory(_engine)


def _driver() -> Any:
    """The psycopg connection the search, timeline and list reads run on, kept checked out
    for the reader's lifetime (a session per read, checking the connection out and in,
    cost about 0.2 ms of a list page's Python); opened again after it broke (the database
    restarted), as the pool would have given a new one."""
    global _kept  # noqa: PLW0603 - the reader's one connection
    if _kept is not None:
        driver = _kept.driver_connection
        if not (driver.closed or driver.broken):
            return driver
        _kept.invalidate()
        _kept = None
    _kept = _engine.raw_connection()
    return _kept.driver_connection


def _session() -> Any:
    """A session for a read through SQLAlchemy (the lists behind counts, the trends), on
    the reader's one connection: given back to the pool first."""
    global _kept  # noqa: PLW0603 - the reader's one connection
    if _kept is not None:
        _kept.close()  # checked in: the session checks it out again
        _kept = None
    return _sessions()


def _encoded(document: Any) -> bytes:
    # What aiohttp's json_response sends: json.dumps with its defaults, as UTF-8.
    return json.dumps(document).encode("utf-8")


def read_search(text: str) -> bytes:
    from reporting.workqueue import search

    return _encoded({"query": text, "complaints": search(_driver(), text)})


def read_timeline(complaint_id: str, reader: str) -> bytes | None:
    """The timeline's document, its read of personal data recorded (committed) first; None
    for an unknown complaint (nothing recorded)."""
    from reporting.workqueue import timeline

    # On the read's own connection, in autocommit, in the reads' pipeline: committed when
    # it returns (reporting.workqueue._shown).
    document = timeline(_driver(), complaint_id, read_record(reader))
    return None if document is None else _encoded(document)


def read_record(reader: str) -> dict[str, Any]:
    """The values of a timeline's record of its read (reporting.workqueue._RECORDED)."""
    return {"read_at": datetime.now(UTC), "reader": reader, "what": "timeline"}


def read_listing(arguments: dict[str, Any]) -> bytes:
    """`reporting.workqueue.listing(**arguments)`; its ValueError (a malformed `after`)
    comes back as the exception."""
    from reporting.workqueue import listing

    return _encoded(listing(_driver(), **arguments))


def read_behind(count: str, arguments: dict[str, Any]) -> bytes:
    from reporting.countlists import behind

    with _session() as session:
        return _encoded(behind(session, count, **arguments))


def read_trends(as_of: datetime, days: int) -> bytes:
    from reporting.trends import trends

    with _session() as session:
        return _encoded(trends(session, as_of, days))


def _backend() -> int:
    """The process id of the PostgreSQL backend of a reader's connection (for tests)."""
    return int(_driver().execute("SELECT pg_backend_pid()").fetchone()[0])


def _ping(hold: float) -> int:
    """A reader's process id, after holding it `hold` seconds."""
    import os
    import time

    time.sleep(hold)
    return os.getpid()


def _serve(connection: Connection, url: str) -> None:
    """A reader process: each request `(function, arguments)` read from the pipe is answered
    with `(True, result)` or `(False, exception)`, until the pipe closes or says None."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its readers itself
    _open(url)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        function, arguments = request
        try:
            reply: tuple[bool, Any] = (True, function(*arguments))
        except Exception as exc:  # noqa: BLE001 - sent back, raised in the server
            reply = (False, exc)
        try:
            connection.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - an exception that does not pickle
            connection.send((False, RuntimeError(f"{type(exc).__name__} in a reader")))


# --------------------------------------------------------------------------- in the server
class _Reader:
    """One reader process and the server's end of its pipe, watched by the event loop."""

    def __init__(self, pool: ReaderPool, loop: asyncio.AbstractEventLoop) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(theirs, pool.url),
                                       name="ops-reader", daemon=True)
        self.process.start()
        theirs.close()
        self.connection = ours
        self.loop = loop
        self.pool = pool
        # The request being answered: its future, and what it asked (to ask again).
        self.current: tuple[asyncio.Future[Any], Any] | None = None
        self.alive = True
        loop.add_reader(ours.fileno(), self._readable)

    def ask(self, future: asyncio.Future[Any], request: Any) -> None:
        self.current = (future, request)
        try:
            self.connection.send(request)
        except (OSError, ValueError):
            self._stopped()

    def _readable(self) -> None:
        try:
            ok, value = self.connection.recv()
        except (EOFError, OSError):
            self._stopped()
            return
        current, self.current = self.current, None
        if current is not None and not current[0].done():
            if ok:
                current[0].set_result(value)
            else:
                current[0].set_exception(value)
        self.pool._idle(self)

    def _stopped(self) -> None:
        """The process died (killed, out of memory): its request goes back to the pool."""
        if not self.alive:
            return
        self.detach()
        self.pool._lost(self, self.current)
        self.current = None

    def detach(self) -> None:
        if self.alive:
            self.alive = False
            self.loop.remove_reader(self.connection.fileno())

    def stop(self) -> None:
        """Ask the process to exit and close our end (join it with `join`)."""
        self.detach()
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        self.connection.close()

    def join(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)


class ReaderPool:
    """`processes` spawned readers over the record at `url`, each with a pipe of its own that
    the event loop watches (no threads, no queue feeder: a read costs the server one pickled
    request written and one reply read). Started at the first read; spawned, not forked,
    from a server with threads and an event loop running. A read waits for an idle reader
    (oldest first).

    A reader that dies (killed, out of memory) is replaced by a new process and the read it
    was answering is asked once more; a second loss for the same read raises ReadersStopped
    (the timeline's record of a read may then be written twice: never data sent unrecorded).
    """

    def __init__(self, url: str, processes: int) -> None:
        self.url = url
        self.processes = processes
        self.restarts = 0
        self.closed = False
        self._readers: list[_Reader] = []
        self._free: list[_Reader] = []
        self._waiting: deque[tuple[asyncio.Future[Any], Any]] = deque()
        self._retried: set[int] = set()  # id() of futures already asked a second time
        self._stopped: list[_Reader] = []  # stopped, not yet joined

    def _started(self) -> None:
        if self.closed:
            raise RuntimeError("the reader pool is closed")
        if not self._readers:
            loop = asyncio.get_running_loop()
            for _ in range(self.processes):
                reader = _Reader(self, loop)
                self._readers.append(reader)
                self._free.append(reader)

    async def run(self, function: Any, *arguments: Any) -> Any:
        """`function(*arguments)` in a reader: its result (bytes), or its exception."""
        self._started()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(future, (function, arguments))
        try:
            return await future
        finally:
            self._retried.discard(id(future))

    def _submit(self, future: asyncio.Future[Any], request: Any) -> None:
        if self._free:
            self._free.pop().ask(future, request)
        else:
            self._waiting.append((future, request))

    def _idle(self, reader: _Reader) -> None:
        while self._waiting:
            future, request = self._waiting.popleft()
            if not future.done():  # not cancelled (its client went away)
                reader.ask(future, request)
                return
        self._free.append(reader)

    def _lost(self, reader: _Reader, current: tuple[asyncio.Future[Any], Any] | None) -> None:
        log.warning("an ops reader process stopped; starting a new one")
        self.restarts += 1
        self._stopped.append(reader)
        reader.connection.close()
        if reader in self._free:
            self._free.remove(reader)
        if reader in self._readers:
            self._readers.remove(reader)
        if not self.closed:
            replacement = _Reader(self, reader.loop)
            self._readers.append(replacement)
        if current is not None:
            future, request = current
            if future.done():
                pass
            elif id(future) in self._retried or self.closed:
                future.set_exception(ReadersStopped())
            else:
                self._retried.add(id(future))
                self._waiting.appendleft((future, request))
        if not self.closed:
            self._idle(replacement)

    def pids(self) -> list[int]:
        """The reader processes running now (for tests and diagnostics)."""
        return [r.process.pid for r in self._readers
                if r.alive and r.process.pid is not None and r.process.is_alive()]

    async def start(self) -> list[int]:
        """Start every reader now and wait until each has answered; their process ids."""
        self._started()
        await asyncio.gather(*(self.run(_ping, 0.05) for _ in range(self.processes)))
        return self.pids()

    def close(self, wait: bool = True) -> None:
        """Stop the readers (reads waiting or in flight get ReadersStopped); later reads are
        refused. In the event loop's thread; `wait`: join the processes too (`join`)."""
        self.closed = True
        readers, self._readers, self._free = self._readers, [], []
        for reader in readers:
            current, reader.current = reader.current, None
            reader.stop()
            if current is not None and not current[0].done():
                current[0].set_exception(ReadersStopped())
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(ReadersStopped())
        self._stopped.extend(readers)
        if wait:
            self.join()

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the stopped readers to exit (killed after `timeout` seconds); any thread."""
        stopped, self._stopped = self._stopped, []
        for reader in stopped:
            reader.join(timeout)


def pool_for(record: Any, processes: int) -> ReaderPool | None:
    """A reader pool over `record`'s database: PostgreSQL only, and processes > 0."""
    if processes <= 0 or record is None:
        return None
    url = record.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    return ReaderPool(url.render_as_string(hide_password=False), processes)
