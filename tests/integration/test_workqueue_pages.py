"""The work queue's lists a page at a time (keyset `after`/`next`, bounded offset and count).

Over the record of tests/integration/test_risk.py with 4 history complaints: H-000..H-003
received 1-4 Oct 2025 at 09:00Z (H-001 and H-003 silent, so in eight_week), and S-1, A-1
received 15 Apr 2026 09:00Z (immediate; eight weeks due 10 Jun 09:00Z).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from consumers.file_ingest import ingest_file
from reporting import workqueue
from reporting.workqueue import listing
from tests.integration.test_risk import _record
from workflow import queries
from workflow.bootstrap import App, bootstrap

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"


def test_pages_follow_next_to_the_end(tmp_path: Path) -> None:
    app = bootstrap(_record(tmp_path, 4), "kilowatt-connect")
    try:
        with app.sessions() as session:
            first = listing(session, state="eight_week", limit=1)
            assert [c["complaint_id"] for c in first["complaints"]] == ["H-001"]
            assert (first["total"], first["total_exact"]) == (2, True)
            # H-001's receipt instant and id: where the next page starts after.
            assert first["next"] == "2025-10-02T09:00:00+00:00|H-001"
            second = listing(session, state="eight_week", limit=1, after=first["next"])
            assert [c["complaint_id"] for c in second["complaints"]] == ["H-003"]
            assert second["next"] is None  # nothing after H-003
            # A day's receipts: A-1 then S-1 (same instant, by id); the receipt's row id ends
            # the cursor, so a complaint received twice at one instant is not skipped.
            day = listing(session, received=date(2026, 4, 15), limit=1)
            assert [c["complaint_id"] for c in day["complaints"]] == ["A-1"]
            assert day["next"] is not None
            assert day["next"].startswith("2026-04-15T09:00:00+00:00|A-1|")
            rest = listing(session, received=date(2026, 4, 15), limit=1, after=day["next"])
            assert [c["complaint_id"] for c in rest["complaints"]] == ["S-1"]
            # Overdue eight weeks at 11 Jun: A-1 then S-1, both due 10 Jun 09:00Z.
            as_of = datetime.fromisoformat("2026-06-11T00:00:00+00:00")
            late = listing(session, overdue="eight_week", as_of=as_of, limit=1)
            assert [c["complaint_id"] for c in late["complaints"]] == ["A-1"]
            tail = listing(session, overdue="eight_week", as_of=as_of, limit=1,
                           after=late["next"])
            assert [c["complaint_id"] for c in tail["complaints"]] == ["S-1"]
            assert tail["next"] is None
            with pytest.raises(ValueError, match="after"):
                listing(session, state="eight_week", after="not-a-cursor")
            with pytest.raises(ValueError, match="offset"):
                listing(session, state="eight_week", offset=workqueue.OFFSET_LIMIT + 1)
    finally:
        app.engine.dispose()


def test_total_is_a_lower_bound_past_the_count_limit(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With the count limit at 1, the two complaints in eight_week are "at least 1"."""
    monkeypatch.setattr(workqueue, "COUNT_LIMIT", 1)
    app = bootstrap(_record(tmp_path, 4), "kilowatt-connect")
    try:
        with app.sessions() as session:
            page = listing(session, state="eight_week")
            assert (page["total"], page["total_exact"]) == (1, False)
            assert [c["complaint_id"] for c in page["complaints"]] == ["H-001", "H-003"]
            immediate = listing(session, state="immediate")
            assert (immediate["total"], immediate["total_exact"]) == (1, False)
    finally:
        app.engine.dispose()


def test_read_threads_from_the_environment() -> None:
    from reporting.web import read_threads

    assert read_threads({}) == 8
    assert read_threads({"COMPLAINTS_OPS_READ_THREADS": "20"}) == 20
    for bad in ("0", "65", "many"):
        with pytest.raises(ValueError, match="COMPLAINTS_OPS_READ_THREADS"):
            read_threads({"COMPLAINTS_OPS_READ_THREADS": bad})


def test_timeline_shows_what_complaints_show_shows(app: App) -> None:
    """The timeline reads plain rows, not ORM objects: its document is still exactly
    `complaints show`'s (queries.show_complaint) for each sample complaint, on both backends."""
    ingest_file(app, SAMPLE)
    letters = 0
    with app.sessions() as session:
        for complaint_id in ("C-100", "C-101", "C-102", "C-103", "C-104", "C-105"):
            shown = queries.show_complaint(session, complaint_id)
            document = workqueue.timeline(session, complaint_id)
            assert shown is not None and document is not None
            assert {k: v for k, v in document.items() if k not in ("owner", "timeline")} == shown
            letters += len(shown["letters"])
        assert workqueue.timeline(session, "C-NONE") is None
    assert letters > 0
