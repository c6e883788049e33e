"""`complaints export-events`: the applied events, in applied order, and a replay of the export
into an empty database reproduces the record (state, history, deadlines, letters, returns)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bench.generate import write
from consumers.cli import main
from consumers.event_export import export_events
from consumers.file_ingest import ingest_file, read_lines
from reporting.report import default_as_of
from tests.builders import event, received, resolved, write_jsonl
from tests.record_snapshot import record
from workflow.bootstrap import App, bootstrap

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"


def _replay_equals(source: Path, tmp_path: Path) -> tuple[int, str]:
    """Ingest `source`, export with the command, ingest the export into an empty database;
    the two records must be identical. Returns (exported lines, stderr)."""
    first = bootstrap(f"sqlite:///{tmp_path / 'first.db'}", "kilowatt-connect")
    ingest_file(first, source)
    result = CliRunner().invoke(main, ["export-events", "--db", str(first.engine.url)])
    assert result.exit_code == 0, result.output
    exported = write_jsonl(tmp_path / "export.jsonl", result.stdout.splitlines())
    second = bootstrap(f"sqlite:///{tmp_path / 'second.db'}", "kilowatt-connect")
    report = ingest_file(second, exported)
    assert report.rejected == 0 and report.duplicates == 0
    as_of = default_as_of(first)  # the record's own clock: its last event or firing
    assert record(second, as_of) == record(first, as_of)
    return report.applied, result.stderr


def test_sample_round_trip(tmp_path: Path) -> None:
    applied, stderr = _replay_equals(SAMPLE, tmp_path)
    assert applied == 19  # the sample's applied events (its bad lines and duplicate are not)
    assert stderr == ""  # every event exported byte for byte


def test_generated_stream_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "stream.jsonl", 3_000)
    applied, _ = _replay_equals(path, tmp_path)
    assert applied > 2_900


def test_export_is_the_raw_lines_in_applied_order(app: App, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL."""
    lines = [
        '{"event_id":"a1","type":"complaint.received","occurred_at":"2026-01-05T09:00:00Z",'
        '"complaint_id":"C-1","channel":"letter","category":"B13","fuel":"gas",'
        '"summary":"s","customer":{"account_id":"A","name":"N","address":["x"],'
        '"postcode":"EX1 1AA","preferred_contact":"letter"}}',
        "garbage",
        '{"event_id": "a2", "type": "contact.received", "occurred_at": "2026-02-01T09:00:00Z",'
        ' "contact_id": "k", "channel": "email", "kind": "enquiry"}',
    ]
    ingest_file(app, write_jsonl(tmp_path / "in.jsonl", lines))
    got, notes = export_events(app.engine)
    assert list(got) == [lines[0].encode(), lines[2].encode()]
    assert notes.raw == 2 and notes.messages() == []
    within, _ = export_events(app.engine, start=_at("2026-01-06T00:00:00Z"))
    assert list(within) == [lines[2].encode()]
    before, _ = export_events(app.engine, end=_at("2026-01-05T09:00:00Z"))
    assert list(before) == [lines[0].encode()]  # --to is inclusive


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_record_older_than_raw_events_exports_what_it_holds(tmp_path: Path) -> None:
    """Events applied before migration 0008 have no raw bytes: they are rebuilt from the
    history, contacts and accounts snapshots, the replay still reproduces the record, and
    stderr says so."""
    source = write_jsonl(tmp_path / "in.jsonl", [
        received("e1", "C-1", "2026-01-05T09:00:00Z"),
        event("contact.received", "e2", "2026-01-05T10:00:00Z", contact_id="call-1",
              channel="telephone", kind="off_supply_report"),
        event("accounts.snapshot", "e3", "2026-01-05T11:00:00Z", as_of="2025-12-31",
              electricity_accounts=900, gas_accounts=100),
        resolved("e4", "C-1", "2026-01-20T09:00:00Z"),
        received("e5", "C-2", "2026-02-02T09:00:00Z"),
    ])
    old = bootstrap(f"sqlite:///{tmp_path / 'old.db'}", "kilowatt-connect")
    ingest_file(old, source)
    # As if the first three were applied before the table existed (a prefix of the record).
    with old.engine.begin() as connection:
        connection.execute(text("DELETE FROM raw_events WHERE event_id IN ('e1','e2','e3')"))
    result = CliRunner().invoke(main, ["export-events", "--db", str(old.engine.url)])
    assert result.exit_code == 0
    assert "3 event(s) were applied before raw events were kept" in result.stderr
    exported = result.stdout.splitlines()
    assert [line.split('"event_id":')[1][:5] for line in exported[:3]] == [
        '"e1",', '"e2",', '"e3",']
    assert exported[3:] == [line.decode() for line in read_lines(source)[3:5]]
    new = bootstrap(f"sqlite:///{tmp_path / 'new.db'}", "kilowatt-connect")
    ingest_file(new, write_jsonl(tmp_path / "export.jsonl", exported))
    as_of = _at("2026-04-01T00:00:00+00:00")
    assert record(new, as_of) == record(old, as_of)


@pytest.mark.parametrize("bad", ["yesterday", "2026-01-01T00:00:00"])
def test_bad_instants_are_bad_usage(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(main, ["export-events", "--from", bad,
                                       "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2


def test_events_applied_after_later_dated_ones_are_counted_and_said(tmp_path: Path) -> None:
    """Two ingests: the first runs the clock to 20 March (A's eight weeks, due at the end of 2
    March, fire: its 8-week letter); the second brings A's resolution of 20 January, applied
    late. An ingest of the export applies it in event-time order (the resolution before the
    eight weeks), so the export says that one event came after a later-dated one."""
    first = write_jsonl(tmp_path / "first.jsonl", [
        received("a1", "A", "2026-01-05T09:00:00Z"),
        received("b1", "B", "2026-03-20T09:00:00Z"),
    ])
    second = write_jsonl(tmp_path / "second.jsonl", [resolved("a2", "A", "2026-01-20T09:00:00Z")])
    app = bootstrap(f"sqlite:///{tmp_path / 'two.db'}", "kilowatt-connect")
    ingest_file(app, first)
    ingest_file(app, second)
    lines, notes = export_events(app.engine)
    assert [line.split(b'"event_id": "')[1][:2] for line in lines] == [b"a1", b"b1", b"a2"]
    assert notes.after_later == 1
    result = CliRunner().invoke(main, ["export-events", "--db", str(app.engine.url),
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    assert ("note: 1 event(s) were applied after events dated later than them"
            in result.stderr)
    app.engine.dispose()

    # The record: A's 8-week letter (2 Mar), then its resolution, which Ofgem 5.10 leaves
    # out of C11 (a resolution after the 8-week letter): Q1 C11 0, D16 1 (one 8-week letter).
    # `simulate --db` replays the recorded events as applied: its base side is the record.
    simulated = CliRunner().invoke(main, ["simulate", "--db", str(app.engine.url),
                                          "--format", "json"])
    assert simulated.exit_code == 0, simulated.output
    document = json.loads(simulated.stdout)
    q1 = document["returns"]["quarterly"]["2026-Q1"]
    assert (q1["C11"]["base"], q1["D16"]["base"]) == (0, 1)
    assert document["letters"]["eight_week"]["base"] == 1
    # The export as a file is replayed by event time, as ingest would apply it: the
    # resolution (20 Jan) comes before the eight weeks, so no letter: C11 1, D16 0.
    exported = write_jsonl(tmp_path / "export.jsonl", result.stdout.splitlines())
    by_time = CliRunner().invoke(main, ["simulate", str(exported), "--format", "json"])
    q1 = json.loads(by_time.stdout)["returns"]["quarterly"]["2026-Q1"]
    assert (q1["C11"]["base"], q1["D16"]["base"]) == (1, 0)


def test_a_missing_record_is_bad_usage_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(main, ["export-events", "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    assert f"error: no record at {missing}" in result.stderr
    assert not missing.exists()


def test_an_older_record_is_read_not_migrated(tmp_path: Path) -> None:
    """An export writes nothing: a record whose schema is behind stays behind."""
    app = bootstrap(f"sqlite:///{tmp_path / 'old.db'}", "kilowatt-connect")
    ingest_file(app, write_jsonl(tmp_path / "in.jsonl",
                                 [received("e1", "C-1", "2026-01-05T09:00:00Z")]))
    with app.engine.begin() as connection:
        connection.execute(text("DROP TABLE raw_events"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    result = CliRunner().invoke(main, ["export-events", "--db", str(app.engine.url)])
    assert result.exit_code == 0, result.output
    assert "1 event(s) were applied before raw events were kept" in result.stderr
    with app.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == "0007"
        tables = {row[0] for row in connection.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    assert "raw_events" not in tables
    app.engine.dispose()
