"""(v2) The delivery service: every issued letter reaches the customer, by email or by post.

A component of `complaints up` (`--only delivery`), driven by the record, not by a topic: the
workflow writes a `deliveries` row with each letter, in the same transaction, and this loop
works through the rows that are due (`next_attempt_at`), so a letter is never lost to a broker
that forgot a message, and a restart carries on from the database. What to do after each
attempt is decided in `workflow.delivery`; here are the I/O and the record.

One round:
1. Claim the due rows: each claim moves `next_attempt_at` a lease ahead with a compare-and-set
   UPDATE, so two workers (or a restarted one) never hold the same letter at once.
2. Email (`preferred_contact: email` with an address): over one SMTP connection
   (COMPLAINTS_SMTP_URL; STARTTLS and credentials from the environment), MAIL/RCPT/DATA; the
   server's reply decides: accepted, refused for good (-> post), or retried with back-off;
   undelivered for `email_give_up_hours` since the first try -> post.
3. Post: the round's letters for the post become one print run, a folder in the print queue
   (COMPLAINTS_PRINT_DIR) with their PDFs and a manifest (JSON and CSV), written completely
   before anything is recorded.
4. Each attempt is recorded in its own transaction (a `dispatches` row; the `deliveries` row
   updated only if no other worker recorded one meanwhile) and a dispatched letter's
   `letter.dispatched` event is written to the outbox in that transaction, for the relay.

Once recorded as dispatched a letter is never sent again. A crash after the mail server
accepted an email and before the record can send that email once more after the lease, with
the same Message-ID (mail systems that deduplicate by it show one). A crash after a print run
was written and before its record is recovered from the run's manifest at the next start,
not printed twice.

Placeholder guard: while the procedure marks any table `placeholder = true`, this component
sends nothing (outside the demo); it logs which keys at start and waits, and the rest of the
service runs on. No personal data reaches the log: letter ids, reply codes and error types.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from consumers.letter_service import letter_path, sync_directory, write_atomically
from consumers.logtext import short
from consumers.settings import Settings, env
from letters.mail import compose
from letters.render import LetterFormat, postal_lines, render
from workflow import delivery as rules
from workflow.bootstrap import App
from workflow.clock import Clock, SystemClock
from workflow.schema import Delivery, Dispatch, Letter, OutboxMessage

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S: Final = 30.0
MANIFEST: Final = "manifest.json"
MANIFEST_CSV: Final = "manifest.csv"
CSV_COLUMNS: Final = ("letter_id", "complaint_id", "reference", "kind", "issued_at", "name",
                      "address", "postcode", "file")


# --------------------------------------------------------------------------- SMTP
@dataclass(frozen=True)
class SmtpConfig:
    """Where and how email leaves. `repr` never shows the password."""

    host: str
    port: int
    tls: Literal["starttls", "implicit", "off"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None  # the From address; else the procedure's supplier email
    timeout_s: float = SMTP_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpConfig | None:
        """None when COMPLAINTS_SMTP_URL is unset (then no email leaves: see the README)."""
        url = env("COMPLAINTS_SMTP_URL", environ)
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("COMPLAINTS_SMTP_URL must be smtp://host[:port] or "
                             "smtps://host[:port]")
        if parts.username or parts.password:
            # Credentials in a URL end up in process listings and logs.
            raise ValueError("COMPLAINTS_SMTP_URL must not carry credentials: set "
                             "COMPLAINTS_SMTP_USERNAME and COMPLAINTS_SMTP_PASSWORD")
        if not parts.hostname:
            raise ValueError("COMPLAINTS_SMTP_URL has no host")
        starttls = (env("COMPLAINTS_SMTP_STARTTLS", environ) or "required").lower()
        if starttls not in ("required", "off"):
            raise ValueError("COMPLAINTS_SMTP_STARTTLS must be 'required' or 'off'")
        implicit = parts.scheme == "smtps"
        tls: Literal["starttls", "implicit", "off"] = (
            "implicit" if implicit else "starttls" if starttls == "required" else "off")
        return cls(host=parts.hostname, port=parts.port or (465 if implicit else 587), tls=tls,
                   username=env("COMPLAINTS_SMTP_USERNAME", environ),
                   password=env("COMPLAINTS_SMTP_PASSWORD", environ),
                   sender=env("COMPLAINTS_SMTP_FROM", environ))


Reply = tuple[int | None, str]  # (code, text); code None: no reply (connection, timeout)


def _reply(code: int, message: bytes | str) -> Reply:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return code, f"{code} {' '.join(text.split())}"


class SmtpSession:
    """One connection for a round of emails, opened on the first send, closed by `close`."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None
        # Once the server could not be reached or dropped us, the rest of the round is not
        # tried again: each try could wait out the timeout, and the round must end well
        # inside its claims' lease (another worker would take the letters over).
        self._broken: Reply | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        c = self.config
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.tls == "implicit":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            smtp.ehlo()
            if c.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the mail server does not offer STARTTLS (COMPLAINTS_SMTP_STARTTLS="
                        "off only for a trusted local relay)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if c.username:
                smtp.login(c.username, c.password or "")
        except BaseException:
            with contextlib.suppress(Exception):
                smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """MAIL, RCPT, DATA: the server's final reply (or None for no reply at all)."""
        if self._broken is not None:
            return self._broken
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            self._smtp = None
            code = getattr(exc, "smtp_code", None)
            # Authentication and TLS faults are ours, not the letter's: never "refused".
            detail = f"{type(exc).__name__}: {short(exc)}" if code is None else f"{code}"
            self._broken = (None, f"no session with the mail server ({detail})")
            return self._broken
        try:
            code, message = smtp.mail(sender)
            if code != 250:
                self._reset(smtp)
                return _reply(code, message)
            code, message = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset(smtp)
                return _reply(code, message)
            code, message = smtp.data(data)
            return _reply(code, message)
        except smtplib.SMTPResponseException as exc:  # DATA refused before the content
            self._reset(smtp)
            return _reply(exc.smtp_code, exc.smtp_error)
        except (UnicodeError, ValueError) as exc:
            # An address SMTP cannot carry (not ASCII, without SMTPUTF8): refused for good,
            # so the letter is posted. Never sent part-way: the command failed to encode.
            self._reset(smtp)
            return 553, f"553 the address cannot be sent ({type(exc).__name__})"
        except (OSError, smtplib.SMTPException) as exc:  # dropped, timed out
            self.close()
            self._broken = (None, f"connection lost ({type(exc).__name__})")
            return self._broken

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """RSET after a refusal; a server that hung up (e.g. after a 421) is reconnected to
        by nobody this round: the refusal itself is still the letter's reply."""
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            self._broken = (None, f"connection lost ({type(exc).__name__})")

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001 - closing a session that already failed
            with contextlib.suppress(Exception):
                smtp.close()


# --------------------------------------------------------------------------- print queue
@dataclass(frozen=True)
class PostItem:
    letter_id: str
    complaint_id: str
    context: Mapping[str, Any]
    pdf: bytes


def postal_address(customer: Mapping[str, Any]) -> str:
    """The address used, as one line for the record and the event: name, lines, postcode."""
    return ", ".join([str(customer["name"]), *postal_lines(customer)])


class PrintQueue:
    """A folder of print runs: `run-<instant>-<digest>/` with the PDFs and the manifest.

    A run is complete once `manifest.json` is in it (written last, atomically); a folder
    without one is a crash's leftover, never recorded, and is written again as a new run.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write_run(self, items: list[PostItem], now: datetime) -> dict[str, str]:
        """Write one run; returns each letter's print file, relative to the queue."""
        digest = hashlib.sha256("".join(i.letter_id for i in items).encode()).hexdigest()[:8]
        name = f"run-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{digest}"
        run = self.directory / name
        run.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        entries = []
        for item in items:
            target = run / f"{item.letter_id}.pdf"
            write_atomically(target, item.pdf)
            files[item.letter_id] = f"{name}/{target.name}"
            customer = item.context["customer"]
            entries.append({
                "letter_id": item.letter_id, "complaint_id": item.complaint_id,
                "reference": item.context["reference"], "kind": item.context["kind"],
                "issued_at": item.context["issued_at"], "name": customer["name"],
                "address": postal_lines(customer), "postcode": customer["postcode"],
                "file": target.name,
            })
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for entry in entries:
            writer.writerow({**entry, "address": " / ".join(entry["address"])})
        write_atomically(run / MANIFEST_CSV, buffer.getvalue().encode("utf-8"))
        manifest = {"run": name, "created_at": now.isoformat(), "count": len(entries),
                    "letters": entries}
        write_atomically(run / MANIFEST, json.dumps(manifest, indent=2,
                                                    ensure_ascii=False).encode("utf-8"))
        sync_directory(run)
        sync_directory(self.directory)
        return files

    def runs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every complete run: (name, manifest)."""
        if not self.directory.is_dir():
            return
        for manifest in sorted(self.directory.glob(f"run-*/{MANIFEST}")):
            try:
                document = json.loads(manifest.read_text("utf-8"))
            except (OSError, ValueError):
                log.error("print run %s: unreadable manifest; skipped", manifest.parent.name)
                continue
            yield manifest.parent.name, document


# --------------------------------------------------------------------------- the service
@dataclass
class DeliveryStats:
    """Running totals, read by `complaints up` for its log lines and exit summary."""

    emailed: int = 0  # accepted by the mail server
    posted: int = 0  # in a print run
    deferred: int = 0  # attempts to be retried
    refused: int = 0  # emails refused for good (then posted)
    gave_up: int = 0  # emails undelivered for email_give_up_hours (then posted)
    print_runs: int = 0
    recovered: int = 0  # found in a print run at start, recorded then
    rounds: int = 0
    paused: int = 0  # 1 while placeholder details hold delivery back


@dataclass
class Claimed:
    """A letter this worker holds for the round, with its delivery's state."""

    letter_id: str
    complaint_id: str
    channel: rules.Channel
    attempts: int
    failures: int
    email_since: datetime | None
    context: Mapping[str, Any]

    def state(self) -> rules.State:
        return rules.State(self.channel, self.attempts, self.failures, self.email_since)


class DeliveryService:
    """`run(stop)` until `stop` is set; each round delivers what is due."""

    def __init__(self, app: App, settings: Settings, *, smtp: SmtpConfig | None = None,
                 use_env_smtp: bool = True, print_dir: str | Path | None = None,
                 letters_dir: str | Path | None = None, clock: Clock | None = None,
                 demo: bool = False, batch: int = 20, interval: float = 1.0,
                 first_retry: timedelta = rules.FIRST_RETRY,
                 max_retry: timedelta = rules.MAX_RETRY,
                 lease: timedelta = rules.LEASE) -> None:
        self.app = app
        self.smtp = smtp if smtp is not None or not use_env_smtp else SmtpConfig.from_env()
        self.print_queue = PrintQueue(print_dir if print_dir is not None
                                      else env("COMPLAINTS_PRINT_DIR") or "print-queue")
        self.letters_dir = Path(letters_dir if letters_dir is not None else settings.letters_dir)
        self.clock = clock or SystemClock()
        self.batch = batch
        self.interval = interval
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.lease = lease
        procedure = app.procedure
        self.give_up_hours = procedure.email_give_up_hours
        self.placeholders = procedure.placeholders
        self.paused_keys = rules.placeholder_pause(self.placeholders, demo)
        self.demo = demo
        self.sender = (self.smtp.sender if self.smtp and self.smtp.sender
                       else procedure.supplier.email)
        self.stats = DeliveryStats()

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        if self.paused_keys:
            self.stats.paused = 1
            log.warning(rules.pause_message(self.paused_keys))
            stop.wait()  # the rest of the service runs on; letters wait in the record
            return
        if self.placeholders:
            log.warning("demo: delivering although the procedure marks %s as placeholder = "
                        "true (outside the demo delivery would be paused)",
                        ", ".join(f"[{k}]" for k in self.placeholders))
        if self.smtp is None:
            log.warning("COMPLAINTS_SMTP_URL is not set: email letters are retried and go by "
                        "post after %d hours", self.give_up_hours)
        else:
            log.info("delivery: email via %s:%d (%s), post to %s", self.smtp.host,
                     self.smtp.port, self.smtp.tls, self.print_queue.directory)
        self.recover_print_runs()
        while not stop.is_set():
            handled = self.run_once()
            if handled < self.batch:
                stop.wait(self.interval)
        log.info("delivery service stopped")

    def run_once(self) -> int:
        """Deliver one round of due letters; returns how many were claimed."""
        if self.paused_keys:
            return 0
        started = time.monotonic()
        now = self.clock.now()
        claimed = self._claim(now)
        if not claimed:
            return 0
        post = [c for c in claimed if c.channel == "post"]
        emails = [c for c in claimed if c.channel == "email"]
        if emails:
            post += self._email(emails, now)
        if post:
            self._post(post, self.clock.now())
        self.stats.rounds += 1
        log.debug("delivery round: %d letter(s) in %.0f ms", len(claimed),
                  (time.monotonic() - started) * 1000)
        return len(claimed)

    # -- claiming ------------------------------------------------------------------------
    def _claim(self, now: datetime) -> list[Claimed]:
        with self.app.sessions() as session:
            rows = session.execute(
                select(Delivery.letter_id, Delivery.complaint_id, Delivery.channel,
                       Delivery.attempts, Delivery.failures, Delivery.email_since,
                       Delivery.next_attempt_at)
                .where(Delivery.status == rules.PENDING, Delivery.next_attempt_at <= now)
                .order_by(Delivery.next_attempt_at, Delivery.letter_id)
                .limit(self.batch)).all()
            if not rows:
                return []
            if self.app.engine.dialect.name == "sqlite":
                session.rollback()  # a fresh write transaction for the claims (see timer)
            held = []
            for row in rows:
                result = session.execute(
                    update(Delivery)
                    .where(Delivery.letter_id == row.letter_id,
                           Delivery.status == rules.PENDING,
                           Delivery.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=now + self.lease))
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    held.append(row)
            session.commit()
            contexts: dict[str, dict[str, Any]] = dict(session.execute(
                select(Letter.letter_id, Letter.context)
                .where(Letter.letter_id.in_([r.letter_id for r in held]))).all())
        return [Claimed(r.letter_id, r.complaint_id, r.channel, r.attempts, r.failures,
                        r.email_since, contexts[r.letter_id]) for r in held]

    # -- email -------------------------------------------------------------------------------
    def _email(self, letters: list[Claimed], now: datetime) -> list[Claimed]:
        """Send each; returns those to go by post now (refused, or given up)."""
        to_post: list[Claimed] = []
        session = SmtpSession(self.smtp) if self.smtp is not None else None
        try:
            for letter in letters:
                recipient = str(letter.context["customer"].get("email") or "")
                code, receipt = self._send_one(session, letter, recipient)
                outcome = rules.smtp_outcome(code)
                at = self.clock.now()
                decision = rules.after_attempt(
                    letter.state(), outcome, at,
                    email_give_up_hours=self.give_up_hours, first_retry=self.first_retry,
                    max_retry=self.max_retry)
                if outcome == "dispatched":
                    log.info("letter %s emailed (%s)", letter.letter_id, code)
                else:
                    log.warning("letter %s: email %s (%s)", letter.letter_id,
                                decision.outcome, code if code is not None else "no reply")
                moved_to_post = decision.channel == "post" and decision.status == rules.PENDING
                if self._record(letter, "email", recipient, decision, receipt, at,
                                hold=moved_to_post) and moved_to_post:
                    to_post.append(Claimed(letter.letter_id, letter.complaint_id, "post",
                                           letter.attempts + 1, 0, decision.email_since,
                                           letter.context))
        finally:
            if session is not None:
                session.close()
        return to_post

    def _send_one(self, session: SmtpSession | None, letter: Claimed,
                  recipient: str) -> Reply:
        if session is None:
            return None, "no mail server configured (COMPLAINTS_SMTP_URL)"
        sender = self.sender or "complaints@complaints.invalid"
        context = letter.context
        if not recipient.isascii() or any(c in recipient for c in "\r\n<>"):
            # Would need SMTPUTF8, or could inject a command: no server is given it.
            return 553, "553 the address cannot be sent (not a plain ASCII address)"
        try:
            text, html, pdf = (self._letter_bytes(context, f) for f in ("txt", "html", "pdf"))
        except Exception as exc:  # noqa: BLE001 - this letter waits; the round goes on
            return None, self._unrendered(letter, exc)
        try:
            message = compose(context, sender=sender, recipient=recipient, text=text,
                              html=html, pdf=pdf, date=self.clock.now())
            data = message.as_bytes(policy=policy.SMTP)
        except (ValueError, UnicodeError) as exc:
            # An address no mail server can be given (e.g. not ASCII): refused for good,
            # so it goes by post. Type only: the error may quote the address.
            return 554, f"554 the email could not be built ({type(exc).__name__})"
        return session.send(sender, recipient, data)

    # -- post --------------------------------------------------------------------------------
    def _unrendered(self, letter: Claimed, exc: Exception) -> str:
        """A letter whose files cannot be made (its context, or the renderer's environment):
        retried with back-off like any failure, without holding up the rest of the round.
        The error's type only: its text may quote the letter."""
        log.error("letter %s could not be rendered for delivery (%s); retried",
                  letter.letter_id, type(exc).__name__)
        return f"the letter could not be rendered ({type(exc).__name__})"

    def _post(self, letters: list[Claimed], now: datetime) -> None:
        items: list[PostItem] = []
        ready: list[Claimed] = []
        for letter in letters:
            try:
                pdf = self._letter_bytes(letter.context, "pdf")
            except Exception as exc:  # noqa: BLE001 - this letter waits; the run goes on
                receipt = self._unrendered(letter, exc)
                decision = rules.after_attempt(letter.state(), "deferred", now,
                                               first_retry=self.first_retry,
                                               max_retry=self.max_retry)
                self._record(letter, "post", postal_address(letter.context["customer"]),
                             decision, receipt, now)
                continue
            items.append(PostItem(letter.letter_id, letter.complaint_id, letter.context, pdf))
            ready.append(letter)
        if not items:
            return
        letters = ready
        try:
            files = self.print_queue.write_run(items, now)
        except OSError as exc:
            log.error("print queue %s not writable (%s); %d letter(s) retried",
                      self.print_queue.directory, type(exc).__name__, len(items))
            for letter in letters:
                decision = rules.after_attempt(letter.state(), "deferred", now,
                                               first_retry=self.first_retry,
                                               max_retry=self.max_retry)
                self._record(letter, "post", postal_address(letter.context["customer"]),
                             decision, f"print queue not writable ({type(exc).__name__})", now)
            return
        self.stats.print_runs += 1
        log.info("print run of %d letter(s) in %s", len(items), self.print_queue.directory)
        for letter in letters:
            decision = rules.after_attempt(letter.state(), "dispatched", now)
            self._record(letter, "post", postal_address(letter.context["customer"]),
                         decision, files[letter.letter_id], now)

    def recover_print_runs(self) -> int:
        """Record, as posted, pending letters found in a complete print run (a crash between
        writing the run and recording it): they are not printed a second time."""
        recovered = 0
        for name, manifest in self.print_queue.runs():
            by_id = {e.get("letter_id"): e for e in manifest.get("letters", [])
                     if isinstance(e, dict)}
            with self.app.sessions() as session:
                pending = session.execute(
                    select(Delivery.letter_id, Delivery.complaint_id, Delivery.attempts,
                           Delivery.failures, Delivery.email_since)
                    .where(Delivery.letter_id.in_([k for k in by_id if isinstance(k, str)]),
                           Delivery.status == rules.PENDING)).all()
                contexts: dict[str, dict[str, Any]] = dict(session.execute(
                    select(Letter.letter_id, Letter.context)
                    .where(Letter.letter_id.in_([r.letter_id for r in pending]))).all())
            for row in pending:
                letter = Claimed(row.letter_id, row.complaint_id, "post", row.attempts,
                                 row.failures, row.email_since, contexts[row.letter_id])
                created = datetime.fromisoformat(manifest["created_at"])
                decision = rules.after_attempt(letter.state(), "dispatched", created)
                if self._record(letter, "post", postal_address(letter.context["customer"]),
                                decision, f"{name}/{by_id[row.letter_id]['file']}",
                                created):
                    recovered += 1
        if recovered:
            self.stats.recovered += recovered
            log.warning("recorded %d letter(s) found in print runs written before a stop",
                        recovered)
        return recovered

    # -- the record ----------------------------------------------------------------------------
    def _record(self, letter: Claimed, channel: rules.Channel, address: str,
                decision: rules.Decision, receipt: str, attempted_at: datetime, *,
                hold: bool = False) -> bool:
        """One attempt, in one transaction; False when another worker recorded first.

        `hold`: the letter goes on by post in this round, so the claim is kept (a lease)."""
        at = attempted_at
        next_at = decision.next_attempt_at + self.lease if hold else decision.next_attempt_at
        dispatched = decision.status == rules.DISPATCHED
        failures = (letter.failures + 1 if decision.outcome == "deferred" else 0)
        with self.app.sessions() as session:
            session.add(Dispatch(
                letter_id=letter.letter_id, complaint_id=letter.complaint_id,
                attempt=letter.attempts + 1, channel=channel, address=address,
                attempted_at=at, outcome=decision.outcome, receipt=receipt))
            result = session.execute(
                update(Delivery)
                .where(Delivery.letter_id == letter.letter_id,
                       Delivery.status == rules.PENDING,
                       Delivery.attempts == letter.attempts)
                .values(attempts=letter.attempts + 1, failures=failures,
                        status=decision.status, channel=decision.channel,
                        next_attempt_at=next_at, email_since=decision.email_since,
                        dispatched_at=at if dispatched else None))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                log.warning("letter %s: attempt %d already recorded by another worker",
                            letter.letter_id, letter.attempts + 1)
                return False
            if dispatched:
                payload = rules.dispatched_event(letter.letter_id, letter.complaint_id,
                                                 channel, address, at, receipt)
                session.add(OutboxMessage(event_id=payload["event_id"], topic="letters",
                                          key=letter.complaint_id, payload=payload,
                                          created_at=self.clock.now()))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                log.warning("letter %s: attempt %d already recorded by another worker",
                            letter.letter_id, letter.attempts + 1)
                return False
        self._count(channel, decision.outcome)
        return True

    def _count(self, channel: str, outcome: str) -> None:
        if outcome == "dispatched":
            if channel == "email":
                self.stats.emailed += 1
            else:
                self.stats.posted += 1
        elif outcome == "deferred":
            self.stats.deferred += 1
        elif outcome == "refused":
            self.stats.refused += 1
        elif outcome == "gave_up":
            self.stats.gave_up += 1

    # -- the letter's files ----------------------------------------------------------------
    def _letter_bytes(self, context: Mapping[str, Any], fmt: LetterFormat) -> bytes:
        """The letter service's file when it is there (same bytes: renders are reproducible),
        else rendered from the stored context."""
        path = letter_path(self.letters_dir, str(context["letter_id"]), fmt)
        with contextlib.suppress(OSError):
            if path.is_file():
                return path.read_bytes()
        return render(context, fmt)
