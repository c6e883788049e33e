"""The SQL behind the returns: aggregate queries over the record (docs/rules.md s.7).

Each measure is one query (SQLAlchemy Core, bound parameters only) returning a few counts for
a `Window`; the item table in `reporting.items` turns them into Ofgem items. Nothing here
loads complaints row by row: the database counts, groups and sorts.

Every query limits what it counts to the window's [start, end) by the relevant instant and to
instants at or before the report's as-of instant, so a return can be re-run as it stood then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from reporting.periods import Window
from workflow.counting import (
    CATEGORIES,
    CONTACT_LOGGED_KIND,
    CONTACT_PARTIES,
    CONTACT_RECEIVED_KINDS,
    OTHER_CATEGORY,
    SIGNPOSTING_ITEMS,
    by_deadline,
)
from workflow.schema import (
    AccountsSnapshotRow,
    CategoryChange,
    Complaint,
    Contact,
    Letter,
    Receipt,
    ResolutionRecord,
)

receipts = Receipt.__table__
resolutions = ResolutionRecord.__table__
category_changes = CategoryChange.__table__
contacts = Contact.__table__
letters = Letter.__table__
snapshots = AccountsSnapshotRow.__table__
complaints = Complaint.__table__

MICROSECONDS_PER_DAY: Final = 86_400 * 1_000_000


def in_window(column: Any, window: Window) -> ColumnElement[bool]:
    """The instant falls in the period (by local date) and at or before the as-of instant."""
    return and_(column >= window.start, column < window.end, column <= window.as_of)


# --------------------------------------------------------------------------- elapsed time
class ElapsedMicroseconds(FunctionElement[int]):
    """Exact whole microseconds from `start` to `end`, the same integer on every backend.

    PostgreSQL subtracts timestamps exactly. SQLite stores instants as text
    ('YYYY-MM-DD HH:MM:SS.ffffff', always six fractional digits), and julianday() would lose
    microseconds in a double, so seconds and microseconds are taken apart as integers.
    """

    type = BigInteger()
    inherit_cache = True
    name = "elapsed_microseconds"


@compiles(ElapsedMicroseconds, "postgresql")
def _elapsed_postgresql(element: ElapsedMicroseconds, compiler: Any, **kw: Any) -> str:
    end, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000 AS BIGINT)"


@compiles(ElapsedMicroseconds, "sqlite")
def _elapsed_sqlite(element: ElapsedMicroseconds, compiler: Any, **kw: Any) -> str:
    end, start = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"((unixepoch(substr({end}, 1, 19)) - unixepoch(substr({start}, 1, 19))) * 1000000"
        f" + (CAST(substr({end}, 21, 6) AS INTEGER) - CAST(substr({start}, 21, 6) AS INTEGER)))"
    )


# --------------------------------------------------------------------------- receipts
@dataclass(frozen=True)
class ReceiptCounts:
    received: int
    reopens: int


def receipt_counts(conn: Connection, window: Window) -> ReceiptCounts:
    """Monthly A1 and A4: receipts (registrations that are not duplicates, and reopens)."""
    row = conn.execute(
        select(func.count(), func.count(case((receipts.c.is_reopen.is_(True), 1))))
        .where(in_window(receipts.c.received_at, window))
    ).one()
    return ReceiptCounts(int(row[0]), int(row[1]))


@dataclass(frozen=True)
class FirstDayOutcomes:
    resolved_by_d1: int
    not_resolved_by_d1: int


def first_day_outcomes(conn: Connection, window: Window) -> FirstDayOutcomes:
    """Monthly A2 and A3, each counted (not one by subtraction), from one pass over the
    receipts joined to a resolution of the same complaint in the receipt's own cycle (so
    applied after it) at or before the receipt's D+1 deadline. Any resolution counts, counted
    or not: A2 is about received complaints; the Ofgem 5.10 exclusion is for C11.

    A cycle has at most one resolution; receipts are counted distinct all the same, so that a
    second one could never count a receipt twice. A1 comes from a separate count, so the
    A1 = A2 + A3 check compares two independent readings of the receipts.
    """
    matched = and_(
        resolutions.c.complaint_id == receipts.c.complaint_id,
        resolutions.c.cycle == receipts.c.cycle,
        by_deadline(resolutions.c.resolved_at, receipts.c.d1_deadline),
        resolutions.c.resolved_at <= window.as_of,
    )
    resolved = resolutions.c.id.is_not(None)
    row = conn.execute(
        select(
            func.count(case((resolved, receipts.c.id)).distinct()),
            func.count(case((~resolved, receipts.c.id)).distinct()),
        )
        .select_from(receipts.outerjoin(resolutions, matched))
        .where(in_window(receipts.c.received_at, window))
    ).one()
    return FirstDayOutcomes(int(row[0]), int(row[1]))


def _receipts_with_category(window: Window) -> Any:
    """The window's receipts, each with its complaint's category as it stands at the as-of
    instant: the latest category change effective at or before then (ties: the one applied
    last). Ranked in one pass over receipts joined to their complaint's changes (an index
    lookup each), rather than joined to a ranked subquery, which SQLite cannot index."""
    changes = category_changes
    ranked = (
        select(
            receipts.c.complaint_id,
            changes.c.category,
            changes.c.other_explanation,
            func.row_number().over(
                partition_by=receipts.c.id,
                order_by=(changes.c.effective_at.desc(), changes.c.id.desc()),
            ).label("rank"),
        )
        .select_from(receipts.outerjoin(changes, and_(
            changes.c.complaint_id == receipts.c.complaint_id,
            changes.c.effective_at <= window.as_of,
        )))
        .where(in_window(receipts.c.received_at, window))
        .subquery("ranked")
    )
    return select(ranked.c.complaint_id, ranked.c.category, ranked.c.other_explanation).where(
        ranked.c.rank == 1).subquery("receipt_category")


@dataclass(frozen=True)
class Explanation:
    explanation: str
    count: int


@dataclass(frozen=True)
class CategoryCounts:
    by_category: dict[str, int]
    uncategorised: int  # receipts whose complaint had no category at the as-of instant
    other_unexplained: int  # B22 receipts without an explanation at the as-of instant
    unexplained_examples: tuple[str, ...]
    # (v2) The monthly return's `b22_explanations`, from the same pass.
    b22_explanations: tuple[Explanation, ...] = ()


def _blank(column: Any) -> ColumnElement[bool]:
    return func.coalesce(func.trim(column), literal("")) == literal("")


def receipts_by_category(conn: Connection, window: Window) -> CategoryCounts:
    """Monthly B5-B22: receipts by the complaint's category as of the as-of instant; and, in
    the same pass, the B22 receipts by explanation.

    (v2) `b22_explanations` (docs/rules.md s.7): each distinct explanation of the receipts counted
    in B22 (reopens included), as it stands at the as-of instant. The database groups by the
    stored text; the trimming ("exact text, trimmed") is Python's `str.strip()`, so every
    backend trims the same characters, then equal trimmed texts are merged. Most frequent
    first, then by code point (Python's `str` order). A B22 receipt without an explanation
    (the "B22 explained" check fails for it) is listed under the empty text, so the counts
    still add up to B22.
    """
    receipt = _receipts_with_category(window)
    is_other = receipt.c.category == OTHER_CATEGORY
    unexplained = and_(is_other, _blank(receipt.c.other_explanation))
    explanation = case((is_other, receipt.c.other_explanation)).label("explanation")
    rows = conn.execute(
        select(receipt.c.category, explanation, func.count(), func.count(case((unexplained, 1))))
        .group_by(receipt.c.category, explanation)
    ).all()
    by_category: dict[str, int] = {}
    merged: dict[str, int] = {}
    uncategorised = other_unexplained = 0
    for category, text, n, unexplained_n in rows:
        if category is None:
            uncategorised += int(n)
            continue
        by_category[str(category)] = by_category.get(str(category), 0) + int(n)
        other_unexplained += int(unexplained_n)
        if category == OTHER_CATEGORY:
            key = (text or "").strip()
            merged[key] = merged.get(key, 0) + int(n)
    examples: tuple[str, ...] = ()
    if other_unexplained:
        examples = tuple(conn.scalars(
            select(receipt.c.complaint_id).where(unexplained)
            .distinct().order_by(receipt.c.complaint_id).limit(10)
        ))
    ordered = sorted(merged.items(), key=lambda pair: (-pair[1], pair[0]))
    return CategoryCounts(by_category, uncategorised, other_unexplained, examples,
                          tuple(Explanation(text, n) for text, n in ordered))


def receipts_by_channel(conn: Connection, window: Window) -> dict[str, int]:
    """Quarterly B7-B10 before mapping: receipts by the channel of their event."""
    rows = conn.execute(
        select(receipts.c.channel, func.count())
        .where(in_window(receipts.c.received_at, window))
        .group_by(receipts.c.channel)
    ).all()
    return {str(channel): int(n) for channel, n in rows}


# --------------------------------------------------------------------------- contacts
def contacts_by_channel(conn: Connection, window: Window) -> dict[str, int]:
    """Quarterly A2-A5 before mapping: contacts by channel.

    Receipts are contacts, but receipts sharing a contact_id (one call raising several
    complaints) are one contact: it is counted once, in the period and by the channel of its
    earliest receipt (ties: the one applied first). Contacts rows (enquiries, off-supply
    reports, logged customer contacts) each count once.
    """
    counts: dict[str, int] = {}
    for channel, n in [*_lone_receipts(conn, window), *_shared_contacts(conn, window),
                       *_contact_rows(conn, window)]:
        counts[str(channel)] = counts.get(str(channel), 0) + int(n)
    return counts


def _lone_receipts(conn: Connection, window: Window) -> list[Any]:
    return list(conn.execute(
        select(receipts.c.channel, func.count())
        .where(in_window(receipts.c.received_at, window), receipts.c.contact_id.is_(None))
        .group_by(receipts.c.channel)
    ).all())


def _shared_contacts(conn: Connection, window: Window) -> list[Any]:
    """The contacts of receipts sharing a contact id whose earliest receipt (at or before the
    as-of instant; ties: the one applied first) is in the window, by its channel.

    Said as "a receipt in the window with no earlier receipt of its contact", in two parts:
    none earlier in the window (among the window's own receipts), and none before the window
    at all. Each is an anti-join the planner can answer from the window's receipts or from
    `ix_receipts_contact_id`, rather than ranking every receipt of every such contact.
    """
    in_period, before = receipts.alias("in_period"), receipts.alias("before")
    earlier_in_period = select(in_period.c.id).where(
        in_period.c.contact_id == receipts.c.contact_id,
        in_window(in_period.c.received_at, window),
        or_(in_period.c.received_at < receipts.c.received_at,
            and_(in_period.c.received_at == receipts.c.received_at,
                 in_period.c.id < receipts.c.id)),
    ).exists()
    before_period = select(before.c.id).where(
        before.c.contact_id == receipts.c.contact_id,
        before.c.received_at < window.start,
        before.c.received_at <= window.as_of,
    ).exists()
    return list(conn.execute(
        select(receipts.c.channel, func.count())
        .where(in_window(receipts.c.received_at, window), receipts.c.contact_id.is_not(None),
               ~earlier_in_period, ~before_period)
        .group_by(receipts.c.channel)
    ).all())


def _contact_rows(conn: Connection, window: Window) -> list[Any]:
    # Contacts in Ofgem's sense (5.5), as `workflow.counting.is_contact` decides for one row:
    # the handlers store only such logged contacts anyway; filtering again keeps the rule here.
    is_contact = or_(
        contacts.c.kind.in_(CONTACT_RECEIVED_KINDS),
        and_(contacts.c.kind == CONTACT_LOGGED_KIND,
             contacts.c.party.in_(sorted(CONTACT_PARTIES))),
    )
    return list(conn.execute(
        select(contacts.c.channel, func.count())
        .where(in_window(contacts.c.occurred_at, window), is_contact)
        .group_by(contacts.c.channel)
    ).all())


# --------------------------------------------------------------------------- resolutions
@dataclass(frozen=True)
class ResolutionCounts:
    resolved: int
    by_original_d1: int
    within_eight_weeks: int
    after_eight_weeks: int


def _counted_in(window: Window) -> ColumnElement[bool]:
    # `counted` is false when an 8-week or deadlock letter preceded the resolution (5.10):
    # decided once, as the handlers record it, by `workflow.counting.counted_resolution`.
    return and_(resolutions.c.counted.is_(True), in_window(resolutions.c.resolved_at, window))


def resolution_counts(conn: Connection, window: Window) -> ResolutionCounts:
    """Quarterly C11-C14: counted resolutions, timed from the original receipt (C13's
    boundary, `eight_weeks_at`, is `workflow.counting.eight_weeks_boundary`)."""
    at = resolutions.c.resolved_at
    within_eight_weeks = by_deadline(at, resolutions.c.eight_weeks_at)
    row = conn.execute(
        select(
            func.count(),
            func.count(case((by_deadline(at, resolutions.c.original_d1_deadline), 1))),
            func.count(case((within_eight_weeks, 1))),
            func.count(case((~within_eight_weeks, 1))),
        ).where(_counted_in(window))
    ).one()
    return ResolutionCounts(*(int(v) for v in row))


def median_resolution_days(conn: Connection, window: Window, count: int) -> Fraction | None:
    """Quarterly C15: the median resolution time, in days, of the `count` counted resolutions.

    The database sorts the exact durations and returns only the middle one or two (positions
    (count + 1) // 2 and count // 2 + 1, one and the same when the count is odd); their mean
    is taken exactly here, in integer microseconds.
    """
    if count == 0:
        return None
    elapsed = ElapsedMicroseconds(resolutions.c.resolved_at, resolutions.c.original_received_at)
    middle: list[int] | None = None
    if conn.dialect.name == "postgresql":
        middle = _middle_by_percentile(conn, window, count, elapsed)
    if middle is None:  # SQLite has no percentile function
        middle = [int(m) for m in conn.scalars(
            select(elapsed).where(_counted_in(window))
            .order_by(elapsed).offset((count - 1) // 2).limit(1 if count % 2 else 2)
        )]
    return Fraction(sum(middle), len(middle) * MICROSECONDS_PER_DAY)


def _middle_by_percentile(conn: Connection, window: Window, count: int,
                          elapsed: ElapsedMicroseconds) -> list[int] | None:
    """PostgreSQL: the middle one or two durations by `percentile_disc`, in one sort, rather
    than an OFFSET past half the quarter's rows. percentile_disc(f) is the value at position
    ceil(f * n) of the n sorted; f = (k - 1/2) / n lands on position k whatever the float
    rounding. None (the caller then reads them the portable way) should the rows counted here
    not be `count`."""
    positions = sorted({(count + 1) // 2, count // 2 + 1})
    fractions = [(k - 0.5) / count for k in positions]
    row = conn.execute(
        select(func.count(), func.percentile_disc(
            bindparam("fractions", fractions, type_=ARRAY(Float()))).within_group(elapsed))
        .where(_counted_in(window))
    ).one()
    if int(row[0]) != count:
        return None
    return [int(value) for value in row[1]]


# --------------------------------------------------------------------------- the record's clock
# --------------------------------------------------------------------------- letters, accounts
def letters_by_kind(conn: Connection, window: Window) -> dict[str, int]:
    """Quarterly D16/D17: 8-week and deadlock letters issued in the window."""
    rows = conn.execute(
        select(letters.c.kind, func.count())
        .where(in_window(letters.c.issued_at, window),
               letters.c.kind.in_(list(SIGNPOSTING_ITEMS.values())))
        .group_by(letters.c.kind)
    ).all()
    return {str(kind): int(n) for kind, n in rows}


@dataclass(frozen=True)
class Accounts:
    electricity: int | None
    gas: int | None
    as_of: str | None  # the snapshot's date, for people checking the return


def accounts(conn: Connection, window: Window) -> Accounts:
    """C24/C25 and E18/E19: the snapshot with the latest `as_of` date in the period; of equal
    dates the one applied last (a correction). Only snapshots sent by the as-of instant."""
    row = conn.execute(
        select(snapshots.c.electricity_accounts, snapshots.c.gas_accounts, snapshots.c.as_of)
        .where(snapshots.c.as_of >= window.first, snapshots.c.as_of <= window.last,
               snapshots.c.occurred_at <= window.as_of)
        .order_by(snapshots.c.as_of.desc(), snapshots.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return Accounts(None, None, None)
    return Accounts(int(row[0]), int(row[1]), row[2].isoformat())


# --------------------------------------------------------------------------- (v2) annexes
def subsidiary_types(conn: Connection, window: Window) -> dict[str, int]:
    """The monthly return's `subsidiary_types` (docs/rules.md s.7 (v2), Ofgem 4.9): for every code
    B5-B22, the first receipts in the window (not reopens) whose complaint listed it among its
    `subsidiary_categories`.

    The database counts the window's first receipts by their complaint's list as stored (a
    JSON array of codes: JSON text on SQLite, JSONB on PostgreSQL, grouped by its text); the
    few distinct lists are read here and each code counted once per receipt that lists it.
    """
    listed = cast(complaints.c.subsidiary_categories, Text)
    rows = conn.execute(
        select(listed, func.count())
        .select_from(receipts.join(complaints,
                                   complaints.c.complaint_id == receipts.c.complaint_id))
        .where(in_window(receipts.c.received_at, window), receipts.c.is_reopen.is_(False))
        .group_by(listed)
    ).all()
    counts = dict.fromkeys(CATEGORIES, 0)
    for text, n in rows:
        for code in set(json.loads(text) if text else []):
            if code in counts:
                counts[code] += int(n)
    return counts
