"""The ops API's reader processes (reporting/readers.py): on PostgreSQL the work queue's reads
run in spawned processes that return the encoded JSON. Their answers are byte for byte those
of the reads in the server's threads (COMPLAINTS_OPS_READERS=0), the timeline's read of
personal data is still recorded once per document sent, a killed reader is replaced, and the
readers stop when the app is cleaned up."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from consumers.file_ingest import ingest_file
from reporting import workqueue
from reporting.readers import ReaderPool, _backend, _ping, pool_for
from reporting.web import READERS, bound_port, create_app, reader_processes, serve
from tests.live_view import serving
from workflow.bootstrap import App, bootstrap
from workflow.schema import PersonalDataRead

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
TOKEN = "readers-test-token"
AS_OF = "as_of=2026-03-20T12:00:00%2B00:00"
# Every endpoint the readers serve, with pages, cursors' neighbours and the errors.
PATHS = [
    "/complaints/C-100/timeline", "/complaints/C-103/timeline", "/complaints/C-NONE/timeline",
    "/complaints/search?q=C-10", "/complaints/search?q=c-101",
    "/complaints/search?q=" + "x" * 30,
    "/complaints?state=resolved", "/complaints?state=immediate&limit=1",
    f"/complaints?overdue=acknowledgement&{AS_OF}", f"/complaints?overdue=remedy&{AS_OF}",
    "/complaints?received=2026-01-05&limit=1", "/complaints?state=resolved&after=nonsense",
    f"/complaints/behind?count=unresolved&{AS_OF}", f"/complaints/behind?count=overdue&{AS_OF}",
    f"/complaints/behind?count=letters&day=2026-01-06&{AS_OF}",
    f"/complaints/behind?count=received_month&month=2026-01&{AS_OF}",
    f"/complaints/behind?count=stage_on&state=immediate&day=2026-01-07&{AS_OF}",
    f"/trends?days=90&{AS_OF}", "/trends?days=0",
]

Reply = tuple[int, str, bytes]


@pytest.fixture
def sample_app(postgres_url: str) -> Iterator[App]:
    """A PostgreSQL record of the sample file."""
    app = bootstrap(postgres_url, "kilowatt-connect")
    try:
        ingest_file(app, SAMPLE)
        yield app
    finally:
        app.engine.dispose()


def _served(app: App, readers: str,
            body: Callable[[Callable[[str], Awaitable[Reply]], Any], Awaitable[Any]],
            monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `body(get, web_app)` against the ops app over `app` with COMPLAINTS_OPS_READERS
    = `readers`; `get(path)` is (status, content type, bytes) with the token."""
    monkeypatch.setenv("COMPLAINTS_OPS_READERS", readers)
    web_app = create_app(serving(app), TOKEN)

    async def run() -> Any:
        runner = await serve(web_app, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                async def get(path: str) -> Reply:
                    async with session.get(
                            f"http://127.0.0.1:{bound_port(runner)}{path}",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                        return reply.status, reply.headers["Content-Type"], await reply.read()

                return await body(get, web_app)
        finally:
            await runner.cleanup()

    return asyncio.run(run())


def _reads(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(PersonalDataRead)) or 0)


def test_reader_processes_from_the_environment() -> None:
    assert reader_processes({}) == 4
    assert reader_processes({"COMPLAINTS_OPS_READERS": "0"}) == 0
    assert reader_processes({"COMPLAINTS_OPS_READERS": "12"}) == 12
    for bad in ("-1", "33", "several"):
        with pytest.raises(ValueError, match="COMPLAINTS_OPS_READERS"):
            reader_processes({"COMPLAINTS_OPS_READERS": bad})


def test_readers_only_for_postgresql(tmp_path: Path) -> None:
    app = bootstrap(f"sqlite:///{tmp_path / 'r.db'}", "kilowatt-connect")
    try:
        assert pool_for(app, 4) is None  # SQLite reads in the server's threads
    finally:
        app.engine.dispose()


@pytest.mark.postgres
def test_documents_equal_the_reads_in_threads(sample_app: App,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = sample_app

    async def every_path(get: Callable[[str], Awaitable[Reply]], web_app: Any) -> Any:
        replies = [await get(path) for path in PATHS]
        # Concurrent requests too: answered by several readers at once.
        again = await asyncio.gather(*(get(path) for path in PATHS))
        assert list(again) == replies
        return replies, web_app[READERS]["pool"]

    # In the server's threads every statement runs through SQLAlchemy (as before the reads
    # ran their compiled SQL on the driver's connection, in one pipeline for a timeline);
    # the readers run them on psycopg directly: the same documents, byte for byte.
    with monkeypatch.context() as through_sqlalchemy:
        through_sqlalchemy.setattr(workqueue, "_RAW", False)
        in_threads, none = _served(app, "0", every_path, monkeypatch)
    assert none is None
    reads_in_threads = _reads(app)
    in_readers, pool = _served(app, "2", every_path, monkeypatch)
    assert isinstance(pool, ReaderPool) and pool.closed
    # And in the threads with the driver's connection under the session.
    raw_in_threads, _ = _served(app, "0", every_path, monkeypatch)
    assert raw_in_threads == in_threads
    # Two timelines found, asked twice each per run: each document sent, its read recorded.
    assert reads_in_threads == 4 and _reads(app) == 12
    statuses = [status for status, _, _ in in_threads]
    assert statuses.count(200) == len(PATHS) - 3
    assert [statuses[PATHS.index(p)] for p in ("/complaints/C-NONE/timeline",
                                               "/complaints?state=resolved&after=nonsense",
                                               "/trends?days=0")] == [404, 400, 400]
    for path, threads, readers in zip(PATHS, in_threads, in_readers, strict=True):
        assert readers == threads, path  # status, content type and every byte
    assert in_readers[0][1] == "application/json; charset=utf-8"


@pytest.mark.postgres
def test_a_killed_reader_is_replaced(sample_app: App,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app = sample_app

    async def kill_one(get: Callable[[str], Awaitable[Reply]], web_app: Any) -> Any:
        first = await get("/complaints/C-100/timeline")
        pool: ReaderPool = web_app[READERS]["pool"]
        pids = await pool.start()
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)  # an idle reader
        deadline = time.monotonic() + 10
        while pids[0] in pool.pids() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # Replaced: the next reads are answered.
        after = [await get("/complaints/C-100/timeline") for _ in range(3)]
        replaced = await pool.start()
        # A reader killed while it answers: the read is asked again of its replacement.
        held = asyncio.ensure_future(pool.run(_ping, 1.0))
        await asyncio.sleep(0.3)
        busy = [r.process.pid for r in pool._readers if r.current is not None]
        assert len(busy) == 1
        os.kill(busy[0], signal.SIGKILL)
        answered_by = await held
        return first, after, pool.restarts, pids, replaced, busy[0], answered_by

    first, after, restarts, pids, replaced, killed, answered_by = _served(
        app, "2", kill_one, monkeypatch)
    assert first[0] == 200
    assert after == [first] * 3
    assert len(replaced) == 2 and pids[0] not in replaced and pids[1] in replaced
    assert restarts == 2
    assert answered_by not in (killed, pids[0])


@pytest.mark.postgres
def test_readers_stop_at_cleanup(sample_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    app = sample_app

    async def start(get: Callable[[str], Awaitable[Reply]], web_app: Any) -> Any:
        assert (await get("/complaints/search?q=C-100"))[0] == 200
        pool: ReaderPool = web_app[READERS]["pool"]
        return pool, await pool.start()

    pool, pids = _served(app, "3", start, monkeypatch)
    assert len(pids) == 3
    assert pool.closed and pool.pids() == []
    for pid in pids:  # every reader has exited (the cleanup waited for them)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(pool.run(_ping, 0.0))


@pytest.mark.postgres
def test_an_unrecorded_timeline_is_not_sent(sample_app: App,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The timeline's record goes in its reads' pipeline: when it cannot be written the
    document is not sent (nor are the reads' rows), and once it can, both are."""
    app = sample_app

    def rename(old: str, new: str) -> None:
        with app.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    async def without_the_table(get: Callable[[str], Awaitable[Reply]], web_app: Any) -> Any:
        rename("personal_data_reads", "personal_data_reads_away")
        try:
            refused = await get("/complaints/C-100/timeline")
            found = await get("/complaints/search?q=C-100")  # the reader still answers
        finally:
            rename("personal_data_reads_away", "personal_data_reads")
        return refused, found, await get("/complaints/C-100/timeline")

    refused, found, sent = _served(app, "1", without_the_table, monkeypatch)
    assert refused[0] == 500 and b"C-100" not in refused[2]
    assert found[0] == 200
    assert sent[0] == 200 and b'"complaint_id": "C-100"' in sent[2]
    assert _reads(app) == 1  # only the document sent


@pytest.mark.postgres
def test_a_reader_reconnects_after_its_connection_is_closed(
        sample_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader keeps its connection for its life: when the server closes it (a restart,
    an administrator), the reader opens another, as a pool would have (at most the read
    under way when it went fails)."""
    app = sample_app

    async def terminate(get: Callable[[str], Awaitable[Reply]], web_app: Any) -> Any:
        assert (await get("/complaints/search?q=C-100"))[0] == 200
        pool: ReaderPool = web_app[READERS]["pool"]
        backend = await pool.run(_backend)
        with app.engine.begin() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
        first = await get("/complaints/search?q=C-100")
        after = [await get(path) for path in ("/complaints/search?q=C-100",
                                              "/complaints/C-100/timeline",
                                              "/complaints?state=resolved")]
        return backend, await pool.run(_backend), first, after

    old, new, first, after = _served(app, "1", terminate, monkeypatch)
    assert new != old
    assert first[0] in (200, 500)
    assert [status for status, _, _ in after] == [200, 200, 200]
