"""One definition of what counts: a change to a declaration in `workflow.counting` moves the
SQL return and the streaming fold alike (docs/rules.md s.7.1).

Kilowatt Connect, ENG, the first quarter of 2026, worked by hand:
- C-1 received Mon 5 Jan 09:00Z by webchat, resolved Thu 19 Feb 09:00Z: 45 days after its
  receipt, after its D+1 deadline (end of Tue 6 Jan), before Ofgem's eight weeks (56 x 24 h,
  Mon 2 Mar 09:00Z). No 8-week letter (its deadline is after the resolution): counted.
- C-2 received Tue 6 Jan 10:00Z by telephone, resolved the same day 15:00Z: by D+1.

As declared: B7 = 1 (telephone), B9 = 0, B10 = 1 (webchat); C11 = 2, C12 = 1, C13 = 2,
C14 = 0.
- With webchat mapped to (A4, B9) instead of (A5, B10): B9 = 1, B10 = 0, both readers.
- With the eight-week boundary at 42 days: C-1's 45 days are past it, so C13 = 1 and
  C14 = 1, both readers (the procedure's 8-week letter is still at 56 days, so C-1 is
  still counted: the boundary is the declaration's, not the procedure's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.file_ingest import ingest_file
from reporting.items import QUARTERLY
from reporting.numbers import as_json_number
from reporting.periods import parse_quarter
from reporting.report import run_report
from tests.builders import received, resolved, write_jsonl
from tests.live_view import fold_outbox
from workflow import codes, counting
from workflow.bootstrap import bootstrap

WHOLE_RECORD = datetime(3000, 1, 1, tzinfo=UTC)
ITEMS = ("B7", "B9", "B10", "C11", "C12", "C13", "C14")


def _record(tmp_path: Path) -> Any:
    path = write_jsonl(tmp_path / "events.jsonl", [
        received("r1", "C-1", "2026-01-05T09:00:00Z", channel="webchat"),
        received("r2", "C-2", "2026-01-06T10:00:00Z", channel="telephone"),
        resolved("s2", "C-2", "2026-01-06T15:00:00Z"),
        resolved("s1", "C-1", "2026-02-19T09:00:00Z"),
    ])
    app = bootstrap(f"sqlite:///{tmp_path / 'record.db'}", "kilowatt-connect")
    assert ingest_file(app, path).applied == 4
    return app


def _both(app: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Q1 2026 from the SQL measures, and from the outbox folded by the live view."""
    report = run_report(app, QUARTERLY, parse_quarter("2026-Q1"), WHOLE_RECORD)
    sql = {code: as_json_number(report.values[code]) for code in ITEMS}
    aggregator, outcomes = fold_outbox(app)
    assert set(outcomes) == {"applied"}
    live = aggregator.view.quarterly("2026-Q1")["items"]
    return sql, {code: live[code] for code in ITEMS}


def test_as_declared(tmp_path: Path) -> None:
    app = _record(tmp_path)
    try:
        expected = {"B7": 1, "B9": 0, "B10": 1, "C11": 2, "C12": 1, "C13": 2, "C14": 0}
        assert _both(app) == (expected, expected)
    finally:
        app.engine.dispose()


def test_the_channel_table_drives_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _record(tmp_path)
    try:
        monkeypatch.setitem(codes.CHANNELS, "webchat", ("A4", "B9"))
        expected = {"B7": 1, "B9": 1, "B10": 0, "C11": 2, "C12": 1, "C13": 2, "C14": 0}
        assert _both(app) == (expected, expected)
    finally:
        app.engine.dispose()


def test_the_eight_week_boundary_drives_both(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the events are applied: the handlers store each resolution's boundary, and the
    # fold computes it when it folds the registration.
    monkeypatch.setattr(counting, "OFGEM_EIGHT_WEEKS_DAYS", 42)
    app = _record(tmp_path)
    try:
        assert app.procedure.eight_weeks_days == 56
        expected = {"B7": 1, "B9": 0, "B10": 1, "C11": 2, "C12": 1, "C13": 1, "C14": 1}
        assert _both(app) == (expected, expected)
    finally:
        app.engine.dispose()
