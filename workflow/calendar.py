"""The regulatory clock: UK civil dates, working days and the deadline arithmetic of
docs/rules.md s.1.

Pure functions of instants and dates; no clock is read here (time is always passed in).
Instants are timezone-aware datetimes; results are returned in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

LONDON = ZoneInfo("Europe/London")
Region = Literal["ENG", "WLS", "SCT"]
END_OF_DAY = time(23, 59, 59, 999999)


@lru_cache(maxsize=64)
def _bank_holidays(region: str, year: int) -> frozenset[date]:
    # Always with a subdivision: plain holidays.UK() omits Easter Monday and the
    # August bank holiday, which are regional.
    return frozenset(holidays.UK(subdiv=region, years=year).keys())


def local_date(instant: datetime) -> date:
    """The Europe/London calendar date of an instant (the date an event falls on)."""
    _require_offset(instant)
    return instant.astimezone(LONDON).date()


def _require_offset(instant: datetime) -> None:
    # A naive instant would silently be read in the host's zone: refuse it.
    if instant.utcoffset() is None:
        raise ValueError("instant has no UTC offset")


# Memoised: every D+1, working-day, remedy and referral deadline ends a date, and a replay
# asks for the same few hundred dates millions of times (the zone arithmetic was about 5 % of
# a replay's CPU). A datetime is immutable, so sharing one is safe.
@lru_cache(maxsize=8192)
def end_of_date(day: date) -> datetime:
    """The last instant of a local date (23:59:59.999999 Europe/London), in UTC."""
    return datetime.combine(day, END_OF_DAY, tzinfo=LONDON).astimezone(UTC)


def start_of_date(day: date) -> datetime:
    """The first instant of a local date (00:00 Europe/London), in UTC."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days of one procedure region: Monday-Friday less that region's bank holidays."""

    region: Region = "ENG"
    _cache: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)

    def is_working_day(self, day: date) -> bool:
        cached = self._cache.get(day)
        if cached is None:
            cached = day.weekday() < 5 and day not in _bank_holidays(self.region, day.year)
            self._cache[day] = cached
        return cached

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The n-th working day strictly after `day` (n >= 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        found = 0
        current = day
        while found < n:
            current += timedelta(days=1)
            if self.is_working_day(current):
                found += 1
        return current

    def working_days_after(self, instant: datetime, n: int) -> datetime:
        """End of the n-th working day strictly after the date of `instant`."""
        return end_of_date(self.nth_working_day_after(local_date(instant), n))

    def d_plus_1(self, instant: datetime) -> datetime:
        """The D+1 deadline: end of the first working day strictly after the receipt's date."""
        return self.working_days_after(instant, 1)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days `end` lies after `start`."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count


def elapsed_days(instant: datetime, days: int) -> datetime:
    """Exact elapsed time (days x 24 h), computed in UTC: across a clock change the local
    time of the result moves by an hour."""
    _require_offset(instant)
    return instant.astimezone(UTC) + timedelta(days=days)


def remedy_deadline(notified_at: datetime, remedy_days: int = 28) -> datetime:
    """End of the date `remedy_days` calendar days after the date the supplier was notified."""
    return end_of_date(local_date(notified_at) + timedelta(days=remedy_days))


def referral_window_end(letter_issued_at: datetime, months: int = 12) -> datetime:
    """End of the same calendar date `months` later than the letter's date (29 Feb -> 28 Feb)."""
    return end_of_date(local_date(letter_issued_at) + relativedelta(months=months))
