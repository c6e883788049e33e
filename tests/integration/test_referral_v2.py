"""(v2) Referral from `closed`, late referrals, and reassignment in deadlock and ombudsman
(docs/rules.md s.4), on the in-memory unit of work, SQLite and PostgreSQL (those reading the
backlog or migrating: on the databases only), with instants worked out by hand.

Calendar used below (Europe/London): 2026-02-02 and 2027-02-02 are in GMT, so the end of those
dates is 23:59:59.999999+00:00. A deadlock letter issued on 2 Feb 2026 has a referral window
ending at the end of 2 Feb 2027 (12 months, docs/rules.md s.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.file_ingest import ingest_file, tick
from tests.builders import assigned, received, simple, write_jsonl
from tests.stores import dispose
from workflow import queries
from workflow.bootstrap import App, Application

WINDOW_END = "2027-02-02T23:59:59.999999+00:00"  # end of 2 Feb 2027 (GMT)


@pytest.fixture
def app(backend: Callable[[str], Application]) -> Iterator[Application]:
    """Kilowatt Connect on each store in turn (the conftest `app`, plus in memory)."""
    made = backend("kilowatt-connect")
    yield made
    dispose(made)


def deadlocked(cid: str) -> list[dict[str, Any]]:
    # Received Mon 5 Jan 2026; deadlock reached Mon 2 Feb 2026 10:00 GMT -> deadlock letter.
    return [
        received(f"{cid}-r", cid, "2026-01-05T10:00:00+00:00"),
        assigned(f"{cid}-a", cid, "2026-01-05T11:00:00+00:00"),
        simple("complaint.deadlock_reached", f"{cid}-d", cid, "2026-02-02T10:00:00+00:00"),
    ]


def ingest(app: Application, tmp_path: Path, name: str, events: list[dict[str, Any]]) -> Any:
    return ingest_file(app, write_jsonl(tmp_path / name, events))


def show(app: Application, cid: str) -> dict[str, Any]:
    shown = app.show_complaint(cid)
    assert shown is not None
    return shown


def backlog(app: App, as_of: str) -> dict[str, Any]:
    with app.sessions() as session:
        return queries.backlog(session, datetime.fromisoformat(as_of), app.procedure.calendar)


@pytest.mark.databases_only  # the backlog, read through SQL
def test_referral_after_withdrawal_inside_the_window_is_accepted_not_late(
        app: App, tmp_path: Path) -> None:
    report = ingest(app, tmp_path, "a.jsonl", [
        *deadlocked("C1"),
        simple("complaint.withdrawn", "C1-w", "C1", "2026-03-03T10:00:00+00:00"),
    ])
    assert report.rejected == 0, report.rejections
    closed = show(app, "C1")
    assert (closed["state"], closed["closed_by"]) == ("closed", "complaint.withdrawn")
    # Referred 1 June 2026 (BST), long before the end of 2 Feb 2027.
    report = ingest(app, tmp_path, "b.jsonl", [
        simple("complaint.referred_to_ombudsman", "C1-o", "C1", "2026-06-01T09:00:00+01:00"),
    ])
    assert report.as_json() == {"applied": 1, "duplicates": 0, "rejected": 0}
    shown = show(app, "C1")
    assert shown["state"] == "ombudsman"
    assert shown["late_referral"] is False
    assert shown["closed_by"] is None  # no longer closed
    assert shown["history"][-1]["from"] == "closed"
    assert backlog(app, "2026-06-02T00:00:00+00:00")["late_referrals"] == 0


def test_referral_one_microsecond_before_the_window_ends_is_not_late(
        app: Application, tmp_path: Path) -> None:
    report = ingest(app, tmp_path, "a.jsonl", [
        *deadlocked("C1"),
        simple("complaint.withdrawn", "C1-w", "C1", "2026-03-03T10:00:00+00:00"),
        simple("complaint.referred_to_ombudsman", "C1-o", "C1",
               "2027-02-02T23:59:59.999998+00:00"),
    ])
    assert report.rejected == 0, report.rejections
    assert show(app, "C1")["late_referral"] is False


@pytest.mark.databases_only  # the backlog, read through SQL
def test_referral_after_the_window_lapsed_is_accepted_and_late(app: App, tmp_path: Path) -> None:
    ingest(app, tmp_path, "a.jsonl", deadlocked("C2"))
    # The referral-window deadline fires at the end of 2 Feb 2027: deadlock -> closed.
    tick(app, datetime.fromisoformat(WINDOW_END))
    lapsed = show(app, "C2")
    assert (lapsed["state"], lapsed["closed_by"]) == ("closed", "deadline.referral_window")
    window = [d for d in lapsed["deadlines"] if d["kind"] == "referral_window"]
    assert [(d["due_at"], d["fired_at"] is not None) for d in window] == [(WINDOW_END, True)]
    report = ingest(app, tmp_path, "b.jsonl", [
        simple("complaint.referred_to_ombudsman", "C2-o", "C2", "2027-03-01T10:00:00+00:00"),
    ])
    assert report.as_json() == {"applied": 1, "duplicates": 0, "rejected": 0}
    shown = show(app, "C2")
    assert (shown["state"], shown["late_referral"]) == ("ombudsman", True)
    counts = backlog(app, "2027-03-02T00:00:00+00:00")
    assert counts["late_referrals"] == 1 and counts["by_state"]["ombudsman"] == 1


def test_referral_exactly_at_the_window_end_after_withdrawal_is_late(
        app: Application, tmp_path: Path) -> None:
    # "not before the end of the window" is late: the end instant itself is late.
    report = ingest(app, tmp_path, "a.jsonl", [
        *deadlocked("C1"),
        simple("complaint.withdrawn", "C1-w", "C1", "2026-03-03T10:00:00+00:00"),
        simple("complaint.referred_to_ombudsman", "C1-o", "C1", WINDOW_END),
    ])
    assert report.rejected == 0, report.rejections
    assert (show(app, "C1")["state"], show(app, "C1")["late_referral"]) == ("ombudsman", True)


def test_referral_from_closed_without_a_signposting_letter_is_rejected(
        app: Application, tmp_path: Path) -> None:
    report = ingest(app, tmp_path, "a.jsonl", [
        received("C3-r", "C3", "2026-01-05T10:00:00+00:00"),
        simple("complaint.withdrawn", "C3-w", "C3", "2026-01-06T10:00:00+00:00"),
        simple("complaint.referred_to_ombudsman", "C3-o", "C3", "2026-01-07T10:00:00+00:00"),
    ])
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 1}
    assert report.rejections == [(3, "complaint.referred_to_ombudsman not allowed in state "
                                     "closed (no 8-week or deadlock letter has been issued)")]
    assert show(app, "C3")["state"] == "closed"


def test_closed_by_the_ombudsman_is_not_referable(app: Application, tmp_path: Path) -> None:
    report = ingest(app, tmp_path, "a.jsonl", [
        *deadlocked("C4"),
        simple("complaint.referred_to_ombudsman", "C4-o", "C4", "2026-02-10T10:00:00+00:00"),
        simple("complaint.ombudsman_decision", "C4-n", "C4", "2026-04-01T10:00:00+01:00",
               accepted=False),
        simple("complaint.referred_to_ombudsman", "C4-o2", "C4", "2026-04-02T10:00:00+01:00",
               ombudsman_ref="EO-2"),
    ])
    assert report.as_json() == {"applied": 5, "duplicates": 0, "rejected": 1}
    number, reason = report.rejections[0]
    assert number == 6
    assert reason.startswith("complaint.referred_to_ombudsman not allowed in state closed "
                             "(closed by complaint.ombudsman_decision")
    shown = show(app, "C4")
    assert (shown["state"], shown["closed_by"]) == ("closed", "complaint.ombudsman_decision")


@pytest.mark.parametrize("state", ["deadlock", "ombudsman"])
def test_reassignment_in_deadlock_and_ombudsman(
        app: Application, tmp_path: Path, state: str) -> None:
    events = deadlocked("C5")
    if state == "ombudsman":
        events.append(simple("complaint.referred_to_ombudsman", "C5-o", "C5",
                             "2026-02-10T10:00:00+00:00"))
    events.append(assigned("C5-a2", "C5", "2026-02-11T10:00:00+00:00",
                           handler={"id": "h-7", "name": "Priya Shah"}))
    report = ingest(app, tmp_path, "a.jsonl", events)
    assert report.rejected == 0, report.rejections
    shown = show(app, "C5")
    assert shown["state"] == state
    assert shown["handler"] == {"id": "h-7", "name": "Priya Shah"}
    last = shown["history"][-1]
    assert (last["type"], last["from"], last["to"]) == ("complaint.assigned", state, state)


def test_show_and_backlog_on_the_command_line_name_a_late_referral(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from consumers.cli import main

    path = write_jsonl(tmp_path / "late.jsonl", [
        *deadlocked("C1"),
        simple("complaint.withdrawn", "C1-w", "C1", "2026-03-03T10:00:00+00:00"),
        simple("complaint.referred_to_ombudsman", "C1-o", "C1", "2027-03-01T10:00:00+00:00"),
    ])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(path), "--db", db]).exit_code == 0
    shown = runner.invoke(main, ["show", "C1", "--db", db, "--format", "json"])
    assert shown.exit_code == 0
    document = json.loads(shown.stdout)
    assert (document["state"], document["late_referral"]) == ("ombudsman", True)
    text = runner.invoke(main, ["show", "C1", "--db", db]).stdout
    assert "LATE REFERRAL" in text.splitlines()[1]
    counts = runner.invoke(main, ["backlog", "--db", db, "--format", "json",
                                  "--as-of", "2027-03-02T00:00:00Z"])
    assert json.loads(counts.stdout)["late_referrals"] == 1


@pytest.mark.databases_only  # a migration
def test_migration_0010_takes_closed_by_from_the_history(app: App, tmp_path: Path) -> None:
    # A record written before 0010: closed by a withdrawal (C1), by the Ombudsman's decision
    # (C4), and one not closed (C5). Down to 0004 (the columns go), up again: closed_by comes
    # back from each closed complaint's latest transition into closed; C1 is referable.
    from alembic import command

    from workflow.database import alembic_config

    report = ingest(app, tmp_path, "a.jsonl", [
        *deadlocked("C1"),
        simple("complaint.withdrawn", "C1-w", "C1", "2026-03-03T10:00:00+00:00"),
        *deadlocked("C4"),
        simple("complaint.referred_to_ombudsman", "C4-o", "C4", "2026-02-10T10:00:00+00:00"),
        simple("complaint.ombudsman_decision", "C4-n", "C4", "2026-04-01T10:00:00+01:00",
               accepted=False),
        *deadlocked("C5"),
    ])
    assert report.rejected == 0, report.rejections
    config = alembic_config(app.engine)
    command.downgrade(config, "0004")
    command.upgrade(config, "head")
    assert [show(app, cid)["closed_by"] for cid in ("C1", "C4", "C5")] == [
        "complaint.withdrawn", "complaint.ombudsman_decision", None]
    assert ingest(app, tmp_path, "b.jsonl", [
        simple("complaint.referred_to_ombudsman", "C1-o", "C1", "2026-06-01T09:00:00+01:00"),
    ]).applied == 1
