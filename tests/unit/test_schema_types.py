"""UTCDateTime's one-step SQLite text is SQLAlchemy's own two-step result, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from workflow.schema import UTCDateTime

SQLITE = sqlite.dialect()


def two_steps(value: datetime) -> str:
    """What the type did before: process_bind_param, then SQLite DATETIME's processor."""
    naive = UTCDateTime().process_bind_param(value, SQLITE)
    processor = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert processor is not None
    return str(processor(naive))


def one_step(value: datetime | None) -> str | None:
    processor = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert processor is not None
    result = processor(value)
    return None if result is None else str(result)


def test_worked_examples() -> None:
    # 23:59:59.999999 BST on the last day of BST 2026 is 22:59:59.999999 UTC.
    bst = timezone(timedelta(hours=1))
    assert one_step(datetime(2026, 10, 24, 23, 59, 59, 999999, tzinfo=bst)) == (
        "2026-10-24 22:59:59.999999")
    # Whole seconds still carry six zeros, as SQLAlchemy writes them (text order = time order).
    assert one_step(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)) == "2026-01-05 09:00:00.000000"
    assert one_step(None) is None


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)),
                                               timezone(timedelta(hours=-5, minutes=-30))])))
def test_same_text_as_sqlalchemy(value: datetime) -> None:
    assert one_step(value) == two_steps(value)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        one_step(datetime(2026, 1, 5, 9, 0))


def test_other_databases_keep_the_two_steps() -> None:
    dialect = postgresql.dialect()
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    value = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
    expected = datetime(2026, 3, 29, 0, 30)
    assert (processor(value) if processor else value) == expected
