"""The store on SQLite and PostgreSQL: same migrations, same record for the same events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

import workflow.handlers
from consumers.file_ingest import ingest_file
from tests.builders import received, simple, write_jsonl
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.bulk import BulkInsert
from workflow.reference import candidate
from workflow.schema import Base, Complaint, Deadline, Rejection
from workflow.uow import UnitOfWork

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
COMPLAINTS = ("C-100", "C-101", "C-102", "C-103", "C-104", "C-105")


def one_complaint(app: App, tmp_path: Path) -> None:
    """C-1, received Monday 5 January 2026 09:00 UTC."""
    ingest_file(app, write_jsonl(tmp_path / "one.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00+00:00")]))


def remedy_deadline(cause: str) -> Deadline:
    """A remedy deadline of C-1, due 1 February 2026, made by hand (as a handler would)."""
    return Deadline(deadline_key=f"C-1/remedy/{cause}", complaint_id="C-1", kind="remedy",
                    cycle=1, due_at=datetime(2026, 2, 1, tzinfo=UTC), cause=cause,
                    created_at=datetime(2026, 1, 5, tzinfo=UTC))


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
    one_complaint(app, tmp_path)
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
    one_complaint(app, tmp_path)
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


def test_bulk_rows_are_stored_as_sqlalchemy_stores_them(app: App) -> None:
    # The bulk writer skips SQLAlchemy's per-row parameter building but must store exactly
    # what SQLAlchemy would: the same row through both paths reads back identical, JSON null,
    # naive-free instants, bytes and unicode included.
    bst = timezone(timedelta(hours=1))
    history = Base.metadata.tables["history"]
    rejections = Base.metadata.tables["rejections"]

    def history_row(event_id: str) -> dict[str, Any]:
        return {"complaint_id": "C-1", "at": datetime(2026, 10, 24, 23, 59, 59, 999999, bst),
                "event_id": event_id, "type": "complaint.received", "from_state": None,
                "to_state": "received", "cycle": 1,
                "detail": {"note": "Zoë’s <b>bill</b>", "pence": 2**62, "none": None},
                "recorded_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC)}

    def rejection_row(event_id: str) -> dict[str, Any]:
        return {"rejected_at": datetime(2026, 3, 29, 1, 30, tzinfo=bst), "source": "f.jsonl",
                "position": "line 1", "reason": "bad", "raw": b"\x00\xff{not json",
                "event_id": event_id}

    with app.engine.begin() as connection:
        connection.execute(insert(history), [history_row("by-sqlalchemy")])
        BulkInsert(history, connection.dialect).execute(connection, [history_row("by-bulk")])
        connection.execute(insert(rejections), [rejection_row("by-sqlalchemy")])
        BulkInsert(rejections, connection.dialect).execute(
            connection, [rejection_row("by-bulk")])
        # A JSON column given None stores JSON null, as SQLAlchemy does by default.
        row = history_row("none-detail") | {"detail": None}
        BulkInsert(history, connection.dialect).execute(connection, [row])
    with app.engine.connect() as connection:
        for table in (history, rejections):
            stored = {r.event_id: r._asdict() for r in connection.execute(select(table))}
            ours, theirs = stored["by-bulk"], stored["by-sqlalchemy"]
            for key in ("id", "event_id"):
                del ours[key], theirs[key]
            assert ours == theirs
            if connection.dialect.name == "sqlite":  # the very text stored
                columns = ", ".join(c.name for c in table.columns
                                    if c.name not in ("id", "event_id"))
                raw = {r[0]: r[1:] for r in connection.exec_driver_sql(
                    f"SELECT event_id, {columns} FROM {table.name}")}
                assert raw["by-bulk"] == raw["by-sqlalchemy"]
        none_detail = connection.execute(
            select(history.c.detail).where(history.c.event_id == "none-detail")).scalar_one()
        assert none_detail is None
        assert connection.execute(select(func.count()).select_from(history).where(
            history.c.detail.is_(None))).scalar_one() == 0  # JSON null, not SQL NULL


def test_a_deadline_fired_by_another_writer_fails_the_batch(app: App, tmp_path: Path) -> None:
    # A deadline written by one transaction and fired in a later one is updated by key with
    # `fired_at IS NULL`: if another writer fired it meanwhile, the batch fails (and is re-run
    # message by message) rather than firing it twice.
    one_complaint(app, tmp_path)
    writer = app.unit_of_work()
    other = app.unit_of_work()
    try:
        complaint = writer.complaint("C-1")
        assert complaint is not None
        mine = remedy_deadline("x")
        writer.add(mine)
        writer.commit()
        theirs = other.deadline_by_key("C-1/remedy/x")
        assert theirs is not None and theirs is not mine
        other.record_firing(theirs, datetime(2026, 2, 1, tzinfo=UTC), "fired by them")
        other.commit()
        writer.record_firing(mine, datetime(2026, 2, 1, tzinfo=UTC), "fired by me")
        with pytest.raises(StaleDataError, match="1 deadline"):
            writer.commit()
        writer.rollback()
    finally:
        writer.close()
        other.close()
    with app.sessions() as session:
        outcome = session.scalar(select(Deadline.outcome).where(
            Deadline.deadline_key == "C-1/remedy/x"))
    assert outcome == "fired by them"


def test_a_deadline_written_then_fired_later_is_recorded(app: App, tmp_path: Path) -> None:
    # The common offline case: created in one batch, fired by the event clock in a later one.
    ingest_file(app, write_jsonl(tmp_path / "one.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00+00:00"),
        simple("complaint.assigned", "e2", "C-1", "2026-01-05T09:05:00+00:00",
               handler={"id": "h1", "name": "Sam"})]))
    assert ingest_file(app, write_jsonl(tmp_path / "two.jsonl", [
        simple("complaint.contact_logged", "e3", "C-1", "2026-01-20T09:00:00+00:00")])
    ).applied == 1
    with app.sessions() as session:
        deadlines = {d["kind"]: d for d in queries.show_complaint(  # type: ignore[index]
            session, "C-1")["deadlines"]}
    # Received Monday 5 January 2026 09:00: D+1 ends Tuesday 6 January 23:59:59.999999.
    assert deadlines["acknowledgement"]["fired_at"] is not None
    assert deadlines["acknowledgement"]["outcome"].startswith("acknowledgement letter")
    assert deadlines["eight_week"]["fired_at"] is None


@pytest.mark.postgres
def test_firing_by_key_is_never_run_from_a_prepared_statement(postgres_url: str) -> None:
    # psycopg prepares a statement on its fifth run; PostgreSQL then may keep a generic plan
    # made on an empty table, which for this UPDATE scanned every pending deadline
    # (workflow/database.py). Ten batches of firings, and it is still not prepared.
    app = bootstrap(postgres_url)
    uow = app.unit_of_work()
    try:
        deadlines = [remedy_deadline(str(n))
                     for n in range(10)]
        for deadline in deadlines:
            uow.add(deadline)
        uow.commit()
        for deadline in deadlines:
            uow.record_firing(deadline, datetime(2026, 2, 1, tzinfo=UTC), "fired")
            uow.commit()
        connection = uow.session.connection()
        prepared = connection.exec_driver_sql(
            "SELECT statement FROM pg_prepared_statements").scalars().all()
        assert prepared, "psycopg prepared nothing: the check below would prove nothing"
        assert not [sql for sql in prepared if "fired_at" in sql and "UPDATE" in sql]
    finally:
        uow.close()
        app.engine.dispose()


def test_a_firing_recorded_twice_is_written_once(app: App, tmp_path: Path) -> None:
    # E.g. a deadline's effect recorded, then refused later in the same firing: the failure
    # is recorded over it. One UPDATE with the last values, not a second that finds the row
    # already fired and fails the batch.
    one_complaint(app, tmp_path)
    uow = app.unit_of_work()
    try:
        deadline = remedy_deadline("x")
        uow.add(deadline)
        uow.commit()
        uow.record_firing(deadline, datetime(2026, 2, 1, tzinfo=UTC), "first")
        uow.record_firing(deadline, datetime(2026, 2, 1, 0, 1, tzinfo=UTC), "failed: second")
        uow.commit()
    finally:
        uow.close()
    with app.sessions() as session:
        stored = session.scalars(select(Deadline).where(
            Deadline.deadline_key == "C-1/remedy/x")).one()
    assert (stored.fired_at, stored.outcome) == (
        datetime(2026, 2, 1, 0, 1, tzinfo=UTC), "failed: second")


def test_a_changed_complaint_is_written_once_with_the_next_version(
    app: App, tmp_path: Path
) -> None:
    # Written by the bulk update and then marked as written in the ORM: no second UPDATE from
    # the ORM's own flush (which would bump the version twice).
    one_complaint(app, tmp_path)
    statements: list[str] = []
    uow = app.unit_of_work()
    try:
        complaint = uow.complaint("C-1")
        assert complaint is not None and complaint.version == 1
        event.listen(app.engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_: statements.append(sql))
        complaint.state = "immediate"
        uow.commit()
        assert complaint.version == 2
        complaint.state = "resolved"
        uow.commit()
    finally:
        uow.close()
    assert sum(sql.startswith("UPDATE complaints") for sql in statements) == 2
    with app.sessions() as session:
        stored = session.get(Complaint, "C-1")
        assert stored is not None and (stored.state, stored.version) == ("resolved", 3)


def test_a_message_refused_on_the_careful_rerun_leaves_no_deadline_behind(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unforeseen fault while applying C-2's receipt: the batch is re-run message by
    # message and C-2's savepoint is rolled back, deadlines included. A later event moves the
    # clock past C-2's acknowledgement deadline: nothing may fire for it (it was never
    # stored), and C-1's deadlines fire as usual.
    real = UnitOfWork.mark_processed

    def faulty(uow: UnitOfWork, event_id: str, now: datetime) -> None:
        if event_id == "e2":
            raise RuntimeError("unforeseen fault after the deadlines were scheduled")
        real(uow, event_id, now)

    monkeypatch.setattr(UnitOfWork, "mark_processed", faulty)
    report = ingest_file(app, write_jsonl(tmp_path / "three.jsonl", [
        received("e1", "C-1", "2024-03-04T10:00:00+00:00"),
        received("e2", "C-2", "2024-03-04T10:00:00+00:00"),
        simple("complaint.contact_logged", "e3", "C-1", "2024-03-20T10:00:00+00:00")]))
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 1}, report.rejections
    assert report.rejections[0][0] == 2
    assert report.rejections[0][1].startswith("internal error (RuntimeError)")
    with app.sessions() as session:
        assert queries.show_complaint(session, "C-2") is None
        assert session.scalars(select(Deadline.deadline_key).where(
            Deadline.complaint_id == "C-2")).all() == []
        c1_deadlines = queries.show_complaint(session, "C-1")["deadlines"]  # type: ignore[index]
        c1 = {d["kind"]: d for d in c1_deadlines}
    # Received Monday 4 March 2024: D+1 ends Tuesday 5 March; ten working days end Monday 18
    # March. Both are before the contact on 20 March; the eight weeks are not.
    assert c1["acknowledgement"]["fired_at"] is not None
    # (v2) The progress update due 14 Mar 10:00 (4 Mar + 240 h) fired and created the next,
    # due 24 Mar 10:00, after the contact.
    assert [(d["due_at"], d["fired_at"] is not None) for d in c1_deadlines
            if d["kind"] == "progress_update"] == [
        ("2024-03-14T10:00:00+00:00", True), ("2024-03-24T10:00:00+00:00", False)]
    assert c1["eight_week"]["fired_at"] is None


def test_a_deadline_key_scheduled_twice_in_a_batch_is_refused(app: App, tmp_path: Path) -> None:
    # The unique key would refuse the second INSERT; buffered, it is refused when added.
    one_complaint(app, tmp_path)
    uow = app.unit_of_work()
    try:
        for _ in range(2):
            deadline = remedy_deadline("x")
            if _ == 0:
                uow.add(deadline)
            else:
                with pytest.raises(ValueError, match="scheduled twice"):
                    uow.add(deadline)
    finally:
        uow.close()


def test_two_consumers_firing_one_stored_deadline_fire_it_once(
    postgres_url: str, tmp_path: Path
) -> None:
    # Both load the deadline (the timer service republished it during a rebalance): the
    # second firing finds it fired and fails its batch instead of firing it again. (SQLite
    # has one writer: there the second transaction cannot even start writing.)
    app = bootstrap(postgres_url)
    one_complaint(app, tmp_path)
    key = "C-1/acknowledgement/e1"
    first, second = app.unit_of_work(), app.unit_of_work()
    try:
        mine, theirs = first.deadline_by_key(key), second.deadline_by_key(key)
        assert mine is not None and theirs is not None and mine.fired_at is None
        first.record_firing(mine, datetime(2026, 1, 7, tzinfo=UTC), "by the first")
        first.commit()
        second.record_firing(theirs, datetime(2026, 1, 7, tzinfo=UTC), "by the second")
        with pytest.raises(StaleDataError, match="1 deadline"):
            second.commit()
        second.rollback()
    finally:
        first.close()
        second.close()
    with app.sessions() as session:
        assert session.scalar(select(Deadline.outcome).where(
            Deadline.deadline_key == key)) == "by the first"
    app.engine.dispose()


def test_a_failed_savepoint_takes_back_the_complaint_its_own_flush_wrote(
    app: App, tmp_path: Path
) -> None:
    # The savepoint's own flush writes the changed complaint (version 2) and then fails on a
    # later row (e1 is processed already): the savepoint's rollback takes the UPDATE back, and
    # the complaint read next is the stored one, not the object the flush had marked written.
    one_complaint(app, tmp_path)
    uow = app.unit_of_work()
    try:
        with pytest.raises(IntegrityError), uow.atomic():
            complaint = uow.complaint("C-1")
            assert complaint is not None and (complaint.state, complaint.version) == (
                "received", 1)
            complaint.state = "immediate"
            uow.mark_processed("e1", datetime(2026, 1, 5, 10, tzinfo=UTC))
        again = uow.complaint("C-1")
        assert again is not None and (again.state, again.version) == ("received", 1)
        uow.commit()
    finally:
        uow.close()
    with app.sessions() as session:
        stored = session.get(Complaint, "C-1")
        assert stored is not None and (stored.state, stored.version) == ("received", 1)
