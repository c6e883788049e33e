"""`GET /risk` on the ops API: the at-risk list of the latest refit, behind the token, and
the refits `complaints up` runs on a schedule (reporting.risk.WithRiskRefits)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.risk import WithRiskRefits
from reporting.web import OpsState
from tests.integration.test_risk import AS_OF, _record
from tests.live_view import ask
from workflow.bootstrap import bootstrap
from workflow.schema import Complaint

TOKEN = "risk-test-token"


class _Fixed:
    def now(self) -> datetime:
        return datetime.fromisoformat(AS_OF)


class _Service:
    """Stands in for the ops service: its state, and a run that lasts until stopped."""

    def __init__(self, state: OpsState) -> None:
        self.state = state
        self.stats: dict[str, int] = {}

    def run(self, stop: threading.Event) -> None:
        stop.wait()


def test_risk_endpoint_serves_the_scheduled_refit(tmp_path: Path) -> None:
    app = bootstrap(_record(tmp_path, 20), "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar), store={}))
    (missing, _), (before, empty) = ask(state, TOKEN, [("/risk", None), ("/risk", TOKEN)])
    assert (missing, before) == (401, 200)
    assert empty["computed_at"] is None and empty["complaints"] == [] and empty["total"] == 0

    stop = threading.Event()
    service = WithRiskRefits(_Service(state), app, interval=3600, clock=_Fixed())
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while state.risk is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert state.risk is not None
    (ok, page), (ok2, second), (bad, _) = ask(state, TOKEN, [
        ("/risk", TOKEN), ("/risk?offset=1&limit=1", TOKEN), ("/risk?limit=0", TOKEN)])
    assert (ok, ok2, bad) == (200, 200, 400)
    # Refitted at 1 Jun 2026 09:00Z: the prior's figures of test_risk (20 complaints).
    assert page["total"] == 2 and page["model"] == "prior"
    assert page["as_of"] == AS_OF
    assert [(r["complaint_id"], r["p_breach"]) for r in page["complaints"]] == [
        ("S-1", 0.8003), ("A-1", 0.4102)]
    assert [r["complaint_id"] for r in second["complaints"]] == ["A-1"]
    assert second["offset"] == 1 and second["limit"] == 1


def test_search_and_timeline(tmp_path: Path) -> None:
    app = bootstrap(_record(tmp_path, 4), "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar), store={}))
    WithRiskRefits(_Service(state), app, interval=3600)  # gives the state its record
    with app.sessions() as session:
        reference = session.scalar(select(Complaint.reference)
                                   .where(Complaint.complaint_id == "A-1"))
    assert reference is not None
    replies = ask(state, TOKEN, [
        ("/complaints/search?q=A-1", TOKEN),
        (f"/complaints/search?q={reference.lower()[:8]}", TOKEN),
        ("/complaints/search?q=H-00", TOKEN),
        ("/complaints/search?q=%25", TOKEN),  # a LIKE wildcard is taken literally
        ("/complaints/A-1/timeline", TOKEN),
        ("/complaints/NOPE/timeline", TOKEN),
        ("/complaints/A-1/timeline", None),
        ("/complaints/search?q=", TOKEN),
    ])
    (s1, by_id), (s2, by_reference), (s3, by_prefix), (s4, wildcard) = replies[:4]
    (t1, timeline), (t2, _), (t3, _), (s5, _) = replies[4:]
    assert (s1, s2, s3, s4, t1, t2, t3, s5) == (200, 200, 200, 200, 200, 404, 401, 400)
    assert [c["complaint_id"] for c in by_id["complaints"]] == ["A-1"]
    assert by_id["complaints"][0]["owner"] == "Kim Lee"
    assert "A-1" in [c["complaint_id"] for c in by_reference["complaints"]]
    assert [c["complaint_id"] for c in by_prefix["complaints"]] == [
        "H-000", "H-001", "H-002", "H-003"]
    assert wildcard["complaints"] == []
    # received 15 Apr (with a handler: immediate), its acknowledgement (D+1) and
    # progress update (25 Apr) fired with letters, a contact logged on 30 May, and its
    # eight weeks still due on 10 Jun.
    kinds = [(e["what"], e["type"]) for e in timeline["timeline"]]
    assert kinds[0] == ("event", "complaint.received")
    assert ("letter", "acknowledgement") in kinds and ("event", "complaint.contact_logged") in kinds
    assert kinds[-1] == ("due", "eight_week")
    assert timeline["timeline"][-1]["at"] == "2026-06-10T09:00:00+00:00"
    assert timeline["owner"] == "Kim Lee" and timeline["state"] == "immediate"
    # Each read of one complaint's timeline is recorded (issue 15): the one that succeeded,
    # not the unknown complaint nor the one without a token.
    from reporting.casefile import token_identity
    from workflow.schema import PersonalDataRead

    with app.sessions() as session:
        reads = list(session.scalars(select(PersonalDataRead)))
    assert [(r.complaint_id, r.what, r.reader) for r in reads] == [
        ("A-1", "timeline", token_identity(TOKEN))]


def test_lists_behind_the_counts(tmp_path: Path) -> None:
    """The record of 4 history complaints (1-4 Oct 2025: H-000 and H-002 worked and resolved,
    H-001 and H-003 silent, so at their eight weeks in eight_week) and S-1, A-1 (15 Apr 2026,
    with handlers, eight weeks due 10 Jun 09:00Z)."""
    app = bootstrap(_record(tmp_path, 4), "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar), store={}))
    state.record = app
    replies = ask(state, TOKEN, [
        ("/complaints?state=eight_week", TOKEN),
        ("/complaints?state=immediate&limit=1&offset=1", TOKEN),
        ("/complaints?received=2026-04-15", TOKEN),
        ("/complaints?overdue=eight_week&as_of=2026-06-11T00:00:00Z", TOKEN),
        ("/complaints?overdue=eight_week&as_of=2026-06-01T00:00:00Z", TOKEN),
        ("/complaints?state=nope", TOKEN),
        ("/complaints", TOKEN),
        ("/complaints?state=resolved&received=2026-04-15", TOKEN),
        ("/complaints?state=resolved", None),
    ])
    statuses = [status for status, _ in replies]
    assert statuses == [200, 200, 200, 200, 200, 400, 400, 400, 401]
    eight_week, immediate, received, overdue, not_yet = (body for _, body in replies[:5])
    assert [c["complaint_id"] for c in eight_week["complaints"]] == ["H-001", "H-003"]
    assert eight_week["total"] == 2
    assert immediate["total"] == 2 and [c["complaint_id"] for c in immediate["complaints"]] == [
        "S-1"]  # A-1 first (same instant, by id), then S-1 on the second page
    assert [c["complaint_id"] for c in received["complaints"]] == ["A-1", "S-1"]
    assert {c["receipt_at"] for c in received["complaints"]} == {"2026-04-15T09:00:00+00:00"}
    assert [(c["complaint_id"], c["due_at"]) for c in overdue["complaints"]] == [
        ("A-1", "2026-06-10T09:00:00+00:00"), ("S-1", "2026-06-10T09:00:00+00:00")]
    assert not_yet["total"] == 0
