"""The exit summary of `complaints up`, as a person reads it."""

from __future__ import annotations

from consumers.runtime import human_summary


def test_the_exit_summary_shows_instants_as_dates_and_counters_as_numbers() -> None:
    text = human_summary({"seconds": 40.9, "components": {
        "aggregator": {"applied": 603, "last_applied_at": 1796006534.97}}})
    # 1796006534 s after 1970-01-01T00:00Z is 2026-11-30T02:42:14Z.
    assert "aggregator: applied 603, last_applied_at 2026-11-30T02:42:14+00:00" in text
