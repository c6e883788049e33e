"""The complaints behind the dashboard's other counts (`GET /complaints/behind?count=...`):
those `reporting/workqueue.listing` does not cover (a stage, an overdue kind, a day's
receipts). Each list is the count's own definition (workflow/queries.py `backlog`, the live
view's month), read from the record, oldest first, paginated; bound parameters throughout.

- `unresolved`: in any stage before an end (the dashboard's "Unresolved complaints" tile).
- `overdue`: every overdue deadline, of any kind, one row per deadline (the tile counts
  deadlines, so a complaint with two appears twice); a remedy whose deadline fired and is still
  not implemented stays overdue.
- `due_soon` with `kind`: unfired deadlines of that kind due from as_of to the end of the 5th
  working day after it.
- `late_referrals`: with the Ombudsman, referred after the referral window.
- `undelivered`: letters issued and not yet delivered (one row per letter).
- `letters` with `day`: letters issued on a local date (the trends' letters per day).
- `received_month` with `month` (and optionally `channel` or `category`, the complaint's type
  as it stands now, as the live view counts a month's receipts by type): receipts in a month.
- `stage_on` with `state` and `day`: in that state at the end of that local date (at as_of if
  earlier), by the trends' own reckoning (reporting/trends.py): a complaint was in the state
  then if its first state change after that instant left the state, or if it has had no change
  since and is in the state now.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Select, and_, func, or_, select, union
from sqlalchemy.orm import Session

from reporting.periods import Period
from workflow import queries
from workflow.calendar import WorkingCalendar, start_of_date
from workflow.counting import DUE_SOON_WORKING_DAYS, with_the_ombudsman
from workflow.schema import (
    CategoryChange,
    Complaint,
    Deadline,
    Delivery,
    HistoryEntry,
    Letter,
    Receipt,
)

# The stages the dashboard counts as unresolved (reporting/static/dashboard.js UNRESOLVED).
UNRESOLVED: Final = ("received", "immediate", "senior_manager", "reopened", "eight_week",
                     "deadlock", "ombudsman")
COUNTS: Final = ("unresolved", "overdue", "due_soon", "late_referrals", "undelivered",
                 "letters", "received_month", "stage_on")
_COLUMNS: Final = (Complaint.complaint_id, Complaint.reference, Complaint.state,
                   Complaint.received_at, Complaint.owner)


def behind(session: Session, count: str, *, as_of: datetime, calendar: WorkingCalendar,
           kind: str | None = None, day: date | None = None, month: Period | None = None,
           channel: str | None = None, category: str | None = None,
           state: str | None = None, offset: int = 0,
           limit: int = 50) -> dict[str, Any]:
    """The rows behind `count` (one of COUNTS), a page of them and their total."""
    extra: tuple[Any, ...] = ()
    if count == "unresolved":
        query: Select[Any] = select(*_COLUMNS).where(Complaint.state.in_(UNRESOLVED))
        order: tuple[Any, ...] = (Complaint.received_at, Complaint.complaint_id)
    elif count == "late_referrals":
        query = select(*_COLUMNS).where(Complaint.late_referral.is_(True),
                                        with_the_ombudsman(Complaint.state))
        order = (Complaint.received_at, Complaint.complaint_id)
    elif count in ("overdue", "due_soon"):
        extra = (Deadline.kind, Deadline.due_at)
        pending = Deadline.fired_at.is_(None)
        if count == "overdue":
            # The two ways as a union of deadline ids (as reporting/workqueue.py's remedies):
            # the OR across the join was planned as a hash of every complaint (315 ms over
            # 200,000 complaints); each side is an index read (0012's unfired deadlines,
            # 0013's flagged complaints and remedy deadlines).
            condition: Any = Deadline.id.in_(union(
                select(Deadline.id).where(pending, Deadline.due_at < as_of),
                select(Deadline.id)
                .join(Complaint, Deadline.complaint_id == Complaint.complaint_id)
                .where(Deadline.kind == "remedy", Complaint.remedy_overdue.is_(True),
                       with_the_ombudsman(Complaint.state),
                       # the latest decision's deadline, the one that fired it: an earlier
                       # decision's is over (the backlog counts the complaint once)
                       Deadline.cause == Complaint.remedy_decision_event_id)))
        else:
            if kind is None:
                raise ValueError("due_soon needs a kind")
            horizon = calendar.working_days_after(as_of, DUE_SOON_WORKING_DAYS)
            condition = and_(pending, Deadline.kind == kind, Deadline.due_at >= as_of,
                             Deadline.due_at <= horizon)
        query = (select(*_COLUMNS, *extra)
                 .join(Deadline, Deadline.complaint_id == Complaint.complaint_id)
                 .where(condition))
        order = (Deadline.due_at, Complaint.complaint_id, Deadline.kind)
    elif count in ("undelivered", "letters"):
        extra = (Letter.kind, Letter.issued_at, Letter.letter_id)
        query = (select(*_COLUMNS, *extra)
                 .join(Letter, Letter.complaint_id == Complaint.complaint_id))
        if count == "undelivered":
            query = query.join(Delivery, Delivery.letter_id == Letter.letter_id).where(
                Delivery.status == "pending")
        else:
            if day is None:
                raise ValueError("letters needs a day")
            query = query.where(Letter.issued_at >= start_of_date(day),
                                Letter.issued_at < start_of_date(day + timedelta(days=1)))
        order = (Letter.issued_at, Letter.letter_id)
    elif count == "received_month":
        if month is None:
            raise ValueError("received_month needs a month")
        extra = (Receipt.received_at, Receipt.channel)
        query = (select(*_COLUMNS, *extra)
                 .join(Receipt, Receipt.complaint_id == Complaint.complaint_id)
                 .where(Receipt.received_at >= start_of_date(month.first),
                        Receipt.received_at < start_of_date(month.end)))
        if channel is not None:
            query = query.where(Receipt.channel == channel)
        if category is not None:
            # The complaint's category as it stands now: its latest change by effective
            # instant, ties to the one applied last (as the live view's receipts by type and
            # reporting.measures rank category_changes; the registration is the first).
            latest = (select(CategoryChange.category)
                      .where(CategoryChange.complaint_id == Complaint.complaint_id)
                      .order_by(CategoryChange.effective_at.desc(), CategoryChange.id.desc())
                      .limit(1).scalar_subquery())
            query = query.where(latest == category)
        order = (Receipt.received_at, Complaint.complaint_id)
    elif count == "stage_on":
        if state is None or day is None:
            raise ValueError("stage_on needs a state and a day")
        query = select(*_COLUMNS).where(Complaint.complaint_id.in_(
            _in_state_at(min(start_of_date(day + timedelta(days=1)), as_of), state)))
        order = (Complaint.received_at, Complaint.complaint_id)
    else:
        raise ValueError(f"count must be one of {', '.join(COUNTS)}")
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    complaints = []
    for row in rows:
        entry: dict[str, Any] = {
            "complaint_id": row.complaint_id, "reference": row.reference, "state": row.state,
            "received_at": queries.iso(row.received_at),
            "owner": queries.owner_name(row.owner)}
        if count in ("overdue", "due_soon"):
            entry.update(kind=row[5], due_at=queries.iso(row[6]))
        elif count in ("undelivered", "letters"):
            entry.update(letter_kind=row[5], issued_at=queries.iso(row[6]), letter_id=row[7])
        elif count == "received_month":
            entry.update(receipt_at=queries.iso(row[5]), channel=row[6])
        complaints.append(entry)
    return {"count": count, "total": total, "offset": offset, "limit": limit,
            "complaints": complaints}


def _in_state_at(end: datetime, state: str) -> Any:
    """The ids of the complaints in `state` just before `end` (a subquery)."""
    changes = or_(HistoryEntry.from_state.is_(None),
                  HistoryEntry.from_state != HistoryEntry.to_state)
    # The first change at or after `end`, per complaint: its from_state is the state then.
    ranked = (select(HistoryEntry.complaint_id, HistoryEntry.from_state,
                     func.row_number().over(partition_by=HistoryEntry.complaint_id,
                                            order_by=(HistoryEntry.at, HistoryEntry.id))
                     .label("n"))
              .where(HistoryEntry.at >= end, changes).subquery())
    left_it = select(ranked.c.complaint_id).where(ranked.c.n == 1,
                                                  ranked.c.from_state == state)
    unchanged = (select(Complaint.complaint_id)
                 .where(Complaint.state == state,
                        ~select(HistoryEntry.id)
                        .where(HistoryEntry.complaint_id == Complaint.complaint_id,
                               HistoryEntry.at >= end, changes).exists()))
    return left_it.union(unchanged)
