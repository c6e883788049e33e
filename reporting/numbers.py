"""Exact arithmetic for report figures (docs/rules.md s.7 "Numbers").

Items are computed as exact integers or fractions and rounded once, half-up to 2 decimal
places, when the value is finished: no binary floating point is involved, so the same data
gives the same figure on every database.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

Exact = int | Fraction | Decimal  # a Decimal here is an already-rounded figure, exact as is
Value = int | Decimal | None

TWO_PLACES = Decimal("0.01")


def round_half_up(value: Exact) -> Decimal:
    """`value` rounded half-up (away from zero at .5) to 2 decimal places."""
    exact = Fraction(value)
    scaled = abs(exact) * 100
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    rounded = Decimal(whole).scaleb(-2).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    return -rounded if exact < 0 else rounded


def ratio(numerator: Value, denominator: Value, scale: int) -> Fraction | None:
    """numerator x scale / denominator; null when either is null or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return Fraction(numerator) * scale / Fraction(denominator)


def add(*values: Value) -> int | None:
    """Sum of counts; null when any part is null (an accounts total with no snapshot)."""
    if any(v is None for v in values):
        return None
    return sum(int(v) for v in values if v is not None)


def as_json_number(value: Value) -> int | float | None:
    """JSON has no decimal type: a 2-dp Decimal becomes the float with the same shortest repr."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def as_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)
