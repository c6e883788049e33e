"""The in-memory unit of work (workflow/memory_uow.py) as a replay uses it keeps what a
database's transactions and keys give, though it changes rows in place: a commit keeps a
transaction's changes, a rollback or a failed savepoint undoes them (a complaint's columns, a
deadline's firing, its number, every key claimed), and a repeated key is refused. A store
keeping only some tables keeps only their rows, and leaves out the columns it was told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from workflow.memory_uow import MemoryStore, MemoryUnitOfWork
from workflow.schema import Complaint, Deadline, HistoryEntry, Letter, OutboxMessage

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _complaint(cid: str) -> Complaint:
    return Complaint(complaint_id=cid, reference=f"REF-{cid}", state="received", category="B1",
                     channel="phone", source="customer", fuel="gas", meter_type="credit",
                     summary="s", customer={}, received_at=AT, received_event_id=f"{cid}-1",
                     cycle_received_at=AT, cycle_d1_deadline=AT, last_event_at=AT)


def _deadline(cid: str, kind: str) -> Deadline:
    return Deadline(deadline_key=f"{cid}:{kind}", complaint_id=cid, kind=kind, cycle=1,
                    due_at=AT + timedelta(days=1), cause=f"{cid}-1", created_at=AT)


def test_commit_rollback_and_savepoint() -> None:
    store = MemoryStore()
    uow = MemoryUnitOfWork(store)
    uow.add(_complaint("C1"))
    uow.add(_deadline("C1", "acknowledgement"))
    uow.mark_processed("e1", AT)
    uow.commit()
    assert store.complaints["C1"].cycle == 1 and store.complaints["C1"].version == 1
    assert store.rows["processed_events"] == [("e1", AT)]

    # Changed, fired, a new complaint and key: all undone by the rollback.
    complaint = uow.complaint("C1")
    assert complaint is not None
    complaint.state, complaint.handler = "immediate", {"id": "h-1"}
    deadline = uow.deadline_by_key("C1:acknowledgement")
    assert deadline is not None and deadline.id == 1
    uow.record_firing(deadline, AT, "done")
    uow.add(_deadline("C1", "eight_week"))
    uow.add(_complaint("C2"))
    uow.mark_processed("e2", AT)
    uow.rollback()
    assert (store.complaints["C1"].state, store.complaints["C1"].handler) == ("received", None)
    assert deadline.fired_at is None and deadline.outcome is None
    assert set(store.deadlines) == {"C1:acknowledgement"} and store.next_deadline_id == 2
    assert "C2" not in store.complaints and not uow.reference_taken("REF-C2")
    assert not uow.is_processed("e2")

    # A failed savepoint undoes its own changes only.
    complaint = uow.complaint("C1")
    assert complaint is not None
    complaint.cycle = 2
    with pytest.raises(RuntimeError), uow.atomic():
        inside = uow.complaint("C1")
        assert inside is complaint
        inside.state = "resolved"
        uow.mark_processed("e3", AT)
        uow.append(HistoryEntry, complaint_id="C1", at=AT, event_id="e3",
                   type="complaint.reopened", from_state="received", to_state="received",
                   cycle=2, detail={}, recorded_at=AT)
        raise RuntimeError("a failing message")
    assert (complaint.state, complaint.cycle) == ("received", 2)
    assert not uow.is_processed("e3")
    assert uow.record_of("C1", ["complaint.reopened"]) == ([], [])
    uow.commit()
    assert store.complaints["C1"].cycle == 2


def test_a_repeated_key_is_refused_as_by_the_database() -> None:
    uow = MemoryUnitOfWork(MemoryStore())
    uow.add(_complaint("C1"))
    uow.mark_processed("e1", AT)
    uow.commit()
    with pytest.raises(IntegrityError):
        uow.mark_processed("e1", AT)
    with pytest.raises(IntegrityError):
        uow.add(_complaint("C1"))
    with pytest.raises(TypeError):  # complaints are added and changed, never appended
        uow.append(Complaint, complaint_id="C1")


def test_a_store_keeps_only_what_it_was_asked_to() -> None:
    store = MemoryStore(tables=frozenset({"letters"}),
                        dropped={"letters": frozenset({"context"})})
    uow = MemoryUnitOfWork(store)
    uow.add(_complaint("C1"))
    uow.add(_deadline("C1", "acknowledgement"))
    uow.append(OutboxMessage, event_id="o1", topic="lifecycle", key="C1", payload={},
               created_at=AT)
    uow.append(Letter, letter_id="L1", dedupe_key="C1:ack", complaint_id="C1",
               kind="acknowledgement", cycle=1, issued_at=AT, cause="c", context={"a": 1})
    uow.append(HistoryEntry, complaint_id="C1", at=AT, event_id="e1", type="complaint.received",
               from_state=None, to_state="received", cycle=1, detail={"x": 1}, recorded_at=AT)
    deadline = uow.deadline_by_key("C1:acknowledgement")
    assert deadline is not None
    uow.record_firing(deadline, AT, "done")
    uow.commit()
    assert set(store.rows) == {"letters"}
    assert store.columns("letters") == ("letter_id", "dedupe_key", "complaint_id", "kind",
                                        "cycle", "issued_at", "cause")
    assert store.rows["letters"] == [("L1", "C1:ack", "C1", "acknowledgement", 1, AT, "c")]
    # What the handlers read back is kept whatever the tables: the letter's key, the record.
    assert uow.letter_exists("C1", "C1:ack")
    assert uow.record_of("C1", ["complaint.received"]) == (
        [("complaint.received", AT, {"x": 1})], [("acknowledgement", AT)])
    # A fired deadline is forgotten but for its key, which cannot be scheduled again.
    assert store.deadlines == {} and store.fired_keys == {"C1:acknowledgement"}
    with pytest.raises(IntegrityError):
        uow.add(_deadline("C1", "acknowledgement"))
    with pytest.raises(ValueError, match="keeps no history"):
        uow.record_of("C1", ["complaint.assigned"])


def _one_cold_one_hot() -> tuple[MemoryStore, MemoryUnitOfWork]:
    """C1 then C2 committed with one complaint kept hot: C1 is cold."""
    store = MemoryStore(hot_complaints=1)
    uow = MemoryUnitOfWork(store)
    uow.add(_complaint("C1"))
    uow.commit()
    uow.add(_complaint("C2"))
    uow.commit()
    return store, uow


def test_complaints_not_touched_lately_are_kept_cold() -> None:
    store, uow = _one_cold_one_hot()
    assert isinstance(store.complaints["C1"], bytes)  # its columns' tuple, marshalled
    assert isinstance(store.complaints["C2"], Complaint)
    assert store.states() == {"C1": "received", "C2": "received"}
    complaint = uow.complaint("C1")
    assert isinstance(complaint, Complaint) and store.complaints["C1"] is complaint
    assert (complaint.reference, complaint.cycle, complaint.version) == ("REF-C1", 1, 1)
    complaint.state = "resolved"  # changed in place, undone by a rollback as any other
    uow.rollback()
    assert store.states()["C1"] == "received"


def test_the_complaint_values_a_counting_replay_leaves_out_are_json_no_return_reads() -> None:
    """consumers/replay_store.py writes them as JSON null (NOT NULL holds); the returns read a
    complaint's id and subsidiary categories only (tests/integration/test_replay_parity.py
    holds the figures equal to a replay writing every value)."""
    import inspect

    from sqlalchemy import JSON

    from consumers.replay_store import UNCOUNTED_COMPLAINT_VALUES
    from reporting import measures

    source = inspect.getsource(measures)
    columns = Complaint.__table__.columns
    for key in UNCOUNTED_COMPLAINT_VALUES:
        assert isinstance(columns[key].type, JSON), key
        assert f"complaints.c.{key}" not in source and f"Complaint.{key}" not in source, key


def test_complaint_rows_read_hot_and_cold_complaints_alike() -> None:
    store, uow = _one_cold_one_hot()
    assert isinstance(store.complaints["C1"], bytes)
    # A column the complaint never set (handler) reads as None, cold or hot.
    assert list(store.complaint_rows(("reference", "handler", "cycle", "complaint_id"))) == [
        ("REF-C1", None, 1, "C1"), ("REF-C2", None, 1, "C2")]


def test_a_parameter_no_row_gives_goes_in_as_its_processed_none() -> None:
    """workflow/bulk.py execute_rows: a column left out of the rows is bound as None through
    its processor (a JSON column's 'null'), the same for every row."""
    import sqlite3

    from sqlalchemy import Column, Integer, MetaData, Table, create_engine
    from sqlalchemy.types import JSON

    from workflow.bulk import BulkInsert

    table = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("n", Integer), Column("doc", JSON), Column("other", Integer))
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.connect() as connection:
        BulkInsert(table, connection.dialect).execute_rows(connection, [(1,), (2,)], ("n",))
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        assert driver.execute("SELECT n, doc, other FROM t ORDER BY id").fetchall() == [
            (1, "null", None), (2, "null", None)]


class Text(str):
    """A value marshal would not give back as itself."""


def test_a_cold_complaint_thaws_to_the_same_values_and_types() -> None:
    from datetime import timezone

    from workflow.memory_uow import _freeze, _thaw

    plain = ("C1", 3, True, None, {"id": "h-1", "roles": ["a", 1]}, [],
             datetime(2026, 10, 25, 1, 30, 5, 7, tzinfo=UTC, fold=1))
    odd = [(datetime(2026, 1, 5, 9, tzinfo=timezone(timedelta(hours=1))),),  # not UTC
           ((1, 2),), (Text("x"),), ({"at": AT},)]  # a tuple; a subclass; an instant inside
    for row in (plain, *odd):
        thawed = _thaw(_freeze(row))
        assert thawed == row
        assert [type(v) for v in thawed] == [type(v) for v in row]
        assert [getattr(v, "tzinfo", None) for v in thawed] == [
            getattr(v, "tzinfo", None) for v in row]
    assert thawed[0]["at"] is not AT  # equal, a copy
    assert _thaw(_freeze(plain))[6].fold == 1
    assert _freeze(plain)[:1] == b"M" and all(_freeze(row)[:1] == b"P" for row in odd)
