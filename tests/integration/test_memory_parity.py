"""The in-memory unit of work and SQLite give the same record for the same events: every
complaint's state, history, deadlines (with their outcomes) and letters, and the ingest counts,
over a generated file (bench/generate.py) in two batches of up to 2,000 lines, with deadlines
firing in event time and a tick after."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bench.generate import write
from consumers.file_ingest import ingest_file, tick
from workflow.bootstrap import bootstrap, bootstrap_in_memory
from workflow.schema import Complaint


def test_memory_and_sqlite_keep_the_same_record(tmp_path: Path) -> None:
    path = write(tmp_path / "events.jsonl", 3_000)
    until = datetime.fromisoformat("2027-06-01T00:00:00+00:00")
    memory = bootstrap_in_memory("kilowatt-connect")
    sqlite = bootstrap(f"sqlite:///{tmp_path / 'c.db'}", "kilowatt-connect")
    try:
        reports = [ingest_file(app, path).as_json() for app in (memory, sqlite)]
        assert reports[0] == reports[1]
        assert reports[0]["applied"] > 2_000  # a real run, not an empty one
        assert tick(memory, until) == tick(sqlite, until)
        with sqlite.sessions() as session:
            ids = sorted(session.scalars(select(Complaint.complaint_id)))
        assert ids == sorted(memory.store.complaints)
        for cid in ids:
            from_memory, from_sqlite = memory.show_complaint(cid), sqlite.show_complaint(cid)
            assert from_memory is not None and from_sqlite is not None
            # Deliveries and dispatches are the delivery service's: the same here (none sent).
            assert from_memory == from_sqlite, cid
    finally:
        sqlite.engine.dispose()
