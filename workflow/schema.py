"""The record (CHR reg. 4) as SQLAlchemy 2.x tables. SQLite by default, PostgreSQL in production.

Instants are stored as naive UTC (`UTCDateTime`) so that they compare and sort the same way on
every backend, microseconds included (a D+1 deadline is 23:59:59.999999 local).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive in UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return aware_utc(value)

    def bind_processor(self, dialect: Any) -> Any:
        # On SQLite the two steps (to naive UTC, then SQLAlchemy's DATETIME text) are one: a
        # tenth of the cost of writing a history or outbox row went to them. The text is the
        # same "YYYY-MM-DD HH:MM:SS.ffffff" (tests/unit/test_schema_types.py holds them equal).
        if dialect.name == "sqlite":
            return _sqlite_utc_text
        return super().bind_processor(dialect)


def aware_utc(value: datetime | None) -> datetime | None:
    """A stored (naive, UTC) instant as read back: aware, in UTC. Also called directly by
    readers that skip the TypeDecorator's calls around it (reporting/workqueue.py)."""
    return None if value is None else value.replace(tzinfo=UTC)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    # In UTC the text always ends "+00:00": cut off, rather than a naive copy made first.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]


Json = JSON().with_variant(JSONB(), "postgresql")
# Autoincrement keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


# (v2) Closures after which a complaint can still be referred to the Ombudsman (docs/rules.md s.4).
REFERABLE_CLOSURES = frozenset({"complaint.withdrawn", "deadline.referral_window"})


class Base(DeclarativeBase):
    pass


class Complaint(Base):
    __tablename__ = "complaints"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(4))
    other_explanation: Mapped[str | None] = mapped_column(Text)
    subsidiary_categories: Mapped[list[str]] = mapped_column(Json, default=list)
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(20))
    fuel: Mapped[str] = mapped_column(String(12))
    meter_type: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    # Free-form ids from the contract ("string", no length): unbounded, so a long one is
    # stored rather than refused by PostgreSQL (migration 0004).
    contact_id: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[str | None] = mapped_column(String(64))
    customer: Mapped[dict[str, Any]] = mapped_column(Json)
    taken_by: Mapped[dict[str, Any] | None] = mapped_column(Json)  # who registered it
    handler: Mapped[dict[str, Any] | None] = mapped_column(Json)  # the complaint owner
    # (v2) The person letters name and are signed by: the latest received/assigned handler or
    # senior manager who responded, with their role ({"id", "name", "role"}; docs/rules.md s.6).
    owner: Mapped[dict[str, Any] | None] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the original receipt
    received_event_id: Mapped[str] = mapped_column(String(128))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    cycle_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_d1_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_cycle: Mapped[int | None] = mapped_column(Integer)
    escalation_event_id: Mapped[str | None] = mapped_column(String(128))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    senior_manager: Mapped[dict[str, Any] | None] = mapped_column(Json)
    senior_manager_responded: Mapped[bool] = mapped_column(Boolean, default=False)
    senior_manager_position: Mapped[str | None] = mapped_column(Text)
    signposting_letter_id: Mapped[str | None] = mapped_column(String(32))  # latest 8wk/deadlock
    signposting_letter_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ombudsman_ref: Mapped[str | None] = mapped_column(Text)
    remedy_decision_event_id: Mapped[str | None] = mapped_column(String(128))
    remedy_summary: Mapped[str | None] = mapped_column(Text)
    remedy_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # (v2) What last moved the complaint to `closed` (the event type, or "deadline." + the
    # deadline kind): a withdrawal or a lapsed referral window can still go to the Ombudsman,
    # a closure by the Ombudsman's decision cannot (docs/rules.md s.4). Migration 0010.
    closed_by: Mapped[str | None] = mapped_column(String(64))
    # (v2) The latest referral to the Ombudsman came at or after the end of the latest 8-week
    # or deadlock letter's referral window (the Ombudsman decides whether to take it).
    late_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    # Optimistic locking: two consumers racing on one complaint (e.g. during a rebalance)
    # cannot both commit; the loser retries from the stored state.
    __mapper_args__ = {"version_id_col": version}

    @property
    def signposting_letter_issued(self) -> bool:
        """Ever issued an 8-week or deadlock letter: the guard for an open referral."""
        return self.signposting_letter_id is not None

    @property
    def referable_when_closed(self) -> bool:
        """(v2) Closed by a withdrawal or a lapsed referral window after an 8-week or deadlock
        letter: the guard for a referral from `closed`."""
        return self.signposting_letter_id is not None and self.closed_by in REFERABLE_CLOSURES


class HistoryEntry(Base):
    """Append-only: every event applied and every transition and deadline (CHR reg. 4)."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "deadline:" + a deadline key (complaint/kind/cause): up to 9 + 64 + 1 + 21 + 1 + 128.
    event_id: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    cycle: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(Json)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deadline(Base):
    __tablename__ = "deadlines"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # complaint/kind/cause. Also the insert sentinel: it lets the ORM insert a batch of
    # deadlines in one statement and still match each row to its generated id.
    deadline_key: Mapped[str] = mapped_column(String(300), unique=True, insert_sentinel=True)
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    cycle: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # by the timer service
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # Cost of finding due work is proportional to what is due, not to what is pending.
        Index(
            "ix_deadlines_pending_due",
            "due_at",
            "id",
            postgresql_where=text("fired_at IS NULL"),
            sqlite_where=text("fired_at IS NULL"),
        ),
    )


class Letter(Base):
    __tablename__ = "letters"

    letter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)  # once per cause
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    cycle: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cause: Mapped[str] = mapped_column(String(300))  # an event id or a deadline key
    context: Mapped[dict[str, Any]] = mapped_column(Json)  # everything rendering needs

    # D16/D17 count letters of one kind issued in a quarter.
    __table_args__ = (Index("ix_letters_kind_issued_at", "kind", "issued_at"),)


class ProcessedEvent(Base):
    """Applied event ids: inserting one that exists means 'already applied'."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Rejection(Base):
    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    rejected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(Text)
    position: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    event_id: Mapped[str | None] = mapped_column(Text)  # as received: may be the fault


class Receipt(Base):
    """A receipt for the returns: a registration (not a duplicate) or a reopen
    (docs/rules.md s.7)."""

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("complaints.complaint_id"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    cycle: Mapped[int] = mapped_column(Integer)
    is_reopen: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    d1_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # (0011) A period's receipts by their instant, carrying what the returns count them by
        # (channel, contact, reopen, id): B7-B10, A1/A4 and the lone-receipt contacts read the
        # index alone on PostgreSQL and SQLite, without a heap (or table) visit per receipt.
        Index("ix_receipts_received_at_cover", "received_at", "channel", "contact_id",
              "is_reopen", "id"),
        # (0011) Receipts sharing a contact id, in time order: whether a receipt is its
        # contact's first (quarterly A2-A5) is a lookup, not a ranking of every receipt.
        Index("ix_receipts_contact_id", "contact_id", "received_at", "id",
              postgresql_where=text("contact_id IS NOT NULL"),
              sqlite_where=text("contact_id IS NOT NULL")),
    )


class CategoryChange(Base):
    """The complaint's category over time: a return counts the category as of its instant."""

    __tablename__ = "category_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(128))
    # (0011) Indexed for the record's clock (`max(effective_at)`, every default as-of).
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    category: Mapped[str] = mapped_column(String(4))
    other_explanation: Mapped[str | None] = mapped_column(Text)


class ResolutionRecord(Base):
    """A resolution (complaint.resolved or complaint.remedy_implemented) for the returns."""

    __tablename__ = "resolutions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    cycle: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    original_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    original_d1_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    eight_weeks_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # False when an 8-week or deadlock letter was issued before it (Ofgem 5.10).
    counted: Mapped[bool] = mapped_column(Boolean)

    # (0011) A quarter's resolutions by their instant with everything C11-C15 read: the
    # counts and the median come from the index alone. Resolutions are written in the
    # order they happen, not of the receipts they resolve, so a visit to the table for each
    # would be a random read.
    __table_args__ = (
        Index("ix_resolutions_resolved_at_cover", "resolved_at", "counted",
              "original_received_at", "original_d1_deadline", "eight_weeks_at"),
    )


class Contact(Base):
    """Contacts that are not receipts: enquiries, off-supply reports, logged customer contacts."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    contact_id: Mapped[str | None] = mapped_column(Text)
    complaint_id: Mapped[str | None] = mapped_column(String(64))
    party: Mapped[str | None] = mapped_column(String(24))

    # (0011) A quarter's contacts by their instant with what A2-A5 count them by.
    __table_args__ = (
        Index("ix_contacts_occurred_at_cover", "occurred_at", "kind", "party", "channel"),
    )


class AccountsSnapshotRow(Base):
    __tablename__ = "accounts_snapshots"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)  # applied order
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    electricity_accounts: Mapped[int] = mapped_column(BigInteger)
    gas_accounts: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """Output events written in the same transaction as the change; the relay publishes them."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    topic: Mapped[str] = mapped_column(String(32))  # logical: lifecycle | letters
    key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )


class RawEvent(Base):
    """Every applied event's raw bytes, in one global order (`complaints export-events`).

    One row per event applied (never for a duplicate or a rejection), written in the same
    transaction that applies it, through the unit of work's bulk append path: complaint events
    and also `contact.received` and `accounts.snapshot`, which have no `complaint_id`.

    - `seq`: the global applied order (autoincrement; a later transaction gets higher values).
    - `event_id`, `type`, `complaint_id` (null for contacts and snapshots), `occurred_at`: copied
      from the validated event, so an export can be filtered and ordered without decoding.
    - `source`, `position`: where it came from (a file path and "line n", or a topic and
      "partition/offset"), as a rejection records it.
    - `raw`: the message's bytes exactly as received (the first 1 MiB, the message limit). It
      holds personal data (names, addresses, summaries): erasure (`complaints erase`) must
      blank it with the rest of a complaint's personal data.
    - `applied_at`: the processing clock when it was applied (event time offline).

    Events applied before this table existed (migration 0008) have no row here; their history
    rows say what was applied, without the bytes.
    """

    __tablename__ = "raw_events"

    seq: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    complaint_id: Mapped[str | None] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(Text)
    position: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- erasure of personal data and who read it (docs/rules.md s.3's one exception;
# migration 0009) ---
class account_id_of(FunctionElement[str]):  # noqa: N801 - an SQL function, named as one
    """The account id inside a customer JSON column, as one fixed SQL expression (no bound
    path): the index below and the queries that use it must spell it the same way."""

    type = String()
    inherit_cache = True
    name = "account_id_of"


@compiles(account_id_of, "postgresql")
def _account_id_postgresql(element: account_id_of, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} ->> 'account_id')"


@compiles(account_id_of)
def _account_id_sqlite(element: account_id_of, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.account_id')"


# Finding an account's complaints (erasure, and nothing else) without reading every complaint.
Index("ix_complaints_account_id", account_id_of(Complaint.customer))
# The outbox rows that can quote personal data (letters, deliveries, rejected messages), by
# complaint; lifecycle messages (codes and instants, most of the outbox) are left out.
Index("ix_outbox_personal_key", OutboxMessage.key,
      postgresql_where=text("topic <> 'lifecycle'"), sqlite_where=text("topic <> 'lifecycle'"))
# (migration 0012) The work queue's lists, a page at a time in their order (issue 14).
Index("ix_complaints_state_received", Complaint.state, Complaint.received_at,
      Complaint.complaint_id)
# (migration 0014) With the row id, the rest of the lists' sort key: read from the index alone.
Index("ix_deadlines_unfired_kind_due_id", Deadline.kind, Deadline.due_at, Deadline.complaint_id,
      Deadline.id, postgresql_where=text("fired_at IS NULL"),
      sqlite_where=text("fired_at IS NULL"))
Index("ix_receipts_received_complaint_id", Receipt.received_at, Receipt.complaint_id,
      Receipt.id)
# The search's prefix LIKE as an index range on PostgreSQL whatever the collation (upper():
# an expression, which SQLite, whose LIKE could not use it, is never given).
Index("ix_complaints_id_pattern", func.upper(Complaint.complaint_id).label("upper_id"),
      postgresql_ops={"upper_id": "text_pattern_ops"}).ddl_if(dialect="postgresql")
Index("ix_complaints_reference_pattern", func.upper(Complaint.reference).label("upper_reference"),
      postgresql_ops={"upper_reference": "text_pattern_ops"}).ddl_if(dialect="postgresql")
# (migrations 0013, 0015) The overdue-remedy list: the complaints whose remedy is overdue
# although its deadline fired, with their latest decision, and each complaint's remedy
# deadlines with their cause (the decision) and the list's sort key: read from the indexes alone.
Index("ix_complaints_remedy_overdue_decision", Complaint.complaint_id,
      Complaint.remedy_decision_event_id,
      postgresql_where=text("remedy_overdue IS true AND state = 'ombudsman'"),
      sqlite_where=text("remedy_overdue IS true AND state = 'ombudsman'"))
Index("ix_deadlines_remedy_cause", Deadline.complaint_id, Deadline.cause, Deadline.due_at,
      Deadline.id, postgresql_where=text("kind = 'remedy'"), sqlite_where=text("kind = 'remedy'"))
Index("ix_outbox_rejected", OutboxMessage.id,
      postgresql_where=text("topic = 'rejected'"), sqlite_where=text("topic = 'rejected'"))


class Erasure(Base):
    """One erasure of an account's personal data: who, when, which complaints, and why when a
    legal hold was overridden. Never the data erased: the account is named by its pseudonym."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16))  # erase | retention
    pseudonym: Mapped[str] = mapped_column(String(64))  # what the account id became
    complaint_ids: Mapped[list[str]] = mapped_column(Json)
    forced: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)  # --force --reason
    held: Mapped[dict[str, str]] = mapped_column(Json)  # complaint id -> the hold overridden


class ErasedComplaint(Base):
    """Marks a complaint whose personal data is erased (its case file and letters say so)."""

    __tablename__ = "erased_complaints"

    complaint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erasure_id: Mapped[int] = mapped_column(Id, ForeignKey("erasures.id"), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PersonalDataRead(Base):
    """A read of one complaint's personal data on the ops API (case file, timeline)."""

    __tablename__ = "personal_data_reads"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reader: Mapped[str] = mapped_column(String(64))  # the token's identity, never the token
    complaint_id: Mapped[str] = mapped_column(String(64), index=True)
    what: Mapped[str] = mapped_column(String(32))  # casefile | timeline


class Delivery(Base):
    """(v2) Where each issued letter stands on its way to the customer (docs/rules.md s.6).

    Inserted with the letter, in the same transaction (so no letter is ever without one);
    afterwards only the delivery service changes it. `next_attempt_at` is also the claim: a
    worker moves it forward before sending, so a second worker (or the same one restarted
    after a crash) finds the letter due again only after that lease has passed.
    """

    __tablename__ = "deliveries"

    letter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No index: read by letter id (a complaint's letters first); one less per letter issued.
    complaint_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | dispatched
    channel: Mapped[str] = mapped_column(String(8))  # the channel of the next attempt
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # on every channel
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, this channel
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    email_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first email attempt
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A round finds what is due among the undelivered, not among every letter ever sent.
        Index(
            "ix_deliveries_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class Dispatch(Base):
    """(v2) Every delivery attempt of a letter, kept for the record (`letter.dispatched`).

    `outcome`: dispatched (the mail server accepted it, or the PDF is in the print queue),
    deferred (a temporary refusal or a fault: retried), refused (a permanent SMTP refusal:
    sent by post instead) or gave_up (email still undelivered after `email_give_up_hours`).
    """

    __tablename__ = "dispatches"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    letter_id: Mapped[str] = mapped_column(String(32))  # indexed by (letter_id, attempt)
    complaint_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per letter
    channel: Mapped[str] = mapped_column(String(8))  # email | post
    address: Mapped[str] = mapped_column(Text)  # the email address, or the postal address
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    receipt: Mapped[str] = mapped_column(Text)  # the mail server's reply, or the print file

    __table_args__ = (Index("uq_dispatches_letter_attempt", "letter_id", "attempt",
                            unique=True),)
class SubmissionRow(Base):
    """(v2) A return as submitted to Ofgem, or a quarter's figures as published (docs/rules.md
    s.7 "Submissions"): kept for good, never updated or deleted (the migration adds triggers
    that refuse both). `document` is the canonical JSON whose SHA-256 is `sha256`; `csv` and
    `xlsx` are the bytes exactly as submitted. `watermarks` are the highest row ids of the
    record's return tables when it was made, so a later check reads only what came since."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. 2026-01-S1
    kind: Mapped[str] = mapped_column(String(16))  # monthly | quarterly | publication
    period: Mapped[str] = mapped_column(String(16))
    sequence: Mapped[int] = mapped_column(Integer)  # 1 for the first of this kind and period
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    csv: Mapped[bytes] = mapped_column(LargeBinary)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    forced: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)  # publication: where it was published
    watermarks: Mapped[dict[str, Any]] = mapped_column(Json)

    __table_args__ = (
        Index("ux_submissions_kind_period_sequence", "kind", "period", "sequence",
              unique=True),
    )
