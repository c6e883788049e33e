"""The item tables, periods and number rules of the returns (docs/rules.md s.1 and s.7)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from reporting.items import ANNUAL, MONTHLY, PUBLICATION, QUARTERLY, RETURNS
from reporting.model import Kind
from reporting.numbers import add, as_json_number, ratio, round_half_up
from reporting.periods import BadPeriod, parse_month, parse_quarter, twelve_months_ending
from workflow.codes import CATEGORIES


def codes(spec_items: tuple[object, ...]) -> list[str]:
    return [item.code for item in spec_items]  # type: ignore[attr-defined]


def test_monthly_items_are_exactly_ofgems() -> None:
    assert codes(MONTHLY.items) == [
        "A1", "A2", "A3", "A4", *(f"B{n}" for n in range(5, 24)),
        "C24", "C25", "C26", "C27", "C28"]
    # The complaint types are the codes table's, with its descriptions.
    for code, description in CATEGORIES.items():
        assert description in MONTHLY.item(code).description


def test_quarterly_items_are_exactly_ofgems() -> None:
    assert codes(QUARTERLY.items) == [
        "A1", "A2", "A3", "A4", "A5", "B6", "B7", "B8", "B9", "B10",
        "C11", "C12", "C12_pct", "C13", "C13_pct", "C14", "C14_pct", "C15",
        "D16", "D17", "E18", "E19", "E20", "E21", "E22"]


def test_channel_items_follow_the_codes_table() -> None:
    # docs/rules.md s.7: telephone and in person -> A2/B7, letter -> A3/B8, email and webform ->
    # A4/B9, webchat and social media -> A5/B10.
    assert QUARTERLY.item("A2").description == "Contacts received by telephone, in person"
    assert QUARTERLY.item("B9").description == "Complaints received by email, webform"
    assert QUARTERLY.item("B10").description == "Complaints received by webchat, social media"


def test_publication_and_annual_keys_match_the_contract() -> None:
    assert codes(PUBLICATION.items) == [
        "complaints_received", "received_per_100k", "received_per_10k", "complaints_resolved",
        "resolved_per_100k", "resolved_per_10k", "pct_resolved_next_working_day",
        "pct_resolved_within_8_weeks"]
    assert codes(ANNUAL.items) == ["not_resolved_by_next_working_day"]
    assert set(RETURNS) == {"monthly", "quarterly", "publication", "annual"}


DECIMAL_ITEMS = {
    "monthly": {"C27", "C28"},
    "quarterly": {"C12_pct", "C13_pct", "C14_pct", "C15", "E21", "E22"},
    "publication": {"received_per_100k", "received_per_10k", "resolved_per_100k",
                    "resolved_per_10k", "pct_resolved_next_working_day",
                    "pct_resolved_within_8_weeks"},
    "annual": set(),
}


def test_rates_percentages_and_days_are_the_2dp_items() -> None:
    for name, spec in RETURNS.items():
        assert {item.code for item in spec.items if item.kind.decimal} == DECIMAL_ITEMS[name]
        assert all(item.description.strip() for item in spec.items)


@pytest.mark.parametrize(("value", "expected"), [
    (Fraction(3005, 1000), "3.01"),  # half rounds up, not to even (3.00)
    (Fraction(3015, 1000), "3.02"),
    (Fraction(1, 8), "0.13"),
    (Fraction(800_000, 72_200), "11.08"),
    (Fraction(2, 3), "0.67"),
    (Fraction(100), "100.00"),
    (0, "0.00"),
    (Decimal("10.48"), "10.48"),
])
def test_round_half_up(value: Fraction, expected: str) -> None:
    assert str(round_half_up(value)) == expected


def test_ratio_and_totals_with_missing_data() -> None:
    assert ratio(8, None, 100_000) is None
    assert ratio(8, 0, 100_000) is None
    assert ratio(None, 10, 100) is None
    assert ratio(1, 3, 100) == Fraction(100, 3)
    assert add(1, None) is None and add(2, 3) == 5
    assert Kind.RATE.finish(None) is None
    assert as_json_number(Decimal("0.10")) == 0.1


def test_counts_must_be_whole() -> None:
    with pytest.raises(ValueError, match="whole number"):
        Kind.COUNT.finish(Fraction(1, 2))


def test_periods_by_local_date() -> None:
    january = parse_month("2026-01")
    assert (january.first, january.end, january.last) == (
        date(2026, 1, 1), date(2026, 2, 1), date(2026, 1, 31))
    # Q2 2026 starts at local midnight on 1 Apr, which is 23:00 UTC on 31 Mar (BST).
    window = parse_quarter("2026-Q2").window(datetime(2026, 7, 1, tzinfo=UTC))
    assert window.start == datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    # Q4 ends at local midnight on 1 Jan (GMT again).
    assert parse_quarter("2026-Q4").window(datetime(2027, 1, 1, tzinfo=UTC)).end == datetime(
        2027, 1, 1, tzinfo=UTC)
    assert [p.label for p in parse_quarter("2026-Q4").months()] == [
        "2026-10", "2026-11", "2026-12"]


def test_twelve_months_ending() -> None:
    year = twelve_months_ending("2026-03")
    assert (year.first, year.last) == (date(2025, 4, 1), date(2026, 3, 31))
    assert len(year.months()) == 12
    assert twelve_months_ending("2026-12").first == date(2026, 1, 1)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-01", "2026-1", "2026-Q1", ""])
def test_bad_months(text: str) -> None:
    with pytest.raises(BadPeriod, match="YYYY-MM"):
        parse_month(text)


@pytest.mark.parametrize("text", ["2026-Q0", "2026-Q5", "2026Q1", "2026-q1x", "2026-01"])
def test_bad_quarters(text: str) -> None:
    with pytest.raises(BadPeriod, match="YYYY-Qn"):
        parse_quarter(text)
