"""The overdue remedies behind the backlog's count, when a complaint has had two decisions
with a remedy (RULES s.5: the remedy deadline is that of the latest accepted decision).

Worked by hand (Kilowatt Connect; London): C-R received Mon 5 Jan 2026, deadlock reached Mon
12 Jan, referred to the Ombudsman Mon 2 Feb. Decision 1, notified Mon 2 Mar: its remedy is due
by the end of Mon 30 Mar (28 days after; 22:59:59.999999Z, BST). Z-1's receipt (Wed 1 Apr)
moves the clock past it: it fires, the remedy is overdue. Decision 2, Fri 10 Apr: a new
clock, due by the end of Fri 8 May; Z-2's receipt (Mon 11 May) fires it: overdue again.
As of Tue 12 May 12:00Z the backlog counts one overdue remedy (no remedy deadline unfired and
due, one complaint flagged), so each list behind it has one row: decision 2's deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from consumers.file_ingest import ingest_file
from reporting.countlists import behind
from reporting.workqueue import listing, search
from tests.builders import HANDLER, received, simple, write_jsonl
from workflow import queries
from workflow.bootstrap import App

AS_OF = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)


def test_one_overdue_remedy_is_one_row_however_many_decisions(app: App,
                                                               tmp_path: Path) -> None:
    ingest_file(app, write_jsonl(tmp_path / "remedies.jsonl", [
        received("r", "C-R", "2026-01-05T09:00:00Z", handler=dict(HANDLER)),
        simple("complaint.deadlock_reached", "d", "C-R", "2026-01-12T09:00:00Z"),
        simple("complaint.referred_to_ombudsman", "o", "C-R", "2026-02-02T09:00:00Z"),
        simple("complaint.ombudsman_decision", "x1", "C-R", "2026-03-02T09:00:00Z"),
        received("z1", "Z-1", "2026-04-01T09:00:00Z"),
        simple("complaint.ombudsman_decision", "x2", "C-R", "2026-04-10T09:00:00Z"),
        received("z2", "Z-2", "2026-05-11T09:00:00Z"),
    ]))
    calendar = app.procedure.calendar
    with app.sessions() as session:
        backlog = queries.backlog(session, AS_OF, calendar)
        listed = behind(session, "overdue", as_of=AS_OF, calendar=calendar)
        queue = listing(session, overdue="remedy", as_of=AS_OF)
        found = [c["complaint_id"] for c in search(session, "c-r")]
    assert backlog["overdue"]["remedy"] == 1
    remedies = [c for c in listed["complaints"] if c["kind"] == "remedy"]
    assert [(c["complaint_id"], c["due_at"]) for c in remedies] == [
        ("C-R", "2026-05-08T22:59:59.999999+00:00")]
    assert remedies[0]["owner"] == "Sam Patel"
    # The work queue's list of overdue remedies (`GET /complaints?overdue=remedy`) agrees.
    assert (queue["total"], [(c["complaint_id"], c["due_at"]) for c in queue["complaints"]]) \
        == (1, [("C-R", "2026-05-08T22:59:59.999999+00:00")])
    # A search finds a complaint id in any case, on SQLite and PostgreSQL alike.
    assert found == ["C-R"]
