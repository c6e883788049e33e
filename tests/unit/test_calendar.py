"""Worked examples for workflow.calendar (docs/rules.md s.1 "Time" and the s.5 deadline table).

Every expected value below was derived by hand from the rules, a printed calendar and the
published UK bank holidays -- never by calling the function under test. Reminders used
throughout:

* GMT/BST 2026: clocks go forward Sun 29 Mar 2026 at 01:00 UTC and back Sun 25 Oct 2026 at
  01:00 UTC. (2027: 28 Mar / 31 Oct; 2028: forward Sun 26 Mar.)
* End of a local date in UTC: 23:59:59.999999Z in GMT, 22:59:59.999999Z in BST.
* Bank holidays 2026, ENG = WLS: Thu 1 Jan, Fri 3 Apr (Good Fri), Mon 6 Apr (Easter Mon),
  Mon 4 May, Mon 25 May, Mon 31 Aug, Fri 25 Dec, Mon 28 Dec (Boxing Day substitute; 26 Dec is
  a Saturday).
* Bank holidays 2026, SCT (`holidays` 0.109): Thu 1 Jan, Fri 2 Jan, Fri 3 Apr, Mon 4 May,
  Mon 25 May, Mon 15 Jun (one-off, Scotland in the FIFA World Cup), Mon 3 Aug (first Monday),
  Mon 30 Nov (St Andrew's Day), Fri 25 Dec, Mon 28 Dec. No Easter Monday and no last-Monday-
  of-August holiday in SCT.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from workflow.calendar import (
    WorkingCalendar,
    elapsed_days,
    end_of_date,
    local_date,
    referral_window_end,
    remedy_deadline,
    start_of_date,
)

LONDON = ZoneInfo("Europe/London")
GMT_EOD = (23, 59, 59, 999999)  # end of a local date in winter, as UTC clock time
BST_EOD = (22, 59, 59, 999999)  # end of a local date in summer, as UTC clock time

ENG = WorkingCalendar("ENG")
WLS = WorkingCalendar("WLS")
SCT = WorkingCalendar("SCT")
CALENDARS = {"ENG": ENG, "WLS": WLS, "SCT": SCT}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def assert_utc(actual: datetime, expected: datetime) -> None:
    """Same instant, and expressed in UTC (offset zero), as the module promises."""
    assert actual == expected
    assert actual.utcoffset() == timedelta(0)
    assert actual.isoformat() == expected.isoformat()


# --------------------------------------------------------------------------- local_date


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Winter (GMT = UTC): 00:30Z on Wed 14 Jan 2026 is 00:30 local, same date.
        (utc(2026, 1, 14, 0, 30), date(2026, 1, 14)),
        # Winter: the last microsecond of 14 Jan UTC is still 14 Jan local.
        (utc(2026, 1, 14, 23, 59, 59, 999999), date(2026, 1, 14)),
        # Summer (BST = UTC+1): 23:30Z on Wed 1 Jul 2026 is 00:30 BST Thu 2 Jul.
        (utc(2026, 7, 1, 23, 30), date(2026, 7, 2)),
        # Summer: 23:00Z exactly is 00:00 BST, already the next date.
        (utc(2026, 7, 1, 23, 0), date(2026, 7, 2)),
        # Summer: 22:59:59.999999Z is 23:59:59.999999 BST, still 1 Jul.
        (utc(2026, 7, 1, 22, 59, 59, 999999), date(2026, 7, 1)),
        # Summer: 00:30Z on 2 Jul is 01:30 BST on 2 Jul.
        (utc(2026, 7, 2, 0, 30), date(2026, 7, 2)),
        # Sat 28 Mar 2026 23:30Z: still GMT (change is 01:00Z on the 29th), so 28 Mar.
        (utc(2026, 3, 28, 23, 30), date(2026, 3, 28)),
        # Sat 24 Oct 2026 23:30Z: still BST until 01:00Z on the 25th, so 00:30 on 25 Oct.
        (utc(2026, 10, 24, 23, 30), date(2026, 10, 25)),
        # Sun 25 Oct 2026 23:30Z: GMT again, so 23:30 on 25 Oct.
        (utc(2026, 10, 25, 23, 30), date(2026, 10, 25)),
        # Given in London time: 00:30 BST on 2 Jul is 2 Jul.
        (datetime(2026, 7, 2, 0, 30, tzinfo=LONDON), date(2026, 7, 2)),
        # A New York offset (-05:00): 23:30 on 14 Jan there is 04:30Z on 15 Jan = 15 Jan London.
        (datetime(2026, 1, 14, 23, 30, tzinfo=timezone(timedelta(hours=-5))), date(2026, 1, 15)),
        # A +02:00 offset: 01:30 on 2 Jul there is 23:30Z on 1 Jul = 00:30 BST on 2 Jul.
        (datetime(2026, 7, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))), date(2026, 7, 2)),
    ],
)
def test_local_date(instant: datetime, expected: date) -> None:
    assert local_date(instant) == expected


def test_local_date_rejects_naive_datetime() -> None:
    # docs/rules.md s.1: an event without an offset is bad input.
    with pytest.raises(ValueError):
        local_date(datetime(2026, 7, 1, 23, 30))


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python treats such a datetime as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_local_date_rejects_tzinfo_without_offset() -> None:
    with pytest.raises(ValueError):
        local_date(datetime(2026, 7, 1, 23, 30, tzinfo=_NoOffset()))


# ----------------------------------------------------------------- end_of_date / start_of_date


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # Wed 14 Jan 2026, GMT: 23:59:59.999999 local = same in UTC.
        (date(2026, 1, 14), utc(2026, 1, 14, *GMT_EOD)),
        # Wed 1 Jul 2026, BST: 23:59:59.999999 BST = 22:59:59.999999Z.
        (date(2026, 7, 1), utc(2026, 7, 1, *BST_EOD)),
        # Sat 28 Mar 2026: last GMT day.
        (date(2026, 3, 28), utc(2026, 3, 28, *GMT_EOD)),
        # Sun 29 Mar 2026: clocks went forward at 01:00Z, so the day ends in BST.
        (date(2026, 3, 29), utc(2026, 3, 29, *BST_EOD)),
        # Sat 24 Oct 2026: last full BST day.
        (date(2026, 10, 24), utc(2026, 10, 24, *BST_EOD)),
        # Sun 25 Oct 2026: clocks went back at 01:00Z, so the day ends in GMT.
        (date(2026, 10, 25), utc(2026, 10, 25, *GMT_EOD)),
    ],
)
def test_end_of_date(day: date, expected: datetime) -> None:
    assert_utc(end_of_date(day), expected)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 00:00 GMT on 14 Jan is 00:00Z.
        (date(2026, 1, 14), utc(2026, 1, 14, 0, 0)),
        # 00:00 BST on 2 Jul is 23:00Z on 1 Jul.
        (date(2026, 7, 2), utc(2026, 7, 1, 23, 0)),
        # Sun 29 Mar 2026 starts in GMT (the change is at 01:00Z).
        (date(2026, 3, 29), utc(2026, 3, 29, 0, 0)),
        # Mon 30 Mar 2026 starts in BST.
        (date(2026, 3, 30), utc(2026, 3, 29, 23, 0)),
        # Sun 25 Oct 2026 starts in BST (the change back is at 01:00Z).
        (date(2026, 10, 25), utc(2026, 10, 24, 23, 0)),
        # Mon 26 Oct 2026 starts in GMT.
        (date(2026, 10, 26), utc(2026, 10, 26, 0, 0)),
    ],
)
def test_start_of_date(day: date, expected: datetime) -> None:
    assert_utc(start_of_date(day), expected)


# ---------------------------------------------------------------------------- D+1


@pytest.mark.parametrize(
    ("region", "received", "expected"),
    [
        # --- ordinary weeks (Mar 2026, GMT; no holidays) ---
        # Mon 9 Mar -> Tue 10 Mar.
        ("ENG", utc(2026, 3, 9, 10, 0), utc(2026, 3, 10, *GMT_EOD)),
        # Tue 10 Mar -> Wed 11 Mar.
        ("ENG", utc(2026, 3, 10, 10, 0), utc(2026, 3, 11, *GMT_EOD)),
        # Wed 11 Mar -> Thu 12 Mar.
        ("ENG", utc(2026, 3, 11, 10, 0), utc(2026, 3, 12, *GMT_EOD)),
        # Thu 12 Mar -> Fri 13 Mar.
        ("ENG", utc(2026, 3, 12, 10, 0), utc(2026, 3, 13, *GMT_EOD)),
        # Fri 13 Mar -> Sat, Sun skipped -> Mon 16 Mar.
        ("ENG", utc(2026, 3, 13, 10, 0), utc(2026, 3, 16, *GMT_EOD)),
        # Sat 14 Mar -> Mon 16 Mar.
        ("ENG", utc(2026, 3, 14, 10, 0), utc(2026, 3, 16, *GMT_EOD)),
        # Sun 15 Mar -> Mon 16 Mar.
        ("ENG", utc(2026, 3, 15, 10, 0), utc(2026, 3, 16, *GMT_EOD)),
        # Receipt just before local midnight in winter: Mon 9 Mar 23:59Z is still Mon -> Tue.
        ("ENG", utc(2026, 3, 9, 23, 59), utc(2026, 3, 10, *GMT_EOD)),
        # --- summer: result in BST ---
        # Wed 1 Jul 2026 -> Thu 2 Jul, end of day BST = 22:59:59.999999Z.
        ("ENG", utc(2026, 7, 1, 10, 0), utc(2026, 7, 2, *BST_EOD)),
        # Wed 1 Jul 23:30Z is 00:30 BST Thu 2 Jul -> D+1 is Fri 3 Jul (not Thu 2 Jul).
        ("ENG", utc(2026, 7, 1, 23, 30), utc(2026, 7, 3, *BST_EOD)),
        # Thu 2 Jul 23:30Z is 00:30 BST Fri 3 Jul -> Mon 6 Jul (not Fri 3 Jul).
        ("ENG", utc(2026, 7, 2, 23, 30), utc(2026, 7, 6, *BST_EOD)),
        # Given in London time: Fri 3 Jul 00:30 BST -> Mon 6 Jul.
        ("ENG", datetime(2026, 7, 3, 0, 30, tzinfo=LONDON), utc(2026, 7, 6, *BST_EOD)),
        # --- across the spring clock change ---
        # Fri 27 Mar 2026 (GMT) -> Mon 30 Mar, which is BST.
        ("ENG", utc(2026, 3, 27, 10, 0), utc(2026, 3, 30, *BST_EOD)),
        # --- Easter 2026 ---
        # Thu 2 Apr: Fri 3 Apr Good Friday, Sat, Sun, Mon 6 Apr Easter Monday (ENG) -> Tue 7 Apr.
        ("ENG", utc(2026, 4, 2, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        ("WLS", utc(2026, 4, 2, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        # SCT: no Easter Monday bank holiday -> Mon 6 Apr.
        ("SCT", utc(2026, 4, 2, 10, 0), utc(2026, 4, 6, *BST_EOD)),
        # Received on Good Friday 3 Apr / Sat 4 / Sun 5: ENG -> Tue 7 Apr.
        ("ENG", utc(2026, 4, 3, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        ("ENG", utc(2026, 4, 4, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        ("ENG", utc(2026, 4, 5, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        # Received on Easter Monday itself: ENG -> Tue 7 Apr; SCT (working day) -> Tue 7 Apr too.
        ("ENG", utc(2026, 4, 6, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        ("SCT", utc(2026, 4, 6, 10, 0), utc(2026, 4, 7, *BST_EOD)),
        # --- early May (Mon 4 May 2026), all regions ---
        # Fri 1 May -> Sat, Sun, Mon 4 May holiday -> Tue 5 May.
        ("ENG", utc(2026, 5, 1, 10, 0), utc(2026, 5, 5, *BST_EOD)),
        ("SCT", utc(2026, 5, 1, 10, 0), utc(2026, 5, 5, *BST_EOD)),
        # --- spring bank holiday (Mon 25 May 2026), all regions ---
        # Sat 23 May -> Sun, Mon 25 May holiday -> Tue 26 May.
        ("ENG", utc(2026, 5, 23, 10, 0), utc(2026, 5, 26, *BST_EOD)),
        ("WLS", utc(2026, 5, 23, 10, 0), utc(2026, 5, 26, *BST_EOD)),
        ("SCT", utc(2026, 5, 23, 10, 0), utc(2026, 5, 26, *BST_EOD)),
        # --- summer bank holiday: SCT first Monday (3 Aug), ENG/WLS last Monday (31 Aug) ---
        # Fri 31 Jul: SCT Mon 3 Aug holiday -> Tue 4 Aug; ENG -> Mon 3 Aug.
        ("SCT", utc(2026, 7, 31, 10, 0), utc(2026, 8, 4, *BST_EOD)),
        ("ENG", utc(2026, 7, 31, 10, 0), utc(2026, 8, 3, *BST_EOD)),
        # Fri 28 Aug: ENG/WLS Mon 31 Aug holiday -> Tue 1 Sep; SCT -> Mon 31 Aug.
        ("ENG", utc(2026, 8, 28, 10, 0), utc(2026, 9, 1, *BST_EOD)),
        ("WLS", utc(2026, 8, 28, 10, 0), utc(2026, 9, 1, *BST_EOD)),
        ("SCT", utc(2026, 8, 28, 10, 0), utc(2026, 8, 31, *BST_EOD)),
        # --- St Andrew's Day, Mon 30 Nov 2026 (SCT only), GMT ---
        # Fri 27 Nov: SCT -> Tue 1 Dec; ENG -> Mon 30 Nov.
        ("SCT", utc(2026, 11, 27, 10, 0), utc(2026, 12, 1, *GMT_EOD)),
        ("ENG", utc(2026, 11, 27, 10, 0), utc(2026, 11, 30, *GMT_EOD)),
        # --- Christmas 2025: Thu 25, Fri 26 Dec ---
        # Wed 24 Dec 2025 -> Thu, Fri holidays, Sat, Sun -> Mon 29 Dec.
        ("ENG", utc(2025, 12, 24, 10, 0), utc(2025, 12, 29, *GMT_EOD)),
        # --- Christmas 2026: Fri 25 Dec, Sat 26 Dec, substitute Mon 28 Dec ---
        # Wed 23 Dec -> Thu 24 Dec (an ordinary working day).
        ("ENG", utc(2026, 12, 23, 10, 0), utc(2026, 12, 24, *GMT_EOD)),
        # Thu 24 Dec -> Fri 25, Sat 26, Sun 27, Mon 28 (substitute) -> Tue 29 Dec.
        ("ENG", utc(2026, 12, 24, 10, 0), utc(2026, 12, 29, *GMT_EOD)),
        ("SCT", utc(2026, 12, 24, 10, 0), utc(2026, 12, 29, *GMT_EOD)),
        # Received Sat 26 Dec (Boxing Day) -> Sun, Mon 28 substitute -> Tue 29 Dec.
        ("ENG", utc(2026, 12, 26, 10, 0), utc(2026, 12, 29, *GMT_EOD)),
        # --- New Year 2026: Thu 1 Jan; SCT also Fri 2 Jan ---
        # Wed 31 Dec 2025: ENG Thu 1 Jan holiday -> Fri 2 Jan 2026.
        ("ENG", utc(2025, 12, 31, 10, 0), utc(2026, 1, 2, *GMT_EOD)),
        ("WLS", utc(2025, 12, 31, 10, 0), utc(2026, 1, 2, *GMT_EOD)),
        # SCT: Thu 1 and Fri 2 Jan holidays, Sat, Sun -> Mon 5 Jan 2026.
        ("SCT", utc(2025, 12, 31, 10, 0), utc(2026, 1, 5, *GMT_EOD)),
        # Received on New Year's Day itself: ENG -> Fri 2 Jan; SCT -> Mon 5 Jan.
        ("ENG", utc(2026, 1, 1, 10, 0), utc(2026, 1, 2, *GMT_EOD)),
        ("SCT", utc(2026, 1, 1, 10, 0), utc(2026, 1, 5, *GMT_EOD)),
        # --- New Year 2028: Sat 1 Jan, substitute Mon 3 Jan; SCT also Tue 4 Jan ---
        # Fri 31 Dec 2027: ENG -> Sat, Sun, Mon 3 Jan substitute -> Tue 4 Jan 2028.
        ("ENG", utc(2027, 12, 31, 10, 0), utc(2028, 1, 4, *GMT_EOD)),
        # SCT: Mon 3 and Tue 4 Jan substitutes -> Wed 5 Jan 2028.
        ("SCT", utc(2027, 12, 31, 10, 0), utc(2028, 1, 5, *GMT_EOD)),
    ],
)
def test_d_plus_1(region: str, received: datetime, expected: datetime) -> None:
    assert_utc(CALENDARS[region].d_plus_1(received), expected)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        # Fri 12 Jun 2026: SCT Mon 15 Jun (World Cup one-off) holiday -> Tue 16 Jun.
        ("SCT", utc(2026, 6, 16, *BST_EOD)),
        # ENG: Mon 15 Jun is an ordinary working day.
        ("ENG", utc(2026, 6, 15, *BST_EOD)),
    ],
)
def test_d_plus_1_scottish_one_off_holiday_2026(region: str, expected: datetime) -> None:
    assert_utc(CALENDARS[region].d_plus_1(utc(2026, 6, 12, 10, 0)), expected)


def test_default_region_is_england() -> None:
    # docs/rules.md s.1: default region ENG. Fri 2 Jan 2026 is a working day there (not in SCT),
    # so D+1 of Thu 1 Jan 2026 is end of Fri 2 Jan.
    cal = WorkingCalendar()
    assert cal.region == "ENG"
    assert_utc(cal.d_plus_1(utc(2026, 1, 1, 10, 0)), utc(2026, 1, 2, *GMT_EOD))


# --------------------------------------------------------------------- N working days after


@pytest.mark.parametrize(
    ("region", "received", "n", "expected"),
    [
        # Wed 11 Mar 2026 + 5: Thu 12 (1), Fri 13 (2), Mon 16 (3), Tue 17 (4), Wed 18 (5).
        ("ENG", utc(2026, 3, 11, 10, 0), 5, utc(2026, 3, 18, *GMT_EOD)),
        # Wed 25 Mar 2026 + 5: Thu 26, Fri 27, Mon 30, Tue 31, Wed 1 Apr -- ends in BST.
        ("ENG", utc(2026, 3, 25, 10, 0), 5, utc(2026, 4, 1, *BST_EOD)),
        # Thu 2 Apr 2026 ENG + 5: (Fri 3, Mon 6 holidays) Tue 7, Wed 8, Thu 9, Fri 10, Mon 13.
        ("ENG", utc(2026, 4, 2, 10, 0), 5, utc(2026, 4, 13, *BST_EOD)),
        # SCT: only Good Friday -> Mon 6, Tue 7, Wed 8, Thu 9, Fri 10.
        ("SCT", utc(2026, 4, 2, 10, 0), 5, utc(2026, 4, 10, *BST_EOD)),
        # Mon 22 Dec 2025 + 5: Tue 23, Wed 24, (Thu 25, Fri 26 holidays) Mon 29, Tue 30, Wed 31.
        ("ENG", utc(2025, 12, 22, 10, 0), 5, utc(2025, 12, 31, *GMT_EOD)),
        # Tue 22 Dec 2026 + 5: Wed 23, Thu 24, (Fri 25, Mon 28 holidays) Tue 29, Wed 30, Thu 31.
        ("ENG", utc(2026, 12, 22, 10, 0), 5, utc(2026, 12, 31, *GMT_EOD)),
        # Wed 23 Dec 2026 + 5: Thu 24 (1), Tue 29 (2), Wed 30 (3), Thu 31 (4),
        # (Fri 1 Jan 2027 holiday) ENG Mon 4 Jan 2027 (5).
        ("ENG", utc(2026, 12, 23, 10, 0), 5, utc(2027, 1, 4, *GMT_EOD)),
        # SCT: 2 Jan 2027 is a Saturday, substitute Mon 4 Jan -> Tue 5 Jan 2027 (5).
        ("SCT", utc(2026, 12, 23, 10, 0), 5, utc(2027, 1, 5, *GMT_EOD)),
        # Acknowledge-within 3 from Fri 13 Mar 2026: Mon 16, Tue 17, Wed 18.
        ("ENG", utc(2026, 3, 13, 10, 0), 3, utc(2026, 3, 18, *GMT_EOD)),
        # Summer late evening: Thu 2 Jul 2026 23:30Z is Fri 3 Jul local;
        # + 5: Mon 6, Tue 7, Wed 8, Thu 9, Fri 10 Jul.
        ("ENG", utc(2026, 7, 2, 23, 30), 5, utc(2026, 7, 10, *BST_EOD)),
    ],
)
def test_working_days_after(region: str, received: datetime, n: int, expected: datetime) -> None:
    assert_utc(CALENDARS[region].working_days_after(received, n), expected)


def test_working_days_after_one_equals_d_plus_1() -> None:
    # Thu 2 Apr 2026 ENG: both are end of Tue 7 Apr (BST).
    t = utc(2026, 4, 2, 10, 0)
    assert_utc(ENG.working_days_after(t, 1), utc(2026, 4, 7, *BST_EOD))
    assert_utc(ENG.d_plus_1(t), utc(2026, 4, 7, *BST_EOD))


@pytest.mark.parametrize("n", [0, -1])
def test_working_days_after_rejects_non_positive_n(n: int) -> None:
    with pytest.raises(ValueError):
        ENG.working_days_after(utc(2026, 3, 11, 10, 0), n)
    with pytest.raises(ValueError):
        ENG.nth_working_day_after(date(2026, 3, 11), n)


@pytest.mark.parametrize(
    ("region", "day", "n", "expected"),
    [
        # Fri 13 Mar 2026 + 1 -> Mon 16 Mar.
        ("ENG", date(2026, 3, 13), 1, date(2026, 3, 16)),
        # Fri 13 Mar 2026 + 10 -> Mon 16..Fri 20 (5), Mon 23..Fri 27 (10).
        ("ENG", date(2026, 3, 13), 10, date(2026, 3, 27)),
        # Thu 31 Dec 2026 ENG + 1: Fri 1 Jan 2027 holiday, Sat, Sun -> Mon 4 Jan 2027.
        ("ENG", date(2026, 12, 31), 1, date(2027, 1, 4)),
        # SCT: Mon 4 Jan 2027 is the 2 Jan substitute -> Tue 5 Jan 2027.
        ("SCT", date(2026, 12, 31), 1, date(2027, 1, 5)),
    ],
)
def test_nth_working_day_after(region: str, day: date, n: int, expected: date) -> None:
    assert CALENDARS[region].nth_working_day_after(day, n) == expected


@pytest.mark.parametrize(
    ("region", "start", "end", "expected"),
    [
        # Same date: the interval (d, d] is empty.
        ("ENG", date(2026, 3, 11), date(2026, 3, 11), 0),
        # (Mon 9 Mar, Mon 16 Mar]: Tue-Fri (4) + Mon 16 (1) = 5.
        ("ENG", date(2026, 3, 9), date(2026, 3, 16), 5),
        # (Fri 13 Mar, Sun 15 Mar]: weekend only.
        ("ENG", date(2026, 3, 13), date(2026, 3, 15), 0),
        # (Thu 2 Apr, Tue 7 Apr] ENG: Fri 3, Mon 6 holidays -> only Tue 7.
        ("ENG", date(2026, 4, 2), date(2026, 4, 7), 1),
        # SCT: Mon 6 and Tue 7.
        ("SCT", date(2026, 4, 2), date(2026, 4, 7), 2),
        # End before start: nothing.
        ("ENG", date(2026, 3, 16), date(2026, 3, 9), 0),
        # Whole of 2026: starts Thu, 365 days = 52 weeks + a Thursday -> 261 weekdays.
        # ENG weekday holidays: 1 Jan, 3 Apr, 6 Apr, 4 May, 25 May, 31 Aug, 25 Dec, 28 Dec (8).
        ("ENG", date(2025, 12, 31), date(2026, 12, 31), 253),
        ("WLS", date(2025, 12, 31), date(2026, 12, 31), 253),
        # SCT: 1 Jan, 2 Jan, 3 Apr, 4 May, 25 May, 15 Jun, 3 Aug, 30 Nov, 25 Dec, 28 Dec (10).
        ("SCT", date(2025, 12, 31), date(2026, 12, 31), 251),
    ],
)
def test_working_days_between(region: str, start: date, end: date, expected: int) -> None:
    assert CALENDARS[region].working_days_between(start, end) == expected


# ---------------------------------------------------------------------------- is_working_day

ENG_WLS_HOLIDAYS_2026 = [
    date(2026, 1, 1),  # Thu, New Year's Day
    date(2026, 4, 3),  # Fri, Good Friday
    date(2026, 4, 6),  # Mon, Easter Monday
    date(2026, 5, 4),  # Mon, early May
    date(2026, 5, 25),  # Mon, spring
    date(2026, 8, 31),  # Mon, summer (last Monday of August)
    date(2026, 12, 25),  # Fri, Christmas
    date(2026, 12, 28),  # Mon, Boxing Day substitute (26 Dec is a Saturday)
]


@pytest.mark.parametrize("region", ["ENG", "WLS"])
@pytest.mark.parametrize("day", ENG_WLS_HOLIDAYS_2026, ids=str)
def test_eng_wls_bank_holidays_are_not_working_days(region: str, day: date) -> None:
    assert CALENDARS[region].is_working_day(day) is False


@pytest.mark.parametrize(
    ("day", "eng", "sct", "why"),
    [
        (date(2026, 1, 2), True, False, "Fri: Scottish 2 January"),
        (date(2026, 4, 3), False, False, "Fri: Good Friday everywhere"),
        (date(2026, 4, 6), False, True, "Mon: Easter Monday is not a SCT bank holiday"),
        (date(2026, 8, 3), True, False, "Mon: SCT summer bank holiday (first Monday)"),
        (date(2026, 8, 31), False, True, "Mon: ENG/WLS summer bank holiday (last Monday)"),
        (date(2026, 11, 30), True, False, "Mon: St Andrew's Day (SCT)"),
        (date(2026, 12, 28), False, False, "Mon: Boxing Day substitute everywhere"),
        (date(2027, 1, 4), True, False, "Mon: SCT substitute for Sat 2 Jan 2027"),
        (date(2028, 1, 3), False, False, "Mon: substitute for Sat 1 Jan 2028"),
        (date(2028, 1, 4), True, False, "Tue: SCT substitute for Sun 2 Jan 2028"),
        (date(2026, 3, 11), True, True, "Wed: ordinary weekday"),
        (date(2026, 3, 14), False, False, "Sat"),
        (date(2026, 3, 15), False, False, "Sun"),
        (date(2026, 12, 26), False, False, "Sat (and Boxing Day)"),
    ],
)
def test_is_working_day_eng_wls_vs_sct(day: date, eng: bool, sct: bool, why: str) -> None:
    assert ENG.is_working_day(day) is eng, why
    assert WLS.is_working_day(day) is eng, why  # Wales has England's bank holidays
    assert SCT.is_working_day(day) is sct, why


def test_wls_and_eng_agree_on_every_day_of_2026() -> None:
    # England and Wales share one set of bank holidays.
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert WLS.is_working_day(day) == ENG.is_working_day(day), day
        day += timedelta(days=1)


def test_is_working_day_is_stable_when_cached() -> None:
    # Asking twice (second answer from the per-instance cache) gives the same answer,
    # and one region's cache does not leak into another's.
    cal_sct = WorkingCalendar("SCT")
    cal_eng = WorkingCalendar("ENG")
    assert cal_sct.is_working_day(date(2026, 1, 2)) is False
    assert cal_eng.is_working_day(date(2026, 1, 2)) is True
    assert cal_sct.is_working_day(date(2026, 1, 2)) is False
    assert cal_eng.is_working_day(date(2026, 1, 2)) is True


# ------------------------------------------------------------------------------ elapsed_days


@pytest.mark.parametrize(
    ("start", "days", "expected", "expected_local_hour"),
    [
        # Eight weeks across the spring change: Mon 2 Mar 2026 10:00Z (10:00 GMT) + 56 x 24 h.
        # 2 Mar + 29 d = 31 Mar, + 27 d = 27 Apr -> 27 Apr 10:00Z = 11:00 BST.
        (utc(2026, 3, 2, 10, 0), 56, utc(2026, 4, 27, 10, 0), 11),
        # Same instant given in London time (GMT, so 10:00 local = 10:00Z). A naive wall-clock
        # addition would give 10:00 BST = 09:00Z; the rule wants exact elapsed time.
        (datetime(2026, 3, 2, 10, 0, tzinfo=LONDON), 56, utc(2026, 4, 27, 10, 0), 11),
        # Same instant given at +02:00 (12:00+02:00 = 10:00Z).
        (
            datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            56,
            utc(2026, 4, 27, 10, 0),
            11,
        ),
        # Eight weeks across the autumn change: Mon 14 Sep 2026 11:00 BST = 10:00Z.
        # 14 Sep + 16 d = 30 Sep, + 31 d = 31 Oct, + 9 d = 9 Nov -> 9 Nov 10:00Z = 10:00 GMT.
        (datetime(2026, 9, 14, 11, 0, tzinfo=LONDON), 56, utc(2026, 11, 9, 10, 0), 10),
        # Eight weeks within winter: 5 Jan 2026 09:00Z + 56 d = 2 Mar 2026 09:00Z (26 + 28 + 2).
        (utc(2026, 1, 5, 9, 0), 56, utc(2026, 3, 2, 9, 0), 9),
        # Progress target 10 x 24 h across spring: Wed 25 Mar 09:00Z (09:00 GMT)
        # -> Sat 4 Apr 09:00Z = 10:00 BST.
        (utc(2026, 3, 25, 9, 0), 10, utc(2026, 4, 4, 9, 0), 10),
        # Progress target across autumn: Tue 20 Oct 09:00Z (10:00 BST)
        # -> Fri 30 Oct 09:00Z = 09:00 GMT.
        (utc(2026, 10, 20, 9, 0), 10, utc(2026, 10, 30, 9, 0), 9),
        # Late-evening summer receipt: 1 Jul 23:30Z (00:30 BST 2 Jul) + 10 d = 11 Jul 23:30Z,
        # i.e. 00:30 BST on 12 Jul -- time is elapsed, not rounded to a date.
        (utc(2026, 7, 1, 23, 30), 10, utc(2026, 7, 11, 23, 30), 0),
    ],
)
def test_elapsed_days(
    start: datetime, days: int, expected: datetime, expected_local_hour: int
) -> None:
    result = elapsed_days(start, days)
    assert_utc(result, expected)
    assert result.astimezone(LONDON).hour == expected_local_hour


def test_elapsed_days_is_exact_elapsed_time() -> None:
    # Whatever the clock change, result - start is exactly days x 24 h.
    start = datetime(2026, 3, 2, 10, 0, tzinfo=LONDON)
    assert elapsed_days(start, 56) - start == timedelta(hours=56 * 24)


# ---------------------------------------------------------------------------- remedy_deadline


@pytest.mark.parametrize(
    ("notified", "expected"),
    [
        # Notified Sat 10 Jan 2026 (any time that local day): 10 Jan + 28 d
        # = 31 Jan (+21) then 7 Feb (+7) -> end of Sat 7 Feb, GMT.
        (utc(2026, 1, 10, 0, 0), utc(2026, 2, 7, *GMT_EOD)),
        (utc(2026, 1, 10, 12, 0), utc(2026, 2, 7, *GMT_EOD)),
        (utc(2026, 1, 10, 23, 59, 59, 999999), utc(2026, 2, 7, *GMT_EOD)),
        (datetime(2026, 1, 10, 0, 0, tzinfo=LONDON), utc(2026, 2, 7, *GMT_EOD)),
        # Summer late evening: Wed 10 Jun 2026 23:30Z is 00:30 BST on Thu 11 Jun;
        # 11 Jun + 28 d = 30 Jun (+19) then 9 Jul (+9) -> end of 9 Jul BST.
        (utc(2026, 6, 10, 23, 30), utc(2026, 7, 9, *BST_EOD)),
        # Same day earlier (10 Jun local): 10 Jun + 28 = 8 Jul.
        (utc(2026, 6, 10, 22, 30), utc(2026, 7, 8, *BST_EOD)),
        # Across spring change: 10 Mar 2026 (GMT) + 28 = 7 Apr (BST).
        (utc(2026, 3, 10, 15, 0), utc(2026, 4, 7, *BST_EOD)),
        # Across autumn change: 10 Oct 2026 (BST) + 28 = 31 Oct (+21), 7 Nov (+7), GMT.
        (utc(2026, 10, 10, 15, 0), utc(2026, 11, 7, *GMT_EOD)),
        # Across a leap day: 1 Feb 2028 + 28 = 29 Feb 2028.
        (utc(2028, 2, 1, 12, 0), utc(2028, 2, 29, *GMT_EOD)),
    ],
)
def test_remedy_deadline(notified: datetime, expected: datetime) -> None:
    assert_utc(remedy_deadline(notified), expected)


def test_remedy_deadline_custom_days() -> None:
    # 10 Jan 2026 + 14 calendar days = 24 Jan 2026 (GMT).
    assert_utc(remedy_deadline(utc(2026, 1, 10, 9, 0), 14), utc(2026, 1, 24, *GMT_EOD))


# ------------------------------------------------------------------------ referral_window_end


@pytest.mark.parametrize(
    ("letter", "expected"),
    [
        # Letter on 29 Feb 2028 -> no 29 Feb 2029 -> end of 28 Feb 2029 (GMT).
        (utc(2028, 2, 29, 10, 0), utc(2029, 2, 28, *GMT_EOD)),
        # 28 Feb 2027 -> 28 Feb 2028 (not 29 Feb).
        (utc(2027, 2, 28, 12, 0), utc(2028, 2, 28, *GMT_EOD)),
        # Ordinary winter date: 15 Jan 2026 -> 15 Jan 2027, GMT.
        (utc(2026, 1, 15, 10, 0), utc(2027, 1, 15, *GMT_EOD)),
        # Winter to winter: 20 Nov 2026 -> 20 Nov 2027, GMT.
        (utc(2026, 11, 20, 9, 0), utc(2027, 11, 20, *GMT_EOD)),
        # Summer letter: 15 Jul 2026 -> end of 15 Jul 2027 in BST = 22:59:59.999999Z.
        (utc(2026, 7, 15, 10, 0), utc(2027, 7, 15, *BST_EOD)),
        # Summer late evening: 15 Jul 2026 23:30Z is 00:30 BST on 16 Jul -> 16 Jul 2027.
        (utc(2026, 7, 15, 23, 30), utc(2027, 7, 16, *BST_EOD)),
        # Letter on a GMT date whose anniversary is BST: Sat 27 Mar 2027 (BST starts 28 Mar
        # 2027) -> 27 Mar 2028 (BST started Sun 26 Mar 2028).
        (utc(2027, 3, 27, 10, 0), utc(2028, 3, 27, *BST_EOD)),
        # Letter given in London time just after local midnight in summer.
        (datetime(2026, 8, 1, 0, 15, tzinfo=LONDON), utc(2027, 8, 1, *BST_EOD)),
    ],
)
def test_referral_window_end(letter: datetime, expected: datetime) -> None:
    assert_utc(referral_window_end(letter), expected)


def test_referral_window_end_custom_months() -> None:
    # 31 Aug 2026 + 6 months: no 31 Feb -> last day of Feb 2027 = 28 Feb (GMT).
    assert_utc(referral_window_end(utc(2026, 8, 31, 10, 0), 6), utc(2027, 2, 28, *GMT_EOD))


# ----------------------------------------------------------------------- naive inputs


@pytest.mark.parametrize(
    "call",
    [
        lambda t: ENG.d_plus_1(t),
        lambda t: ENG.working_days_after(t, 5),
        lambda t: remedy_deadline(t),
        lambda t: referral_window_end(t),
    ],
    ids=["d_plus_1", "working_days_after", "remedy_deadline", "referral_window_end"],
)
def test_date_based_deadlines_reject_naive_instants(call: Callable[[datetime], datetime]) -> None:
    # They all go through local_date, which rejects an instant without an offset.
    with pytest.raises(ValueError):
        call(datetime(2026, 7, 1, 23, 30))


def test_elapsed_days_rejects_naive_instant() -> None:
    with pytest.raises(ValueError):
        elapsed_days(datetime(2026, 3, 2, 10, 0), 56)
