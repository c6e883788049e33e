"""Erasure of a customer's personal data, legal holds and retention (docs/rules.md s.3,
docs/contract.md `complaints erase` / `complaints retention`).

The record is never overwritten, with one exception: the erasure of personal data, which is
itself recorded (`erasures`, `erased_complaints`: who, when, which complaints, why a hold was
overridden; never the data). An erasure replaces every piece of personal data of the chosen
complaints with a pseudonym or nothing and keeps every code, instant, state, deadline and
count, so every return computed from the record (receipts, resolutions, category changes,
contacts, letters by kind and date, accounts) comes out the same afterwards.

What is personal data here, and what becomes of it:

- the customer (account id, name, address, postcode, email, phone, the vulnerability flag):
  the account id becomes a pseudonym made for this erasure (random: a hash of the account id
  could be reversed by trying every account id), name, address and postcode the marker
  `[erased]`, email and phone nothing. How the customer wants to be written to
  (`preferred_contact`), the nation (`region`, which chooses the advice body) and
  `accessible_format` stay: they are codes, and letters still render as they did;
- free text (summaries, positions, explanations, corrective actions, offer descriptions,
  Ombudsman actions, the remedy summary): `[erased]`. The B22 `other_explanation` stays: it
  describes the complaint's type, and the monthly return and stored submissions carry it;
- any other string inside the account's rows that quotes one of the erased values (a letter
  greeting, an unknown field kept from the raw event): the quoted value becomes `[erased]`;
- staff (handlers, managers), the supplier's and the Ombudsman's details, ids, references
  (the customer's complaint reference, the Ombudsman's case reference) and codes stay.

Rows touched: the complaint, its history (each applied event as recorded), its letters'
contexts, its outbox rows, the rejections that quote it (by complaint id, or by account id
for a rejected receipt that never made a complaint), and whatever other table registers a
scrubber in `EXTRA_TABLES` (the raw-event store, letter dispatches).

Nothing here reads the clock: the instant of the erasure is given. Files (rendered letters)
and compaction of the database files are the caller's (consumers/erasure.py).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dateutil.relativedelta import relativedelta
from sqlalchemy import LargeBinary, Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from workflow.calendar import end_of_date, local_date, referral_window_end
from workflow.delivery import CANCELLED_BY_ERASURE, PENDING
from workflow.lifecycle import OPEN_STATES
from workflow.procedure import Procedure
from workflow.schema import (
    Complaint,
    Delivery,
    Dispatch,
    ErasedComplaint,
    Erasure,
    HistoryEntry,
    Letter,
    OutboxMessage,
    RawEvent,
    Rejection,
    account_id_of,
)

ERASED: Final = "[erased]"
# Free text someone wrote about the complaint: replaced whole.
FREE_TEXT_KEYS: Final = frozenset({
    "summary", "position", "explanation", "corrective_action", "description", "action",
    "remedy_summary", "senior_manager_position", "message", "note", "notes", "comment",
})
# Contact details wherever they appear (a dispatch's address, a delivery's recipient).
CONTACT_KEYS: Final = frozenset({
    "address", "postcode", "email", "phone", "recipient", "cc", "bcc",
    "postal_address", "email_address",
})
# Customer fields that are codes, kept: how to write, which nation, which print size.
CUSTOMER_CODES: Final = ("preferred_contact", "region", "accessible_format")
# Subtrees that are not the customer's: staff, the supplier, the Ombudsman, the advice body,
# the procedure's durations. Kept as they are, so a customer's town in the supplier's
# address is never touched.
KEPT_SUBTREES: Final = frozenset({
    "supplier", "ombudsman", "citizens_advice", "advice", "advice_body", "procedure",
    "handler", "owner", "manager", "senior_manager", "taken_by", "complaints_manager",
    "signatory", "letter", "by",
})
# Ids and codes: never rewritten (the returns and the keys need them).
KEPT_KEYS: Final = frozenset({
    "event_id", "complaint_id", "letter_id", "reference", "type", "kind", "category",
    "subsidiary_categories", "other_explanation", "channel", "source", "duplicate_of",
    "contact_id", "ombudsman_ref", "deadline_key", "cause", "outcome", "state", "from", "to_state",
    "from_state", "fuel", "meter_type", "party", "cycle", "formats", "topic", "key",
})
MIN_TOKEN: Final = 3  # shorter values (a house number) would match inside unrelated words
# A free text quoted elsewhere (a deadlock letter's account of the communications) is
# replaced where it is quoted too, when it is long enough to be recognisably the same text.
MIN_QUOTED_TEXT: Final = 12

FINAL_STATES: Final = ("resolved", "closed")


# --------------------------------------------------------------------------- scrubbing
@dataclass
class Scrubber:
    """Rewrites the JSON documents and bytes of one erasure."""

    pseudonyms: dict[str, str]  # account id -> pseudonym
    tokens: set[str] = field(default_factory=set)  # erased values quoted anywhere
    _pattern: re.Pattern[str] | None = None

    def learn_customer(self, customer: Mapping[str, Any] | None) -> None:
        if not isinstance(customer, Mapping):
            return
        for key in ("account_id", "name", "postcode", "email", "phone"):
            value = customer.get(key)
            if isinstance(value, str):
                self._token(value)
        address = customer.get("address")
        if isinstance(address, list):
            for line in address:
                if isinstance(line, str):
                    self._token(line)
        elif isinstance(address, str):
            self._token(address)

    def learn_text(self, value: Any) -> None:
        if isinstance(value, str) and len(value.strip()) >= MIN_QUOTED_TEXT:
            self._token(value)

    def learn_document(self, value: Any) -> None:
        """Every customer and free text inside an event or a context."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "customer":
                    self.learn_customer(item)
                elif key in FREE_TEXT_KEYS and isinstance(item, str):
                    self.learn_text(item)
                elif key not in KEPT_SUBTREES:
                    self.learn_document(item)
        elif isinstance(value, list):
            for item in value:
                self.learn_document(item)

    def _token(self, value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_TOKEN and value != ERASED:
            self.tokens.add(value)
            self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.tokens:
            ordered = sorted(self.tokens, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)
        return self._pattern

    def pseudonym(self, account_id: Any) -> str:
        if isinstance(account_id, str) and account_id in self.pseudonyms:
            return self.pseudonyms[account_id]
        if isinstance(account_id, str) and account_id.startswith("ERASED-"):
            return account_id  # erased before
        return next(iter(self.pseudonyms.values()), ERASED)

    # -- rewriting ------------------------------------------------------------------------
    def text(self, value: str) -> str:
        pattern = self.pattern
        return value if pattern is None else pattern.sub(ERASED, value)

    def customer(self, customer: Mapping[str, Any]) -> dict[str, Any]:
        erased: dict[str, Any] = {key: customer[key] for key in CUSTOMER_CODES if key in customer}
        erased.update(account_id=self.pseudonym(customer.get("account_id")), name=ERASED,
                      address=[ERASED], postcode=ERASED)
        for key in ("email", "phone"):
            if key in customer:
                erased[key] = None
        return erased

    def document(self, value: Any) -> Any:
        """A JSON value with every personal datum replaced (see the module doc)."""
        if isinstance(value, Mapping):
            return {key: self._field(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.document(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _field(self, key: str, value: Any) -> Any:
        if key in KEPT_SUBTREES or key in KEPT_KEYS:
            return value
        if key == "customer" and isinstance(value, Mapping):
            return self.customer(value)
        if key == "account_id":
            return self.pseudonym(value)
        if key in FREE_TEXT_KEYS and isinstance(value, str):
            return ERASED
        if key in CONTACT_KEYS:
            if isinstance(value, str):
                return ERASED
            if isinstance(value, list):
                return [ERASED for _ in value] or [ERASED]
            if isinstance(value, Mapping):
                return {k: (ERASED if isinstance(v, str) else self.document(v))
                        for k, v in value.items()}
        return self.document(value)

    def raw(self, raw: bytes) -> bytes:
        """Raw message bytes: a JSON object is rewritten as a document; anything else has the
        erased values cut out where they appear."""
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            return json.dumps(self.document(decoded), ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
        text = raw.decode("utf-8", errors="replace")
        scrubbed = self.text(text)
        return raw if scrubbed == text else scrubbed.encode("utf-8")


def new_pseudonym() -> str:
    return "ERASED-" + secrets.token_hex(8).upper()


# --------------------------------------------------------------------------- extra tables
@dataclass(frozen=True)
class ExtraTable:
    """A table of another feature holding personal data of a complaint: how to find the rows
    of some complaints and which JSON/text/bytes columns to scrub."""

    table: Table
    complaint_column: str  # or, with `by_letter`, the letter id column
    json_columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    bytes_columns: tuple[str, ...] = ()
    replaced_columns: tuple[str, ...] = ()  # personal data whole: becomes `[erased]`
    by_letter: bool = False  # rows found by the complaints' letter ids (an indexed column)


# Tables of other features: the raw bytes of every applied event (`export-events`), ...
# Their erased bytes are still a valid event (the pseudonymous customer, `[erased]` texts), so
# an export of an erased record replays to the same returns.
EXTRA_TABLES: list[ExtraTable] = [
    ExtraTable(RawEvent.__table__, "complaint_id", bytes_columns=("raw",)),  # type: ignore[arg-type]
    # ... and each delivery attempt of a letter: the address used and the mail server's reply
    # (which can quote the recipient).
    ExtraTable(Dispatch.__table__, "letter_id", text_columns=("receipt",),  # type: ignore[arg-type]
               replaced_columns=("address",), by_letter=True),
]


def touched_tables() -> list[str]:
    """The tables an erasure rewrites (compacted afterwards)."""
    return ["complaints", "history", "letters", "outbox", "rejections",
            *(e.table.name for e in EXTRA_TABLES)]


# --------------------------------------------------------------------------- legal holds
def complaints_of_account(session: Session, account_id: str) -> list[Complaint]:
    """The account's complaints not yet erased, duplicate records included, by receipt."""
    erased = select(ErasedComplaint.complaint_id)
    return list(session.scalars(
        select(Complaint)
        .where(account_id_of(Complaint.customer) == account_id,
               Complaint.complaint_id.not_in(erased))
        .order_by(Complaint.received_at, Complaint.complaint_id)))


def hold_of(complaint: Complaint, now: datetime, procedure: Procedure,
            original: Complaint | None = None) -> str | None:
    """Why the complaint is under legal hold at `now`, or None.

    Open (still being worked), with the Ombudsman, or inside the referral window of its
    latest 8-week or deadlock letter (the customer may still take it to the Ombudsman: our
    reading holds it whatever its state then, since the Ombudsman, not the supplier, decides
    whether a referral is in time). A duplicate record is held while its original is.
    """
    if complaint.state == "duplicate":
        if original is None:
            return None
        inherited = hold_of(original, now, procedure)
        return (None if inherited is None else
                f"duplicate record of {original.complaint_id}, which is under hold: {inherited}")
    if complaint.state in OPEN_STATES:
        return f"open (state {complaint.state})"
    if complaint.state == "ombudsman":
        reference = f" (case {complaint.ombudsman_ref})" if complaint.ombudsman_ref else ""
        return f"with the Energy Ombudsman{reference}"
    if complaint.signposting_letter_at is not None:
        window_end = referral_window_end(complaint.signposting_letter_at,
                                         procedure.referral_window_months)
        if now <= window_end:
            return (f"inside the referral window (state {complaint.state}) until "
                    f"{local_date(window_end).isoformat()}")
    return None


def holds(session: Session, complaints: Iterable[Complaint], now: datetime,
          procedure: Procedure) -> dict[str, str]:
    """Complaint id -> why it is held, for those of `complaints` under legal hold."""
    found: dict[str, str] = {}
    for complaint in complaints:
        original = (session.get(Complaint, complaint.duplicate_of)
                    if complaint.duplicate_of else None)
        reason = hold_of(complaint, now, procedure, original)
        if reason is not None:
            found[complaint.complaint_id] = reason
    return found


# --------------------------------------------------------------------------- erasing
def erase(session: Session, complaints: list[Complaint], *, now: datetime, by: str,
          trigger: str, held: Mapping[str, str] | None = None, reason: str | None = None,
          extra_account_ids: Iterable[str] = ()) -> ErasureWork:
    """Erase the personal data of `complaints` in the session's transaction (not committed).

    `held`: the holds overridden (with `--force`), recorded with `reason`.
    `extra_account_ids`: accounts whose rejected receipts (no complaint made) are erased too.
    Returns the erasure record, the letters' erased contexts by letter id and the scrubber
    (for the letter and print files, which the caller rewrites).
    """
    ids = [c.complaint_id for c in complaints]
    accounts = {c.customer.get("account_id") for c in complaints
                if isinstance(c.customer, dict)} | set(extra_account_ids)
    accounts.discard(None)
    scrubber = Scrubber({str(a): new_pseudonym() for a in sorted(accounts, key=str)})

    # First learn every value to erase (so one quoted in another row is found there too).
    history = list(session.execute(
        select(HistoryEntry.id, HistoryEntry.detail).where(HistoryEntry.complaint_id.in_(ids))))
    letters = list(session.execute(
        select(Letter.letter_id, Letter.context).where(Letter.complaint_id.in_(ids))))
    for complaint in complaints:
        scrubber.learn_customer(complaint.customer)
        for free_text in (complaint.summary, complaint.senior_manager_position,
                          complaint.remedy_summary):
            scrubber.learn_text(free_text)
    for _, detail in history:
        scrubber.learn_document(detail)
    for _, context in letters:
        scrubber.learn_document(context)
    rejections = _rejections_quoting(session, set(ids), {str(a) for a in accounts})
    for _, document, _raw in rejections:
        if document is not None:
            scrubber.learn_document(document)

    for complaint in complaints:
        session.execute(
            update(Complaint).where(Complaint.complaint_id == complaint.complaint_id).values(
                customer=scrubber.customer(complaint.customer or {}),
                summary=ERASED,
                senior_manager_position=None if complaint.senior_manager_position is None
                else ERASED,
                remedy_summary=None if complaint.remedy_summary is None else ERASED,
                # A writer holding the complaint from before the erasure fails its version
                # check instead of writing the old customer back.
                version=Complaint.version + 1,
            ).execution_options(synchronize_session=False))
        session.expire(complaint)
    _update_json(session, HistoryEntry.__table__, "id", "detail",
                 [(row_id, scrubber.document(detail)) for row_id, detail in history])
    erased_contexts = {letter_id: scrubber.document(context) for letter_id, context in letters}
    _update_json(session, Letter.__table__, "letter_id", "context", list(erased_contexts.items()))
    _update_json(session, OutboxMessage.__table__, "id", "payload",
                 _outbox_rows(session, ids, accounts, scrubber))
    for row_id, _document, raw in rejections:
        reason_text = session.scalar(select(Rejection.reason).where(Rejection.id == row_id))
        session.execute(update(Rejection).where(Rejection.id == row_id).values(
            raw=scrubber.raw(raw), reason=scrubber.text(reason_text or "")))
    letter_ids = [letter_id for letter_id, _ in letters]
    _cancel_deliveries(session, ids, now)
    for extra in EXTRA_TABLES:
        _erase_extra(session, extra, letter_ids if extra.by_letter else ids, scrubber)

    record = Erasure(erased_at=now, by=by, trigger=trigger,
                     pseudonym=", ".join(sorted(scrubber.pseudonyms.values())) or ERASED,
                     complaint_ids=ids, forced=bool(held), reason=reason, held=dict(held or {}))
    session.add(record)
    session.flush()
    for complaint_id in ids:
        session.add(ErasedComplaint(complaint_id=complaint_id, erasure_id=record.id,
                                    erased_at=now))
    session.flush()
    return ErasureWork(record, erased_contexts, scrubber)


def _cancel_deliveries(session: Session, complaint_ids: list[str], now: datetime) -> None:
    """A letter not yet delivered is not sent once its customer's data is erased: its address
    is gone (it would go to "[erased]"), and the customer asked for the data to go. Each is
    announced (`letter.cancelled` on the letters topic) so the live count of letters waiting
    (reporting/ops/records.py) drops as the record's does."""
    pending = list(session.execute(
        select(Delivery.letter_id, Delivery.complaint_id)
        .where(Delivery.complaint_id.in_(complaint_ids), Delivery.status == PENDING)))
    if not pending:
        return
    session.execute(update(Delivery)
                    .where(Delivery.letter_id.in_([letter_id for letter_id, _ in pending]))
                    .values(status=CANCELLED_BY_ERASURE)
                    .execution_options(synchronize_session=False))
    for letter_id, complaint_id in pending:
        event_id = f"{letter_id}:cancelled"
        session.add(OutboxMessage(event_id=event_id, topic="letters", key=complaint_id,
                                  payload={"event_id": event_id, "type": "letter.cancelled",
                                           "letter_id": letter_id, "complaint_id": complaint_id,
                                           "reason": "personal data erased before delivery",
                                           "cancelled_at": now.isoformat()},
                                  created_at=now))


@dataclass(frozen=True)
class ErasureWork:
    record: Erasure
    contexts: dict[str, dict[str, Any]]  # letter id -> its erased context
    scrubber: Scrubber


def _update_json(session: Session, table: Any, key: str, column: str,
                 rows: list[tuple[Any, Any]]) -> None:
    if not rows:
        return
    statement = (update(table).where(table.c[key] == bindparam("_key"))
                 .values({column: bindparam("_value")}))
    session.execute(statement, [{"_key": k, "_value": v} for k, v in rows])


def _outbox_rows(session: Session, ids: list[str], accounts: set[Any],
                 scrubber: Scrubber) -> list[tuple[int, Any]]:
    """Outbox rows (published or not) quoting the complaints, rewritten: letters' messages
    and deliveries (`letter.dispatched` names the address), and rejected messages, which
    carry the raw message as text. Lifecycle messages carry codes, ids and instants only, so
    they are not read (the partial index `ix_outbox_personal_key` leaves them out)."""
    personal = text("outbox.topic <> 'lifecycle'")
    rows: list[tuple[int, Any]] = [
        (row_id, payload) for row_id, payload in session.execute(
            select(OutboxMessage.id, OutboxMessage.payload)
            .where(personal, OutboxMessage.key.in_(ids)))]
    # A rejected receipt for a complaint never made is keyed by that complaint's id: found by
    # the account in its raw text. Rejections are few beside the record.
    seen = {row_id for row_id, _ in rows}
    needles = [str(a) for a in accounts]
    if needles:
        for row_id, payload in session.execute(  # by the partial index ix_outbox_rejected
                select(OutboxMessage.id, OutboxMessage.payload)
                .where(text("outbox.topic = 'rejected'"))):
            raw = (payload or {}).get("raw") or {}
            if row_id not in seen and any(n in str(raw.get("data") or "") for n in needles):
                rows.append((row_id, payload))
    rewritten = []
    for row_id, payload in rows:
        if isinstance(payload, dict) and payload.get("type") == "message.rejected":
            raw = dict(payload.get("raw") or {})
            if raw.get("encoding") == "utf-8" and isinstance(raw.get("data"), str):
                raw["data"] = scrubber.raw(raw["data"].encode("utf-8")).decode("utf-8")
            elif raw.get("encoding") == "base64":
                raw["data"] = None  # bytes that are not text: nothing of them can stay
            rewritten.append((row_id, {**payload, "raw": raw,
                                       "reason": scrubber.text(str(payload.get("reason", "")))}))
        else:
            rewritten.append((row_id, scrubber.document(payload)))
    return rewritten


def _rejections_quoting(session: Session, complaint_ids: set[str],
                        accounts: set[str]) -> list[tuple[int, Any, bytes]]:
    """Rejections whose raw message names one of the complaints, or carries a receipt for one
    of the accounts (a rejected receipt makes no complaint). Rejections are few beside the
    record, so they are read through once."""
    found: list[tuple[int, Any, bytes]] = []
    if not complaint_ids and not accounts:
        return found
    needles = [value.encode("utf-8") for value in (*complaint_ids, *accounts)]
    # The database keeps the rows whose bytes quote an id (a scan in the server, not here).
    contains = ("position(:needle_{n} IN rejections.raw) > 0"
                if session.get_bind().dialect.name == "postgresql"
                else "instr(rejections.raw, :needle_{n}) > 0")
    quoting = or_(*(text(contains.format(n=n)).bindparams(
        bindparam(f"needle_{n}", needle, type_=LargeBinary)) for n, needle in enumerate(needles)))
    for row_id, raw in session.execute(select(Rejection.id, Rejection.raw).where(quoting)):
        raw = bytes(raw)
        if not any(needle in raw for needle in needles):
            continue
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if isinstance(document, dict):
            customer = document.get("customer")
            account = customer.get("account_id") if isinstance(customer, dict) else None
            if document.get("complaint_id") in complaint_ids or account in accounts:
                found.append((row_id, document, raw))
        else:
            found.append((row_id, None, raw))  # not JSON, yet it quotes the id
    return found


def _erase_extra(session: Session, extra: ExtraTable, ids: list[str],
                 scrubber: Scrubber) -> None:
    table = extra.table
    key = next(iter(table.primary_key.columns)).name
    columns = [table.c[key], *(table.c[c] for c in (*extra.json_columns, *extra.text_columns,
                                                    *extra.bytes_columns,
                                                    *extra.replaced_columns))]
    rows = list(session.execute(select(*columns).where(table.c[extra.complaint_column]
                                                       .in_(ids))))
    for row in rows:
        mapping = row._mapping
        for name in extra.json_columns:
            scrubber.learn_document(mapping[name])
        for name in extra.replaced_columns:
            if isinstance(mapping[name], str):
                scrubber.learn_text(mapping[name])
        for name in extra.bytes_columns:
            if mapping[name] is not None:
                with contextlib.suppress(ValueError):
                    scrubber.learn_document(json.loads(bytes(mapping[name])))
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        mapping = row._mapping
        values: dict[str, Any] = {}
        for name in extra.json_columns:
            values[name] = scrubber.document(mapping[name])
        for name in extra.text_columns:
            if mapping[name] is not None:
                values[name] = scrubber.text(str(mapping[name]))
        for name in extra.bytes_columns:
            if mapping[name] is not None:
                values[name] = scrubber.raw(bytes(mapping[name]))
        for name in extra.replaced_columns:
            if mapping[name] is not None:
                values[name] = ERASED
        if values:
            changes.setdefault(tuple(sorted(values)), []).append(
                {"_key": mapping[key], **{f"_{k}": v for k, v in values.items()}})
    for names, parameters in changes.items():  # one executemany per set of columns
        session.execute(update(table).where(table.c[key] == bindparam("_key"))
                        .values({name: bindparam(f"_{name}") for name in names}), parameters)


def erased_at(session: Session, complaint_id: str) -> datetime | None:
    return session.scalar(select(ErasedComplaint.erased_at)
                          .where(ErasedComplaint.complaint_id == complaint_id))


# --------------------------------------------------------------------------- retention
@dataclass(frozen=True)
class RetentionDue:
    complaint_id: str
    closed_at: datetime
    due: datetime

    def as_json(self) -> dict[str, str]:
        return {"complaint_id": self.complaint_id, "closed_at": self.closed_at.isoformat(),
                "due": self.due.isoformat()}


def retention_due_at(closed_at: datetime, years: int) -> datetime:
    """The end of the same local date `years` later (29 February -> 28 February), as the
    referral window is counted."""
    return end_of_date(local_date(closed_at) + relativedelta(years=years))


def closed_at_by_complaint(session: Session) -> dict[str, datetime]:
    """For each complaint now resolved or closed, the instant it last became so."""
    rows = session.execute(
        select(HistoryEntry.complaint_id, func.max(HistoryEntry.at))
        .join(Complaint, Complaint.complaint_id == HistoryEntry.complaint_id)
        .where(Complaint.state.in_(FINAL_STATES), HistoryEntry.to_state == Complaint.state,
               and_(HistoryEntry.from_state.is_not(None),
                    HistoryEntry.from_state != HistoryEntry.to_state))
        .group_by(HistoryEntry.complaint_id))
    return {complaint_id: at for complaint_id, at in rows}


def retention_due(session: Session, as_of: datetime, procedure: Procedure,
                  years: int) -> list[RetentionDue]:
    """Complaints resolved or closed more than `years` before `as_of`, not erased and not
    under legal hold, oldest first. A duplicate record goes with its original (it is never
    resolved or closed itself: it is the same complaint recorded twice)."""
    closed = closed_at_by_complaint(session)
    erased = set(session.scalars(select(ErasedComplaint.complaint_id)))
    candidates = [cid for cid, at in closed.items()
                  if cid not in erased and retention_due_at(at, years) < as_of]
    duplicates = session.execute(
        select(Complaint.complaint_id, Complaint.duplicate_of)
        .where(Complaint.state == "duplicate", Complaint.duplicate_of.in_(candidates)))
    closed_of = dict(closed)
    due_ids = list(candidates)
    for complaint_id, original in duplicates:
        if complaint_id not in erased and original is not None:
            closed_of[complaint_id] = closed[original]
            due_ids.append(complaint_id)
    found: list[RetentionDue] = []
    for chunk in _chunks(due_ids, 500):
        complaints = list(session.scalars(select(Complaint)
                                          .where(Complaint.complaint_id.in_(chunk))))
        held = holds(session, complaints, as_of, procedure)
        for complaint in complaints:
            if complaint.complaint_id not in held:
                at = closed_of[complaint.complaint_id]
                found.append(RetentionDue(complaint.complaint_id, at,
                                          retention_due_at(at, years)))
    found.sort(key=lambda d: (d.closed_at, d.complaint_id))
    return found


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

