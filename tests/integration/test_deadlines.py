"""Deadline rules (docs/rules.md s.5) and letters issued by them, with hand-worked dates.

Each scenario is ingested through the same path as `complaints ingest` (event time) and
`tick`. Expected instants were worked out by hand from a calendar; comments say why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.file_ingest import ingest_file, tick
from tests.builders import assigned, received, reopened, resolved, simple, write_jsonl
from tests.stores import stored_letters
from workflow import queries
from workflow.bootstrap import App, Application

GMT_END = "T23:59:59.999999+00:00"  # end of a local date in winter
BST_END = "T22:59:59.999999+00:00"  # end of a local date in summer


_backend: dict[str, Callable[[str], Application]] = {}


@pytest.fixture(autouse=True)
def on_every_backend(backend: Callable[[str], Application]) -> None:
    """Every scenario here runs on the in-memory unit of work, on SQLite and on PostgreSQL;
    those marked `databases_only` read a report through SQL, and run on the two databases."""
    _backend["make"] = backend


def run(tmp_path: Path, events: list[Any], until: str | None = None,
        procedure: str = "kilowatt-connect") -> Any:
    app = _backend["make"](procedure)
    report = ingest_file(app, write_jsonl(tmp_path / "events.jsonl", events))
    assert report.rejected == 0, report.rejections
    if until:
        tick(app, datetime.fromisoformat(until))
    return app


def show(app: Application, complaint_id: str) -> dict[str, Any]:
    shown = app.show_complaint(complaint_id)
    assert shown is not None
    return shown


def deadlines(shown: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in shown["deadlines"] if d["kind"] == kind]


def letters(shown: dict[str, Any]) -> list[tuple[str, str]]:
    return [(x["kind"], x["issued_at"]) for x in shown["letters"]]


def test_friday_receipt_deadlines_and_letters(tmp_path: Path) -> None:
    # Received Fri 9 Jan 2026 15:00 GMT.
    #  acknowledgement: D+1 = end of Mon 12 Jan.
    #  progress update (Kilowatt Connect 10 days): 9 Jan 15:00 + 240 h = Mon 19 Jan 15:00;
    #   (v2) then every 10 x 24 h while open: 29 Jan, 8 Feb, 18 Feb, 28 Feb 15:00 (all GMT);
    #   the next, 10 Mar 15:00, is after the `until` instant (and would find eight_week).
    #  eight weeks: 9 Jan + 56 days = Fri 6 Mar 15:00 (22 days to 31 Jan, 28 in Feb, 6).
    #  referral window from the 8-week letter (6 Mar 2026): end of 6 Mar 2027 (GMT).
    app = run(tmp_path, [received("e1", "C1", "2026-01-09T15:00:00+00:00")],
              until="2026-03-10T00:00:00+00:00")
    shown = show(app, "C1")
    assert shown["state"] == "eight_week"
    assert letters(shown) == [
        ("acknowledgement", "2026-01-12" + GMT_END),
        ("progress_update", "2026-01-19T15:00:00+00:00"),
        ("progress_update", "2026-01-29T15:00:00+00:00"),
        ("progress_update", "2026-02-08T15:00:00+00:00"),
        ("progress_update", "2026-02-18T15:00:00+00:00"),
        ("progress_update", "2026-02-28T15:00:00+00:00"),
        ("eight_week", "2026-03-06T15:00:00+00:00"),
    ]
    pending = [d for d in deadlines(shown, "progress_update") if d["fired_at"] is None]
    assert [d["due_at"] for d in pending] == ["2026-03-10T15:00:00+00:00"]
    assert deadlines(shown, "referral_window")[0]["due_at"] == "2027-03-06" + GMT_END
    assert deadlines(shown, "referral_window")[0]["fired_at"] is None


@pytest.mark.parametrize(("received_at", "d1", "why"), [
    ("2026-01-10T11:00:00+00:00", "2026-01-12" + GMT_END, "Saturday -> end of Monday"),
    ("2026-01-11T11:00:00+00:00", "2026-01-12" + GMT_END, "Sunday -> end of Monday"),
    ("2026-04-02T09:00:00+00:00", "2026-04-07" + BST_END,
     "Thu before Easter: Good Friday 3 Apr, weekend, Easter Monday 6 Apr -> end of Tue 7 Apr"),
    ("2026-12-24T12:00:00+00:00", "2026-12-29" + GMT_END,
     "Christmas Eve: 25 Dec Fri, weekend, Mon 28 Dec Boxing Day substitute -> Tue 29 Dec"),
    ("2026-05-22T16:00:00+00:00", "2026-05-26" + BST_END,
     "Fri before the spring bank holiday (Mon 25 May) -> end of Tue 26 May (BST)"),
    ("2026-07-01T23:30:00+00:00", "2026-07-03" + BST_END,
     "23:30 UTC on 1 Jul is 00:30 BST on Thu 2 Jul -> D+1 is end of Fri 3 Jul"),
])
def test_acknowledgement_at_d_plus_1(tmp_path: Path, received_at: str, d1: str, why: str) -> None:
    app = run(tmp_path, [received("e1", "C1", received_at)])
    assert deadlines(show(app, "C1"), "acknowledgement")[0]["due_at"] == d1, why


def test_scottish_second_of_january(tmp_path: Path) -> None:
    # Received Wed 31 Dec 2025. England: Thu 1 Jan holiday -> D+1 end of Fri 2 Jan.
    # Scotland: 2 Jan is also a bank holiday -> end of Mon 5 Jan 2026.
    config = tmp_path / "scottish.toml"
    bundled = Path(__file__).parents[2] / "workflow" / "procedures" / "kilowatt-connect.toml"
    config.write_text(bundled.read_text().replace('region = "ENG"', 'region = "SCT"'))
    scot = run(tmp_path, [received("e1", "SCOT-1", "2025-12-31T10:00:00+00:00")],
               procedure=str(config))
    assert deadlines(show(scot, "SCOT-1"), "acknowledgement")[0]["due_at"] == (
        "2026-01-05" + GMT_END)
    (tmp_path / "eng").mkdir()
    eng = run(tmp_path / "eng", [received("e2", "ENG-1", "2025-12-31T10:00:00+00:00")])
    assert deadlines(show(eng, "ENG-1"), "acknowledgement")[0]["due_at"] == (
        "2026-01-02" + GMT_END)


def test_eight_weeks_is_elapsed_time_across_bst(tmp_path: Path) -> None:
    # 2 Mar 2026 10:00 GMT + 56 x 24 h = 27 Apr 10:00 UTC, which is 11:00 BST.
    app = run(tmp_path, [received("e1", "C1", "2026-03-02T10:00:00+00:00")])
    assert deadlines(show(app, "C1"), "eight_week")[0]["due_at"] == "2026-04-27T10:00:00+00:00"


def test_acknowledged_by_handler_sends_no_letter(tmp_path: Path) -> None:
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        simple("complaint.acknowledged", "e2", "C1", "2026-01-05T09:05:00+00:00"),
    ], until="2026-01-10T00:00:00+00:00")
    shown = show(app, "C1")
    assert letters(shown) == []
    assert deadlines(shown, "acknowledgement")[0]["outcome"] == (
        "no longer applies: acknowledged by the handler")


def test_resolution_letter_only_after_d_plus_1(tmp_path: Path) -> None:
    # C1 resolved Tue 6 Jan 18:00, before its D+1 (end of Tue 6 Jan): no resolution letter,
    # and the acknowledgement deadline no longer applies (resolved).
    # C2 received the same Monday, resolved Wed 7 Jan 09:00: after D+1 -> resolution letter.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        received("e2", "C2", "2026-01-05T09:00:00+00:00"),
        resolved("e3", "C1", "2026-01-06T18:00:00+00:00"),
        resolved("e4", "C2", "2026-01-07T09:00:00+00:00"),
    ])
    assert letters(show(app, "C1")) == []
    # C2's acknowledgement fired at its D+1 (before the resolution arrived).
    assert letters(show(app, "C2")) == [
        ("acknowledgement", "2026-01-06" + GMT_END),
        ("resolution", "2026-01-07T09:00:00+00:00"),
    ]


def test_reopen_after_eight_weeks(tmp_path: Path) -> None:
    # Received Mon 5 Jan 09:00, resolved 20 Jan (resolution letter: after D+1).
    # Eight weeks: 2 Mar 09:00 -> fires while resolved: no longer applies.
    # Reopened Tue 10 Mar 10:00: the original eight-week instant has passed, so a new
    # eight-week deadline falls at the reopen's D+1: end of Wed 11 Mar. The reopen's
    # acknowledgement is due at the same instant and was created first, so it fires first.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        resolved("e2", "C1", "2026-01-20T10:00:00+00:00"),
        reopened("e3", "C1", "2026-03-10T10:00:00+00:00"),
    ], until="2026-03-31T00:00:00+00:00")
    shown = show(app, "C1")
    assert shown["state"] == "eight_week"
    assert shown["cycle"] == 2
    first, second = deadlines(shown, "eight_week")
    assert first["due_at"] == "2026-03-02T09:00:00+00:00"
    assert first["outcome"] == "no longer applies: state resolved"
    assert second["due_at"] == "2026-03-11" + GMT_END
    # Letters list by issued_at then letter_id (CONTRACT), so the two letters of 11 Mar
    # are compared as a set; the firing order shows in the history.
    assert letters(shown)[:3] == [
        ("acknowledgement", "2026-01-06" + GMT_END),
        ("progress_update", "2026-01-15T09:00:00+00:00"),
        ("resolution", "2026-01-20T10:00:00+00:00"),
    ]
    assert sorted(letters(shown)[3:]) == [
        ("acknowledgement", "2026-03-11" + GMT_END),
        ("eight_week", "2026-03-11" + GMT_END),
    ]
    fired_on_11_march = [h["type"] for h in shown["history"]
                         if h["at"] == "2026-03-11" + GMT_END]
    assert fired_on_11_march == ["deadline.acknowledgement", "deadline.eight_week"]
    # (v2) Cycle 1's chain: 15 Jan 09:00 (letter), then 25 Jan 09:00 finds it resolved: no
    # letter, no next. Cycle 2's first (20 Mar 10:00) finds it in eight_week: no letter.
    progress = [(d["cycle"], d["due_at"], d["outcome"])
                for d in deadlines(shown, "progress_update")]
    assert progress[1:] == [
        (1, "2026-01-25T09:00:00+00:00", "no longer applies: state resolved"),
        (2, "2026-03-20T10:00:00+00:00", "no longer applies: state eight_week"),
    ]
    assert progress[0][:2] == (1, "2026-01-15T09:00:00+00:00")


def test_reopen_before_eight_weeks_keeps_the_original_deadline(tmp_path: Path) -> None:
    # Received 5 Jan, resolved 7 Jan, reopened 2 Feb: the eight-week instant (2 Mar 09:00)
    # has not passed, so no new one is created and the original fires on 2 Mar.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        resolved("e2", "C1", "2026-01-07T10:00:00+00:00"),
        reopened("e3", "C1", "2026-02-02T10:00:00+00:00"),
    ], until="2026-03-03T00:00:00+00:00")
    shown = show(app, "C1")
    assert [d["due_at"] for d in deadlines(shown, "eight_week")] == ["2026-03-02T09:00:00+00:00"]
    assert shown["state"] == "eight_week"


def test_two_escalations_in_one_cycle_each_get_an_update(tmp_path: Path) -> None:
    # Escalation 1 Tue 6 Jan 10:00 -> review due 5 working days later: 7, 8, 9, 12, 13 Jan
    # -> end of Tue 13 Jan; no senior manager response -> senior_manager_update letter.
    # Progress update (5 Jan 09:00 + 240 h = Thu 15 Jan 09:00): senior_manager is open.
    # (v2) and every 10 x 24 h while open: 25 Jan, 4 Feb, 14 Feb, 24 Feb 09:00.
    # Eight weeks (5 Jan 09:00 + 56 d = 2 Mar 09:00) -> eight_week letter and state.
    # Escalation 2 Thu 5 Mar 10:00 (from eight_week) -> due 6, 9, 10, 11, 12 Mar -> end of
    # Thu 12 Mar -> a second senior_manager_update (once per escalation).
    # The progress update due 6 Mar 09:00 finds the complaint open again (senior_manager
    # since 5 Mar): it is not the one firing outside open, so the chain goes on: letters on
    # 6 Mar and 16 Mar 09:00 (the next, 26 Mar, is after `until`).
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00", handler={"id": "h", "name": "Sam"}),
        simple("complaint.acknowledged", "e2", "C1", "2026-01-05T09:01:00+00:00"),
        simple("complaint.escalation_requested", "e3", "C1", "2026-01-06T10:00:00+00:00"),
        simple("complaint.escalation_requested", "e4", "C1", "2026-03-05T10:00:00+00:00"),
    ], until="2026-03-20T00:00:00+00:00")
    shown = show(app, "C1")
    assert shown["state"] == "senior_manager"
    assert [k for k, _ in letters(shown)] == [
        "senior_manager_update", *["progress_update"] * 5, "eight_week", "progress_update",
        "senior_manager_update", "progress_update"]
    assert [at for k, at in letters(shown) if k == "progress_update"] == [
        f"2026-{day}T09:00:00+00:00"
        for day in ("01-15", "01-25", "02-04", "02-14", "02-24", "03-06", "03-16")]
    assert [d["due_at"] for d in deadlines(shown, "senior_manager_review")] == [
        "2026-01-13" + GMT_END, "2026-03-12" + GMT_END]


def test_senior_manager_response_stops_the_update(tmp_path: Path) -> None:
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        simple("complaint.escalation_requested", "e2", "C1", "2026-01-06T10:00:00+00:00"),
        simple("complaint.senior_manager_response", "e3", "C1", "2026-01-08T10:00:00+00:00"),
    ], until="2026-01-20T00:00:00+00:00", procedure="lastmile")
    shown = show(app, "C1")
    assert "senior_manager_update" not in [k for k, _ in letters(shown)]
    assert deadlines(shown, "senior_manager_review")[0]["outcome"] == (
        "no longer applies: the senior manager has responded")


def test_deadlock_letter_five_working_days_after_dissatisfaction(tmp_path: Path) -> None:
    # Lastmile: dissatisfied Wed 14 Jan 10:00 -> 15, 16, 19, 20, 21 Jan -> end of Wed 21 Jan:
    # state deadlock, deadlock letter with the senior manager's position, no offer open.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        simple("complaint.escalation_requested", "e2", "C1", "2026-01-06T10:00:00+00:00"),
        simple("complaint.senior_manager_response", "e3", "C1", "2026-01-08T10:00:00+00:00",
               summary="We stand by the bill."),
        simple("complaint.dissatisfied", "e4", "C1", "2026-01-14T10:00:00+00:00"),
    ], until="2026-01-25T00:00:00+00:00", procedure="lastmile")
    shown = show(app, "C1")
    assert shown["state"] == "deadlock"
    assert letters(shown)[-1] == ("deadlock", "2026-01-21" + GMT_END)
    letter = next((x for x in stored_letters(app, "C1")
                   if x.letter_id == shown["letters"][-1]["letter_id"]), None)
    assert letter is not None
    assert letter.context["position"] == "We stand by the bill."
    assert letter.context["offer_open"] is False
    assert letter.context["referral_deadline"] == "2027-01-21"


def test_referral_window_runs_from_the_latest_letter(tmp_path: Path) -> None:
    # 8-week letter 2 Mar 2026 09:00; deadlock reached Fri 10 Apr 10:00 UTC (BST date 10 Apr)
    # -> deadlock letter. The 8-week letter's window (end of 2 Mar 2027) does nothing; the
    # deadlock letter's window ends at the end of 10 Apr 2027 (BST) -> closed.
    events = [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        simple("complaint.deadlock_reached", "e2", "C1", "2026-04-10T10:00:00+00:00"),
    ]
    app = run(tmp_path, events, until="2027-04-10T12:00:00+00:00")
    assert show(app, "C1")["state"] == "deadlock"
    tick(app, datetime.fromisoformat("2027-04-11T00:00:00+00:00"))
    shown = show(app, "C1")
    assert shown["state"] == "closed"
    windows = deadlines(shown, "referral_window")
    assert [w["due_at"] for w in windows] == ["2027-03-02" + GMT_END, "2027-04-10" + BST_END]
    assert windows[0]["outcome"] == (
        "no longer applies: a later 8-week or deadlock letter was issued")


@pytest.mark.databases_only  # the backlog is a report, read through SQL
def test_remedy_deadline_and_overdue_alert(tmp_path: Path) -> None:
    # Accepted decision with a remedy, notified Sat 10 Jan 2026 -> remedy due end of the date
    # 28 days later: Sat 7 Feb 2026 (GMT).
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-01T09:00:00+00:00"),
        simple("complaint.deadlock_reached", "e2", "C1", "2026-01-02T09:00:00+00:00"),
        simple("complaint.referred_to_ombudsman", "e3", "C1", "2026-01-03T09:00:00+00:00"),
        simple("complaint.ombudsman_decision", "e4", "C1", "2026-01-09T09:00:00+00:00",
               notified_at="2026-01-10T08:00:00+00:00"),
    ], until="2026-02-08T00:00:00+00:00")
    shown = show(app, "C1")
    remedy = deadlines(shown, "remedy")[0]
    assert remedy["due_at"] == "2026-02-07" + GMT_END
    assert remedy["outcome"] == "remedy overdue: complaint.remedy_overdue raised"
    assert isinstance(app, App)
    with app.sessions() as session:
        counts = queries.backlog(session, datetime.fromisoformat("2026-02-08T00:00:00+00:00"),
                                 app.procedure.calendar)
    assert counts["overdue"]["remedy"] == 1
    assert counts["by_state"]["ombudsman"] == 1


def test_deadline_of_an_earlier_cycle_does_nothing(tmp_path: Path) -> None:
    # Cycle 1's progress update (15 Jan 09:00) is still pending when the complaint is
    # resolved (6 Jan) and reopened (8 Jan): cycle 2 has started, so it does nothing.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        resolved("e2", "C1", "2026-01-06T10:00:00+00:00"),
        reopened("e3", "C1", "2026-01-08T10:00:00+00:00"),
    ], until="2026-01-16T00:00:00+00:00")
    first = deadlines(show(app, "C1"), "progress_update")[0]
    assert first["outcome"] == "no longer applies: cycle 2 has started"


def test_duplicate_record_has_no_deadlines_and_refuses_later_events(tmp_path: Path) -> None:
    app = _backend["make"]("kilowatt-connect")
    report = ingest_file(app, write_jsonl(tmp_path / "e.jsonl", [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        received("e2", "C2", "2026-01-05T12:00:00+00:00", source="citizens_advice",
                 duplicate_of="C1"),
        received("e3", "C3", "2026-01-05T12:00:00+00:00", duplicate_of="C2"),
        received("e4", "C4", "2026-01-05T12:00:00+00:00", duplicate_of="C404"),
        assigned("e5", "C2", "2026-01-05T13:00:00+00:00"),
    ]))
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 3}
    assert [reason for _, reason in report.rejections] == [
        "duplicate_of names C2, which is itself a duplicate record (name the original, C1)",
        "duplicate_of names unknown complaint C404",
        "complaint C2 is a duplicate record of C1; send its events for C1",
    ]
    shown = show(app, "C2")
    assert shown["state"] == "duplicate"
    assert shown["deadlines"] == [] and shown["letters"] == []
    assert shown["duplicate_of"] == "C1"


def test_expected_date_after_a_late_reopen_is_not_in_the_past(tmp_path: Path) -> None:
    # docs/rules.md s.6: the progress update gives a "new expected date"; README reading: the
    # resolution target counted again, never later than the eight-week date. Once the eight
    # weeks have passed that cap would name a date before the letter itself.
    # C1 received Mon 5 Jan 2026 09:00 GMT; eight weeks 2 Mar 09:00 -> 8-week letter;
    # resolved Tue 10 Mar; reopened Wed 1 Apr 10:00 UTC (11:00 BST), cycle 2.
    #  acknowledgement at the reopen's D+1, end of Thu 2 Apr (BST): expected by
    #    1 Apr 10:00 + 240 h = Sat 11 Apr (not 2 Mar, already passed).
    #  progress update 11 Apr 10:00 UTC (reopened is open): 11 Apr + 240 h = Tue 21 Apr.
    #  (v2) cycle 1's chain: 15 Jan, 25 Jan, 4 Feb, 14 Feb, 24 Feb 09:00, each expecting
    #    10 days on (24 Feb's 6 Mar capped to the eight-week date, 2 Mar, still ahead);
    #    6 Mar 09:00 finds eight_week: no letter, no next. Cycle 2's next (21 Apr 10:00) is
    #    after `until`.
    # C2 received Mon 5 Jan 09:00, resolved Tue 6 Jan, reopened Tue 24 Feb 10:00 GMT: the
    #  eight weeks (2 Mar 09:00) are still ahead, so the cap applies: target 6 Mar 10:00,
    #  capped to 2 Mar, in the acknowledgement at the end of Wed 25 Feb.
    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        received("e2", "C2", "2026-01-05T09:00:00+00:00"),
        resolved("e3", "C2", "2026-01-06T10:00:00+00:00"),
        reopened("e4", "C2", "2026-02-24T10:00:00+00:00"),
        resolved("e5", "C1", "2026-03-10T10:00:00+00:00"),
        reopened("e6", "C1", "2026-04-01T10:00:00+00:00"),
    ], until="2026-04-20T00:00:00+00:00")
    def expected_by(complaint_id: str) -> list[tuple[str, int, str, str | None]]:
        rows = stored_letters(app, complaint_id)
        return sorted((x.kind, x.cycle, x.context["date"], x.context.get("expected_by"))
                      for x in rows if x.kind in ("acknowledgement", "progress_update"))

    assert expected_by("C1") == [
        ("acknowledgement", 1, "2026-01-06", "2026-01-15"),
        ("acknowledgement", 2, "2026-04-02", "2026-04-11"),
        ("progress_update", 1, "2026-01-15", "2026-01-25"),
        ("progress_update", 1, "2026-01-25", "2026-02-04"),
        ("progress_update", 1, "2026-02-04", "2026-02-14"),
        ("progress_update", 1, "2026-02-14", "2026-02-24"),
        ("progress_update", 1, "2026-02-24", "2026-03-02"),
        ("progress_update", 2, "2026-04-11", "2026-04-21"),
    ]
    assert ("acknowledgement", 2, "2026-02-25", "2026-03-02") in expected_by("C2")


def test_longest_ids_the_contract_allows(tmp_path: Path) -> None:
    # CONTRACT: complaint_id 1-64 chars, event_id 1-128 chars. A deadline fired by such an
    # escalation is recorded in the history as "deadline:<64>/senior_manager_review/<128>",
    # 224 characters, and its letter's cause is the 215-character deadline key; PostgreSQL
    # refused both at 200 and the ingest failed.
    # Received Mon 5 Jan 09:00; escalation Tue 6 Jan 10:00 -> review due end of Tue 13 Jan
    # (7, 8, 9, 12, 13 Jan), no response -> senior_manager_update letter.
    cid = "C" * 64
    app = run(tmp_path, [
        received("1" * 128, cid, "2026-01-05T09:00:00+00:00"),
        simple("complaint.escalation_requested", "2" * 128, cid, "2026-01-06T10:00:00+00:00"),
    ], until="2026-01-14T00:00:00+00:00")
    shown = show(app, cid)
    assert ("senior_manager_update", "2026-01-13" + GMT_END) in letters(shown)
    review = deadlines(shown, "senior_manager_review")[0]
    assert review["outcome"].startswith("senior_manager_update letter L-")
    assert f"deadline:{cid}/senior_manager_review/{'2' * 128}" in [
        h["event_id"] for h in shown["history"]]


@pytest.mark.databases_only  # column lengths, and the rejections read through SQL
def test_free_form_ids_of_any_length_are_stored_and_a_long_event_id_rejected(
    tmp_path: Path
) -> None:
    # CONTRACT: contact_id and ombudsman_ref are strings with no length limit; event_id is
    # 1-128 characters. PostgreSQL refused a 300-character contact_id in a 128-character
    # column and the whole ingest stopped; now each line gets its own outcome:
    # line 1, a 300-character event_id: rejected with the validation reason (stored as is);
    # line 2, C-B with a 300-character contact_id: applied;
    # lines 3-5, C-C received, deadlock reached, referred with a 300-character ombudsman_ref:
    # applied, C-C with the Ombudsman.
    app = _backend["make"]("kilowatt-connect")
    assert isinstance(app, App)
    events = [
        received("x" * 300, "C-A", "2026-01-05T09:00:00+00:00"),
        received("e2", "C-B", "2026-01-05T09:00:00+00:00", contact_id="c" * 300),
        received("e3", "C-C", "2026-01-05T09:00:00+00:00"),
        simple("complaint.deadlock_reached", "e4", "C-C", "2026-01-06T09:00:00+00:00",
               position="We stand by the bill.", offer_open=False),
        simple("complaint.referred_to_ombudsman", "e5", "C-C", "2026-01-07T09:00:00+00:00",
               ombudsman_ref="r" * 300),
    ]
    report = ingest_file(app, write_jsonl(tmp_path / "events.jsonl", events))
    assert (report.applied, report.duplicates, report.rejected) == (4, 0, 1)
    with app.sessions() as session:
        (rejection,) = queries.rejections(session)
    assert rejection["position"] == "line 1"
    assert rejection["reason"] == "event_id: String should have at most 128 characters"
    assert show(app, "C-B")["state"] == "received"
    assert show(app, "C-C")["state"] == "ombudsman"


def test_senior_manager_update_names_the_manager_assigned_to_the_review(tmp_path: Path) -> None:
    # docs/rules.md s.6: the senior manager update gives the senior manager's name "if known". A
    # response would stop the update, so the name is known when the complaint is (re)assigned
    # while with the senior manager (s.4: the handler changes, the state does not).
    # Lastmile. C1 and C2 received Mon 5 Jan 09:00, escalated Tue 6 Jan 10:00 -> review due
    # end of Tue 13 Jan (7, 8, 9, 12, 13 Jan). C1 assigned to Priya Shah on Wed 7 Jan.
    from letters.render import render

    app = run(tmp_path, [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        received("e2", "C2", "2026-01-05T09:00:00+00:00"),
        simple("complaint.escalation_requested", "e3", "C1", "2026-01-06T10:00:00+00:00"),
        simple("complaint.escalation_requested", "e4", "C2", "2026-01-06T10:00:00+00:00"),
        assigned("e5", "C1", "2026-01-07T10:00:00+00:00",
                 handler={"id": "m-2", "name": "Priya Shah"}),
    ], until="2026-01-14T00:00:00+00:00", procedure="lastmile")
    contexts = {}
    for cid in ("C1", "C2"):
        shown = show(app, cid)
        assert shown["state"] == "senior_manager"
        update = [x for x in shown["letters"] if x["kind"] == "senior_manager_update"]
        assert [x["issued_at"] for x in update] == ["2026-01-13" + GMT_END]
        contexts[cid] = next(dict(x.context) for x in stored_letters(app, cid)
                             if x.letter_id == update[0]["letter_id"])
    assert contexts["C1"]["senior_manager"] == {"id": "m-2", "name": "Priya Shah"}
    assert contexts["C2"]["senior_manager"] is None
    text = " ".join(render(contexts["C1"], "txt").decode().split())
    assert "Priya Shah, a senior manager, is reviewing" in text


def test_a_reopens_state_change_is_the_new_cycles(app: App, tmp_path: Path) -> None:
    # Contract, complaints.lifecycle: every applied change. The reopen on 10 Mar starts
    # cycle 2, so its change (resolved -> reopened) says cycle 2; the receipt's and the
    # resolution's said cycle 1.
    from sqlalchemy import select

    from workflow.schema import OutboxMessage
    ingest_file(app, write_jsonl(tmp_path / "reopen.jsonl", [
        received("e1", "C1", "2026-01-05T09:00:00+00:00"),
        resolved("e2", "C1", "2026-01-20T10:00:00+00:00"),
        reopened("e3", "C1", "2026-03-10T10:00:00+00:00"),
    ]))
    with app.sessions() as session:
        changes = [(m.payload["from"], m.payload["to"], m.payload["cycle"])
                   for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                   if m.payload.get("type") == "complaint.state_changed"]
    assert changes == [(None, "received", 1), ("received", "resolved", 1),
                       ("resolved", "reopened", 2)]
