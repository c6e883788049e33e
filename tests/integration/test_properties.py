"""Property-based: random event streams never raise out of the handler and never corrupt a
complaint; a refused event changes nothing; replaying a stream changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from tests.builders import assigned, event, received, reopened, resolved, simple
from workflow.bootstrap import App
from workflow.database import make_engine, session_factory
from workflow.lifecycle import STATES
from workflow.procedure import load_procedure
from workflow.schema import Base, Complaint, Deadline, HistoryEntry, Letter

COMPLAINTS = ("C1", "C2", "C3")
TYPES = (
    "complaint.received", "complaint.received_duplicate", "complaint.assigned",
    "complaint.acknowledged", "complaint.contact_logged", "complaint.recategorised",
    "complaint.escalation_requested", "complaint.senior_manager_response",
    "complaint.dissatisfied", "complaint.deadlock_reached", "complaint.resolved",
    "complaint.reopened", "complaint.referred_to_ombudsman", "complaint.ombudsman_decision",
    "complaint.remedy_implemented", "complaint.withdrawn", "garbage", "missing_field",
)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def document(kind: str, event_id: str, complaint_id: str, at: datetime,
             flag: bool) -> dict[str, Any] | str:
    when = at.isoformat()
    if kind == "complaint.received":
        return received(event_id, complaint_id, when,
                        handler={"id": "h", "name": "H"} if flag else None)
    if kind == "complaint.received_duplicate":
        return received(event_id, complaint_id, when, duplicate_of=COMPLAINTS[0])
    if kind == "complaint.assigned":
        return assigned(event_id, complaint_id, when)
    if kind == "complaint.resolved":
        return resolved(event_id, complaint_id, when)
    if kind == "complaint.reopened":
        return reopened(event_id, complaint_id, when)
    if kind == "complaint.ombudsman_decision":
        return simple(kind, event_id, complaint_id, when, accepted=flag)
    if kind == "garbage":
        return '{"event_id": "' + event_id + '", "type": 7'
    if kind == "missing_field":
        return event("complaint.deadlock_reached", event_id, when, complaint_id)
    return simple(kind, event_id, complaint_id, when)


steps = st.lists(
    st.tuples(
        st.sampled_from(TYPES),
        st.sampled_from(COMPLAINTS),
        st.integers(min_value=-60, max_value=60 * 24 * 40),  # minutes; sometimes late
        st.booleans(),
        st.booleans(),  # re-use an earlier event id (re-delivery)
    ),
    min_size=1,
    max_size=30,
)


def fresh_app() -> App:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    return App(engine=engine, sessions=session_factory(engine),
               procedure=load_procedure("kilowatt-connect"))


def snapshot(app: App, complaint_id: str) -> dict[str, Any] | None:
    with app.sessions() as session:
        row = session.get(Complaint, complaint_id)
        if row is None:
            return None
        columns = inspect(Complaint).columns
        return {c.key: getattr(row, c.key) for c in columns}


def history_size(app: App, complaint_id: str) -> int:
    with app.sessions() as session:
        return len(session.scalars(select(HistoryEntry.id).where(
            HistoryEntry.complaint_id == complaint_id)).all())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_streams_never_corrupt_a_complaint(script: list[Any]) -> None:
    app = fresh_app()
    uow = app.unit_of_work()
    processor = app.event_time_processor(uow)
    at = START
    lines: list[bytes] = []
    for index, (kind, complaint_id, minutes, flag, redeliver) in enumerate(script):
        at = at + timedelta(minutes=minutes)
        event_id = f"e{index // 2}" if redeliver else f"e{index}"
        body = document(kind, event_id, complaint_id, at, flag)
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        uow.commit()
        before, entries = snapshot(app, complaint_id), history_size(app, complaint_id)
        outcome = processor.process(raw, "property", f"line {index + 1}")
        uow.commit()
        assert outcome.status in ("applied", "duplicate", "rejected")
        if outcome.status == "applied":
            lines.append(raw)
        if outcome.status != "applied" and history_size(app, complaint_id) == entries:
            # Refused (and no deadline of it fired as the clock moved): nothing changed.
            assert snapshot(app, complaint_id) == before
    uow.commit()
    assert_consistent(app)

    # Re-delivering every applied message is a duplicate each time and changes nothing.
    # (Refused ones may apply later, corrected or once their complaint exists: by design.)
    states = {cid: snapshot(app, cid) for cid in COMPLAINTS}
    replay = app.event_time_processor(uow)
    for index, raw in enumerate(lines):
        assert replay.process(raw, "replay", f"line {index + 1}").status == "duplicate"
    uow.commit()
    assert {cid: snapshot(app, cid) for cid in COMPLAINTS} == states
    uow.close()


def assert_consistent(app: App) -> None:
    with app.sessions() as session:
        for complaint in session.scalars(select(Complaint)):
            assert complaint.state in STATES
            history = session.scalars(
                select(HistoryEntry).where(HistoryEntry.complaint_id == complaint.complaint_id)
                .order_by(HistoryEntry.id)).all()
            assert history[0].type == "complaint.received"
            assert history[-1].to_state == complaint.state
            for earlier, later in zip(history, history[1:], strict=False):
                assert later.from_state == earlier.to_state, "history is a chain of states"
            letters = session.scalars(
                select(Letter).where(Letter.complaint_id == complaint.complaint_id)).all()
            # Once per kind and cycle, except the senior manager update (per escalation) and
            # (v2) the progress update (per progress-update deadline: its cause).
            per_cause = ("senior_manager_update", "progress_update")
            kinds = [(x.kind, x.cycle) for x in letters if x.kind not in per_cause]
            assert len(kinds) == len(set(kinds)), "one letter per kind and cycle"
            updates = [x.cause for x in letters if x.kind == "progress_update"]
            assert len(updates) == len(set(updates)), "one progress update per deadline"
            assert sum(x.kind == "eight_week" for x in letters) <= 1
            if complaint.state == "duplicate":
                assert not letters
                assert not session.scalars(select(Deadline).where(
                    Deadline.complaint_id == complaint.complaint_id)).all()
