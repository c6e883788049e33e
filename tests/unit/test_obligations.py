"""(v2) Submission deadlines (docs/rules.md s.1; Ofgem 3.7, 3.8, 3.14), worked by hand.

A return is due by the end of the 28th of the month after its period, or of the next England
and Wales working day. 2026: 28 Feb, 28 Mar, 28 Jun and 28 Nov are Saturdays or Sundays;
28 Dec is the substitute Boxing Day (26 Dec is a Saturday), so November's return is due on
Tuesday 29 December. 2027-01-28 is a Thursday.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from reporting.obligations import (
    has_ended,
    months_between,
    publication_due,
    return_due,
    status,
)
from reporting.periods import month, parse_month, quarter
from workflow.calendar import WorkingCalendar

MONTHLY_2026 = {
    1: date(2026, 3, 2),  # Sat 28 Feb -> Mon 2 Mar
    2: date(2026, 3, 30),  # Sat 28 Mar -> Mon 30 Mar
    3: date(2026, 4, 28),  # Tue
    4: date(2026, 5, 28),  # Thu
    5: date(2026, 6, 29),  # Sun 28 Jun -> Mon 29 Jun
    6: date(2026, 7, 28),  # Tue
    7: date(2026, 8, 28),  # Fri
    8: date(2026, 9, 28),  # Mon
    9: date(2026, 10, 28),  # Wed
    10: date(2026, 11, 30),  # Sat 28 Nov -> Mon 30 Nov
    11: date(2026, 12, 29),  # Mon 28 Dec is the substitute Boxing Day -> Tue 29 Dec
    12: date(2027, 1, 28),  # Thu
}
QUARTERLY_2026 = {1: date(2026, 4, 28), 2: date(2026, 7, 28), 3: date(2026, 10, 28),
                  4: date(2027, 1, 28)}


@pytest.mark.parametrize("number", range(1, 13))
def test_monthly_due_dates_2026(number: int) -> None:
    assert return_due(month(2026, number)) == MONTHLY_2026[number]


@pytest.mark.parametrize("number", range(1, 5))
def test_quarterly_due_dates_2026(number: int) -> None:
    assert return_due(quarter(2026, number)) == QUARTERLY_2026[number]


def test_the_two_examples_are_a_monday_and_a_tuesday() -> None:
    assert return_due(month(2026, 2)).strftime("%A %d %B %Y") == "Monday 30 March 2026"
    assert return_due(month(2026, 11)).strftime("%A %d %B %Y") == "Tuesday 29 December 2026"


def test_england_and_wales_whatever_the_procedure_region() -> None:
    # Mon 30 Nov 2026 is St Andrew's Day, a Scottish bank holiday: a Scottish procedure's own
    # calendar would move October's return to 1 Dec; Ofgem's stays on 30 Nov.
    assert not WorkingCalendar("SCT").is_working_day(date(2026, 11, 30))
    assert return_due(month(2026, 10)) == date(2026, 11, 30)


def test_publication_due_a_week_after_first_submission_else_after_the_due_date() -> None:
    q1 = quarter(2026, 1)
    assert publication_due(q1, None) == date(2026, 5, 5)  # 28 Apr + 7
    assert publication_due(q1, date(2026, 4, 20)) == date(2026, 4, 27)
    assert publication_due(quarter(2026, 4), None) == date(2027, 2, 4)  # 28 Jan + 7


def test_status() -> None:
    due = date(2026, 3, 30)  # Monday; BST starts Sun 29 Mar, so the day ends 22:59:59 UTC
    assert status(due, datetime.fromisoformat("2026-03-30T22:59:59+00:00"), False) == "due"
    assert status(due, datetime.fromisoformat("2026-03-30T23:00:00+00:00"), False) == "overdue"
    assert status(due, datetime.fromisoformat("2026-05-01T00:00:00+00:00"), True) == "submitted"
    assert status(due, datetime.fromisoformat("2026-03-01T00:00:00+00:00"), True,
                  changed=True) == "resubmission_needed"


def test_periods_end_by_local_date() -> None:
    march = month(2026, 3)
    # 1 Apr starts at 23:00 UTC on 31 Mar (BST).
    assert not has_ended(march, datetime.fromisoformat("2026-03-31T22:59:59+00:00"))
    assert has_ended(march, datetime.fromisoformat("2026-03-31T23:00:00+00:00"))
    listed = months_between(parse_month("2025-11"),
                            datetime.fromisoformat("2026-03-01T00:00:00+00:00"))
    assert [p.label for p in listed] == ["2025-11", "2025-12", "2026-01", "2026-02"]
