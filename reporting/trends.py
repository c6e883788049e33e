"""The operations work queue's trends, from the record: receipts per day, the backlog per stage
at the end of each day, and letters per day, over a window of local dates (Europe/London).

Served on the ops API (`GET /trends`, reporting/web.py) and charted by the dashboard.

A "day" is a local date (docs/rules.md s.2: an instant falls *in* the Europe/London date it
shows there), so the bounds are computed here, in Python, from the calendar, and passed to the
database as bound instants: the same SQL runs on SQLite and PostgreSQL, neither has to know
the zone, and a day of 23 or 25 hours (the clock change) is counted right. Each series is one
statement over its window, grouped by day (the day of a row is a balanced CASE over the days'
bounds), so the window is read once, through the index on the instant where there is one.

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

from sqlalchemy import case, func, literal, select
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


def _bucket(column: Any, bounds: Sequence[datetime], low: int = 0) -> Any:
    """The index i with bounds[i] <= column < bounds[i + 1] (the last bucket open above), as a
    balanced tree of CASEs: log2(days) comparisons a row, where one conditional count per day
    would cost a comparison per day per row (a year's window: 9 against 366)."""
    if len(bounds) == 1:
        return literal(low)
    middle = len(bounds) // 2
    return case((column < bounds[middle], _bucket(column, bounds[:middle], low)),
                else_=_bucket(column, bounds[middle:], low + middle))


def receipts_per_day(session: Session, dates: Sequence[date], as_of: datetime) -> list[int]:
    counts = [0] * len(dates)
    for day, count in session.execute(_grouped(Receipt.received_at, dates, as_of)):
        counts[day] = count
    return counts


def letters_per_day(session: Session, dates: Sequence[date], as_of: datetime) -> tuple[
        list[int], dict[str, list[int]]]:
    """Letters issued per day, in all and by kind (only kinds issued in the window)."""
    by_kind: dict[str, list[int]] = {}
    for kind, day, count in session.execute(
            _grouped(Letter.issued_at, dates, as_of, Letter.kind)):
        by_kind.setdefault(kind, [0] * len(dates))[day] = count
    by_kind = dict(sorted(by_kind.items()))
    total = [sum(counts[n] for counts in by_kind.values()) for n in range(len(dates))]
    return total, by_kind


def _grouped(column: Any, dates: Sequence[date], as_of: datetime, *groups: Any) -> Any:
    """SELECT groups..., day index, count over the window's rows of `column`."""
    bounds = [start_of_date(day) for day in dates]
    inner = (select(*groups, _bucket(column, bounds).label("day"))
             .where(column >= bounds[0], column < _ends(dates, as_of)[-1]).subquery())
    keys = [inner.c[group.key] for group in groups]
    return select(*keys, inner.c.day, func.count()).group_by(*keys, inner.c.day)


def backlog_per_day(session: Session, dates: Sequence[date],
                    as_of: datetime) -> dict[str, list[int]]:
    """Complaints in each state at the end of each date (the last one: at as_of if earlier)."""
    ends = _ends(dates, as_of)
    # The last instant counted for a date is just before its end: changes at or after it are
    # undone. Bucket i holds the changes from ends[i] to ends[i + 1] (the last: all after).
    now = dict(session.execute(select(Complaint.state, func.count())
                               .group_by(Complaint.state)).all())
    inner = (select(HistoryEntry.from_state, HistoryEntry.to_state,
                    _bucket(HistoryEntry.at, ends).label("day"))
             .where(HistoryEntry.at >= ends[0],
                    # Events and deadlines that leave the state as it was change no count.
                    (HistoryEntry.from_state.is_(None))
                    | (HistoryEntry.from_state != HistoryEntry.to_state)).subquery())
    changes = session.execute(
        select(inner.c.from_state, inner.c.to_state, inner.c.day, func.count())
        .group_by(inner.c.from_state, inner.c.to_state, inner.c.day)).all()
    counts = {state: [int(now.get(state, 0))] * len(dates) for state in STATES}
    for from_state, to_state, bucket, moved in changes:
        # Changes in bucket b happened at or after ends[0..b]: undone on each of those days.
        for n in range(bucket + 1):
            if to_state in counts:
                counts[to_state][n] -= moved
            if from_state in counts:
                counts[from_state][n] += moved
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
