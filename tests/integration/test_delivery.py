"""(v2) Letter delivery (docs/rules.md s.6 "Delivery") against a real SMTP server, on both backends.

The server is aiosmtpd, started by each test on a free loopback port; its handler can refuse
recipients with replies the test queues (4xx: try again later; 5xx: refused for good). Letters
are issued by the workflow itself: a complaint received on Monday 2 March 2026 at noon gets its
acknowledgement when its D+1 deadline (end of Tuesday 3 March) fires (`tick`).
"""

from __future__ import annotations

import csv
import email
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from consumers.delivery import DeliveryService, PostItem, PrintQueue, SmtpConfig
from consumers.file_ingest import ingest_file, tick
from consumers.settings import Settings
from letters.render import render
from tests.builders import CUSTOMER, received, write_jsonl
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.procedure import ComplaintsManager, load_procedure
from workflow.schema import Delivery, Dispatch, Letter, OutboxMessage

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # the delivery service's wall clock
RECEIVED = "2026-03-02T12:00:00+00:00"
EMAIL_CUSTOMER = {**CUSTOMER, "preferred_contact": "email", "email": "ada@example.org"}


# --------------------------------------------------------------------------- the SMTP server
@dataclass
class Sink:
    """An aiosmtpd handler: accepts everything except the replies queued in `refusals`."""

    refusals: list[str] = field(default_factory=list)  # given to RCPT, one per attempt
    messages: list[bytes] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        self.recipients.append(list(envelope.rcpt_tos))
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[tuple[Sink, SmtpConfig]]:
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, SmtpConfig(host="127.0.0.1", port=controller.port, tls="off")
    finally:
        controller.stop()


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    """Kilowatt Connect with a real complaints manager: the bundled file's is a placeholder,
    which pauses delivery (tested below with the bundled file itself)."""
    procedure = load_procedure("kilowatt-connect").model_copy(update={
        "complaints_manager": ComplaintsManager(name="Priya Shah", role="Head of Complaints")})
    assert procedure.placeholders == ()
    application = bootstrap(db_url, procedure)
    yield application
    application.engine.dispose()



class Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def issue(app: App, tmp_path: Path, customers: dict[str, dict[str, Any]]) -> dict[str, str]:
    """An acknowledgement letter for each complaint id; returns complaint id -> letter id."""
    lines = [received(f"e-{cid}", cid, RECEIVED, customer=customer)
             for cid, customer in customers.items()]
    ingest_file(app, write_jsonl(tmp_path / "events.jsonl", lines))
    tick(app, datetime(2026, 3, 4, tzinfo=UTC))
    with app.sessions() as session:
        rows = session.execute(select(Letter.complaint_id, Letter.letter_id)
                               .where(Letter.kind == "acknowledgement")).all()
    return {row.complaint_id: row.letter_id for row in rows}


def service(app: App, tmp_path: Path, smtp: SmtpConfig | None, clock: Clock,
            **options: Any) -> DeliveryService:
    return DeliveryService(app, Settings.from_env({}), smtp=smtp, use_env_smtp=False,
                           print_dir=tmp_path / "print", letters_dir=tmp_path / "letters",
                           clock=clock, **options)


def attempts(app: App, letter_id: str) -> list[tuple[int, str, str, str]]:
    with app.sessions() as session:
        return [(d.attempt, d.channel, d.outcome, d.receipt) for d in session.scalars(
            select(Dispatch).where(Dispatch.letter_id == letter_id).order_by(Dispatch.attempt))]


def dispatched_events(app: App) -> list[dict[str, Any]]:
    with app.sessions() as session:
        return [dict(row.payload) for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.event_id.like("%:dispatched"))
            .order_by(OutboxMessage.id))]


def context_of(app: App, letter_id: str) -> dict[str, Any]:
    with app.sessions() as session:
        context = queries.letter_context(session, letter_id)
    assert context is not None
    return context


# --------------------------------------------------------------------------- email
def test_an_email_customer_gets_text_html_and_the_pdf_under_the_letters_message_id(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    clock = Clock(NOW)
    assert service(app, tmp_path, smtp, clock).run_once() == 1

    assert server.recipients == [["ada@example.org"]]
    (raw,) = server.messages
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    # Derived from the letter id (lower case) and the supplier's domain: the same every time.
    assert message["Message-ID"] == f"<{letter_id.lower()}@kilowattconnect.co.uk>"
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["From"].addresses[0].addr_spec == "complaints@kilowattconnect.co.uk"
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = alternative.iter_parts()
    context = context_of(app, letter_id)
    assert text.get_content_type() == "text/plain"
    # Lines travel as CRLF (SMTP); the bodies are the letter's text and HTML renders.
    assert text.get_content().replace("\r\n", "\n") == render(context, "txt").decode("utf-8")
    assert html.get_content_type() == "text/html"
    assert html.get_content().replace("\r\n", "\n") == render(context, "html").decode("utf-8")
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{context['reference']}-acknowledgement.pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF") and pdf == render(context, "pdf")

    # Recorded once, published once, shown with the letter.
    ((attempt, channel, outcome, receipt),) = attempts(app, letter_id)
    assert (attempt, channel, outcome) == (1, "email", "dispatched")
    assert receipt == "250 2.0.0 Ok: queued as Q1"
    (event,) = dispatched_events(app)
    assert event == {"event_id": f"{letter_id}:dispatched", "type": "letter.dispatched",
                     "letter_id": letter_id, "complaint_id": "C-1", "channel": "email",
                     "address": "ada@example.org", "dispatched_at": NOW.isoformat(),
                     "receipt": "250 2.0.0 Ok: queued as Q1"}
    with app.sessions() as session:
        shown = queries.show_complaint(session, "C-1")
        assert queries.undelivered_letters(session) == 0
    assert shown is not None
    (letter,) = shown["letters"]
    assert letter["delivery"] == "dispatched"
    assert letter["dispatches"] == [{"attempt": 1, "channel": "email",
                                     "address": "ada@example.org", "at": NOW.isoformat(),
                                     "outcome": "dispatched",
                                     "receipt": "250 2.0.0 Ok: queued as Q1"}]

    # Recorded as dispatched: a later round, or a restarted service, sends nothing.
    clock.at = NOW + timedelta(days=1)
    assert service(app, tmp_path, smtp, clock).run_once() == 0
    assert len(server.messages) == 1


def test_a_temporary_refusal_is_retried_after_the_back_off_and_delivered_once(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    server.refusals = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    clock = Clock(NOW)
    delivery = service(app, tmp_path, smtp, clock)
    assert delivery.run_once() == 1  # refused: next try 1 minute later
    clock.at = NOW + timedelta(seconds=59)
    assert delivery.run_once() == 0  # not due yet
    clock.at = NOW + timedelta(minutes=1)
    assert delivery.run_once() == 1  # refused again: next try 2 minutes later
    clock.at = NOW + timedelta(minutes=2, seconds=59)
    assert delivery.run_once() == 0
    clock.at = NOW + timedelta(minutes=3)
    assert delivery.run_once() == 1  # accepted
    assert len(server.messages) == 1
    assert attempts(app, letter_id) == [
        (1, "email", "deferred", "451 4.3.0 Try again later"),
        (2, "email", "deferred", "451 4.3.0 Try again later"),
        (3, "email", "dispatched", "250 2.0.0 Ok: queued as Q1"),
    ]
    (event,) = dispatched_events(app)
    assert event["dispatched_at"] == (NOW + timedelta(minutes=3)).isoformat()
    assert (delivery.stats.deferred, delivery.stats.emailed) == (2, 1)


def test_a_permanent_refusal_sends_the_letter_by_post_and_records_both(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    server.refusals = ["550 5.1.1 Mailbox does not exist"]
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    delivery = service(app, tmp_path, smtp, Clock(NOW))
    assert delivery.run_once() == 1
    assert server.messages == []
    (email_try, post) = attempts(app, letter_id)
    assert email_try == (1, "email", "refused", "550 5.1.1 Mailbox does not exist")
    assert post[:3] == (2, "post", "dispatched")
    run, name = post[3].split("/")
    assert run.startswith("run-20260309T120000") and name == f"{letter_id}.pdf"
    assert (tmp_path / "print" / post[3]).read_bytes() == render(context_of(app, letter_id),
                                                                   "pdf")
    (event,) = dispatched_events(app)
    assert (event["channel"], event["address"], event["receipt"]) == (
        "post", "Ada Lovelace, 1 High Street, Exeter, EX1 1AA", post[3])
    assert (delivery.stats.refused, delivery.stats.posted) == (1, 1)


def test_an_email_still_undelivered_after_the_give_up_hours_goes_by_post(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    server.refusals = ["421 4.7.0 Busy"] * 3
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    clock = Clock(NOW)
    delivery = service(app, tmp_path, smtp, clock)
    delivery.run_once()  # 12:00 deferred (the give-up clock starts)
    clock.at = NOW + timedelta(hours=23, minutes=59)
    delivery.run_once()  # 23 h 59 min later: deferred, still inside the 24 hours
    clock.at = NOW + timedelta(hours=24)
    delivery.run_once()  # 24 h after the first try: given up, posted at once
    assert [a[:3] for a in attempts(app, letter_id)] == [
        (1, "email", "deferred"), (2, "email", "deferred"), (3, "email", "gave_up"),
        (4, "post", "dispatched")]
    assert server.messages == []
    assert dispatched_events(app)[0]["channel"] == "post"


def test_no_answer_from_the_server_is_retried(app: App, tmp_path: Path) -> None:
    letters = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER, "C-2": EMAIL_CUSTOMER})
    closed = SmtpConfig(host="127.0.0.1", port=free_port(), tls="off", timeout_s=2)
    service(app, tmp_path, closed, Clock(NOW)).run_once()
    for letter_id in letters.values():  # the second is not tried again in the same round
        ((attempt, channel, outcome, receipt),) = attempts(app, letter_id)
        assert (attempt, channel, outcome) == (1, "email", "deferred")
        assert receipt.startswith("no session with the mail server (ConnectionRefusedError")
    with app.sessions() as session:
        assert queries.undelivered_letters(session) == 2


def test_starttls_required_but_not_offered_is_not_sent_in_clear(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    required = SmtpConfig(host=smtp.host, port=smtp.port, tls="starttls")
    service(app, tmp_path, required, Clock(NOW)).run_once()
    assert server.messages == []
    ((_, _, outcome, receipt),) = attempts(app, letter_id)
    assert outcome == "deferred" and "STARTTLS" in receipt


# --------------------------------------------------------------------------- crashes
def test_a_worker_that_dies_after_claiming_leaves_the_letter_to_the_next_after_the_lease(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    clock = Clock(NOW)
    dead = service(app, tmp_path, smtp, clock)
    assert [c.letter_id for c in dead._claim(NOW)] == [letter_id]  # then it dies
    restarted = service(app, tmp_path, smtp, clock)
    assert restarted.run_once() == 0  # held by the dead worker's lease (10 minutes)
    clock.at = NOW + timedelta(minutes=10)
    assert restarted.run_once() == 1
    assert len(server.messages) == 1
    assert [a[:3] for a in attempts(app, letter_id)] == [(1, "email", "dispatched")]


def test_a_crash_between_acceptance_and_record_repeats_the_email_with_its_message_id(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one repeat docs/rules.md s.6 allows: the server accepted, the record was never
    written."""
    server, smtp = sink
    letter_id = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
    clock = Clock(NOW)
    crashing = service(app, tmp_path, smtp, clock)

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("killed before the record")

    monkeypatch.setattr(crashing, "_record", crash)
    with pytest.raises(RuntimeError):
        crashing.run_once()
    assert len(server.messages) == 1 and attempts(app, letter_id) == []
    clock.at = NOW + timedelta(minutes=10)  # the dead worker's lease has passed
    assert service(app, tmp_path, smtp, clock).run_once() == 1
    first, second = (email.message_from_bytes(m, policy=default_policy)
                     for m in server.messages)
    assert first["Message-ID"] == second["Message-ID"] == \
        f"<{letter_id.lower()}@kilowattconnect.co.uk>"
    assert [a[:3] for a in attempts(app, letter_id)] == [(1, "email", "dispatched")]
    assert len(dispatched_events(app)) == 1


def test_a_print_run_written_before_a_crash_is_recorded_at_the_next_start_not_reprinted(
        app: App, tmp_path: Path) -> None:
    letter_id = issue(app, tmp_path, {"C-1": CUSTOMER})["C-1"]
    context = context_of(app, letter_id)
    # The run a crashed worker wrote before recording it.
    files = PrintQueue(tmp_path / "print").write_run(
        [PostItem(letter_id, "C-1", context, render(context, "pdf"))], NOW)
    restarted = service(app, tmp_path, None, Clock(NOW + timedelta(minutes=30)))
    assert restarted.recover_print_runs() == 1
    assert restarted.run_once() == 0
    assert len(list((tmp_path / "print").glob("run-*"))) == 1
    ((attempt, channel, outcome, receipt),) = attempts(app, letter_id)
    assert (attempt, channel, outcome, receipt) == (1, "post", "dispatched", files[letter_id])
    assert dispatched_events(app)[0]["dispatched_at"] == NOW.isoformat()


# --------------------------------------------------------------------------- post
def test_a_print_run_holds_each_posted_letters_pdf_and_a_manifest(
        app: App, tmp_path: Path) -> None:
    grace = {**CUSTOMER, "account_id": "ACC-2", "name": "Grace Hopper",
             "address": ["2 Low Road", "Leeds", "LS1 2AB"], "postcode": "LS1 2AB",
             "preferred_contact": "phone"}
    no_email = {**CUSTOMER, "preferred_contact": "email"}  # asked for email, gave none
    letters = issue(app, tmp_path, {"C-1": CUSTOMER, "C-2": grace, "C-3": no_email})
    delivery = service(app, tmp_path, None, Clock(NOW))
    assert delivery.run_once() == 3
    (run,) = (tmp_path / "print").iterdir()
    manifest = json.loads((run / "manifest.json").read_text("utf-8"))
    assert manifest["run"] == run.name and manifest["count"] == 3
    assert manifest["created_at"] == NOW.isoformat()
    by_id = {entry["letter_id"]: entry for entry in manifest["letters"]}
    assert set(by_id) == set(letters.values())
    ada = by_id[letters["C-1"]]
    assert ada == {"letter_id": letters["C-1"], "complaint_id": "C-1",
                   "reference": context_of(app, letters["C-1"])["reference"],
                   "kind": "acknowledgement", "issued_at": ada["issued_at"],
                   "name": "Ada Lovelace", "address": ["1 High Street", "Exeter", "EX1 1AA"],
                   "postcode": "EX1 1AA", "file": f"{letters['C-1']}.pdf"}
    # The postcode is the last address line already: not repeated.
    assert by_id[letters["C-2"]]["address"] == ["2 Low Road", "Leeds", "LS1 2AB"]
    for entry in manifest["letters"]:
        assert (run / entry["file"]).read_bytes()[:4] == b"%PDF"
    with (run / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["letter_id"] for r in rows] == [e["letter_id"] for e in manifest["letters"]]
    ada_row = next(r for r in rows if r["letter_id"] == letters["C-1"])
    assert ada_row["address"] == "1 High Street / Exeter / EX1 1AA"
    assert ada_row["file"] == f"{letters['C-1']}.pdf"
    assert sorted(e["channel"] for e in dispatched_events(app)) == ["post"] * 3
    assert delivery.stats.print_runs == 1


def test_a_letter_issued_is_pending_until_delivered_and_counted_in_the_backlog(
        app: App, tmp_path: Path) -> None:
    letters = issue(app, tmp_path, {"C-1": CUSTOMER, "C-2": EMAIL_CUSTOMER})
    with app.sessions() as session:
        rows = {d.letter_id: (d.status, d.channel, d.attempts) for d in
                session.scalars(select(Delivery))}
        backlog = queries.backlog(session, NOW, app.procedure.calendar)
    assert rows == {letters["C-1"]: ("pending", "post", 0),
                    letters["C-2"]: ("pending", "email", 0)}
    assert backlog["undelivered_letters"] == 2


# --------------------------------------------------------------------------- placeholders
def test_placeholder_details_pause_delivery_and_the_demo_delivers_anyway(
        db_url: str, tmp_path: Path, sink: tuple[Sink, SmtpConfig],
        caplog: pytest.LogCaptureFixture) -> None:
    server, smtp = sink
    bundled = bootstrap(db_url, "kilowatt-connect")  # its complaints_manager is a placeholder
    try:
        letter_id = issue(bundled, tmp_path, {"C-1": EMAIL_CUSTOMER})["C-1"]
        paused = service(bundled, tmp_path, smtp, Clock(NOW))
        assert paused.paused_keys == ("complaints_manager",)
        stop = threading.Event()
        runner = threading.Thread(target=paused.run, args=(stop,))
        with caplog.at_level(logging.WARNING, logger="consumers.delivery"):
            runner.start()
            for _ in range(100):
                if paused.stats.paused:
                    break
                time.sleep(0.02)
            assert paused.run_once() == 0
            stop.set()
            runner.join(timeout=5)
        assert not runner.is_alive() and paused.stats.paused == 1
        (message,) = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
        assert "[complaints_manager]" in message and "placeholder = true" in message
        assert server.messages == [] and attempts(bundled, letter_id) == []
        with bundled.sessions() as session:
            assert queries.undelivered_letters(session) == 1

        demo = service(bundled, tmp_path, smtp, Clock(NOW), demo=True)
        assert demo.paused_keys == () and demo.run_once() == 1
        assert len(server.messages) == 1
    finally:
        bundled.engine.dispose()


def test_a_letter_that_does_not_render_waits_without_holding_up_the_others(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    letters = issue(app, tmp_path, {"C-1": EMAIL_CUSTOMER, "C-2": EMAIL_CUSTOMER,
                                    "C-3": CUSTOMER, "C-4": CUSTOMER})
    broken = {letters["C-1"], letters["C-3"]}  # one email, one post
    with app.sessions() as session:
        for letter in session.scalars(select(Letter).where(Letter.letter_id.in_(broken))):
            context = dict(letter.context)
            del context["reference"]  # the templates need it: StrictUndefined raises
            letter.context = context
        session.commit()
    delivery = service(app, tmp_path, smtp, Clock(NOW))
    assert delivery.run_once() == 4
    assert len(server.messages) == 1  # C-2
    for cid in ("C-1", "C-3"):
        ((_, _, outcome, receipt),) = attempts(app, letters[cid])
        assert outcome == "deferred" and receipt.startswith("the letter could not be rendered")
    assert [a[2] for a in attempts(app, letters["C-4"])] == ["dispatched"]
    with app.sessions() as session:
        assert queries.undelivered_letters(session) == 2


def test_the_letter_service_passes_over_dispatch_messages(sqlite_url: str,
                                                         tmp_path: Path) -> None:
    from types import SimpleNamespace

    from consumers.letter_service import LetterService

    application = bootstrap(sqlite_url)
    try:
        letters = LetterService(
            application, Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
            directory=tmp_path / "files", formats=("txt",))
        event = {"event_id": "L-1:dispatched", "type": "letter.dispatched", "letter_id": "L-1",
                 "complaint_id": "C-1"}
        record = SimpleNamespace(value=json.dumps(event).encode(), topic="complaints.letters",
                                 partition=0, offset=7)
        assert letters.handle(record) == "ignored"
        assert (letters.stats.rendered, letters.stats.skipped, letters.stats.failed) == (0, 0, 0)
        assert not (tmp_path / "files").exists()
    finally:
        application.engine.dispose()


def test_an_address_smtp_cannot_carry_is_refused_and_posted(
        app: App, tmp_path: Path, sink: tuple[Sink, SmtpConfig]) -> None:
    server, smtp = sink
    accented = {**EMAIL_CUSTOMER, "email": "adá@example.org"}
    letter_id = issue(app, tmp_path, {"C-1": accented})["C-1"]
    assert service(app, tmp_path, smtp, Clock(NOW)).run_once() == 1
    assert server.messages == []
    assert [a[1:3] for a in attempts(app, letter_id)] == [("email", "refused"),
                                                          ("post", "dispatched")]
