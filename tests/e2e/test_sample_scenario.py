"""End to end through the command line: the bundled sample, with its outcome worked by hand.

Kilowatt Connect procedure (ENG; acknowledgement at D+1, progress update after 10 x 24 h,
eight weeks = 56 x 24 h). The file's last event (10 Mar 2026 09:00 UTC) sets the clock.

C-100 Mon 5 Jan 09:00 by phone with a handler -> immediate; resolved 15:00 the same day
      (before D+1, so no resolution letter). Escalation on 7 Jan refused: it is resolved.
      Its cycle-1 acknowledgement (end of Tue 6 Jan) fires on 7 Jan: resolved, no letter.
      Reopened Mon 12 Jan 10:00 (cycle 2): acknowledgement at the end of Tue 13 Jan -> letter;
      progress update 22 Jan 10:00 -> letter (reopened is open); the cycle-1 progress update
      (15 Jan 09:00) no longer applies. Resolved Fri 23 Jan 10:00, after the cycle's D+1 ->
      resolution letter. Eight weeks (2 Mar 09:00) finds it resolved.
C-104 the same complaint through Citizens Advice -> duplicate of C-100; events naming it refused.
C-101 Tue 6 Jan by email; acknowledged by the handler (no letter); resolved Fri 9 Jan 10:00,
      after D+1 (end of Wed 7 Jan) -> resolution letter. A second complaint.received for it
      is refused; a re-delivered assignment counts as a duplicate.
C-102 Wed 7 Jan by letter; acknowledgement at end of Thu 8 Jan -> letter (escalated that
      morning, still open); senior manager review due end of Thu 15 Jan but the manager
      responded 12 Jan -> no update; progress update Sat 17 Jan 14:00 -> letter; dissatisfied
      Tue 13 Jan -> deadlock letter at the end of the 5th working day, Tue 20 Jan; referred to
      the Ombudsman on 26 Jan -> ombudsman.
C-103 Thu 8 Jan 10:30 by webchat (B22 with explanation): acknowledgement end of Fri 9 Jan,
      progress update Sun 18 Jan 10:30, eight weeks Thu 5 Mar 10:30 -> eight_week + letter.
C-105 first sent as B22 without explanation (refused), then corrected under the same event id
      (applied) on Wed 14 Jan 09:00: acknowledgement end of Thu 15 Jan, progress update Sat 24
      Jan 09:00; eight weeks Wed 11 Mar 09:00 is still pending when the file ends.
Refused besides: a line that is not JSON, category B99, an instant without an offset, an
unknown complaint, an unknown event type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from consumers.cli import main

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
END = "T23:59:59.999999+00:00"


def run_json(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sample_scenario(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'sample.db'}"
    runner = CliRunner()
    assert run_json(runner, "ingest", str(SAMPLE), "--db", db) == {
        "applied": 19, "duplicates": 1, "rejected": 9}

    states = {cid: run_json(runner, "show", cid, "--db", db)["state"]
              for cid in ("C-100", "C-101", "C-102", "C-103", "C-104", "C-105")}
    assert states == {"C-100": "resolved", "C-101": "resolved", "C-102": "ombudsman",
                      "C-103": "eight_week", "C-104": "duplicate", "C-105": "received"}

    def letters(cid: str) -> list[tuple[str, str]]:
        shown = run_json(runner, "show", cid, "--db", db)
        return [(x["kind"], x["issued_at"]) for x in shown["letters"]]

    assert letters("C-100") == [("acknowledgement", "2026-01-13" + END),
                                ("progress_update", "2026-01-22T10:00:00+00:00"),
                                ("resolution", "2026-01-23T10:00:00+00:00")]
    assert letters("C-101") == [("resolution", "2026-01-09T10:00:00+00:00")]
    assert letters("C-102") == [("acknowledgement", "2026-01-08" + END),
                                ("progress_update", "2026-01-17T14:00:00+00:00"),
                                ("deadlock", "2026-01-20" + END)]
    # (v2) Progress updates every 10 x 24 h while open. C-103 (received Thu 8 Jan 10:30):
    # 18 Jan, 28 Jan, 7 Feb, 17 Feb, 27 Feb 10:30; eight weeks on 5 Mar 10:30; the next
    # (9 Mar 10:30) finds eight_week. C-105 (received Wed 14 Jan 09:00): 24 Jan, 3 Feb,
    # 13 Feb, 23 Feb, 5 Mar 09:00, with the next due 15 Mar 09:00. (C-100's and C-102's
    # second ones find them resolved, in deadlock: no letter.)
    assert letters("C-103") == [
        ("acknowledgement", "2026-01-09" + END),
        *[("progress_update", f"2026-{day}T10:30:00+00:00")
          for day in ("01-18", "01-28", "02-07", "02-17", "02-27")],
        ("eight_week", "2026-03-05T10:30:00+00:00")]
    assert letters("C-104") == []
    assert letters("C-105") == [
        ("acknowledgement", "2026-01-15" + END),
        *[("progress_update", f"2026-{day}T09:00:00+00:00")
          for day in ("01-24", "02-03", "02-13", "02-23", "03-05")]]
    c100 = run_json(runner, "show", "C-100", "--db", db)
    assert c100["cycle"] == 2
    assert c100["reference"].startswith("KC-")

    rejected = run_json(runner, "rejected", "--db", db)
    assert [(r["position"], r["reason"]) for r in rejected] == [
        ("line 9", "complaint.escalation_requested not allowed in state resolved"),
        ("line 13", "not JSON: Expecting value at line 1 column 1"),
        ("line 14", "complaint C-101 already exists (complaint.received for an existing id)"),
        ("line 19", "other_explanation is required when category is B22"),
        ("line 21", "category B99 is not one of B5..B22"),
        ("line 22", "occurred_at has no UTC offset"),
        ("line 24", "unknown complaint C-999"),
        ("line 25", "unknown event type 'complaint.praised'"),
        ("line 26", "complaint C-104 is a duplicate record of C-100; send its events for C-100"),
    ]
    assert rejected[1]["raw"] == "this line is not JSON"
    assert all(r["source"] == str(SAMPLE) for r in rejected)

    backlog = run_json(runner, "backlog", "--db", db, "--as-of", "2026-03-10T09:00:00+00:00")
    assert backlog["by_state"] == {
        "received": 1, "immediate": 0, "senior_manager": 0, "deadlock": 0, "eight_week": 1,
        "ombudsman": 1, "resolved": 2, "reopened": 0, "closed": 0, "duplicate": 1}
    assert set(backlog["overdue"].values()) == {0}
    # Due by the end of the 5th working day after Tue 10 Mar (Tue 17 Mar): C-105's 8 weeks
    # (Wed 11 Mar 09:00) and (v2) its next progress update (Sun 15 Mar 09:00).
    assert backlog["due_within_5_working_days"] == {
        "acknowledgement": 0, "progress_update": 1, "senior_manager_review": 0,
        "deadlock_letter": 0, "eight_week": 1, "remedy": 0, "referral_window": 0}

    assert run_json(runner, "tick", "--until", "2026-03-12T00:00:00Z", "--db", db) == {"fired": 1}
    assert run_json(runner, "show", "C-105", "--db", db)["state"] == "eight_week"


def test_ingesting_the_same_file_twice_applies_nothing_more(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'twice.db'}"
    runner = CliRunner()
    run_json(runner, "ingest", str(SAMPLE), "--db", db)
    before = {cid: run_json(runner, "show", cid, "--db", db) for cid in ("C-100", "C-102")}
    # The 19 applied lines and the re-delivery are duplicates now, and so is the refused
    # first version of e-16 (its id was applied by the correction); the other 8 bad lines
    # are refused again (a refused event id is never recorded as applied).
    assert run_json(runner, "ingest", str(SAMPLE), "--db", db) == {
        "applied": 0, "duplicates": 21, "rejected": 8}
    after = {cid: run_json(runner, "show", cid, "--db", db) for cid in ("C-100", "C-102")}
    assert after == before


def test_unreadable_or_non_utf8_file_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'x.db'}"
    result = runner.invoke(main, ["ingest", str(tmp_path / "missing.jsonl"), "--db", db])
    assert result.exit_code == 2
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(b'{"summary": "caf\xe9"}\n')
    result = runner.invoke(main, ["ingest", str(latin), "--db", db])
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


def test_show_unknown_complaint_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", "nope", "--db", f"sqlite:///{tmp_path / 'y.db'}"])
    assert result.exit_code == 1


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path) -> None:
    # A UTF-8 file saved with a BOM: the first line is still a JSON object (an enquiry), not a
    # line that "is not JSON".
    path = tmp_path / "bom.jsonl"
    line = json.dumps({"event_id": "k1", "type": "contact.received", "contact_id": "K-1",
                       "occurred_at": "2026-01-05T09:00:00Z", "channel": "telephone",
                       "kind": "enquiry"})
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\r\n")
    db = f"sqlite:///{tmp_path / 'bom.db'}"
    assert run_json(CliRunner(), "ingest", str(path), "--db", db) == {
        "applied": 1, "duplicates": 0, "rejected": 0}


def test_backlog_defaults_to_now_but_never_before_the_record(tmp_path: Path) -> None:
    # One complaint received Tuesday 14 February 2090, 10:00 GMT, far after today's date.
    # Offline, now is event time (docs/rules.md s.5), so `backlog` with no --as-of reads the record
    # as of that instant, not as of today (when nothing in it would be due for decades):
    # - acknowledgement (D+1): end of Wednesday 15 February, within 5 working days -> 1;
    # - progress update (10 x 24 h): Friday 24 February 10:00, after the 5th working day
    #   (Tuesday 21 February) -> 0; eight weeks (11 April): 0;
    # - nothing is overdue; by_state: immediate 1 (the receipt names a handler, docs/rules.md s.4).
    path = tmp_path / "future.jsonl"
    first = SAMPLE.read_text(encoding="utf-8").splitlines()[0]
    event = json.loads(first) | {"occurred_at": "2090-02-14T10:00:00+00:00"}
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'future.db'}"
    runner = CliRunner()
    assert run_json(runner, "ingest", str(path), "--db", db)["applied"] == 1
    backlog = run_json(runner, "backlog", "--db", db)
    assert backlog["as_of"] == "2090-02-14T10:00:00+00:00"
    assert backlog["by_state"]["immediate"] == 1
    assert set(backlog["overdue"].values()) == {0}
    assert backlog["due_within_5_working_days"] == {
        "acknowledgement": 1, "progress_update": 0, "senior_manager_review": 0,
        "deadlock_letter": 0, "eight_week": 0, "remedy": 0, "referral_window": 0}
