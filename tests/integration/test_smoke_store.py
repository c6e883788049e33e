"""The same ingest on SQLite and PostgreSQL gives the same record."""

from __future__ import annotations

from pathlib import Path

from consumers.file_ingest import ingest_file
from tests.builders import assigned, received, resolved, write_jsonl
from workflow import queries
from workflow.bootstrap import App


def test_ingest_and_show_round_trip(app: App, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [
        received("e1", "C1", "2026-01-05T09:30:00+00:00"),
        assigned("e2", "C1", "2026-01-05T10:00:00+00:00"),
        resolved("e3", "C1", "2026-01-05T11:00:00+00:00"),
    ])
    report = ingest_file(app, path)
    assert report.as_json() == {"applied": 3, "duplicates": 0, "rejected": 0}
    with app.sessions() as session:
        shown = queries.show_complaint(session, "C1")
    assert shown is not None
    assert shown["state"] == "resolved"
    assert [h["to"] for h in shown["history"]] == ["received", "immediate", "resolved"]
    # Resolved before the D+1 deadline (end of Tue 6 Jan): no resolution letter.
    assert shown["letters"] == []
