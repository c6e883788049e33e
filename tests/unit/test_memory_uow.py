"""The in-memory unit of work keeps what a database's transactions and keys give: a commit
makes rows visible, a rollback or failed savepoint takes them away, a repeated key is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from consumers.file_ingest import ingest_file
from tests.builders import received, write_jsonl
from workflow.bootstrap import bootstrap_in_memory
from workflow.memory_uow import MemoryStore, MemoryUnitOfWork
from workflow.schema import Complaint

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_commit_rollback_and_savepoint() -> None:
    store = MemoryStore()
    uow = MemoryUnitOfWork(store)
    uow.mark_processed("e1", AT)
    assert uow.is_processed("e1") and not MemoryUnitOfWork(store).is_processed("e1")
    uow.commit()
    assert MemoryUnitOfWork(store).is_processed("e1")
    uow.mark_processed("e2", AT)
    uow.rollback()
    assert not uow.is_processed("e2")
    with pytest.raises(RuntimeError), uow.atomic():
        uow.mark_processed("e3", AT)
        raise RuntimeError("a failing message")
    assert not uow.is_processed("e3")
    uow.commit()
    assert [row.event_id for row in store.table("processed_events")] == ["e1"]  # type: ignore[attr-defined]


def test_a_repeated_key_is_refused_as_by_the_database() -> None:
    uow = MemoryUnitOfWork(MemoryStore())
    uow.mark_processed("e1", AT)
    uow.commit()
    with pytest.raises(IntegrityError):
        uow.mark_processed("e1", AT)
    with pytest.raises(TypeError):  # complaints are added and changed, never appended
        uow.append(Complaint, complaint_id="C1")


def test_ingest_twice_applies_once(tmp_path: Path) -> None:
    app = bootstrap_in_memory("kilowatt-connect")
    path = write_jsonl(tmp_path / "e.jsonl", [received("e1", "C1", "2026-01-05T09:00:00+00:00")])
    assert ingest_file(app, path).as_json() == {"applied": 1, "duplicates": 0, "rejected": 0}
    assert ingest_file(app, path).as_json() == {"applied": 0, "duplicates": 1, "rejected": 0}
    shown = app.show_complaint("C1")
    assert shown is not None and shown["state"] == "received"
    # Received Mon 5 Jan 09:00 GMT: acknowledgement at the end of Tue 6 Jan (D+1).
    assert [(d["kind"], d["due_at"]) for d in shown["deadlines"]][0] == (
        "acknowledgement", "2026-01-06T23:59:59.999999+00:00")
