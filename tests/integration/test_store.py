"""The store on SQLite and PostgreSQL: same migrations, same record for the same events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

import workflow.handlers
from consumers.file_ingest import ingest_file
from tests.builders import received, write_jsonl
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.reference import candidate
from workflow.schema import Base, Rejection

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
COMPLAINTS = ("C-100", "C-101", "C-102", "C-103", "C-104", "C-105")


def test_migrations_match_the_models(app: App) -> None:
    with app.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def record(app: App) -> dict[str, Any]:
    with app.sessions() as session:
        return {cid: queries.show_complaint(session, cid) for cid in COMPLAINTS}


def test_same_events_same_record_on_both_backends(
    tmp_path: Path, postgres_url: str, sqlite_url: str
) -> None:
    on_sqlite, on_postgres = bootstrap(sqlite_url), bootstrap(postgres_url)
    try:
        for app in (on_sqlite, on_postgres):
            assert ingest_file(app, SAMPLE).as_json() == {
                "applied": 19, "duplicates": 1, "rejected": 9}
        assert record(on_sqlite) == record(on_postgres)
    finally:
        on_sqlite.engine.dispose()
        on_postgres.engine.dispose()


def test_second_ingest_is_idempotent(app: App) -> None:
    ingest_file(app, SAMPLE)
    first = record(app)
    assert ingest_file(app, SAMPLE).applied == 0
    assert record(app) == first


def test_database_errors_never_quote_the_row_values(app: App) -> None:
    # A failing statement's message names the statement only: the values can be a customer's
    # name or complaint, and such messages reach logs and stderr.
    row = {"id": 1, "rejected_at": datetime(2026, 1, 5, tzinfo=UTC), "source": "test",
           "position": "line 1", "reason": "Ada Lovelace, 1 High Street", "raw": b"{}",
           "event_id": None}
    with app.engine.begin() as connection:
        connection.execute(insert(Rejection), row)
        with pytest.raises(IntegrityError) as failure:
            connection.execute(insert(Rejection), row)
    assert "INSERT INTO rejections" in str(failure.value)
    assert "Lovelace" not in str(failure.value)


def test_a_reference_clash_takes_the_next_candidate(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # References are derived from the complaint id (50 bits), so a clash is rare; make every
    # first candidate the same to force one. C-1 takes it; C-2, in the same batch, finds it
    # taken by this transaction; C-3, in a later ingest, finds it taken in the database. Both
    # then take their second candidate, candidate("KC", id, 1).
    clash = "KC-00000-00000-0"
    monkeypatch.setattr(workflow.handlers, "candidate",
                        lambda prefix, cid, attempt=0: clash if attempt == 0
                        else candidate(prefix, cid, attempt))
    first = write_jsonl(tmp_path / "first.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00+00:00"),
        received("e2", "C-2", "2026-01-05T09:05:00+00:00")])
    second = write_jsonl(tmp_path / "second.jsonl", [
        received("e3", "C-3", "2026-01-05T09:10:00+00:00")])
    assert ingest_file(app, first).applied == 2
    assert ingest_file(app, second).applied == 1
    with app.sessions() as session:
        references = {cid: queries.show_complaint(session, cid)["reference"]  # type: ignore[index]
                      for cid in ("C-1", "C-2", "C-3")}
    assert references == {"C-1": clash, "C-2": candidate("KC", "C-2", 1),
                          "C-3": candidate("KC", "C-3", 1)}


def test_a_complaint_changed_by_another_transaction_fails_the_batch(
    postgres_url: str, tmp_path: Path
) -> None:
    # Two writers of one complaint (a rebalance overlap): the one that read the older version
    # must not overwrite the other's change. The bulk update checks the version of every row
    # and fails the batch (the service then re-runs it message by message, reading afresh).
    app = bootstrap(postgres_url)
    ingest_file(app, write_jsonl(tmp_path / "one.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00+00:00")]))
    late, early = app.unit_of_work(), app.unit_of_work()
    try:
        stale = late.complaint("C-1")
        fresh = early.complaint("C-1")
        assert stale is not None and fresh is not None and stale.version == fresh.version
        fresh.state = "immediate"
        early.commit()
        stale.state = "closed"
        with pytest.raises(StaleDataError):
            late.commit()
        late.rollback()
    finally:
        late.close()
        early.close()
    with app.sessions() as session:
        assert queries.show_complaint(session, "C-1")["state"] == "immediate"  # type: ignore[index]
    app.engine.dispose()


def test_a_complaint_set_to_what_it_was_is_not_written(app: App, tmp_path: Path) -> None:
    # As with the ORM's own flush: an attribute set to its current value is no change, so no
    # UPDATE and no new version (a new version would make a concurrent writer conflict).
    ingest_file(app, write_jsonl(tmp_path / "one.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00+00:00")]))
    uow = app.unit_of_work()
    try:
        complaint = uow.complaint("C-1")
        assert complaint is not None
        version = complaint.version
        complaint.state = str(complaint.state)  # an equal value, as a handler might set it
        uow.commit()
    finally:
        uow.close()
    check = app.unit_of_work()
    try:
        again = check.complaint("C-1")
        assert again is not None and again.version == version
    finally:
        check.close()
