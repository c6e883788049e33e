"""(v2) Offline ingest applies a file's lines in `occurred_at` order, ties in file order; a line
whose `occurred_at` cannot be read is rejected in place and moves no clock; re-sends of one
event_id are judged in time order (docs/rules.md s.5, docs/contract.md `complaints ingest`).

Hand-worked calendar (Europe/London, January 2026 is GMT): Mon 5 Jan receipt -> D+1 deadline
end of Tue 6 Jan (2026-01-06T23:59:59.999999Z); Tue 6 Jan receipt -> end of Wed 7 Jan.
Kilowatt Connect's first progress update is 10 x 24 h after the receipt.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from consumers.file_ingest import ingest_file, time_ordered
from tests.builders import assigned, received, resolved, write_jsonl
from workflow import queries
from workflow.bootstrap import App, bootstrap, bootstrap_in_memory
from workflow.schema import Rejection

END_6_JAN = "2026-01-06T23:59:59.999999+00:00"


def by_complaint() -> list[dict[str, Any]]:
    """A backfill exported complaint by complaint: C1's lines, then C2's, then C3's."""
    return [
        # C1: received Mon 5 Jan 10:00, resolved Tue 20 Jan 10:00.
        received("C1-r", "C1", "2026-01-05T10:00:00+00:00"),
        assigned("C1-a", "C1", "2026-01-05T11:00:00+00:00"),
        resolved("C1-s", "C1", "2026-01-20T10:00:00+00:00"),
        # C2: received Tue 6 Jan 09:00, resolved Wed 7 Jan 10:00 (by its D+1: no letter).
        received("C2-r", "C2", "2026-01-06T09:00:00+00:00"),
        resolved("C2-s", "C2", "2026-01-07T10:00:00+00:00"),
        # C3: received and assigned at the same instant (a tie: file order keeps received
        # first), resolved the same day.
        received("C3-r", "C3", "2026-01-08T09:00:00+00:00"),
        assigned("C3-a", "C3", "2026-01-08T09:00:00+00:00"),
        resolved("C3-s", "C3", "2026-01-08T12:00:00+00:00"),
    ]


def record(app: App) -> dict[str, Any]:
    with app.sessions() as session:
        shown = {cid: queries.show_complaint(session, cid) for cid in ("C1", "C2", "C3")}
        shown["letters"] = queries.letters(session)  # type: ignore[assignment]
    return shown


def letters(app: App, cid: str) -> list[tuple[str, str]]:
    with app.sessions() as session:
        return [(x["kind"], x["issued_at"]) for x in queries.letters(session, cid)]


def test_a_file_exported_complaint_by_complaint_is_applied_in_time_order(
        app: App, tmp_path: Path) -> None:
    report = ingest_file(app, write_jsonl(tmp_path / "backfill.jsonl", by_complaint()))
    assert report.as_json() == {"applied": 8, "duplicates": 0, "rejected": 0}
    # In file order C1's resolution (20 Jan) would have moved the clock past C2's D+1 and
    # first progress update before C2's receipt and resolution: letters for a complaint
    # resolved the next day. In time order C2 and C3 get none.
    assert letters(app, "C2") == [] and letters(app, "C3") == []
    assert letters(app, "C1") == [
        ("acknowledgement", END_6_JAN),                    # D+1 of Mon 5 Jan
        ("progress_update", "2026-01-15T10:00:00+00:00"),  # 5 Jan 10:00 + 240 h
        ("resolution", "2026-01-20T10:00:00+00:00"),       # after the D+1 deadline
    ]


def test_a_shuffled_file_gives_the_same_record_as_the_sorted_one(
        app: App, tmp_path: Path) -> None:
    lines = by_complaint()
    # Every instant but the tie (C3-r, C3-a) is distinct; shuffle, then put the tie back in
    # its file order wherever it landed (C3-r before C3-a), so ties are in file order.
    shuffled = lines[:]
    random.Random(20261201).shuffle(shuffled)
    at = [i for i, e in enumerate(shuffled) if e["event_id"] in ("C3-r", "C3-a")]
    shuffled[at[0]], shuffled[at[1]] = lines[5], lines[6]
    assert shuffled != lines
    sorted_lines = sorted(lines, key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    reference = bootstrap(f"sqlite:///{tmp_path / 'sorted.db'}", "kilowatt-connect")
    try:
        assert ingest_file(reference, write_jsonl(tmp_path / "sorted.jsonl",
                                                  sorted_lines)).rejected == 0
        report = ingest_file(app, write_jsonl(tmp_path / "shuffled.jsonl", shuffled))
        assert report.as_json() == {"applied": 8, "duplicates": 0, "rejected": 0}
        assert record(app) == record(reference)
    finally:
        reference.engine.dispose()


def test_ties_keep_file_order(app: App, tmp_path: Path) -> None:
    # The assignment before the receipt at the same instant: applied in file order, so it
    # names a complaint not yet received and is rejected (a sort by anything but the instant
    # and the file position would have hidden the mistake).
    report = ingest_file(app, write_jsonl(tmp_path / "tie.jsonl", [
        assigned("C1-a", "C1", "2026-01-05T10:00:00+00:00"),
        received("C1-r", "C1", "2026-01-05T10:00:00Z"),  # the same instant, written as Z
    ]))
    assert report.as_json() == {"applied": 1, "duplicates": 0, "rejected": 1}
    assert report.rejections == [(1, "unknown complaint C1")]


def test_equal_instants_in_other_offsets_are_ties(tmp_path: Path) -> None:
    # 11:00+01:00 is 10:00Z: a tie with the line before, so file order; 10:30Z comes after.
    numbered = [(1, b'{"occurred_at": "2026-06-01T10:30:00Z"}'),
                (2, b'{"occurred_at": "2026-06-01T11:00:00+01:00"}'),
                (3, b'{"occurred_at": "2026-06-01T10:00:00Z"}')]
    assert [n for n, _ in time_ordered(numbered)] == [2, 3, 1]


def test_a_bad_occurred_at_is_rejected_in_place_and_moves_no_clock(
        app: App, tmp_path: Path) -> None:
    report = ingest_file(app, write_jsonl(tmp_path / "bad.jsonl", [
        received("C1-r", "C1", "2026-01-05T10:00:00+00:00"),
        # No offset: cannot be read. Had it moved the clock to 30 March, C1's acknowledgement,
        # progress update and eight-week deadlines would all have fired before its resolution.
        assigned("C1-a", "C1", "2026-03-30T10:00:00"),
        # Dated before line 1: applied first; rejected (an unknown complaint).
        resolved("C9-s", "C9", "2026-01-04T10:00:00+00:00"),
        # Resolved by its D+1 deadline (end of Tue 6 Jan): no letter.
        resolved("C1-s", "C1", "2026-01-06T10:00:00+00:00"),
        "not json",  # rides after line 4 (the line before it in the file)
    ]))
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 3}
    # Reported with the file's own line numbers, in file order.
    assert [n for n, _ in report.rejections] == [2, 3, 5]
    assert report.rejections[0][1] == "occurred_at has no UTC offset"
    assert letters(app, "C1") == []
    with app.sessions() as session:
        stored = session.scalars(select(Rejection.position).order_by(Rejection.id)).all()
        shown = queries.show_complaint(session, "C1")
    # Processing order: line 3 (4 Jan), line 1 (5 Jan), line 2 right after line 1, line 4
    # (6 Jan), line 5 right after line 4.
    assert stored == ["line 3", "line 2", "line 5"]
    assert shown is not None and shown["state"] == "resolved"
    ack = [d for d in shown["deadlines"] if d["kind"] == "acknowledgement"][0]
    # Unfired: the clock never passed 6 Jan 10:00 (the bad line did not move it).
    assert ack["fired_at"] is None and ack["due_at"] == END_6_JAN


def test_a_corrected_resend_dated_earlier_than_its_first_attempt_is_the_one_applied(
        app: App, tmp_path: Path) -> None:
    report = ingest_file(app, write_jsonl(tmp_path / "resend.jsonl", [
        received("C1-r", "C1", "2026-01-05T10:00:00+00:00"),
        resolved("C1-s", "C1", "2026-01-09T10:00:00+00:00"),  # first attempt
        resolved("C1-s", "C1", "2026-01-06T10:00:00+00:00"),  # the correction, dated earlier
    ]))
    assert report.as_json() == {"applied": 2, "duplicates": 1, "rejected": 0}
    with app.sessions() as session:
        shown = queries.show_complaint(session, "C1")
    assert shown is not None
    resolution = [h for h in shown["history"] if h["type"] == "complaint.resolved"]
    assert [h["at"] for h in resolution] == ["2026-01-06T10:00:00+00:00"]
    # Resolved 6 Jan 10:00, by its D+1 (end of 6 Jan): no resolution letter; the
    # acknowledgement deadline has not been reached (the clock stopped at 6 Jan 10:00).
    assert letters(app, "C1") == []



def test_a_later_file_continues_the_records_clock(app: App, tmp_path: Path) -> None:
    # Rules s.5: offline, now is event time and the clock never moves back. The first file
    # takes the record to Mon 1 Jun 09:00 (LA's receipt); a second file's January events
    # are late events: before each line, every deadline due at the record's clock fires.
    # LC, received Mon 5 Jan 09:00: at its resolution's line (20 Jan, late) the clock stands
    # at 1 Jun, so first its D+1 (end of Tue 6 Jan: the acknowledgement), its progress
    # updates (10 x 24 h chain: 15, 25 Jan, 4, 14, 24 Feb 09:00) and its eight weeks (56 x
    # 24 h: Mon 2 Mar 09:00: the 8-week letter, state eight_week) fire; the next update
    # (6 Mar) finds it no longer open and ends the chain. Then the resolution applies.
    ingest_file(app, write_jsonl(tmp_path / "june.jsonl",
                                 [received("LA-r", "LA", "2026-06-01T09:00:00+00:00")]))
    report = ingest_file(app, write_jsonl(tmp_path / "january.jsonl", [
        received("LC-r", "LC", "2026-01-05T09:00:00+00:00"),
        resolved("LC-s", "LC", "2026-01-20T09:00:00+00:00"),
    ]))
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 0}
    updates = [("progress_update", f"2026-{day}T09:00:00+00:00")
               for day in ("01-15", "01-25", "02-04", "02-14", "02-24")]
    assert letters(app, "LC") == [
        ("acknowledgement", END_6_JAN), updates[0],
        ("resolution", "2026-01-20T09:00:00+00:00"), *updates[1:],
        ("eight_week", "2026-03-02T09:00:00+00:00"),
    ]
    with app.sessions() as session:
        shown = queries.show_complaint(session, "LC")
    assert shown is not None and shown["state"] == "resolved"
    # Every LC deadline due by the record's clock has fired; none is left overdue.
    assert [d["fired_at"] is not None for d in shown["deadlines"]
            if d["due_at"] <= "2026-06-01T09:00:00+00:00"] == [True] * 8


def test_the_in_memory_record_continues_its_clock_too(tmp_path: Path) -> None:
    memory = bootstrap_in_memory()
    ingest_file(memory, write_jsonl(tmp_path / "june.jsonl",
                                    [received("LA-r", "LA", "2026-06-01T09:00:00+00:00")]))
    ingest_file(memory, write_jsonl(tmp_path / "january.jsonl", [
        received("LC-r", "LC", "2026-01-05T09:00:00+00:00"),
        resolved("LC-s", "LC", "2026-01-20T09:00:00+00:00"),
    ]))
    shown = memory.show_complaint("LC")
    assert shown is not None and shown["state"] == "resolved"
    assert [x["kind"] for x in shown["letters"]] == [
        "acknowledgement", "progress_update", "resolution", *["progress_update"] * 4,
        "eight_week"]


def test_a_files_rejections_are_published_like_kafkas(app: App, tmp_path: Path) -> None:
    # Contract, "Rejections": stored in the table and on complaints.rejected, with the raw
    # bytes, the reason and the file line. Line 2 (no offset) and line 3 (an unknown
    # complaint) name a complaint, the key they would have had on the topic; line 4 is not
    # JSON: no key, and rides right after line 3 (dated 4 Jan, applied first). The same file
    # again is rejected, and published, again.
    from workflow.schema import OutboxMessage
    lines: list[dict[str, Any] | str] = [
        received("C1-r", "C1", "2026-01-05T10:00:00+00:00"),
        assigned("C1-a", "C1", "2026-03-30T10:00:00"),
        resolved("C9-s", "C9", "2026-01-04T10:00:00+00:00"),
        "not json",
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    ingest_file(app, path)
    with app.sessions() as session:
        reasons = dict(session.execute(select(Rejection.position, Rejection.reason)).all())
        published = [(m.key, m.payload) for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "rejected")
            .order_by(OutboxMessage.id))]
    assert [(key, p["position"]) for key, p in published] == [
        ("C9", "line 3"), ("", "line 4"), ("C1", "line 2")]
    for _, payload in published:
        assert payload["type"] == "message.rejected" and payload["source"] == str(path)
        assert payload["reason"] == reasons[payload["position"]]
    assert published[1][1]["raw"] == {"encoding": "utf-8", "data": "not json"}
    assert published[1][1]["key"] == {"encoding": None, "data": None}
    ingest_file(app, path)
    with app.sessions() as session:
        ids = session.scalars(select(OutboxMessage.event_id)
                              .where(OutboxMessage.topic == "rejected")).all()
    assert len(ids) == len(set(ids)) == 6
