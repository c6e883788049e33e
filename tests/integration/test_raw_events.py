"""Every applied event's raw bytes are kept in one global order (raw_events, migration 0008)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from consumers.event_export import export_events
from consumers.file_ingest import ingest_file
from tests.builders import event, received, resolved, write_jsonl
from workflow.bootstrap import App
from workflow.schema import RawEvent
from workflow.service import Message


def _rows(app: App) -> list[RawEvent]:
    with app.sessions() as session:
        return list(session.scalars(select(RawEvent).order_by(RawEvent.seq)))


def test_applied_events_are_stored_raw_in_applied_order(app: App, tmp_path: Path) -> None:
    lines = [
        json.dumps(received("e1", "C-1", "2026-01-05T09:00:00Z")),
        json.dumps(event("contact.received", "e2", "2026-01-05T10:00:00Z", contact_id="call-1",
                         channel="telephone", kind="enquiry")),
        "not json",
        json.dumps(received("e1", "C-1", "2026-01-05T09:00:00Z")),  # duplicate: not stored
        # Spacing kept as sent: the bytes, not a re-encoding.
        '{"event_id": "e3",  "type": "accounts.snapshot", "occurred_at": "2026-01-31T12:00:00Z",'
        ' "as_of": "2026-01-31", "electricity_accounts": 900, "gas_accounts": 100}',
        json.dumps(resolved("e4", "C-1", "2026-01-06T09:00:00Z")),
        json.dumps(resolved("e5", "C-404", "2026-01-07T09:00:00Z")),  # rejected: unknown
    ]
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    report = ingest_file(app, path)
    assert (report.applied, report.duplicates, report.rejected) == (4, 1, 2)
    rows = _rows(app)
    # Applied in occurred_at order (docs/rules.md s.5, v2): e4 (6 Jan) before e3 (31 Jan).
    assert [r.event_id for r in rows] == ["e1", "e2", "e4", "e3"]
    assert [r.type for r in rows] == ["complaint.received", "contact.received",
                                      "complaint.resolved", "accounts.snapshot"]
    assert [r.complaint_id for r in rows] == ["C-1", None, "C-1", None]
    assert rows[3].raw == lines[4].encode("utf-8")
    assert [r.position for r in rows] == ["line 1", "line 2", "line 6", "line 5"]
    assert {r.source for r in rows} == {str(path)}
    assert rows[0].occurred_at.isoformat() == "2026-01-05T09:00:00+00:00"
    assert rows[0].seq < rows[1].seq < rows[2].seq < rows[3].seq


def test_careful_rerun_keeps_the_applied_events_of_a_failed_batch(app: App) -> None:
    """The careful path (a failed batch re-run message by message, each in a savepoint): the
    applied messages' raw rows are kept, the refused one's not."""
    uow = app.unit_of_work()
    processor = app.event_time_processor(uow)
    processor.careful = True
    messages = [
        Message(json.dumps(received("k1", "C-7", "2026-02-02T09:00:00Z")).encode(), "t", "0/1"),
        Message(json.dumps(resolved("k2", "C-8", "2026-02-02T10:00:00Z")).encode(), "t", "0/2"),
        Message(json.dumps(resolved("k3", "C-7", "2026-02-02T11:00:00Z")).encode(), "t", "0/3"),
    ]
    outcomes = processor.run_batch(messages)
    uow.close()
    assert [o.status for o in outcomes] == ["applied", "rejected", "applied"]
    rows = _rows(app)
    assert [(r.event_id, r.source, r.position) for r in rows] == [("k1", "t", "0/1"),
                                                                  ("k3", "t", "0/3")]


def test_export_of_kafka_messages_says_so_and_keeps_one_event_a_line(app: App) -> None:
    """From a topic the record fired deadlines by the wall clock; a replay runs by event time,
    and the export says so. A pretty-printed message is written as one line, same content."""
    pretty = json.dumps(received("p1", "C-9", "2026-03-02T09:00:00Z"), indent=2).encode()
    uow = app.unit_of_work()
    outcomes = app.event_time_processor(uow).run_batch(
        [Message(pretty, "complaints.events", "3/17")])
    uow.close()
    assert [o.status for o in outcomes] == ["applied"]
    assert _rows(app)[0].raw == pretty  # stored as received
    lines, notes = export_events(app.engine)
    exported = list(lines)
    assert len(exported) == 1 and b"\n" not in exported[0]
    assert json.loads(exported[0]) == json.loads(pretty)
    assert (notes.from_kafka, notes.re_encoded) == (1, 1)
    said = " ".join(notes.messages())
    assert "came from Kafka" in said and "by event time" in said and "compact JSON" in said
