"""(v2) Submissions: returns frozen as submitted, publications, diffs and the obligations
calendar (docs/rules.md s.7 "Submissions", s.1 "Submission deadlines"; docs/contract.md (v2)).

A submission keeps the document exactly as computed (its canonical JSON, with the SHA-256 of
that text), its as-of instant, when and by whom it was made, the reason when it was forced past
failing checks, and the CSV and workbook bytes as submitted. Rows are only ever inserted.

To know whether a submitted return still stands, a later computation is compared item by
item. That computation is skipped when nothing that could move the return was recorded since
the submission: each submission keeps the highest row id of every table the returns read
(`watermarks`), and the record's tables are append-only, so "changed since" is "a row with a
higher id touching the period". When the record already held instants later than the as-of
at submission (a past `--as-of`), that shortcut is not sound and the return is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from reporting import measures as m
from reporting.export import SubmissionMark, csv_bytes, xlsx_bytes
from reporting.items import MONTHLY, PUBLICATION, QUARTERLY
from reporting.model import Context, Kind, ReturnSpec
from reporting.numbers import as_json_number
from reporting.obligations import (
    KIND_ORDER,
    has_ended,
    months_between,
    publication_due,
    return_due,
    status,
)
from reporting.periods import Period, month, parse_month, parse_quarter, quarter
from reporting.report import Report, default_as_of, run_report, to_json
from workflow.bootstrap import App
from workflow.calendar import local_date, start_of_date
from workflow.clock import Clock, SystemClock
from workflow.counting import SIGNPOSTING_ITEMS
from workflow.queries import record_clock
from workflow.schema import HistoryEntry, SubmissionRow

SPECS: Final[dict[str, ReturnSpec]] = {"monthly": MONTHLY, "quarterly": QUARTERLY,
                                       "publication": PUBLICATION}
submissions = SubmissionRow.__table__
history = HistoryEntry.__table__
WATERMARK_TABLES: Final = {
    "receipts": m.receipts, "resolutions": m.resolutions,
    "category_changes": m.category_changes, "contacts": m.contacts,
    "accounts_snapshots": m.snapshots, "history": history,
}
AHEAD: Final = "record_ahead_of_as_of"
REASONS_PER_SOURCE: Final = 50
# A resolution can move a month's A2 only up to its receipts' D+1 deadlines, at most a few
# days into the next month (a Friday receipt before a long bank-holiday weekend): 10 days
# bounds it with room to spare.
D1_REACH: Final = timedelta(days=10)


class SubmissionRefused(Exception):
    """A submission the rules do not allow (the period has not ended, checks fail)."""


def canonical_json(document: Any) -> str:
    """docs/rules.md s.7: UTF-8, keys sorted, no insignificant whitespace."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of(document: Any) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def parse_period(kind: str, label: str) -> Period:
    return parse_month(label) if kind == "monthly" else parse_quarter(label)


@dataclass(frozen=True)
class Submission:
    id: str
    kind: str
    period: str
    sequence: int
    as_of: datetime
    submitted_at: datetime
    by: str
    sha256: str
    document: dict[str, Any]
    forced: bool
    reason: str | None
    url: str | None
    watermarks: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """`submissions list`'s entry (docs/contract.md), plus what a reviewer also asks."""
        return {"id": self.id, "kind": self.kind, "period": self.period,
                "as_of": self.as_of.isoformat(), "submitted_at": self.submitted_at.isoformat(),
                "by": self.by, "sha256": self.sha256, "forced": self.forced,
                "reason": self.reason, "url": self.url}

    def receipt(self) -> dict[str, Any]:
        """The `"submission"` block `report ... --submit` prints."""
        return {"id": self.id, "submitted_at": self.submitted_at.isoformat(), "by": self.by,
                "sha256": self.sha256}


def _from_row(row: Any) -> Submission:
    return Submission(row.id, row.kind, row.period, row.sequence, row.as_of, row.submitted_at,
                      row.submitted_by, row.sha256, json.loads(row.document), row.forced,
                      row.reason, row.url, dict(row.watermarks))


_SUMMARY_COLUMNS: Final = [c for c in submissions.c if c.name not in ("csv", "xlsx")]


# --------------------------------------------------------------------------- making them
def watermarks(conn: Connection) -> dict[str, Any]:
    return {name: int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
            for name, table in WATERMARK_TABLES.items()}


def submit(app: App, spec: ReturnSpec, period: Period, *, now: datetime, by: str,
           as_of: datetime | None = None, force: bool = False,
           reason: str | None = None) -> tuple[Report, Submission]:
    """Compute the return and freeze it as a submission (docs/rules.md s.7).

    Refused (SubmissionRefused) before the period has ended, with an as-of instant before its
    end (the return would miss part of it), or when a consistency check fails, unless forced
    with a reason, which is stored with it. "Now" for the first test is the record's: the wall
    clock or, offline, event time when the record has reached later (docs/rules.md s.5), as for
    every other reader; a record ingested from next year's files can submit this year's
    December. `submitted_at` stays the wall clock: when the submission was made.
    """
    if spec.name not in ("monthly", "quarterly"):
        raise ValueError(f"only monthly and quarterly returns are submitted, not {spec.name}")
    if force and not (reason or "").strip():
        raise ValueError("--force needs --reason: why the return is submitted as it is")
    record_now = default_as_of(app, now)
    _require_ended(period, record_now, "now")
    as_of = as_of or record_now
    _require_ended(period, as_of, "the as-of instant")
    marks = _marks(app, as_of)
    report = run_report(app, spec, period, as_of)
    failed = report.failed_checks
    if failed and not force:
        raise SubmissionRefused(
            f"the {spec.name} return for {period.label} fails its checks ("
            + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            + "): correct the record, or submit it as it is with --force --reason TEXT")
    return report, _store(app, report, now=now, by=by, marks=marks, forced=force,
                          reason=reason.strip() if reason else None)


def publish(app: App, period: Period, *, now: datetime, by: str, url: str | None = None,
            as_of: datetime | None = None) -> tuple[Report, Submission]:
    """Record that the quarter's figures were published on the website (Ofgem 3.14): the
    publication figures as they stand are frozen like a submission, with the URL."""
    record_now = default_as_of(app, now)
    _require_ended(period, record_now, "now")
    as_of = as_of or record_now
    marks = _marks(app, as_of)
    report = run_report(app, PUBLICATION, period, as_of)
    return report, _store(app, report, now=now, by=by, marks=marks, forced=False, reason=None,
                          url=url)


def _require_ended(period: Period, instant: datetime, what: str) -> None:
    if not has_ended(period, instant):
        raise SubmissionRefused(
            f"{period.label} has not ended at {what} ({instant.isoformat()}): a return can be "
            f"submitted from {start_of_date(period.end).isoformat()}")


def _marks(app: App, as_of: datetime) -> dict[str, Any]:
    with app.engine.connect() as conn:
        marks = watermarks(conn)
        latest = record_clock(conn)
    marks[AHEAD] = latest is not None and latest > as_of
    return marks


def _store(app: App, report: Report, *, now: datetime, by: str, marks: dict[str, Any],
           forced: bool, reason: str | None, url: str | None = None) -> Submission:
    document = to_json(report)
    text = canonical_json(document)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    kind, label = report.spec.name, report.period.label
    procedure = app.procedure
    csv = csv_bytes(report)
    for _attempt in range(3):  # two people submitting the same period at once: next number
        with app.engine.begin() as conn:
            sequence = int(conn.execute(
                select(func.coalesce(func.max(submissions.c.sequence), 0))
                .where(submissions.c.kind == kind, submissions.c.period == label)
            ).scalar_one()) + 1
        submission_id = f"{label}-{'P' if kind == 'publication' else 'S'}{sequence}"
        xlsx = xlsx_bytes(report, procedure.supplier.name, procedure.licence_number,
                          SubmissionMark(submission_id, digest))
        try:
            with app.engine.begin() as conn:
                conn.execute(insert(SubmissionRow).values(
                    id=submission_id, kind=kind, period=label, sequence=sequence,
                    as_of=report.as_of, submitted_at=now, submitted_by=by, sha256=digest,
                    document=text, csv=csv, xlsx=xlsx, forced=forced, reason=reason, url=url,
                    watermarks=marks))
        except IntegrityError:
            continue
        found = get(app, submission_id)
        assert found is not None
        return found
    raise SubmissionRefused(f"could not number the submission of {label}: try again")


# --------------------------------------------------------------------------- reading them
def list_submissions(app: App, kind: str | None = None) -> list[Submission]:
    """Every submission (and publication), oldest first."""
    query = select(*_SUMMARY_COLUMNS).order_by(submissions.c.submitted_at, submissions.c.id)
    if kind is not None:
        query = query.where(submissions.c.kind == kind)
    with app.engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(query)]


def get(app: App, submission_id: str) -> Submission | None:
    with app.engine.connect() as conn:
        row = conn.execute(select(*_SUMMARY_COLUMNS)
                           .where(submissions.c.id == submission_id)).first()
    return None if row is None else _from_row(row)


def stored_bytes(app: App, submission_id: str, suffix: str) -> bytes | None:
    """The CSV or workbook stored with the submission, byte for byte."""
    column = {".csv": submissions.c.csv, ".xlsx": submissions.c.xlsx}[suffix]
    with app.engine.connect() as conn:
        value = conn.execute(select(column).where(submissions.c.id == submission_id)).scalar()
    return None if value is None else bytes(value)


def _latest_by_period(subs: Iterable[Submission]) -> dict[tuple[str, str], list[Submission]]:
    grouped: dict[tuple[str, str], list[Submission]] = {}
    for sub in sorted(subs, key=lambda s: s.sequence):
        grouped.setdefault((sub.kind, sub.period), []).append(sub)
    return grouped


# --------------------------------------------------------------------------- has it moved?
def _since(sub: Submission, id_column: Any, instant: Any, table: str) -> ColumnElement[bool]:
    """Rows recorded after the submission; and, when the record was ahead of its as-of
    then, rows dated after that as-of too."""
    newer = id_column > int(sub.watermarks.get(table, 0))
    return or_(newer, instant > sub.as_of) if sub.watermarks.get(AHEAD) else newer


def _window(period: Period) -> tuple[datetime, datetime]:
    return start_of_date(period.first), start_of_date(period.end)


def _letters_query(sub: Submission, start: datetime, end: datetime) -> Select[Any]:
    """D16/D17 letters issued in [start, end) since the submission. Letters have no sequential
    id; every letter is issued by an event or a deadline, which writes a history row (its
    event id, or "deadline:" + the deadline key) in the same batch: so the history rows since
    the submission (an id range) lead to the letters, through the letters' complaint index."""
    lt = m.letters
    caused_by = or_(history.c.event_id == lt.c.cause,
                    history.c.event_id == literal("deadline:").concat(lt.c.cause))
    in_period = and_(lt.c.kind.in_(list(SIGNPOSTING_ITEMS.values())), lt.c.issued_at >= start,
                     lt.c.issued_at < end)
    mark = int(sub.watermarks.get("history", 0))
    if sub.watermarks.get(AHEAD):
        since = or_(select(history.c.id).where(history.c.complaint_id == lt.c.complaint_id,
                                               history.c.id > mark, caused_by).exists(),
                    lt.c.issued_at > sub.as_of)
        return select(lt.c.complaint_id, lt.c.issued_at, lt.c.kind).where(in_period, since)
    return (select(lt.c.complaint_id, lt.c.issued_at, lt.c.kind)
            .select_from(history.join(lt, lt.c.complaint_id == history.c.complaint_id))
            .where(history.c.id > mark, caused_by, in_period))


def _source_queries(sub: Submission, period: Period) -> dict[str, Select[Any]]:
    """For each kind of change, the rows since the submission that could move its return:
    (complaint_id or event id, instant, what changed)."""
    start, end = _window(period)
    r, s, c, k, a = m.receipts, m.resolutions, m.category_changes, m.contacts, m.snapshots
    accounts = select(a.c.event_id, a.c.occurred_at, literal("accounts_snapshot")).where(
        _since(sub, a.c.id, a.c.occurred_at, "accounts_snapshots"),
        a.c.as_of >= period.first, a.c.as_of <= period.last)
    if sub.kind == "monthly":
        registered = r.alias("registered")
        in_month = and_(r.c.received_at >= start, r.c.received_at < end)
        return {
            "receipt": select(r.c.complaint_id, r.c.received_at, literal("receipt")).where(
                _since(sub, r.c.id, r.c.received_at, "receipts"), in_month),
            "resolution": select(s.c.complaint_id, s.c.resolved_at, literal("resolution"))
            .where(_since(sub, s.c.id, s.c.resolved_at, "resolutions"),
                   s.c.resolved_at >= start, s.c.resolved_at < end + D1_REACH,
                   select(r.c.id).where(r.c.complaint_id == s.c.complaint_id,
                                        r.c.cycle == s.c.cycle, in_month).exists()),
            "recategorisation": select(c.c.complaint_id, c.c.effective_at,
                                       literal("recategorisation"))
            .select_from(r.join(c, c.c.complaint_id == r.c.complaint_id))
            .where(in_month, _since(sub, c.c.id, c.c.effective_at, "category_changes"),
                   # Not the category a complaint was registered with: that is a receipt.
                   ~select(registered.c.id).where(
                       registered.c.event_id == c.c.event_id).exists()),
            "accounts_snapshot": accounts,
        }
    sharing = r.alias("sharing")
    return {
        # Earlier receipts too when they share a contact id with one in the quarter: the
        # contact then counts in the earlier period.
        "receipt": select(r.c.complaint_id, r.c.received_at, literal("receipt")).where(
            _since(sub, r.c.id, r.c.received_at, "receipts"), r.c.received_at < end,
            or_(r.c.received_at >= start, and_(
                r.c.contact_id.is_not(None),
                select(sharing.c.id).where(
                    sharing.c.contact_id == r.c.contact_id, sharing.c.received_at >= start,
                    sharing.c.received_at < end).exists()))),
        "contact": select(k.c.event_id, k.c.occurred_at, literal("contact")).where(
            _since(sub, k.c.id, k.c.occurred_at, "contacts"),
            k.c.occurred_at >= start, k.c.occurred_at < end),
        "resolution": select(s.c.complaint_id, s.c.resolved_at, literal("resolution")).where(
            _since(sub, s.c.id, s.c.resolved_at, "resolutions"),
            s.c.resolved_at >= start, s.c.resolved_at < end),
        "letter": _letters_query(sub, start, end),
        "accounts_snapshot": accounts,
    }


def certainly_moved(conn: Connection, sub: Submission, period: Period, as_of: datetime) -> bool:
    """A row recorded since the submission that a count of its return must include now: a
    receipt in the period (monthly A1, quarterly B6), and for a quarter a counted resolution
    (C11) or a contact (A1) in it. Counts only grow with rows (the tables are append-only),
    so such a row moves the return without recomputing it."""
    start, end = _window(period)
    r, s, k = m.receipts, m.resolutions, m.contacts
    queries = [select(r.c.id).where(_since(sub, r.c.id, r.c.received_at, "receipts"),
                                    r.c.received_at >= start, r.c.received_at < end,
                                    r.c.received_at <= as_of)]
    if sub.kind != "monthly":
        queries.append(select(s.c.id).where(
            _since(sub, s.c.id, s.c.resolved_at, "resolutions"), s.c.counted.is_(True),
            s.c.resolved_at >= start, s.c.resolved_at < end, s.c.resolved_at <= as_of))
    if sub.kind == "quarterly":
        queries.append(select(k.c.id).where(
            _since(sub, k.c.id, k.c.occurred_at, "contacts"), k.c.occurred_at >= start,
            k.c.occurred_at < end, k.c.occurred_at <= as_of))
    return any(conn.execute(query.limit(1)).first() is not None for query in queries)


def changed_sources(conn: Connection, sub: Submission, period: Period) -> set[str]:
    """The kinds of change (receipt, resolution, ...) recorded since the submission that could
    move its return: empty when nothing could."""
    return {source for source, query in _source_queries(sub, period).items()
            if conn.execute(query.limit(1)).first() is not None}


def _reasons(conn: Connection, sub: Submission, period: Period) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for source, query in _source_queries(sub, period).items():
        # In the order recorded (by row id, which the id-range filter reads cheaply).
        rows = conn.execute(query.order_by(*ORDER[source])
                            .limit(REASONS_PER_SOURCE + 1)).all()
        unique = list(dict.fromkeys(tuple(row) for row in rows))  # a month's two receipts
        found[source] = [{
            ("event_id" if source in ("contact", "accounts_snapshot") else "complaint_id"):
                str(row[0]),
            "change": source if source != "letter" else f"{row[2]} letter",
            "at": row[1].isoformat(),
            # Dated at or before the submission's as-of, recorded after it: a late event.
            "late": row[1] <= sub.as_of,
        } for row in unique]
    return found


ORDER: Final[dict[str, tuple[Any, ...]]] = {
    "receipt": (m.receipts.c.id,), "resolution": (m.resolutions.c.id,),
    "recategorisation": (m.category_changes.c.id,), "contact": (m.contacts.c.id,),
    "accounts_snapshot": (m.snapshots.c.id,),
    "letter": (m.letters.c.issued_at, m.letters.c.letter_id),
}


def _sources_of(spec: ReturnSpec, code: str) -> tuple[str, ...]:
    """Which kinds of change can move an item (or annex), read from the item table: accounts
    items move with snapshots, rates with their count and the snapshots, the rest by section
    (docs/rules.md s.7: which records each item counts)."""
    if code == "b22_explanations":
        return ("receipt", "recategorisation")
    if code == "subsidiary_types":
        return ("receipt",)
    if spec.name == "publication":  # B6 or C11 (and its shares), per E20 for the rates
        counted = ("receipt",) if "received" in code else ("resolution",)
        return (*counted, "accounts_snapshot") if "_per_" in code else counted
    kind = spec.item(code).kind
    if kind == Kind.ACCOUNTS:
        return ("accounts_snapshot",)
    if kind == Kind.RATE:  # monthly C27/C28 (A1 over C26), quarterly E21/E22 (B6 over E20)
        return ("receipt", "accounts_snapshot")
    if spec.name == "monthly":
        by_section = {"A": ("receipt", "resolution") if code in ("A2", "A3") else ("receipt",),
                      "B": ("receipt", "recategorisation")}
    else:
        by_section = {"A": ("receipt", "contact"), "B": ("receipt",), "C": ("resolution",),
                      "D": ("letter",)}
    return by_section.get(code[0], ())


def _figures(document: dict[str, Any]) -> dict[str, Any]:
    if "items" in document:
        return dict(document["items"])
    return {k: v for k, v in document.items() if k != "period"}


def compare(spec: ReturnSpec, submitted: dict[str, Any],
            now: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Item by item (and each annex as a whole): what moved, from what to what."""
    before, after = _figures(submitted), _figures(now)
    changed: dict[str, dict[str, Any]] = {}
    for code in [*before, *(c for c in after if c not in before)]:
        x, y = before.get(code), after.get(code)
        if x != y:
            entry: dict[str, Any] = {"submitted": x, "now": y}
            if isinstance(x, int | float) and isinstance(y, int | float):
                entry["by"] = round(y - x, 2) if isinstance(x, float) or isinstance(y, float) \
                    else y - x
            changed[code] = entry
    for annex in spec.annexes:
        if submitted.get(annex.name) != now.get(annex.name):
            changed[annex.name] = {"submitted": submitted.get(annex.name),
                                   "now": now.get(annex.name)}
    return changed


def diff(app: App, submission_id: str, *, now: datetime,
         as_of: datetime | None = None) -> dict[str, Any] | None:
    """`submissions diff ID`: the submission against a computation now (docs/contract.md (v2))."""
    sub = get(app, submission_id)
    if sub is None:
        return None
    spec, period = SPECS[sub.kind], parse_period(sub.kind, sub.period)
    as_of = as_of or default_as_of(app, now)
    current = to_json(run_report(app, spec, period, as_of))
    changed = compare(spec, sub.document, current)
    if changed:
        with app.engine.connect() as conn:
            reasons = _reasons(conn, sub, period)
        for code, entry in changed.items():
            sources = _sources_of(spec, code)
            listed = [r for source in sources for r in reasons.get(source, [])
                      [:REASONS_PER_SOURCE]]
            entry["reasons"] = listed
            if any(len(reasons.get(source, [])) > REASONS_PER_SOURCE for source in sources):
                entry["reasons_truncated"] = True
    later = [s for s in list_submissions(app, sub.kind)
             if s.period == sub.period and s.sequence > sub.sequence]
    return {"id": sub.id, "kind": sub.kind, "period": sub.period,
            "submitted_as_of": sub.as_of.isoformat(), "as_of": as_of.isoformat(),
            "sha256": sub.sha256, "resubmission_needed": bool(changed), "changed": changed,
            "superseded_by": later[-1].id if later else None}


# --------------------------------------------------------------------------- obligations
def first_receipt_month(app: App) -> Period | None:
    with app.engine.connect() as conn:
        first = conn.execute(select(func.min(m.receipts.c.received_at))).scalar()
    if first is None:
        return None
    day = local_date(first)
    return month(day.year, day.month)


def _quarter_of(day: date) -> Period:
    return quarter(day.year, (day.month - 1) // 3 + 1)


def moved(app: App, subs: list[Submission], as_of: datetime) -> set[str]:
    """The ids of the submissions a computation at `as_of` no longer matches.

    A new row that a count must include moves a return for certain (no computation). Else
    only the items that what was recorded since could move are recomputed (an item whose
    records gained no row is as submitted: the tables are append-only), for all the
    submissions in one read transaction sharing their queries.
    """
    found: set[str] = set()
    suspects: list[tuple[Submission, set[str]]] = []
    with app.engine.connect() as conn:
        for sub in subs:
            period = parse_period(sub.kind, sub.period)
            changes = changed_sources(conn, sub, period)
            if not changes:
                continue
            if certainly_moved(conn, sub, period, as_of):
                found.add(sub.id)
            else:
                suspects.append((sub, changes))
    if not suspects:
        return found
    shared: dict[Any, Any] = {}
    with app.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for sub, changes in suspects:
                spec = SPECS[sub.kind]
                context = Context(conn, spec, parse_period(sub.kind, sub.period), as_of,
                                  app.procedure, shared)
                submitted = _figures(sub.document)
                affected = [i.code for i in spec.items
                            if changes & set(_sources_of(spec, i.code))]
                annexes = [a for a in spec.annexes if changes & set(_sources_of(spec, a.name))]
                if any(submitted.get(code) != as_json_number(context[code]) for code in affected) \
                        or any(sub.document.get(a.name) != a.compute(context) for a in annexes):
                    found.add(sub.id)
    return found


def obligations(app: App, *, now: datetime, as_of: datetime | None = None,
                first: Period | None = None) -> list[dict[str, Any]]:
    """`submissions due`: every monthly, quarterly and publication obligation from `first`
    (default: the month of the record's first receipt) to the last period ended at as-of,
    with its due date and status, by due date (docs/contract.md (v2))."""
    as_of = as_of or default_as_of(app, now)
    first = first or first_receipt_month(app)
    if first is None:
        return []
    # As things stood at as-of: a submission made after it had not been made then.
    grouped = _latest_by_period(s for s in list_submissions(app) if s.submitted_at <= as_of)
    changed_ids = moved(app, [made[-1] for made in grouped.values()], as_of)
    entries: list[dict[str, Any]] = []

    def entry(kind: str, period: Period, due: date, made: list[Submission]) -> dict[str, Any]:
        latest = made[-1] if made else None
        changed = latest is not None and latest.id in changed_ids
        return {"kind": kind, "period": period.label, "due": due.isoformat(),
                "submitted_at": latest.submitted_at.isoformat() if latest else None,
                "status": status(due, as_of, latest is not None, changed),
                "submission_id": latest.id if latest else None,
                "first_submitted_at": made[0].submitted_at.isoformat() if made else None}

    for period in months_between(first, as_of):
        entries.append(entry("monthly", period, return_due(period),
                             grouped.get(("monthly", period.label), [])))
    current = _quarter_of(first.first)
    while has_ended(current, as_of):
        made = grouped.get(("quarterly", current.label), [])
        entries.append(entry("quarterly", current, return_due(current), made))
        first_on = local_date(made[0].submitted_at) if made else None
        published = grouped.get(("publication", current.label), [])
        row = entry("publication", current, publication_due(current, first_on), published)
        row["url"] = published[-1].url if published else None
        entries.append(row)
        current = quarter(current.end.year, (current.end.month - 1) // 3 + 1)
    return sorted(entries, key=lambda e: (e["due"], KIND_ORDER[e["kind"]], e["period"]))


def dashboard_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the ops dashboard shows: the next obligation due, the overdue ones, the ones
    needing a resubmission, and a count per status."""
    open_ = [e for e in entries if e["status"] == "due"]
    counts = {name: 0 for name in ("submitted", "due", "overdue", "resubmission_needed")}
    for e in entries:
        counts[e["status"]] += 1
    return {"next_due": open_[0] if open_ else None,
            "overdue": [e for e in entries if e["status"] == "overdue"],
            "resubmission_needed": [e for e in entries if e["status"] == "resubmission_needed"],
            "counts": counts}


class ObligationsSource:
    """The obligations calendar for the ops server (dashboard panel, Prometheus gauges),
    from the database, each answer kept for `ttl` seconds: `due` reads the record (and may
    recompute a moved return), which the dashboard's 5-second refresh must not repeat."""

    def __init__(self, app: App, ttl: float = 30.0, clock: Clock | None = None) -> None:
        self.app = app
        self.ttl = ttl
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._cache: dict[str | None, tuple[float, dict[str, Any]]] = {}
        self.latest: dict[str, Any] | None = None  # the last answer "as of now", for gauges

    def summary(self, as_of: datetime | None = None) -> dict[str, Any]:
        """`dashboard_summary` of the obligations at `as_of` (default now), with them all.
        Blocking: call it from a worker thread in the server's loop."""
        key = None if as_of is None else as_of.isoformat()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            now = self.clock.now()
            when = as_of or default_as_of(self.app, now)
            entries = obligations(self.app, now=now, as_of=when)
            answer = {"as_of": when.isoformat(), **dashboard_summary(entries),
                      "obligations": entries}
            self._cache[key] = (time.monotonic(), answer)
            if as_of is None:
                self.latest = answer
            return answer
