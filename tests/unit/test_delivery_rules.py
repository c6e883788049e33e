"""(v2) Delivery decisions (workflow.delivery), the email's shape (letters.mail), the
aggregator's count of undelivered letters and the ops metrics: worked by hand from docs/rules.md
s.6 "Delivery", no I/O."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consumers.delivery import SmtpConfig
from letters.mail import compose, message_id, sender_domain
from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.web import OpsState, create_app
from workflow import delivery as rules
from workflow.calendar import WorkingCalendar

T0 = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- the channel
@pytest.mark.parametrize(("customer", "channel"), [
    ({"preferred_contact": "email", "email": "a@example.org"}, "email"),
    ({"preferred_contact": "email", "email": None}, "post"),  # no address: post
    ({"preferred_contact": "email", "email": "  "}, "post"),
    ({"preferred_contact": "letter", "email": "a@example.org"}, "post"),
    ({"preferred_contact": "phone", "email": "a@example.org"}, "post"),  # no phone letters
])
def test_the_channel_follows_preferred_contact_and_an_email_address(
        customer: dict[str, Any], channel: str) -> None:
    assert rules.initial_channel(customer) == channel


def test_back_off_doubles_from_one_minute_to_at_most_an_hour() -> None:
    minutes = [rules.retry_delay(n) / timedelta(minutes=1) for n in range(1, 10)]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert rules.retry_delay(10_000) == timedelta(hours=1)
    with pytest.raises(ValueError):
        rules.retry_delay(0)


@pytest.mark.parametrize(("code", "outcome"), [
    (250, "dispatched"), (251, "dispatched"), (421, "deferred"), (450, "deferred"),
    (451, "deferred"), (550, "refused"), (552, "refused"), (554, "refused"), (None, "deferred")])
def test_smtp_replies(code: int | None, outcome: str) -> None:
    assert rules.smtp_outcome(code) == outcome


# --------------------------------------------------------------------------- after an attempt
def email_state(failures: int = 0, since: datetime | None = None) -> rules.State:
    return rules.State("email", attempts=failures, failures=failures, email_since=since)


def test_an_accepted_email_is_dispatched_and_starts_the_give_up_clock_on_its_first_try() -> None:
    decision = rules.after_attempt(email_state(), "dispatched", T0)
    assert (decision.outcome, decision.status, decision.channel) == (
        "dispatched", "dispatched", "email")
    assert decision.email_since == T0


def test_a_temporary_failure_waits_the_back_off_and_keeps_the_first_try_instant() -> None:
    first = rules.after_attempt(email_state(), "deferred", T0)
    assert (first.outcome, first.channel, first.next_attempt_at, first.email_since) == (
        "deferred", "email", T0 + timedelta(minutes=1), T0)
    # Third failure in a row, 10 minutes on: 4 minutes' wait; the clock still starts at T0.
    third = rules.after_attempt(email_state(2, T0), "deferred", T0 + timedelta(minutes=10))
    assert third.next_attempt_at == T0 + timedelta(minutes=14) and third.email_since == T0


def test_a_permanent_refusal_goes_by_post_at_once() -> None:
    decision = rules.after_attempt(email_state(3, T0), "refused", T0 + timedelta(minutes=20))
    assert (decision.outcome, decision.status, decision.channel, decision.next_attempt_at) == (
        "refused", "pending", "post", T0 + timedelta(minutes=20))


def test_the_last_retry_falls_on_the_give_up_instant_and_then_the_letter_is_posted() -> None:
    # 23 h 30 min after the first try, 7th failure: an hour's wait would pass 24 h; the retry
    # is at exactly 24 h instead, and a failure then gives up.
    late = rules.after_attempt(email_state(6, T0), "deferred", T0 + timedelta(hours=23.5))
    assert late.next_attempt_at == T0 + timedelta(hours=24)
    given_up = rules.after_attempt(email_state(7, T0), "deferred", T0 + timedelta(hours=24))
    assert (given_up.outcome, given_up.channel, given_up.next_attempt_at) == (
        "gave_up", "post", T0 + timedelta(hours=24))
    # A procedure's own email_give_up_hours (2): given up after 2 hours, not 24.
    short = rules.after_attempt(email_state(3, T0), "deferred", T0 + timedelta(hours=2),
                                email_give_up_hours=2)
    assert short.outcome == "gave_up"


def test_a_failed_post_attempt_is_retried_never_given_up() -> None:
    state = rules.State("post", attempts=40, failures=30, email_since=T0)
    decision = rules.after_attempt(state, "deferred", T0 + timedelta(days=30))
    assert (decision.outcome, decision.channel, decision.next_attempt_at) == (
        "deferred", "post", T0 + timedelta(days=30, hours=1))


def test_the_dispatched_event_is_named_by_its_letter() -> None:
    event = rules.dispatched_event("L-1", "C-1", "post", "Ada, 1 High St", T0, "run-x/L-1.pdf")
    assert event == {"event_id": "L-1:dispatched", "type": "letter.dispatched",
                     "letter_id": "L-1", "complaint_id": "C-1", "channel": "post",
                     "address": "Ada, 1 High St", "dispatched_at": "2026-03-09T12:00:00+00:00",
                     "receipt": "run-x/L-1.pdf"}


def test_placeholders_pause_delivery_except_in_the_demo() -> None:
    assert rules.placeholder_pause(("complaints_manager", "supplier"), demo=False) == (
        "complaints_manager", "supplier")
    assert rules.placeholder_pause(("complaints_manager",), demo=True) == ()
    message = rules.pause_message(("complaints_manager", "supplier"))
    assert message.startswith("delivery paused: the procedure marks [complaints_manager], "
                              "[supplier] as placeholder = true")


# --------------------------------------------------------------------------- the email
def test_message_id_comes_from_the_letter_id_alone() -> None:
    assert message_id("L-16D129C9", "kilowattconnect.co.uk") == \
        "<l-16d129c9@kilowattconnect.co.uk>"
    assert sender_domain("Complaints <complaints@Example.CO.UK>") == "example.co.uk"
    assert sender_domain(None) == "complaints.invalid"


def test_the_email_is_mixed_with_alternative_bodies_and_the_pdf() -> None:
    context = {"kind": "deadlock", "letter_id": "L-AB", "reference": "KC-1", "supplier":
               {"name": "Kilowatt Connect"}, "customer": {"name": "Ada Lovelace"}}
    message = compose(context, sender="complaints@kc.example", recipient="ada@example.org",
                      text=b"Dear Ada\n", html=b"<p>Dear Ada</p>", pdf=b"%PDF-1.7 x",
                      date=T0)
    assert message["Subject"] == "Deadlock letter (reference KC-1)"
    assert message["Message-ID"] == "<l-ab@kc.example>"
    assert message["Date"] == "Mon, 09 Mar 2026 12:00:00 +0000"
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "application/pdf"]
    attachment = list(message.iter_attachments())[0]
    assert attachment.get_filename() == "KC-1-deadlock.pdf"
    assert attachment.get_content() == b"%PDF-1.7 x"


# --------------------------------------------------------------------------- the live view
def letter(letter_id: str, delivery: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": letter_id, "letter_id": letter_id, "complaint_id": "C-1",
        "kind": "acknowledgement", "issued_at": "2026-03-03T23:59:59.999999+00:00",
        "reference": "KC-1", "cycle": 1, "formats": ["pdf"]}
    if delivery is not None:
        payload["delivery"] = delivery
    return payload


def test_the_aggregator_counts_letters_until_their_dispatch_arrives() -> None:
    calendar = WorkingCalendar("ENG")
    aggregator = Aggregator(Rules(calendar))
    aggregator.handle("letters", json.dumps(letter("L-1", "email")))
    aggregator.handle("letters", json.dumps(letter("L-2", "post")))
    aggregator.handle("letters", json.dumps(letter("L-OLD", None)))  # before v2: not counted
    assert aggregator.view.backlog(T0, calendar)["undelivered_letters"] == 2
    dispatched = json.dumps(rules.dispatched_event("L-1", "C-1", "email", "a@example.org",
                                                   T0, "250 OK"))
    assert aggregator.handle("letters", dispatched) == "applied"
    assert aggregator.handle("letters", dispatched) == "duplicate"  # a re-publish
    backlog = aggregator.view.backlog(T0, calendar)
    assert backlog["undelivered_letters"] == 1
    # A dispatch is not a letter: the letters-by-kind figures are unchanged.
    assert aggregator.view.monthly("2026-03")["letters"]["acknowledgement"] == 3
    # An erasure cancels L-2's delivery (workflow/erasure.py): no longer waiting, not a letter.
    cancelled = {"event_id": "L-2:cancelled", "type": "letter.cancelled", "letter_id": "L-2",
                 "complaint_id": "C-1", "reason": "personal data erased before delivery",
                 "cancelled_at": "2026-03-04T10:00:00+00:00"}
    assert aggregator.handle("letters", json.dumps(cancelled)) == "applied"
    assert aggregator.view.backlog(T0, calendar)["undelivered_letters"] == 0
    assert aggregator.view.monthly("2026-03")["letters"]["acknowledgement"] == 3


def test_metrics_and_the_delivery_endpoint_name_the_placeholders() -> None:
    calendar = WorkingCalendar("ENG")
    aggregator = Aggregator(Rules(calendar))
    aggregator.ready = True
    aggregator.handle("letters", json.dumps(letter("L-1", "post")))
    state = OpsState(calendar, aggregator, status="running",
                     delivery_paused=("complaints_manager",))

    async def scrape() -> tuple[str, dict[str, Any], int]:
        async with TestClient(TestServer(create_app(state, "t0ken"))) as client:
            headers = {"Authorization": "Bearer t0ken"}
            metrics = await (await client.get("/metrics", headers=headers)).text()
            document = await (await client.get("/delivery", headers=headers)).json()
            status = (await client.get("/delivery")).status
            return metrics, document, status

    metrics, document, unauthorised = asyncio.run(scrape())
    assert "complaints_delivery_paused 1.0" in metrics
    assert 'complaints_delivery_placeholder{key="complaints_manager"} 1.0' in metrics
    assert "complaints_letters_undelivered 1.0" in metrics
    assert document["paused"] is True and document["placeholders"] == ["complaints_manager"]
    assert document["undelivered_letters"] == 1 and "[complaints_manager]" in document["message"]
    assert unauthorised == 401


# --------------------------------------------------------------------------- configuration
def test_smtp_settings_from_the_environment() -> None:
    assert SmtpConfig.from_env({}) is None
    config = SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "smtp://mail.example.net",
                                  "COMPLAINTS_SMTP_USERNAME": "kc",
                                  "COMPLAINTS_SMTP_PASSWORD": "s3cret"})
    assert config is not None
    assert (config.host, config.port, config.tls, config.username) == (
        "mail.example.net", 587, "starttls", "kc")
    assert "s3cret" not in repr(config)
    tls = SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "smtps://mail.example.net"})
    assert tls is not None and (tls.port, tls.tls) == (465, "implicit")
    plain = SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "smtp://127.0.0.1:2525",
                                 "COMPLAINTS_SMTP_STARTTLS": "off"})
    assert plain is not None and (plain.port, plain.tls) == (2525, "off")
    with pytest.raises(ValueError, match="must not carry credentials"):
        SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "smtp://kc:s3cret@mail.example.net"})
    with pytest.raises(ValueError, match="smtp://host"):
        SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "http://mail.example.net"})
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpConfig.from_env({"COMPLAINTS_SMTP_URL": "smtp://m", "COMPLAINTS_SMTP_STARTTLS": "x"})
