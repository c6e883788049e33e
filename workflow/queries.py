"""Read models for the command line and the ops API: a complaint, the backlog, rejections."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, func, select
from sqlalchemy.orm import Session

from workflow.calendar import WorkingCalendar
from workflow.counting import DUE_SOON_WORKING_DAYS, with_the_ombudsman
from workflow.handlers import DEADLINE_KINDS
from workflow.lifecycle import STATES
from workflow.schema import (
    AccountsSnapshotRow,
    Complaint,
    Contact,
    Deadline,
    Delivery,
    Dispatch,
    HistoryEntry,
    Letter,
    RawEvent,
    Rejection,
)


def iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def owner_name(owner: Any) -> str | None:
    """The name of a complaint's owner as RULES s.6 has it (`Complaint.owner`: the latest
    handler, or the senior manager who answered), as the ops lists show it; None when nobody
    has been named (its letters then name the procedure's complaints manager)."""
    return owner.get("name") if isinstance(owner, dict) else None


def show_complaint(session: Session, complaint_id: str) -> dict[str, Any] | None:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        return None
    history = session.scalars(
        select(HistoryEntry).where(HistoryEntry.complaint_id == complaint_id)
        .order_by(HistoryEntry.id)
    )
    deadlines = session.scalars(
        select(Deadline).where(Deadline.complaint_id == complaint_id)
        .order_by(Deadline.due_at, Deadline.id)
    )
    letters = session.scalars(
        select(Letter).where(Letter.complaint_id == complaint_id)
        .order_by(Letter.issued_at, Letter.letter_id)
    ).all()
    deliveries, dispatches = letter_dispatches(session, [x.letter_id for x in letters])
    return complaint_view(complaint, history, deadlines, letters, deliveries, dispatches)


def complaint_view(complaint: Complaint, history: Iterable[HistoryEntry],
                   deadlines: Iterable[Deadline], letters: Iterable[Letter],
                   deliveries: dict[str, str],
                   dispatches: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A complaint as `show` prints it, from its rows in order (whatever store held them)."""
    return {
        "complaint_id": complaint.complaint_id,
        "reference": complaint.reference,
        "state": complaint.state,
        "category": complaint.category,
        "channel": complaint.channel,
        "received_at": iso(complaint.received_at),
        "cycle": complaint.cycle,
        "duplicate_of": complaint.duplicate_of,
        "handler": complaint.handler,
        # (v2) What closed it (when closed), and whether its latest referral to the Ombudsman
        # came after the end of its referral window (docs/rules.md s.4).
        "closed_by": complaint.closed_by if complaint.state == "closed" else None,
        "late_referral": complaint.late_referral,
        "history": [
            {"at": iso(h.at), "event_id": h.event_id, "type": h.type,
             "from": h.from_state, "to": h.to_state}
            for h in history
        ],
        "deadlines": [
            {"kind": d.kind, "cycle": d.cycle, "due_at": iso(d.due_at),
             "fired_at": iso(d.fired_at), "outcome": d.outcome}
            for d in deadlines
        ],
        "letters": [
            {"letter_id": x.letter_id, "kind": x.kind, "issued_at": iso(x.issued_at),
             # (v2) additive: where its delivery stands, and every attempt (docs/rules.md s.6)
             "delivery": deliveries.get(x.letter_id),
             "dispatches": dispatches.get(x.letter_id, [])}
            for x in letters
        ],
    }


def letter_dispatches(session: Session, letter_ids: list[str]) -> tuple[
        dict[str, str], dict[str, list[dict[str, Any]]]]:
    """(v2) Per letter: its delivery status (pending | dispatched; none for a letter issued
    before deliveries were recorded) and its attempts, oldest first."""
    if not letter_ids:
        return {}, {}
    # Statements built once (an expanding parameter for the ids), read as plain rows: no
    # select and cache key built, nor ORM objects of every column made, for each timeline.
    connection = session.connection()
    values = {"letter_ids": letter_ids}
    status = {row.letter_id: row.status
              for row in connection.execute(_DELIVERY_STATUS, values)}
    attempts: dict[str, list[dict[str, Any]]] = {}
    for d in connection.execute(_DISPATCHES, values):
        attempts.setdefault(d.letter_id, []).append(
            {"attempt": d.attempt, "channel": d.channel, "address": d.address,
             "at": iso(d.attempted_at), "outcome": d.outcome, "receipt": d.receipt})
    return status, attempts


_DELIVERY_STATUS: Final = (select(Delivery.letter_id, Delivery.status)
                           .where(Delivery.letter_id.in_(bindparam("letter_ids",
                                                                   expanding=True))))
_DISPATCHES: Final = (
    select(Dispatch.letter_id, Dispatch.attempt, Dispatch.channel, Dispatch.address,
           Dispatch.attempted_at, Dispatch.outcome, Dispatch.receipt)
    .where(Dispatch.letter_id.in_(bindparam("letter_ids", expanding=True)))
    .order_by(Dispatch.letter_id, Dispatch.attempt))


# Where the record's clock has left a mark: the clock each event was applied at (the last
# applied's: the clock never moves back, and `seq` is the applied order, so one index probe
# instead of a scan of every raw event), each deadline fired at, and (for events applied
# before raw events were kept, migration 0008) the instants of its history, contacts and
# accounts snapshots.
_CLOCK_MARKS: Final = (
    select(RawEvent.applied_at).order_by(RawEvent.seq.desc()).limit(1),
    *(select(func.max(column)) for column in (Deadline.fired_at, HistoryEntry.at,
                                              Contact.occurred_at,
                                              AccountsSnapshotRow.occurred_at)),
)


def record_clock(reader: Session | Connection) -> datetime | None:
    """The record's own clock: the latest instant it has seen (None for an empty record).

    Offline, now is event time (docs/rules.md s.5) and the clock never moves back: a later
    `ingest` starts from here (workflow/bootstrap.py), every read of the record defaults to
    no earlier (`default_as_of`, a return's as-of: reporting/report.py), and a submission
    notes whether the record holds anything later than its as-of (reporting/submissions.py).
    """
    instants = [found for mark in _CLOCK_MARKS if (found := reader.scalar(mark)) is not None]
    return max(instants) if instants else None


def default_as_of(reader: Session | Connection, wall_clock: datetime) -> datetime:
    """"Now" for a read of the record: the wall clock, never before the record's own clock.

    A record ingested from files dated after today is read as of its latest instant, not as
    of a day before its own events.
    """
    reached = record_clock(reader)
    return wall_clock if reached is None or reached <= wall_clock else reached


def backlog(session: Session, as_of: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
    """Counts per state, and unfired deadlines overdue or due within 5 working days."""
    by_state = dict.fromkeys(STATES, 0)
    for state, count in session.execute(
        select(Complaint.state, func.count()).group_by(Complaint.state)
    ):
        by_state[state] = count
    horizon = calendar.working_days_after(as_of, DUE_SOON_WORKING_DAYS)
    overdue = dict.fromkeys(DEADLINE_KINDS, 0)
    due_soon = dict.fromkeys(DEADLINE_KINDS, 0)
    pending = Deadline.fired_at.is_(None)
    for kind, count in session.execute(
        select(Deadline.kind, func.count()).where(pending, Deadline.due_at < as_of)
        .group_by(Deadline.kind)
    ):
        overdue[kind] = count
    for kind, count in session.execute(
        select(Deadline.kind, func.count())
        .where(pending, Deadline.due_at >= as_of, Deadline.due_at <= horizon)
        .group_by(Deadline.kind)
    ):
        due_soon[kind] = count
    # A remedy whose deadline fired and is still not implemented stays overdue.
    overdue["remedy"] += session.scalar(
        select(func.count()).select_from(Complaint)
        .where(and_(Complaint.remedy_overdue.is_(True), with_the_ombudsman(Complaint.state)))
    ) or 0
    return {
        "as_of": iso(as_of),
        "by_state": by_state,
        "overdue": overdue,
        "due_within_5_working_days": due_soon,
        "late_referrals": late_referrals(session),
        # (v2) additive: letters issued and not yet delivered, as the record stands now
        "undelivered_letters": undelivered_letters(session),
    }


def late_referrals(session: Session) -> int:
    """(v2) Complaints with the Ombudsman whose referral came after its window
    (docs/rules.md s.4)."""
    return session.scalar(
        select(func.count()).select_from(Complaint)
        .where(and_(Complaint.late_referral.is_(True), with_the_ombudsman(Complaint.state)))
    ) or 0


def undelivered_letters(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Delivery)
                          .where(Delivery.status == "pending")) or 0


def letters(session: Session, complaint_id: str | None = None,
            kind: str | None = None) -> list[dict[str, Any]]:
    query = select(Letter).order_by(Letter.issued_at, Letter.letter_id)
    if complaint_id is not None:
        query = query.where(Letter.complaint_id == complaint_id)
    if kind is not None:
        query = query.where(Letter.kind == kind)
    return [
        {"letter_id": x.letter_id, "complaint_id": x.complaint_id, "kind": x.kind,
         "issued_at": iso(x.issued_at)}
        for x in session.scalars(query)
    ]


def letter_context(session: Session, letter_id: str) -> dict[str, Any] | None:
    """The context stored when the letter was issued: all that rendering it needs."""
    letter = session.get(Letter, letter_id)
    return None if letter is None else dict(letter.context)


def rejections(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Rejection).order_by(Rejection.id))
    return [
        {"rejected_at": iso(r.rejected_at), "source": r.source, "position": r.position,
         "reason": r.reason, "raw": _raw_text(r.raw)}
        for r in rows
    ]


def _raw_text(raw: bytes) -> str:
    # Show text as text; binary (not UTF-8) as base64 so the JSON stays valid and lossless.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode("ascii")
