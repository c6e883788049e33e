"""Reporting periods: months and calendar quarters of Europe/London local dates (docs/rules.md s.1).

An instant falls in a period by its local date, so a period is a half-open range of local
dates [first, end) turned into UTC bounds with `start_of_date`; the SQL then compares the
stored (naive UTC) instants against those bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from workflow.calendar import start_of_date

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")


class BadPeriod(ValueError):
    """A period string that is not YYYY-MM or YYYY-Qn."""


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    label: str
    first: date  # first local date in the period
    end: date  # first local date after it (exclusive)

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def months(self) -> list[Period]:
        """The calendar months making up this period, in order."""
        found: list[Period] = []
        current = self.first
        while current < self.end:
            found.append(month(current.year, current.month))
            current = _add_months(current, 1)
        return found

    def window(self, as_of: datetime) -> Window:
        return Window(start_of_date(self.first), start_of_date(self.end), as_of,
                      self.first, self.last)


@dataclass(frozen=True)
class Window:
    """What a report counts: instants in [start, end) and at or before `as_of`.

    `first`/`last` are the local dates of the period, for the accounts snapshot's `as_of` date.
    """

    start: datetime
    end: datetime
    as_of: datetime
    first: date
    last: date


def month(year: int, month_number: int) -> Period:
    first = date(year, month_number, 1)
    return Period(f"{year:04d}-{month_number:02d}", first, _add_months(first, 1))


def quarter(year: int, number: int) -> Period:
    first = date(year, 3 * (number - 1) + 1, 1)
    return Period(f"{year:04d}-Q{number}", first, _add_months(first, 3))


def parse_month(text: str) -> Period:
    found = _MONTH.fullmatch(text.strip())
    if found is None:
        raise BadPeriod(f"{text!r} is not a month: expected YYYY-MM, e.g. 2026-01")
    return month(int(found.group(1)), int(found.group(2)))


def parse_quarter(text: str) -> Period:
    found = _QUARTER.fullmatch(text.strip())
    if found is None:
        raise BadPeriod(f"{text!r} is not a quarter: expected YYYY-Qn (n = 1-4), e.g. 2026-Q1")
    return quarter(int(found.group(1)), int(found.group(2)))


def twelve_months_ending(text: str) -> Period:
    """The 12 months ending with the month `text` (CHR reg. 11 annual report)."""
    last_month = parse_month(text)
    first = _add_months(last_month.first, -11)
    return Period(f"{first:%Y-%m}..{last_month.label}", first, last_month.end)
