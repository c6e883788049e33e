"""`complaints risk` on hand-built histories where the right answer is obvious.

History (Kilowatt Connect, eight weeks = 56 days): complaints received one a day from Wed
1 Oct 2025, each assigned to a handler at receipt. The even ones are worked: a logged customer
contact every 5 days, resolved between day 30 and day 54. The odd ones are never touched after
their receipt: each is silent for 56 days and breaches (an 8-week letter). So silence is
everything.

Judged at Mon 1 Jun 2026 09:00Z, two complaints received Wed 15 Apr 09:00Z (age 47 days, 9 days
left to their eight weeks, due Wed 10 Jun 09:00Z): S-1, silent since its receipt, and A-1, with
a logged contact on Sat 30 May (2 days before). S-1 must come first, near certain to breach;
A-1 near certain not to.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from consumers.cli import main
from consumers.file_ingest import ingest_file
from tests.builders import HANDLER, received, reopened, resolved, simple, write_jsonl
from workflow.bootstrap import bootstrap

START = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
AS_OF = "2026-06-01T09:00:00+00:00"


def _at(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def _history(count: int) -> list[tuple[datetime, dict[str, Any]]]:
    events = []
    for n in range(count):
        cid, at = f"H-{n:03d}", START + timedelta(days=n)
        events.append((at, received(f"{cid}-r", cid, _at(at), handler=dict(HANDLER))))
        if n % 2 == 0:
            end = 30 + (n * 7) % 25  # day 30..54
            for day in range(5, end, 5):
                events.append((at + timedelta(days=day), simple(
                    "complaint.contact_logged", f"{cid}-c{day}", cid,
                    _at(at + timedelta(days=day)))))
            events.append((at + timedelta(days=end), resolved(f"{cid}-s", cid,
                                                              _at(at + timedelta(days=end)))))
    return events


def _record(tmp_path: Path, history: int) -> str:
    judged = datetime(2026, 4, 15, 9, 0, tzinfo=UTC)
    events = _history(history) + [
        (judged, received("S-1-r", "S-1", _at(judged), handler=dict(HANDLER))),
        (judged, received("A-1-r", "A-1", _at(judged), handler={"id": "h-9", "name": "Kim Lee"})),
        (datetime(2026, 5, 30, 9, 0, tzinfo=UTC),
         simple("complaint.contact_logged", "A-1-c", "A-1", "2026-05-30T09:00:00Z")),
    ]
    events.sort(key=lambda pair: pair[0])  # a time-ordered file, as ingest expects
    db = f"sqlite:///{tmp_path / 'risk.db'}"
    app = bootstrap(db, "kilowatt-connect")
    ingest_file(app, write_jsonl(tmp_path / "history.jsonl", [e for _, e in events]))
    app.engine.dispose()
    return db


def _risk(db: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["risk", "--as-of", AS_OF, "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_silence_learnt_from_the_record(tmp_path: Path) -> None:
    rows = _risk(_record(tmp_path, 120))  # 120 complaints past their eight weeks (to 28 Jan)
    assert [r["complaint_id"] for r in rows] == ["S-1", "A-1"]  # every other one has ended
    silent, active = rows
    assert {r["model"] for r in rows} == {"cox_ph"}
    assert silent["p_breach"] > 0.9
    assert active["p_breach"] < 0.1
    assert silent["eight_week_due"] == active["eight_week_due"] == "2026-06-10T09:00:00+00:00"
    assert silent["received_at"] == "2026-04-15T09:00:00+00:00"
    assert (silent["state"], silent["owner"]) == ("immediate", "Sam Patel")
    assert (active["state"], active["owner"]) == ("immediate", "Kim Lee")
    assert active["reference"].startswith("KC-")
    # Kilowatt Connect's progress updates repeat every 10 days (docs/rules.md s.5, v2): received
    # 15 Apr 09:00Z, so 25 Apr, 5, 15, 25 May and 4 Jun 09:00Z, before the eight weeks.
    assert silent["next_deadline"] == {"kind": "progress_update",
                                       "due_at": "2026-06-04T09:00:00+00:00"}


def test_short_history_answers_from_the_prior(tmp_path: Path) -> None:
    """20 complaints, under 50 past their eight weeks: the prior. S-1 silent 47 days (two weeks
    or more): half-life 28 days, exp(-ln 2 / 28 x 9) = 0.8003; A-1 worked: half-life 7 days,
    exp(-ln 2 / 7 x 9) = 0.4102."""
    rows = _risk(_record(tmp_path, 20))
    assert [(r["complaint_id"], r["p_breach"], r["model"]) for r in rows] == [
        ("S-1", 0.8003, "prior"), ("A-1", 0.4102, "prior")]
    assert round(math.exp(-math.log(2) / 28 * 9), 4) == 0.8003  # the figures worked above


def test_before_their_receipt_nothing_is_at_risk(tmp_path: Path) -> None:
    db = _record(tmp_path, 20)
    result = CliRunner().invoke(main, ["risk", "--as-of", "2026-04-15T08:00:00+00:00",
                                       "--db", db, "--format", "json"])
    assert result.exit_code == 0
    # The 20 of the history (1-20 Oct 2025) have all breached or been resolved by then, and
    # S-1 and A-1 are not received yet.
    assert json.loads(result.stdout) == []


def _reopened_record(tmp_path: Path) -> str:
    """The history of `_record` (120 complaints past their eight weeks) and ten complaints
    reopened long after their eight weeks (received Mondays 5 Jan - 9 Mar 2026, resolved 10 days
    later, reopened on day 70 at 08:00Z), each resolved again 3-9 hours after its reopening:
    a reopened complaint here ends within hours, never at its new eight weeks (the next day,
    D+1: RULES s.5). Then X-1: received Mon 16 Mar 09:00Z, escalated to a senior manager, who
    answered (Mona Manager: its owner from then on, RULES s.6), resolved 20 Mar, reopened Mon
    1 Jun 08:00Z: an hour before the instant judged, 77 days after its receipt."""
    events = _history(120)
    for n in range(10):
        cid, at = f"R-{n:02d}", datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(weeks=n)
        back = at + timedelta(days=70)
        events += [(at, received(f"{cid}-r", cid, _at(at), handler=dict(HANDLER))),
                   (at + timedelta(days=10), resolved(f"{cid}-s", cid,
                                                      _at(at + timedelta(days=10)))),
                   (back, reopened(f"{cid}-o", cid, _at(back))),
                   (back + timedelta(hours=3 + n % 7), resolved(
                       f"{cid}-t", cid, _at(back + timedelta(hours=3 + n % 7))))]
    x = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    manager = {"id": "m-7", "name": "Mona Manager"}
    events += [(x, received("X-1-r", "X-1", _at(x), handler=dict(HANDLER))),
               (x + timedelta(days=1), simple("complaint.escalation_requested", "X-1-e", "X-1",
                                              _at(x + timedelta(days=1)))),
               (x + timedelta(days=2), simple("complaint.senior_manager_response", "X-1-m",
                                              "X-1", _at(x + timedelta(days=2)),
                                              manager=manager)),
               (x + timedelta(days=4), resolved("X-1-s", "X-1", _at(x + timedelta(days=4)))),
               (datetime(2026, 6, 1, 8, 0, tzinfo=UTC),
                reopened("X-1-o", "X-1", "2026-06-01T08:00:00Z"))]
    events.sort(key=lambda pair: pair[0])
    db = f"sqlite:///{tmp_path / 'reopened.db'}"
    app = bootstrap(db, "kilowatt-connect")
    ingest_file(app, write_jsonl(tmp_path / "history.jsonl", [e for _, e in events]))
    app.engine.dispose()
    return db


def test_a_reopened_complaint_is_judged_by_its_own_cycle(tmp_path: Path) -> None:
    """X-1's new eight weeks are the end of Tue 2 Jun (D+1 of its reopening: the last instant
    of that date in London), 1.58 days after the instant judged. Reopened complaints in this
    record end within hours, so X-1 is unlikely to breach: learnt from the reopened stretches,
    aged from their own reopening. (Aged from its receipt, 77 days, the model used to see no
    complaint that old still open, and answered 1.0.)"""
    rows = _risk(_reopened_record(tmp_path))
    x1 = next(r for r in rows if r["complaint_id"] == "X-1")
    assert x1["state"] == "reopened"
    assert x1["eight_week_due"] == "2026-06-02T22:59:59.999999+00:00"  # 23:59:59.999999 BST
    assert x1["model"] == "cox_ph"
    assert x1["p_breach"] < 0.2
    assert x1["owner"] == "Mona Manager"  # the senior manager who answered, not the handler


def test_the_next_deadline_is_one_that_will_act(tmp_path: Path) -> None:
    """Y-1: received Mon 4 May 2026 09:00Z, resolved at noon, reopened Tue 5 May 09:00Z. Its
    first cycle's progress update (due Thu 14 May 09:00Z, 10 days after the receipt) is still
    to fire at Fri 8 May 10:00Z, but belongs to the first cycle and does nothing when it fires
    (RULES s.5). The second cycle's (Fri 15 May 09:00Z) is the next that acts. (Z-1's receipt
    on Fri 8 May moves the record's clock past Y-1's second acknowledgement, end of Wed 6 May.)"""
    events = [received("Y-1-r", "Y-1", "2026-05-04T09:00:00Z", handler=dict(HANDLER)),
              resolved("Y-1-s", "Y-1", "2026-05-04T12:00:00Z"),
              reopened("Y-1-o", "Y-1", "2026-05-05T09:00:00Z"),
              received("Z-1-r", "Z-1", "2026-05-08T09:00:00Z")]
    db = f"sqlite:///{tmp_path / 'next.db'}"
    app = bootstrap(db, "kilowatt-connect")
    ingest_file(app, write_jsonl(tmp_path / "next.jsonl", events))
    app.engine.dispose()
    result = CliRunner().invoke(main, ["risk", "--as-of", "2026-05-08T10:00:00+00:00",
                                       "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    y1 = next(r for r in json.loads(result.stdout) if r["complaint_id"] == "Y-1")
    assert y1["next_deadline"] == {"kind": "progress_update",
                                   "due_at": "2026-05-15T09:00:00+00:00"}
    assert y1["eight_week_due"] == "2026-06-29T09:00:00+00:00"  # 56 days after the receipt
