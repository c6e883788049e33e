"""The operations work queue's trends, from the record: receipts per day, the backlog per stage
at the end of each day, and letters per day, over a window of local dates (Europe/London).

Served on the ops API (`GET /trends`, reporting/web.py) and charted by the dashboard.

A "day" is a local date (docs/rules.md s.2: an instant falls *in* the Europe/London date it
shows there), so the bounds are computed here, in Python, from the calendar, and passed to the
database as bound instants: the same SQL runs on SQLite and PostgreSQL, neither has to know
the zone, and a day of 23 or 25 hours (the clock change) is counted right. Each series is one
statement over its window: one conditional count per day (`SUM(CASE WHEN ...)`), so the window
is read once, through the index on the instant where there is one.

Every series stops at `as_of`: the last date counts only what happened before it.

- receipts: rows of `receipts` (a registration, not a duplicate, or a reopen: what the returns
  count as a receipt, s.7), by `received_at`.
- letters: rows of `letters` by `issued_at`, with each day's figure by letter kind too.
- backlog: the number of complaints in each state at the end of each day (for the last day,
  at `as_of` if that is earlier). Worked backwards from the complaints' states now: a state
  change recorded in `history` (`from_state` -> `to_state`) after a day's end is undone for
  that day (a registration, with no `from_state`, removes the complaint). The window's changes
  are read in one statement grouped by (from, to), so the cost is that of the window, not of
  the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from workflow.calendar import local_date, start_of_date
from workflow.lifecycle import STATES
from workflow.schema import Complaint, HistoryEntry, Letter, Receipt

MAX_DAYS: Final = 366
DEFAULT_DAYS: Final = 30


def window(as_of: datetime, days: int) -> list[date]:
    """The `days` local dates ending with as_of's own, oldest first."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}")
    last = local_date(as_of)
    return [last - timedelta(days=n) for n in range(days - 1, -1, -1)]


def _ends(dates: Sequence[date], as_of: datetime) -> list[datetime]:
    """Where each date's count stops: its end, or as_of (the window never looks past it)."""
    return [min(start_of_date(day + timedelta(days=1)), as_of) for day in dates]


def _per_day(column: Any, dates: Sequence[date], as_of: datetime) -> list[ColumnElement[Any]]:
    """One conditional count per local date: its start <= column < its end (or as_of)."""
    return [func.coalesce(func.sum(case((
        (column >= start_of_date(day)) & (column < end), 1), else_=0)), 0).label(f"d{n}")
        for n, (day, end) in enumerate(zip(dates, _ends(dates, as_of), strict=True))]


def receipts_per_day(session: Session, dates: Sequence[date], as_of: datetime) -> list[int]:
    start, end = start_of_date(dates[0]), _ends(dates, as_of)[-1]
    row = session.execute(select(*_per_day(Receipt.received_at, dates, as_of))
                          .where(Receipt.received_at >= start, Receipt.received_at < end)).one()
    return [int(value) for value in row]


def letters_per_day(session: Session, dates: Sequence[date], as_of: datetime) -> tuple[
        list[int], dict[str, list[int]]]:
    """Letters issued per day, in all and by kind (only kinds issued in the window)."""
    start, end = start_of_date(dates[0]), _ends(dates, as_of)[-1]
    rows = session.execute(select(Letter.kind, *_per_day(Letter.issued_at, dates, as_of))
                           .where(Letter.issued_at >= start, Letter.issued_at < end)
                           .group_by(Letter.kind).order_by(Letter.kind)).all()
    by_kind = {row[0]: [int(value) for value in row[1:]] for row in rows}
    total = [sum(counts[n] for counts in by_kind.values()) for n in range(len(dates))]
    return total, by_kind


def backlog_per_day(session: Session, dates: Sequence[date],
                    as_of: datetime) -> dict[str, list[int]]:
    """Complaints in each state at the end of each date (the last one: at as_of if earlier)."""
    ends = _ends(dates, as_of)
    # The last instant counted for a date is just before `end`: changes at or after it undone.
    now = dict(session.execute(select(Complaint.state, func.count())
                               .group_by(Complaint.state)).all())
    after = [func.coalesce(func.sum(case((HistoryEntry.at >= end, 1), else_=0)), 0)
             for end in ends]
    changes = session.execute(
        select(HistoryEntry.from_state, HistoryEntry.to_state, *after)
        .where(HistoryEntry.at >= min(ends),
               # Events and deadlines that leave the state as it was change no count.
               (HistoryEntry.from_state.is_(None))
               | (HistoryEntry.from_state != HistoryEntry.to_state))
        .group_by(HistoryEntry.from_state, HistoryEntry.to_state)).all()
    counts = {state: [int(now.get(state, 0))] * len(dates) for state in STATES}
    for from_state, to_state, *later in changes:
        for n, moved in enumerate(later):
            if to_state in counts:
                counts[to_state][n] -= int(moved)
            if from_state in counts:
                counts[from_state][n] += int(moved)
    return counts


def trends(session: Session, as_of: datetime, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """`GET /trends`: the three series over the `days` local dates ending with as_of's."""
    dates = window(as_of, days)
    letters, letters_by_kind = letters_per_day(session, dates, as_of)
    return {
        "as_of": as_of.isoformat(),
        "days": [day.isoformat() for day in dates],
        "receipts": receipts_per_day(session, dates, as_of),
        "letters": letters,
        "letters_by_kind": letters_by_kind,
        "backlog": backlog_per_day(session, dates, as_of),
    }
