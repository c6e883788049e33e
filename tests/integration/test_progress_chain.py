"""(v2) Repeat progress updates (docs/rules.md s.5): each progress-update deadline that fires while
the complaint is open issues its letter and creates the next of the same cycle,
`progress_update_interval_days` x 24 h (Kilowatt Connect: 10) after its own due instant; one
that fires when the complaint is not open issues nothing and creates no next; a reopen starts
a new chain. On the in-memory unit of work, SQLite and PostgreSQL; every instant worked out
by hand.

Clock changes in 2026 (Europe/London): BST from Sun 29 Mar 01:00 UTC. Elapsed durations are
exact (computed in UTC), so across the change the local time of a due instant moves by an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from consumers.file_ingest import ingest_file, tick
from tests.builders import received, reopened, resolved, write_jsonl
from tests.stores import dispose
from workflow.bootstrap import Application
from workflow.procedure import load_procedure

LONDON = ZoneInfo("Europe/London")
ISSUED = "progress_update letter"


@pytest.fixture
def app(backend: Callable[[Any], Application]) -> Iterator[Application]:
    """Kilowatt Connect, on each store in turn."""
    made = backend("kilowatt-connect")
    yield made
    dispose(made)


def run(app: Application, tmp_path: Path, events: list[dict[str, Any]], until: str) -> None:
    report = ingest_file(app, write_jsonl(tmp_path / "events.jsonl", events))
    assert report.rejected == 0, report.rejections
    tick(app, datetime.fromisoformat(until))


def progress(app: Application, cid: str) -> list[tuple[int, str, str]]:
    """(cycle, due_at, what it did) of each progress-update deadline, by due instant."""
    shown = app.show_complaint(cid)
    assert shown is not None
    return [(d["cycle"], d["due_at"],
             "letter" if (d["outcome"] or "").startswith(ISSUED) else d["outcome"])
            for d in shown["deadlines"] if d["kind"] == "progress_update"]


def progress_letters(app: Application, cid: str) -> list[str]:
    shown = app.show_complaint(cid)
    assert shown is not None
    issued = [x for x in shown["letters"] if x["kind"] == "progress_update"]  # issue order
    assert len({x["letter_id"] for x in issued}) == len(issued), "one letter per deadline"
    return [x["issued_at"] for x in issued]


def local(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(LONDON).strftime("%d %b %H:%M %Z")


def test_every_ten_days_across_the_clock_change_until_eight_weeks(
        app: Application, tmp_path: Path) -> None:
    # Received Mon 16 Mar 2026 12:00 GMT. Progress updates 10, 20, 30, 40, 50 days after:
    #   26 Mar 12:00Z (12:00 GMT), then, after the change, 5, 15, 25 Apr and 5 May 12:00Z
    #   (13:00 BST local). Eight weeks: 16 Mar 12:00Z + 56 x 24 h = Mon 11 May 12:00Z
    #   -> eight_week. The sixth, 15 May 12:00Z, finds eight_week: nothing, and no seventh.
    run(app, tmp_path, [received("C1-r", "C1", "2026-03-16T12:00:00+00:00")],
        until="2026-07-01T00:00:00+01:00")
    assert progress(app, "C1") == [
        (1, "2026-03-26T12:00:00+00:00", "letter"),
        (1, "2026-04-05T12:00:00+00:00", "letter"),
        (1, "2026-04-15T12:00:00+00:00", "letter"),
        (1, "2026-04-25T12:00:00+00:00", "letter"),
        (1, "2026-05-05T12:00:00+00:00", "letter"),
        (1, "2026-05-15T12:00:00+00:00", "no longer applies: state eight_week"),
    ]
    assert [local(at) for at in progress_letters(app, "C1")] == [
        "26 Mar 12:00 GMT", "05 Apr 13:00 BST", "15 Apr 13:00 BST", "25 Apr 13:00 BST",
        "05 May 13:00 BST"]
    shown = app.show_complaint("C1")
    assert shown is not None and shown["state"] == "eight_week"
    assert [x["issued_at"] for x in shown["letters"] if x["kind"] == "eight_week"] == [
        "2026-05-11T12:00:00+00:00"]


def test_leaving_open_ends_the_chain_and_a_reopen_starts_a_new_one(
        app: Application, tmp_path: Path) -> None:
    # C2 received Mon 2 Mar 09:00 GMT: updates 12 Mar and 22 Mar 09:00Z; resolved Fri 27 Mar
    # 10:00Z; the third (1 Apr 09:00Z) finds it resolved: no letter, no fourth.
    # Reopened Wed 8 Apr 14:00 BST (13:00Z): a new chain from the reopen, 18 Apr 13:00Z
    # (14:00 BST), next 28 Apr 13:00Z. The original eight weeks (2 Mar 09:00Z + 56 d =
    # Mon 27 Apr 09:00Z) are still ahead at the reopen, so that deadline stands and fires
    # on 27 Apr (reopened is open) -> eight_week; 28 Apr finds eight_week: chain over.
    # C3 received Mon 2 Mar 09:00Z, resolved Tue 3 Mar 10:00Z, reopened Thu 5 Mar 10:00Z:
    # cycle 1's first update (12 Mar 09:00Z) finds cycle 2 started: nothing, no next;
    # cycle 2's chain: 15 Mar, 25 Mar 10:00Z, then 4, 14, 24 Apr 10:00Z (11:00 BST);
    # eight weeks 27 Apr 09:00Z -> eight_week; 4 May 10:00Z finds eight_week.
    run(app, tmp_path, [
        received("C2-r", "C2", "2026-03-02T09:00:00+00:00"),
        received("C3-r", "C3", "2026-03-02T09:00:00+00:00"),
        resolved("C3-s", "C3", "2026-03-03T10:00:00+00:00"),
        reopened("C3-o", "C3", "2026-03-05T10:00:00+00:00"),
        resolved("C2-s", "C2", "2026-03-27T10:00:00+00:00"),
        reopened("C2-o", "C2", "2026-04-08T14:00:00+01:00"),
    ], until="2026-06-01T00:00:00+01:00")
    assert progress(app, "C2") == [
        (1, "2026-03-12T09:00:00+00:00", "letter"),
        (1, "2026-03-22T09:00:00+00:00", "letter"),
        (1, "2026-04-01T09:00:00+00:00", "no longer applies: state resolved"),
        (2, "2026-04-18T13:00:00+00:00", "letter"),
        (2, "2026-04-28T13:00:00+00:00", "no longer applies: state eight_week"),
    ]
    assert local(progress_letters(app, "C2")[-1]) == "18 Apr 14:00 BST"
    assert progress(app, "C3") == [
        (1, "2026-03-12T09:00:00+00:00", "no longer applies: cycle 2 has started"),
        (2, "2026-03-15T10:00:00+00:00", "letter"),
        (2, "2026-03-25T10:00:00+00:00", "letter"),
        (2, "2026-04-04T10:00:00+00:00", "letter"),
        (2, "2026-04-14T10:00:00+00:00", "letter"),
        (2, "2026-04-24T10:00:00+00:00", "letter"),
        (2, "2026-05-04T10:00:00+00:00", "no longer applies: state eight_week"),
    ]


def test_no_interval_no_repeat(backend: Callable[[Any], Application], tmp_path: Path) -> None:
    # A procedure with a resolution target and no interval: one progress update per cycle.
    procedure = load_procedure("kilowatt-connect").model_copy(
        update={"progress_update_interval_days": None})
    app = backend(procedure)
    try:
        run(app, tmp_path, [received("C1-r", "C1", "2026-03-16T12:00:00+00:00")],
            until="2026-07-01T00:00:00+01:00")
        assert progress(app, "C1") == [(1, "2026-03-26T12:00:00+00:00", "letter")]
    finally:
        dispose(app)


def test_lastmile_has_no_progress_update(
        backend: Callable[[Any], Application], tmp_path: Path) -> None:
    app = backend("lastmile")
    try:
        run(app, tmp_path, [received("C1-r", "C1", "2026-03-16T12:00:00+00:00")],
            until="2026-07-01T00:00:00+01:00")
        assert progress(app, "C1") == []
    finally:
        dispose(app)
