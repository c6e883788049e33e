"""(v2) Submissions, diffs and the obligations calendar (docs/rules.md s.7, docs/contract.md (v2)),
worked by hand, on SQLite and PostgreSQL. Time is injected (`now`); every instant is UTC.

Stage 1, recorded before 20 Feb: S1 received Mon 5 Jan 10:00 by telephone (B13), resolved
15:00 the same day (A2); S2 received Mon 12 Jan 10:00 by email (B9), resolved Tue 20 Jan (A3);
the 31 Jan snapshot (1,000 electricity + 500 gas) sent 1 Feb.
  January as submitted on 20 Feb (2026-01-S1): A1 2, A2 1, A3 1, B9 1, B13 1, B23 2,
  C24 1,000, C25 500, C26 1,500, C27 = 2 x 100,000 / 1,500 = 133.33, C28 = 13.33.
Stage 2, recorded after it: S4 received Wed 28 Jan 10:00 by webform (B13): a late January
event; S3 received Tue 10 Feb 10:00 by letter (B11); the 31 Mar snapshot (1,100 + 600).
  January now: A1 3, A3 2, B13 2, B23 3, C27 = 300,000 / 1,500 = 200.00, C28 = 20.00.
  February has no snapshot dated in it: its check fails, so it is refused unless forced.
Stage 3: S2 recategorised to B22 "Smart meter display blank" on Sun 5 Apr.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from consumers.file_ingest import ingest_file
from reporting.export import HEADER_ROW, csv_bytes
from reporting.items import MONTHLY, QUARTERLY
from reporting.periods import parse_month, parse_quarter
from reporting.report import run_report
from reporting.submissions import (
    SubmissionRefused,
    changed_sources,
    diff,
    get,
    list_submissions,
    obligations,
    publish,
    stored_bytes,
    submit,
)
from tests.builders import event, received, resolved, simple, write_jsonl
from workflow.bootstrap import App, bootstrap


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def snapshot(event_id: str, sent: str, as_of: str, electricity: int, gas: int) -> dict[str, Any]:
    return event("accounts.snapshot", event_id, sent, as_of=as_of,
                 electricity_accounts=electricity, gas_accounts=gas)


STAGE_1 = [
    received("s1", "S1", "2026-01-05T10:00:00+00:00", category="B13"),
    resolved("s1r", "S1", "2026-01-05T15:00:00+00:00"),
    received("s2", "S2", "2026-01-12T10:00:00+00:00", channel="email", category="B9"),
    resolved("s2r", "S2", "2026-01-20T10:00:00+00:00"),
    snapshot("snap-jan", "2026-02-01T09:00:00+00:00", "2026-01-31", 1_000, 500),
]
STAGE_2 = [
    received("s4", "S4", "2026-01-28T10:00:00+00:00", channel="webform", category="B13"),
    received("s3", "S3", "2026-02-10T10:00:00+00:00", channel="letter", category="B11"),
    snapshot("snap-mar", "2026-04-01T09:00:00+00:00", "2026-03-31", 1_100, 600),
]
STAGE_3 = [simple("complaint.recategorised", "s2c", "S2", "2026-04-05T10:00:00+00:00",
                  category="B22", other_explanation="Smart meter display blank")]
JANUARY, FEBRUARY, Q1 = parse_month("2026-01"), parse_month("2026-02"), parse_quarter("2026-Q1")


def ingest(app: App, tmp_path: Path, name: str, events: list[dict[str, Any]]) -> None:
    outcome = ingest_file(app, write_jsonl(tmp_path / f"{name}.jsonl", events))
    assert outcome.rejected == 0, outcome.rejections


def canonical_sha(document: dict[str, Any]) -> str:
    text_ = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


@pytest.fixture
def submitted_january(app: App, tmp_path: Path) -> App:
    ingest(app, tmp_path, "stage1", STAGE_1)
    submit(app, MONTHLY, JANUARY, now=at("2026-02-20T10:00:00+00:00"), by="Priya Shah")
    return app


def test_submission_is_frozen_with_its_hash_and_files(submitted_january: App) -> None:
    app = submitted_january
    [sub] = list_submissions(app)
    assert (sub.id, sub.kind, sub.period, sub.by) == ("2026-01-S1", "monthly", "2026-01",
                                                      "Priya Shah")
    # As of defaults to now, the record holding nothing later.
    assert sub.as_of == sub.submitted_at == at("2026-02-20T10:00:00+00:00")
    assert sub.document["items"]["A1"] == 2 and sub.document["items"]["C27"] == 133.33
    assert sub.sha256 == canonical_sha(sub.document)
    assert (sub.forced, sub.reason) == (False, None)
    # The CSV is the return's CSV, Ofgem's four columns exactly.
    csv = stored_bytes(app, sub.id, ".csv")
    report = run_report(app, MONTHLY, JANUARY, sub.as_of)
    assert csv == csv_bytes(report)
    assert csv is not None and csv.startswith(b"period,code,description,value\r\n2026-01,A1,")


def test_workbook_names_the_submission(submitted_january: App, tmp_path: Path) -> None:
    sub = list_submissions(submitted_january)[0]
    path = tmp_path / "jan.xlsx"
    path.write_bytes(stored_bytes(submitted_january, sub.id, ".xlsx") or b"")
    sheet = load_workbook(path).worksheets[0]
    title = {sheet.cell(row, 1).value: sheet.cell(row, 2).value for row in range(2, HEADER_ROW)}
    assert title["Supplier"] == "Kilowatt Connect"
    assert title["Licence number"] == "PLACEHOLDER-LICENCE-NUMBER"
    assert title["Submission"] == "2026-01-S1"
    assert title["SHA-256"] == sub.sha256


def test_kept_byte_for_byte_and_for_good_across_a_restart(submitted_january: App,
                                                           db_url: str) -> None:
    app = submitted_january
    before = list_submissions(app)
    files = {s: stored_bytes(app, before[0].id, s) for s in (".csv", ".xlsx")}
    app.engine.dispose()
    again = bootstrap(db_url, "kilowatt-connect")
    try:
        assert list_submissions(again) == before
        assert {s: stored_bytes(again, before[0].id, s) for s in files} == files
        # Never updated or deleted: the database refuses both.
        for statement in ("UPDATE submissions SET submitted_by = 'x'", "DELETE FROM submissions"):
            with pytest.raises(DBAPIError, match="kept for good"), again.engine.begin() as conn:
                conn.execute(text(statement))
        assert list_submissions(again) == before
    finally:
        again.engine.dispose()


def test_refused_before_the_period_ends_and_when_checks_fail(submitted_january: App,
                                                              tmp_path: Path) -> None:
    app = submitted_january
    # February ends at 00:00 on 1 Mar (GMT).
    with pytest.raises(SubmissionRefused, match="2026-02 has not ended"):
        submit(app, MONTHLY, FEBRUARY, now=at("2026-02-28T23:59:59+00:00"), by="Priya Shah")
    with pytest.raises(SubmissionRefused, match="has not ended at the as-of"):
        submit(app, MONTHLY, FEBRUARY, now=at("2026-03-20T10:00:00+00:00"), by="Priya Shah",
               as_of=at("2026-02-27T00:00:00+00:00"))
    ingest(app, tmp_path, "stage2", STAGE_2)
    with pytest.raises(SubmissionRefused, match="accounts at period end: no accounts snapshot"):
        submit(app, MONTHLY, FEBRUARY, now=at("2026-04-02T10:00:00+00:00"), by="Priya Shah")
    with pytest.raises(ValueError, match="--force needs --reason"):
        submit(app, MONTHLY, FEBRUARY, now=at("2026-04-02T10:00:00+00:00"), by="Priya Shah",
               force=True, reason="  ")
    _, forced = submit(app, MONTHLY, FEBRUARY, now=at("2026-04-02T10:00:00+00:00"),
                       by="Priya Shah", force=True,
                       reason="No February snapshot: accounts system migration")
    assert (forced.id, forced.forced, forced.reason) == (
        "2026-02-S1", True, "No February snapshot: accounts system migration")
    assert [s.id for s in list_submissions(app)] == ["2026-01-S1", "2026-02-S1"]


def test_now_is_event_time_for_a_record_ahead_of_the_wall_clock(app: App,
                                                                 tmp_path: Path) -> None:
    # Offline, now is event time (rules s.5). Stages 1 and 2 take the record to the 31 Mar
    # snapshot, sent Wed 1 Apr 09:00 UTC (the latest instant in it), while the wall clock
    # reads Wed 25 Mar: January and Q1 (ended 00:00 BST 1 Apr = 23:00 UTC 31 Mar) have ended
    # in the record, so they are submitted and published, as of the record's now; April has
    # not, and stays refused, naming the record's now.
    ingest(app, tmp_path, "stage1", STAGE_1)
    ingest(app, tmp_path, "stage2", STAGE_2)
    wall = at("2026-03-25T10:00:00+00:00")
    record_now = at("2026-04-01T09:00:00+00:00")
    _, january = submit(app, MONTHLY, JANUARY, now=wall, by="Priya Shah")
    assert (january.as_of, january.submitted_at) == (record_now, wall)
    _, published = publish(app, Q1, now=wall, by="Priya Shah", url="https://example.test/q1")
    assert published.as_of == record_now
    with pytest.raises(SubmissionRefused,
                       match=r"2026-04 has not ended at now \(2026-04-01T09:00:00\+00:00\)"):
        submit(app, MONTHLY, parse_month("2026-04"), now=wall, by="Priya Shah")


def test_diff_after_a_late_event_then_a_recategorisation(submitted_january: App,
                                                         tmp_path: Path) -> None:
    app = submitted_january
    unchanged = diff(app, "2026-01-S1", now=at("2026-02-21T00:00:00+00:00"))
    assert unchanged is not None
    assert (unchanged["resubmission_needed"], unchanged["changed"]) == (False, {})

    ingest(app, tmp_path, "stage2", STAGE_2)
    late = diff(app, "2026-01-S1", now=at("2026-04-02T00:00:00+00:00"))
    assert late is not None and late["resubmission_needed"] is True
    s4 = [{"complaint_id": "S4", "change": "receipt", "at": "2026-01-28T10:00:00+00:00",
           "late": True}]
    assert late["changed"] == {
        "A1": {"submitted": 2, "now": 3, "by": 1, "reasons": s4},
        "A3": {"submitted": 1, "now": 2, "by": 1, "reasons": s4},
        "B13": {"submitted": 1, "now": 2, "by": 1, "reasons": s4},
        "B23": {"submitted": 2, "now": 3, "by": 1, "reasons": s4},
        "C27": {"submitted": 133.33, "now": 200.0, "by": 66.67, "reasons": s4},
        "C28": {"submitted": 13.33, "now": 20.0, "by": 6.67, "reasons": s4},
    }

    # Resubmitted: the new submission stands; the first is superseded.
    submit(app, MONTHLY, JANUARY, now=at("2026-04-02T10:00:00+00:00"), by="Priya Shah")
    resubmitted = diff(app, "2026-01-S2", now=at("2026-04-03T00:00:00+00:00"))
    assert resubmitted is not None and resubmitted["changed"] == {}
    first = diff(app, "2026-01-S1", now=at("2026-04-03T00:00:00+00:00"))
    assert first is not None and first["superseded_by"] == "2026-01-S2"

    ingest(app, tmp_path, "stage3", STAGE_3)
    recategorised = diff(app, "2026-01-S2", now=at("2026-04-06T00:00:00+00:00"))
    assert recategorised is not None and recategorised["resubmission_needed"] is True
    s2 = [{"complaint_id": "S2", "change": "recategorisation", "at": "2026-04-05T10:00:00+00:00",
           "late": False}]
    assert recategorised["changed"] == {
        "B9": {"submitted": 1, "now": 0, "by": -1, "reasons": s2},
        "B22": {"submitted": 0, "now": 1, "by": 1, "reasons": s2},
        "b22_explanations": {
            "submitted": [],
            "now": [{"explanation": "Smart meter display blank", "count": 1}],
            "reasons": s2},
    }
    assert diff(app, "no-such-id", now=at("2026-04-06T00:00:00+00:00")) is None


def statuses(app: App, as_of: str) -> list[tuple[str, str, str, str]]:
    return [(e["kind"], e["period"], e["due"], e["status"]) for e in obligations(
        app, now=at(as_of), as_of=at(as_of), first=JANUARY)]


def test_due_lists_every_obligation_with_its_status(submitted_january: App,
                                                    tmp_path: Path) -> None:
    app = submitted_january
    # 21 Feb: no period after January has ended.
    assert statuses(app, "2026-02-21T00:00:00+00:00") == [
        ("monthly", "2026-01", "2026-03-02", "submitted")]
    ingest(app, tmp_path, "stage2", STAGE_2)
    submit(app, MONTHLY, FEBRUARY, now=at("2026-03-25T10:00:00+00:00"), by="Priya Shah",
           force=True, reason="No February snapshot")
    # 2 Apr: January moved (S4); February stands; March and Q1 are due on 28 Apr; Q1's
    # publication 7 days after that (not submitted).
    assert statuses(app, "2026-04-02T00:00:00+00:00") == [
        ("monthly", "2026-01", "2026-03-02", "resubmission_needed"),
        ("monthly", "2026-02", "2026-03-30", "submitted"),
        ("monthly", "2026-03", "2026-04-28", "due"),
        ("quarterly", "2026-Q1", "2026-04-28", "due"),
        ("publication", "2026-Q1", "2026-05-05", "due"),
    ]
    # What `due` recomputes: only a submission whose period gained a row since it.
    with app.engine.connect() as conn:
        assert changed_sources(conn, get(app, "2026-01-S1"), JANUARY) == {"receipt"}  # S4
        assert changed_sources(conn, get(app, "2026-02-S1"), FEBRUARY) == set()
    submit(app, MONTHLY, JANUARY, now=at("2026-04-02T10:00:00+00:00"), by="Priya Shah")
    ingest(app, tmp_path, "stage3", STAGE_3)
    with app.engine.connect() as conn:
        assert changed_sources(conn, get(app, "2026-01-S2"), JANUARY) == {"recategorisation"}
        assert changed_sources(conn, get(app, "2026-02-S1"), FEBRUARY) == set()
    # Q1 submitted Mon 20 Apr: its publication is due 27 Apr.
    submit(app, QUARTERLY, Q1, now=at("2026-04-20T10:00:00+00:00"), by="Priya Shah")
    entries = obligations(app, now=at("2026-05-01T00:00:00+00:00"),
                          as_of=at("2026-05-01T00:00:00+00:00"), first=JANUARY)
    assert [(e["kind"], e["period"], e["due"], e["status"]) for e in entries] == [
        # The recategorisation on 5 Apr moved January's B9/B22 after its resubmission.
        ("monthly", "2026-01", "2026-03-02", "resubmission_needed"),
        ("monthly", "2026-02", "2026-03-30", "submitted"),
        ("publication", "2026-Q1", "2026-04-27", "overdue"),
        ("monthly", "2026-03", "2026-04-28", "overdue"),
        ("quarterly", "2026-Q1", "2026-04-28", "submitted"),
        ("monthly", "2026-04", "2026-05-28", "due"),
    ]
    january = entries[0]
    assert (january["submission_id"], january["submitted_at"], january["first_submitted_at"]) \
        == ("2026-01-S2", "2026-04-02T10:00:00+00:00", "2026-02-20T10:00:00+00:00")
    _, publication = publish(app, Q1, now=at("2026-05-02T09:00:00+00:00"), by="Priya Shah",
                             url="https://example.org/complaints/2026-q1")
    assert publication.id == "2026-Q1-P1"
    assert publication.document["complaints_received"] == 4  # S1, S2, S4, S3
    published = [e for e in obligations(app, now=at("2026-05-03T00:00:00+00:00"),
                                        as_of=at("2026-05-03T00:00:00+00:00"), first=JANUARY)
                 if e["kind"] == "publication"]
    assert [(e["status"], e["submitted_at"], e["url"]) for e in published] == [
        ("submitted", "2026-05-02T09:00:00+00:00", "https://example.org/complaints/2026-q1")]
    assert get(app, "2026-Q1-P1") == publication
    # S3 "recategorised" to the type it had (B11): a row since February's submission, so it
    # is recomputed, but nothing moved: still submitted.
    ingest(app, tmp_path, "stage4", [simple("complaint.recategorised", "s3c", "S3",
                                            "2026-05-02T12:00:00+00:00", category="B11")])
    with app.engine.connect() as conn:
        assert changed_sources(conn, get(app, "2026-02-S1"), FEBRUARY) == {"recategorisation"}
    february = [e for e in obligations(app, now=at("2026-05-03T00:00:00+00:00"),
                                       as_of=at("2026-05-03T00:00:00+00:00"), first=JANUARY)
                if e["period"] == "2026-02"]
    assert [e["status"] for e in february] == ["submitted"]


def test_an_earlier_receipt_sharing_a_contact_moves_the_quarter(app: App, tmp_path: Path) -> None:
    # L2 by telephone on 2 Apr in contact "call-x": Q2's only contact (A1 = A2 = 1). Recorded
    # after Q2's submission, L1 by email on 31 Mar in the same contact: the contact is now
    # Q1's (its earliest receipt), so Q2 has no contact left, though its B6 stays 1.
    ingest(app, tmp_path, "q2", [
        received("l2", "L2", "2026-04-02T10:00:00+01:00", contact_id="call-x"),
        snapshot("snap-jun", "2026-07-01T09:00:00+01:00", "2026-06-30", 1_000, 500)])
    q2 = parse_quarter("2026-Q2")
    _, sub = submit(app, QUARTERLY, q2, now=at("2026-07-02T10:00:00+00:00"), by="Priya Shah")
    assert (sub.document["items"]["A1"], sub.document["items"]["A2"]) == (1, 1)
    ingest(app, tmp_path, "late", [
        received("l1", "L1", "2026-03-31T20:00:00+01:00", channel="email", contact_id="call-x")])
    with app.engine.connect() as conn:
        assert changed_sources(conn, sub, q2) == {"receipt"}
    moved = diff(app, sub.id, now=at("2026-07-03T00:00:00+00:00"))
    assert moved is not None
    assert {code: (e["submitted"], e["now"]) for code, e in moved["changed"].items()} == {
        "A1": (1, 0), "A2": (1, 0)}
    status_q2 = [e["status"] for e in obligations(app, now=at("2026-07-03T00:00:00+00:00"),
                                                  as_of=at("2026-07-03T00:00:00+00:00"))
                 if e["kind"] == "quarterly" and e["period"] == "2026-Q2"]
    assert status_q2 == ["resubmission_needed"]


def test_a_late_deadlock_letter_moves_d17(app: App, tmp_path: Path) -> None:
    # D2 received 2 Apr; Q2 submitted 2 Jul with D17 = 0. Then its deadlock, reached on
    # 10 Jun, is recorded: a deadlock letter dated in Q2 (issued at the event's instant).
    ingest(app, tmp_path, "q2", [
        received("d2", "D2", "2026-04-02T10:00:00+01:00"),
        snapshot("snap-jun", "2026-07-01T09:00:00+01:00", "2026-06-30", 1_000, 500)])
    q2 = parse_quarter("2026-Q2")
    _, sub = submit(app, QUARTERLY, q2, now=at("2026-07-02T10:00:00+00:00"), by="Priya Shah")
    assert sub.document["items"]["D17"] == 0
    ingest(app, tmp_path, "late", [simple("complaint.deadlock_reached", "d2-dl", "D2",
                                          "2026-06-10T10:00:00+01:00")])
    with app.engine.connect() as conn:
        assert changed_sources(conn, sub, q2) == {"letter"}
    moved = diff(app, sub.id, now=at("2026-07-03T00:00:00+00:00"))
    assert moved is not None and moved["changed"] == {"D17": {
        "submitted": 0, "now": 1, "by": 1,
        "reasons": [{"complaint_id": "D2", "change": "deadlock letter",
                     "at": "2026-06-10T09:00:00+00:00", "late": True}]}}


def test_a_past_as_of_with_later_instants_in_the_record(submitted_january: App,
                                                        tmp_path: Path) -> None:
    # Submitted as of 1 Mar while the record already holds instants up to 1 Apr: rows dated
    # after the as-of count as changes too (here none touches January until S2's
    # recategorisation, dated 5 Apr).
    app = submitted_january
    ingest(app, tmp_path, "stage2", STAGE_2)
    _, past = submit(app, MONTHLY, JANUARY, now=at("2026-04-02T10:00:00+00:00"), by="Priya Shah",
                     as_of=at("2026-03-01T00:00:00+00:00"))
    assert past.watermarks["record_ahead_of_as_of"] is True
    assert past.document["items"]["A1"] == 3  # S4 is dated 28 Jan
    with app.engine.connect() as conn:
        assert changed_sources(conn, past, JANUARY) == set()
    ingest(app, tmp_path, "stage3", STAGE_3)
    with app.engine.connect() as conn:
        assert changed_sources(conn, past, JANUARY) == {"recategorisation"}
