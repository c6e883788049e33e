"""(v2) When each return and each website publication is due (docs/rules.md s.1 "Submission
deadlines", Ofgem 3.7, 3.8, 3.14), and what state each obligation is in.

Pure functions of dates and instants: nothing here reads a clock or the database.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, Literal

from reporting.periods import Period, month
from workflow.calendar import WorkingCalendar, end_of_date, start_of_date

# Ofgem's calendar is England and Wales, whatever the procedure's region: the supplier's own
# working days (a Scottish procedure's St Andrew's Day) do not move Ofgem's deadline.
OFGEM_CALENDAR: Final = WorkingCalendar("ENG")
DUE_DAY_OF_MONTH: Final = 28
PUBLICATION_DAYS: Final = 7  # "within one week of submitting it" (Ofgem 3.14)

Kind = Literal["monthly", "quarterly", "publication"]
Status = Literal["submitted", "due", "overdue", "resubmission_needed"]
KIND_ORDER: Final[dict[str, int]] = {"monthly": 0, "quarterly": 1, "publication": 2}


def return_due(period: Period) -> date:
    """A monthly or quarterly return is due by the end of the 28th day of the month after the
    period, or of the first England-and-Wales working day after it when that day is not one
    (our reading: a weekend is no working day either)."""
    due = date(period.end.year, period.end.month, DUE_DAY_OF_MONTH)
    while not OFGEM_CALENDAR.is_working_day(due):
        due += timedelta(days=1)
    return due


def publication_due(quarter: Period, first_submitted_on: date | None) -> date:
    """7 calendar days after the date the quarterly return was first submitted; while it is
    not submitted, 7 days after that return's due date."""
    base = first_submitted_on if first_submitted_on is not None else return_due(quarter)
    return base + timedelta(days=PUBLICATION_DAYS)


def has_ended(period: Period, instant: datetime) -> bool:
    """The period is over at `instant`: its last local date has ended."""
    return instant >= start_of_date(period.end)


def status(due: date, as_of: datetime, submitted: bool, changed: bool = False) -> Status:
    """submitted (and still what the record says), resubmission_needed (submitted, but a
    computation now differs), due (not yet, deadline not passed) or overdue."""
    if submitted:
        return "resubmission_needed" if changed else "submitted"
    return "due" if as_of <= end_of_date(due) else "overdue"


def months_between(first: Period, as_of: datetime) -> list[Period]:
    """Every month from `first` to the last month ended at `as_of` (none when none has)."""
    found: list[Period] = []
    current = first
    while has_ended(current, as_of):
        found.append(current)
        current = month(current.end.year, current.end.month)
    return found
