"""Erasure of an account's personal data (docs/contract.md `complaints erase`, docs/rules.md s.3).

The account ACC-ER has three complaints: C-E1 at the Energy Ombudsman (deadlock, referral), its
duplicate record C-E2 (the same complaint through Citizens Advice) and C-E3, resolved the next
day; a rejected receipt (C-E4, category B99) and a rejected event on C-E1 quote the account.
Another account (ACC-KEEP, C-K1) must come through untouched. Worked by hand:

- at 2026-03-01 C-E1 is held (with the Ombudsman), C-E2 with it (its duplicate record); C-E3
  is erased; exit 1 naming the two;
- with --force --reason all three are erased and the hold is recorded with the reason;
- a second erasure finds nothing (the account id is gone) and changes nothing;
- every return is the same before, between and after; nothing of the erased customer's id,
  name, address line or email is left in the database files (WAL included), the letter
  store or `show`, while the other customer's data is still there.
"""

from __future__ import annotations

import io
import json
import random
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from consumers.cli import main
from consumers.delivery import PostItem, PrintQueue
from consumers.erasure import erase_account
from consumers.file_ingest import ingest_file, tick
from letters.render import render
from reporting.items import ANNUAL, MONTHLY, PUBLICATION, QUARTERLY
from reporting.periods import parse_month, parse_quarter
from reporting.report import run_report, to_json
from tests.builders import CUSTOMER, received, resolved, simple, write_jsonl
from workflow import queries
from workflow.bootstrap import App
from workflow.casefile import casefile_record
from workflow.schema import Dispatch, ErasedComplaint, Erasure, Letter, OutboxMessage

ERASED_CUSTOMER = {
    "account_id": "ACC-ER-90210", "name": "Marianne Dashwood",
    "address": ["12 Barton Cottage Lane", "Honiton"], "postcode": "EX14 9ZZ",
    "email": "marianne.dashwood@example.org", "phone": "07700 900123",
    "preferred_contact": "letter",
}
KEPT_CUSTOMER = {**CUSTOMER, "account_id": "ACC-KEEP-31337", "name": "Elinor Ferrars",
                 "address": ["4 Norland Park Road", "Sussex"], "email": "elinor@example.org"}
SECRETS = ("ACC-ER-90210", "Marianne Dashwood", "12 Barton Cottage Lane",
           "marianne.dashwood@example.org")
KEPT = ("ACC-KEEP-31337", "Elinor Ferrars", "4 Norland Park Road")
SUMMARY = "Marianne Dashwood says the smart meter at Barton Cottage stopped sending readings"

EVENTS: list[dict[str, Any] | str] = [
    received("er-1", "C-E1", "2026-01-05T09:00:00+00:00", customer=ERASED_CUSTOMER,
             summary=SUMMARY, category="B22", other_explanation="Smart meter stopped sending",
             handler={"id": "h-1", "name": "Sam Patel"}, unknown_field="Dashwood family"),
    received("er-2", "C-E2", "2026-01-06T10:00:00+00:00", customer=ERASED_CUSTOMER,
             summary=SUMMARY, source="citizens_advice", duplicate_of="C-E1"),
    simple("complaint.contact_logged", "er-3", "C-E1", "2026-01-07T10:00:00+00:00",
           summary="Marianne Dashwood rang from 07700 900123"),
    simple("complaint.deadlock_reached", "er-4", "C-E1", "2026-01-13T10:00:00+00:00",
           position="We will replace the meter at 12 Barton Cottage Lane", offer_open=True,
           offer={"description": "A credit for Marianne Dashwood", "amount_pence": 2500}),
    simple("complaint.referred_to_ombudsman", "er-5", "C-E1", "2026-01-20T10:00:00+00:00",
           ombudsman_ref="EO-ER-1"),
    received("er-6", "C-E3", "2026-01-06T09:00:00+00:00", customer=ERASED_CUSTOMER,
             summary="Bill sent to Marianne Dashwood is too high", channel="email",
             handler={"id": "h-1", "name": "Sam Patel"}),
    resolved("er-7", "C-E3", "2026-01-07T12:00:00+00:00"),
    # rejected: a category that does not exist (a receipt that makes no complaint) ...
    received("er-8", "C-E4", "2026-01-08T09:00:00+00:00", customer=ERASED_CUSTOMER,
             summary="Another from Marianne Dashwood", category="B99"),
    # ... and an event not allowed in C-E1's state, quoting the customer.
    resolved("er-9", "C-E1", "2026-01-21T09:00:00+00:00",
             resolution={"apology": True, "explanation": "Told Marianne Dashwood"}),
    received("k-1", "C-K1", "2026-01-09T09:00:00+00:00", customer=KEPT_CUSTOMER,
             summary="Elinor Ferrars reports an estimated bill", channel="webform"),
    resolved("k-2", "C-K1", "2026-01-20T09:00:00+00:00"),
    {"event_id": "acc-1", "type": "accounts.snapshot", "occurred_at": "2026-01-31T12:00:00Z",
     "as_of": "2026-01-31", "electricity_accounts": 1000, "gas_accounts": 500},
]
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def returns(app: App) -> str:
    """Every return for the record's periods, as of a fixed instant, as canonical JSON."""
    documents = [to_json(run_report(app, spec, parse_month(month), AS_OF))
                 for spec in (MONTHLY,) for month in ("2026-01", "2026-02")]
    documents += [to_json(run_report(app, spec, parse_quarter("2026-Q1"), AS_OF))
                  for spec in (QUARTERLY, PUBLICATION)]
    documents.append(to_json(run_report(app, ANNUAL, parse_month("2026-03"), AS_OF)))
    return json.dumps(documents, sort_keys=True)


def database_bytes(app: App) -> bytes:
    """SQLite: the database file and its WAL. PostgreSQL (the shared server, so no files):
    every row of every table of the test's schema as text."""
    if app.engine.dialect.name == "sqlite":
        path = Path(str(app.engine.url.database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                        if p.exists())
    with app.engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        return b"".join(
            row.encode("utf-8")
            for table in list(tables)
            for row in connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars())


def letter_store(directory: Path) -> str:
    texts = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix == ".pdf":
            texts.extend(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(
                path.read_bytes())).pages)
        else:
            texts.append(path.read_text("utf-8"))
    return "\n".join(texts)


def shown(app: App) -> str:
    with app.sessions() as session:
        return json.dumps([queries.show_complaint(session, c)
                           for c in ("C-E1", "C-E2", "C-E3")], ensure_ascii=False)


@pytest.fixture
def loaded(app: App, tmp_path: Path) -> tuple[App, Path]:
    report = ingest_file(app, write_jsonl(tmp_path / "er.jsonl", EVENTS))
    assert (report.applied, report.rejected) == (len(EVENTS) - 2, 2)
    tick(app, datetime(2026, 2, 1, tzinfo=UTC))
    letters = tmp_path / "letters"
    letters.mkdir()
    with app.sessions() as session:
        for letter in session.scalars(select(Letter)):
            for fmt in ("html", "txt", "pdf") if letter.complaint_id == "C-E1" else ("txt",):
                (letters / f"{letter.letter_id}.{fmt}").write_bytes(render(letter.context, fmt))
        # Delivery (consumers/delivery.py): an email attempt of C-E1's first letter, and the
        # same letter put in a print run (PDF and manifests with the postal address).
        first = session.scalars(select(Letter).where(Letter.complaint_id == "C-E1")
                                .order_by(Letter.issued_at)).first()
        assert first is not None
        session.add(Dispatch(letter_id=first.letter_id, complaint_id="C-E1", attempt=1,
                             channel="email", address="marianne.dashwood@example.org",
                             attempted_at=datetime(2026, 1, 7, tzinfo=UTC), outcome="refused",
                             receipt="550 5.1.1 <marianne.dashwood@example.org> unknown"))
        session.add(Dispatch(letter_id=first.letter_id, complaint_id="C-E1", attempt=2,
                             channel="post", attempted_at=datetime(2026, 1, 7, 1, tzinfo=UTC),
                             address="Marianne Dashwood, 12 Barton Cottage Lane, Honiton",
                             outcome="dispatched", receipt="run-1/x.pdf"))
        # The Kafka consumer's copy of a rejected receipt for the topic complaints.rejected,
        # and the delivery's letter.dispatched message (it names the address).
        session.add(OutboxMessage(event_id="rej-1", topic="rejected", key="C-E4", payload={
            "event_id": "rej-1", "type": "message.rejected", "reason": "category B99",
            "raw": {"encoding": "utf-8", "data": json.dumps(EVENTS[7])}},
            created_at=datetime(2026, 1, 8, tzinfo=UTC)))
        session.add(OutboxMessage(event_id="disp-1", topic="letters", key="C-E1", payload={
            "type": "letter.dispatched", "letter_id": first.letter_id, "channel": "email",
            "address": "marianne.dashwood@example.org"},
            created_at=datetime(2026, 1, 8, tzinfo=UTC)))
        session.commit()
        PrintQueue(tmp_path / "print").write_run(
            [PostItem(first.letter_id, "C-E1", first.context, render(first.context, "pdf"))],
            datetime(2026, 1, 7, 1, tzinfo=UTC))
    return app, letters


def test_erasure_keeps_every_return_and_leaves_nothing_to_read_back(
        loaded: tuple[App, Path]) -> None:
    app, letters = loaded
    before = returns(app)
    # The checks below can fail: the data is there to find before the erasure.
    stored = database_bytes(app)
    for value in (*SECRETS, *KEPT):
        assert value.encode() in stored, value
    assert "Marianne Dashwood" in letter_store(letters)
    prints = letters.parent / "print"
    assert "Marianne Dashwood" in letter_store(prints)
    with app.sessions() as session:
        record = casefile_record(session, "C-E1", app.procedure, NOW)
        assert record is not None
        assert [d["channel"] for d in record["letters"][0]["dispatches"]] == ["email", "post"]

    held = erase_account(app, "ACC-ER-90210", now=NOW, by="dpo@example", letters=letters,
                         print_queue=prints)
    assert held.erased == ["C-E3"]
    assert set(held.held) == {"C-E1", "C-E2"}
    assert "Ombudsman" in held.held["C-E1"] and "duplicate record of C-E1" in held.held["C-E2"]
    assert returns(app) == before

    forced = erase_account(app, "ACC-ER-90210", now=NOW, by="dpo@example", force=True,
                           reason="Ombudsman closed its case EO-ER-1", letters=letters,
                           print_queue=prints)
    assert sorted(forced.erased) == ["C-E1", "C-E2"]
    assert returns(app) == before

    stored = database_bytes(app)
    for value in SECRETS:
        assert value.encode() not in stored, value
    for value in KEPT:
        assert value.encode() in stored, value  # the other customer's record is intact
    store = letter_store(letters) + letter_store(prints)
    page = shown(app)
    for value in SECRETS:
        assert value not in store and value not in page, value
    assert "[erased]" in store

    with app.sessions() as session:
        erasures = list(session.scalars(select(Erasure).order_by(Erasure.id)))
        assert [e.complaint_ids for e in erasures] == [["C-E3"], ["C-E1", "C-E2"]]
        assert [e.forced for e in erasures] == [False, True]
        assert erasures[1].reason == "Ombudsman closed its case EO-ER-1"
        assert set(erasures[1].held) == {"C-E1", "C-E2"}
        assert all(e.by == "dpo@example" and e.erased_at == NOW for e in erasures)
        assert all(e.pseudonym.startswith("ERASED-") for e in erasures)
        # The B22 explanation and every code stay.
        record = casefile_record(session, "C-E1", app.procedure, NOW)
        assert record is not None
        assert record["other_explanation"] == "Smart meter stopped sending"
        assert record["erased_at_uk"] == "1 Mar 2026 00:00:00 GMT"
        assert record["ombudsman_ref"] == "EO-ER-1" and record["state"] == "ombudsman"
        # Its letters still render, without the personal data.
        for letter in session.scalars(select(Letter).where(Letter.complaint_id == "C-E1")):
            body = render(letter.context, "txt").decode()
            assert "[erased]" in body and "Marianne" not in body

    # Idempotent: nothing more to erase, nothing changes.
    again = erase_account(app, "ACC-ER-90210", now=NOW, by="dpo@example", letters=letters)
    assert again.erased == [] and again.held == {}
    assert returns(app) == before
    with app.sessions() as session:
        assert len(list(session.scalars(select(ErasedComplaint)))) == 3
        assert len(list(session.scalars(select(Erasure)))) == 2


def test_erase_command_names_the_hold_and_needs_a_reason_to_force(
        loaded: tuple[App, Path], db_url: str, tmp_path: Path) -> None:
    app, letters = loaded
    runner = CliRunner()
    base = ["erase", "--customer", "ACC-KEEP-31337", "--db", db_url, "--format", "json",
            "--letters-dir", str(letters)]
    done = runner.invoke(main, base)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"complaints": 1}
    assert json.loads(runner.invoke(main, base).stdout) == {"complaints": 0}
    held = runner.invoke(main, ["erase", "--customer", "ACC-ER-90210", "--db", db_url,
                                "--format", "json", "--letters-dir", str(letters)])
    assert held.exit_code == 1
    document = json.loads(held.stdout)
    assert document["complaints"] == 1  # C-E3; C-E1 and C-E2 are named on stderr
    assert [h["complaint_id"] for h in document["held"]] == ["C-E1", "C-E2"]
    assert "C-E1 is under legal hold" in held.stderr
    no_reason = runner.invoke(main, ["erase", "--customer", "ACC-ER-90210", "--force",
                                     "--db", db_url])
    assert no_reason.exit_code == 2


def relation_files(cluster: Any, dbname: str) -> dict[str, bytes]:
    """Every file of the record's tables, their TOAST tables and their indexes."""
    rows = cluster.execute(
        "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') "
        "AND pg_relation_filepath(c.oid) IS NOT NULL", dbname)
    files: dict[str, bytes] = {}
    for name, relative in rows:
        base = cluster.data_dir / relative
        for path in [base, *sorted(base.parent.glob(f"{base.name}.*"))]:  # 1 GB segments
            if path.exists() and not path.name.endswith(("_fsm", "_vm")):
                files[f"{name}:{path.name}"] = path.read_bytes()
    return files


def test_postgresql_table_toast_and_index_files_hold_nothing_erased(
        pg_cluster: Any, tmp_path: Path) -> None:
    from workflow.bootstrap import bootstrap

    url = pg_cluster.create_database("record")
    app = bootstrap(url, "kilowatt-connect")
    try:
        # A long summary that does not compress goes to TOAST, so TOAST files are tested too.
        noise = random.Random(15)
        words = " ".join("".join(noise.choice(string.ascii_lowercase) for _ in range(7))
                         for _ in range(1200))
        long_summary = f"{words} Marianne Dashwood TOASTED {words[::-1]}"
        events = [dict(e, summary=long_summary) if isinstance(e, dict) and e.get("event_id")
                  == "er-6" else e for e in EVENTS]
        ingest_file(app, write_jsonl(tmp_path / "er.jsonl", events))
        pg_cluster.execute("CHECKPOINT")
        before = relation_files(pg_cluster, "record")
        assert any(b"Marianne Dashwood" in data for data in before.values())
        assert any(b"ACC-ER-90210" in data for name, data in before.items()
                   if name.startswith("ix_complaints_account_id"))
        assert any(name.startswith("pg_toast_") and b"Marianne Dashwood TOASTED" in data
                   for name, data in before.items())
        erase_account(app, "ACC-ER-90210", now=NOW, by="dpo", force=True, reason="test")
        pg_cluster.execute("CHECKPOINT")
        after = relation_files(pg_cluster, "record")
        for value in SECRETS:
            found = [name for name, data in after.items() if value.encode() in data]
            assert not found, (value, found)
        assert any(b"Elinor Ferrars" in data for data in after.values())
    finally:
        app.engine.dispose()


def test_an_erased_record_exports_events_that_replay_to_the_same_returns(
        loaded: tuple[App, Path], tmp_path: Path) -> None:
    from consumers.event_export import export_events
    from workflow.bootstrap import bootstrap

    app, letters = loaded
    erase_account(app, "ACC-ER-90210", now=NOW, by="dpo", force=True, reason="test",
                  letters=letters)
    lines, _notes = export_events(app.engine)
    exported = b"\n".join(lines).decode("utf-8")
    for value in SECRETS:
        assert value not in exported, value
    replay_file = tmp_path / "export.jsonl"
    replay_file.write_text(exported + "\n", encoding="utf-8")
    replay = bootstrap(f"sqlite:///{tmp_path / 'replay.db'}", "kilowatt-connect")
    try:
        report = ingest_file(replay, replay_file)
        assert report.rejected == 0  # the erased events are still valid events
        tick(app, datetime(2026, 2, 1, tzinfo=UTC))
        tick(replay, datetime(2026, 2, 1, tzinfo=UTC))
        assert returns(replay) == returns(app)
    finally:
        replay.engine.dispose()


def test_a_referral_window_the_record_saw_lapse_holds_nothing(app: App, tmp_path: Path) -> None:
    # Holds are judged at the record's now (offline: event time, rules s.5), not the wall
    # clock's. C-L1, received Mon 5 Jan 2026 09:00 UTC, is still open at its eight weeks
    # (56 x 24 h: Mon 2 Mar 09:00 UTC): the 8-week letter opens the referral window to the
    # same date a year on, Tue 2 Mar 2027 23:59:59.999999 (GMT). C-K1's receipt on Thu 1 Apr
    # 2027 takes the record past it: the window lapses and C-L1 is closed. Erased with the
    # wall clock at 2 Dec 2026, inside that window: no hold, C-L1 is erased.
    lapsed = {**ERASED_CUSTOMER, "account_id": "ACC-LAPSED-1"}
    events = [received("lp-1", "C-L1", "2026-01-05T09:00:00+00:00", customer=lapsed),
              received("lp-2", "C-K1", "2027-04-01T09:00:00+00:00", customer=KEPT_CUSTOMER)]
    report = ingest_file(app, write_jsonl(tmp_path / "lapsed.jsonl", events))
    assert (report.applied, report.rejected) == (2, 0)
    with app.sessions() as session:
        kinds = set(session.scalars(select(Letter.kind).where(Letter.complaint_id == "C-L1")))
        shown_ = queries.show_complaint(session, "C-L1")
    assert "eight_week" in kinds
    assert shown_ is not None and shown_["state"] == "closed"
    outcome = erase_account(app, "ACC-LAPSED-1", now=datetime(2026, 12, 2, tzinfo=UTC),
                            by="Test Operator")
    assert (outcome.held, outcome.erased) == ({}, ["C-L1"])


def test_letters_not_yet_delivered_are_cancelled_not_sent(app: App, tmp_path: Path) -> None:
    # C-D1, received Mon 5 Jan 09:00 and resolved Tue 20 Jan (no hold: resolved, no 8-week or
    # deadlock letter), has three letters, none delivered yet: the acknowledgement (D+1),
    # the progress update (15 Jan) and the resolution. Erased, none of them is to be sent to
    # "[erased]": each delivery is cancelled, and announced, so the backlog's letters
    # waiting go from 3 to 0.
    from workflow.schema import Delivery
    customer = {**ERASED_CUSTOMER, "account_id": "ACC-UNSENT-1"}
    ingest_file(app, write_jsonl(tmp_path / "unsent.jsonl", [
        received("un-1", "C-D1", "2026-01-05T09:00:00+00:00", customer=customer),
        resolved("un-2", "C-D1", "2026-01-20T09:00:00+00:00")]))
    as_of = datetime(2026, 2, 1, tzinfo=UTC)
    with app.sessions() as session:
        assert queries.backlog(session, as_of, app.procedure.calendar)[
            "undelivered_letters"] == 3
    outcome = erase_account(app, "ACC-UNSENT-1", now=datetime(2026, 2, 1, tzinfo=UTC),
                            by="Test Operator")
    assert outcome.erased == ["C-D1"]
    with app.sessions() as session:
        statuses = sorted(session.scalars(select(Delivery.status)
                                          .where(Delivery.complaint_id == "C-D1")))
        cancelled = [m.payload for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "letters"))
            if m.payload.get("type") == "letter.cancelled"]
        assert queries.backlog(session, as_of, app.procedure.calendar)[
            "undelivered_letters"] == 0
    assert statuses == ["erased"] * 3
    assert len(cancelled) == 3 and {c["complaint_id"] for c in cancelled} == {"C-D1"}
