"""Quarterly C15's median on both backends: PostgreSQL's percentile_disc path and SQLite's
ORDER BY/OFFSET path give the middle one or two durations exactly, odd and even counts, ties
included (expected values worked out by hand below)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import insert

from reporting.measures import (
    ElapsedMicroseconds,
    _middle_by_percentile,
    median_resolution_days,
    resolutions,
)
from reporting.periods import parse_quarter
from workflow.bootstrap import App
from workflow.schema import ResolutionRecord

RECEIVED = datetime(2026, 4, 1, 9, tzinfo=UTC)


def resolve(app: App, durations: list[timedelta], counted: bool = True) -> None:
    with app.engine.begin() as conn:
        for number, duration in enumerate(durations):
            at = RECEIVED + duration
            conn.execute(insert(ResolutionRecord).values(
                complaint_id=f"M{number}-{counted}", event_id=f"m-{number}-{counted}",
                type="complaint.resolved", cycle=1, resolved_at=at,
                original_received_at=RECEIVED, original_d1_deadline=RECEIVED + timedelta(days=1),
                eight_weeks_at=RECEIVED + timedelta(days=56), counted=counted))


def median(app: App, count: int) -> Fraction | None:
    window = parse_quarter("2026-Q2").window(datetime(2027, 1, 1, tzinfo=UTC))
    with app.engine.connect() as conn:
        return median_resolution_days(conn, window, count)


HOUR = timedelta(hours=1)


@pytest.mark.parametrize(("hours", "expected_days"), [
    ([5], Fraction(5, 24)),  # one: itself
    ([30, 6], Fraction(18, 24)),  # two: (6 + 30) / 2 = 18 h
    ([48, 1, 1], Fraction(1, 24)),  # three with a tie at the middle: 1 h
    ([10, 2, 7, 7], Fraction(7, 24)),  # four: (7 + 7) / 2, a tie across the middle pair
    ([1, 2, 3, 4, 5, 100], Fraction(7, 48)),  # six: (3 + 4) / 2 = 3.5 h
])
def test_median_of_counted_resolutions(app: App, hours: list[int],
                                       expected_days: Fraction) -> None:
    resolve(app, [n * HOUR for n in hours])
    resolve(app, [1000 * HOUR], counted=False)  # not counted (5.10): not in the median
    assert median(app, len(hours)) == expected_days


def test_median_keeps_microseconds(app: App) -> None:
    # (1 us + 2 us) / 2 = 1.5 us exactly: no rounding to a whole microsecond or a float.
    resolve(app, [timedelta(microseconds=1), timedelta(microseconds=2)])
    assert median(app, 2) == Fraction(3, 2 * 86_400 * 1_000_000)


@pytest.mark.postgres
def test_postgresql_reads_the_middle_by_percentile(postgres_url: str) -> None:
    # The percentile path itself answers (not the portable fallback): 2 h and 4 h of 1, 2, 4, 8.
    from workflow.bootstrap import bootstrap  # noqa: PLC0415

    app = bootstrap(postgres_url, "kilowatt-connect")
    try:
        resolve(app, [n * HOUR for n in (8, 1, 4, 2)])
        window = parse_quarter("2026-Q2").window(datetime(2027, 1, 1, tzinfo=UTC))
        elapsed = ElapsedMicroseconds(resolutions.c.resolved_at,
                                      resolutions.c.original_received_at)
        with app.engine.connect() as conn:
            assert _middle_by_percentile(conn, window, 4, elapsed) == [2 * 3_600_000_000,
                                                                       4 * 3_600_000_000]
            assert _middle_by_percentile(conn, window, 5, elapsed) is None  # not the count
    finally:
        app.engine.dispose()


def test_percentile_fractions_land_on_their_position() -> None:
    # PostgreSQL's percentile_disc(f) takes position ceil(f * n); (k - 1/2) / n must give k for
    # every middle position k of every count n, whatever the float rounding.
    for n in [*range(1, 5000), 2**31 - 1, 10**12 + 1]:
        for k in {(n + 1) // 2, n // 2 + 1}:
            assert math.ceil(((k - 0.5) / n) * n) == k
