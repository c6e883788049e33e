"""The operations work queue's reads from the record: find a complaint by reference or id,
and one complaint's timeline (served on the ops API, `reporting/web.py`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, union
from sqlalchemy.orm import Session

from workflow import queries
from workflow.calendar import start_of_date
from workflow.schema import Complaint, Deadline, Receipt

SEARCH_LIMIT = 20
# A list's total is counted exactly up to here and given as a lower bound beyond (with
# "total_exact": false): counting a stage of 740,000 complaints for each page would take
# longer than the page (the dashboard's counts, from the live view, are exact).
COUNT_LIMIT = 10_000
# Deeper than this a page is asked for by `after` (the `next` of the page before): an offset
# makes the database read and drop every row before it.
OFFSET_LIMIT = 10_000


def search(session: Session, text: str) -> list[dict[str, Any]]:
    """Complaints whose id or reference is `text` or starts with it (references ignoring case
    and spaces), exact matches first, at most SEARCH_LIMIT."""
    wanted = text.strip()
    if not wanted:
        return []
    reference = wanted.upper().replace(" ", "")
    # Bound parameters; LIKE wildcards in the input are taken literally.
    escaped = [value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
               for value in (wanted, reference)]
    rows = session.execute(
        select(Complaint.complaint_id, Complaint.reference, Complaint.state,
               Complaint.received_at, Complaint.handler)
        # upper(complaint_id) as well: the expression PostgreSQL's pattern index holds
        # (migration 0012), so both prefixes are index ranges over a million complaints.
        .where(or_(and_(func.upper(Complaint.complaint_id).like(escaped[0].upper() + "%",
                                                                 escape="\\"),
                        Complaint.complaint_id.like(escaped[0] + "%", escape="\\")),
                   func.upper(Complaint.reference).like(escaped[1] + "%", escape="\\")))
        .order_by(Complaint.complaint_id).limit(200)).all()
    found = [{"complaint_id": r.complaint_id, "reference": r.reference, "state": r.state,
              "received_at": queries.iso(r.received_at),
              "owner": r.handler.get("name") if isinstance(r.handler, dict) else None}
             for r in rows]
    found.sort(key=lambda c: (c["complaint_id"] != wanted and c["reference"] != reference,
                              c["complaint_id"]))
    return found[:SEARCH_LIMIT]


def timeline(session: Session, complaint_id: str) -> dict[str, Any] | None:
    """One complaint as `complaints show` gives it (history, deadlines, letters), plus its
    owner and a single time-ordered list of what happened and what is due."""
    document = queries.show_complaint(session, complaint_id)
    if document is None:
        return None
    handler = document["handler"]  # the owner: already read with the complaint
    entries: list[dict[str, Any]] = [
        {"at": h["at"], "what": "event" if not h["type"].startswith("deadline.") else "deadline",
         "type": h["type"], "from": h["from"], "to": h["to"]} for h in document["history"]]
    entries += [{"at": letter["issued_at"], "what": "letter", "type": letter["kind"],
                 "letter_id": letter["letter_id"]} for letter in document["letters"]]
    entries += [{"at": d["due_at"], "what": "due", "type": d["kind"]}
                for d in document["deadlines"] if d["fired_at"] is None]
    entries.sort(key=lambda e: (e["at"], e["what"] == "due"))
    return {**document, "owner": handler.get("name") if isinstance(handler, dict) else None,
            "timeline": entries}


def listing(session: Session, *, state: str | None = None, overdue: str | None = None,
            received: date | None = None, as_of: datetime | None = None, offset: int = 0,
            limit: int = 50, after: str | None = None) -> dict[str, Any]:
    """The complaints behind one of the dashboard's counts, oldest first, paginated: those in
    a state, those with a deadline of a kind overdue at `as_of` (the backlog's count: unfired
    and due before it; remedies also when their deadline fired and the remedy is still not
    implemented), or those received (a registration or a reopen) on a local date.

    A page is `limit` rows from `offset` (at most OFFSET_LIMIT), or after `after` (the `next`
    of the page before: keyset pagination, as fast at the millionth row as at the first).
    `total` is exact up to COUNT_LIMIT (`total_exact`), a lower bound beyond."""
    columns = (Complaint.complaint_id, Complaint.reference, Complaint.state,
               Complaint.received_at, Complaint.handler)
    extra: Any = None
    order: tuple[Any, ...]
    if state is not None:
        query = select(*columns).where(Complaint.state == state)
        order = (Complaint.received_at, Complaint.complaint_id)
    elif overdue is not None:
        moment = as_of or datetime.now(UTC)
        extra = Deadline.due_at
        unfired = and_(Deadline.kind == overdue, Deadline.fired_at.is_(None),
                       Deadline.due_at < moment)
        if overdue == "remedy":
            # The two ways a remedy is overdue as a union of deadline ids: an OR across the
            # join would make the database read every remedy deadline and complaint.
            chosen: Any = Deadline.id.in_(union(
                select(Deadline.id).where(unfired),
                select(Deadline.id).join(Complaint,
                                         Deadline.complaint_id == Complaint.complaint_id)
                .where(Deadline.kind == "remedy", Complaint.remedy_overdue.is_(True),
                       Complaint.state == "ombudsman")))
        else:
            chosen = unfired
        query = (select(*columns, extra).join(Deadline,
                                              Deadline.complaint_id == Complaint.complaint_id)
                 .where(chosen))
        order = (Deadline.due_at, Complaint.complaint_id, Deadline.id)
    elif received is not None:
        extra = Receipt.received_at
        start, end = start_of_date(received), start_of_date(received + timedelta(days=1))
        query = (select(*columns, extra).join(Receipt,
                                              Receipt.complaint_id == Complaint.complaint_id)
                 .where(Receipt.received_at >= start, Receipt.received_at < end))
        order = (Receipt.received_at, Complaint.complaint_id, Receipt.id)
    else:
        raise ValueError("give a state, an overdue deadline kind or a date")
    if offset > OFFSET_LIMIT:
        raise ValueError(f"offset must be at most {OFFSET_LIMIT:,}: page on with after=next")
    counted = session.scalar(select(func.count()).select_from(
        query.limit(COUNT_LIMIT + 1).subquery())) or 0
    page = query.order_by(*order)
    if after is not None:
        page = page.where(tuple_(*order) > tuple_(*_cursor_values(after, len(order))))
    else:
        page = page.offset(offset)
    rows = session.execute(page.add_columns(*order[1:]).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    complaints = []
    for row in rows:
        entry = {"complaint_id": row.complaint_id, "reference": row.reference,
                 "state": row.state, "received_at": queries.iso(row.received_at),
                 "owner": row.handler.get("name") if isinstance(row.handler, dict) else None}
        if overdue is not None:
            entry["due_at"] = queries.iso(row[5])
        if received is not None:
            entry["receipt_at"] = queries.iso(row[5])
        complaints.append(entry)
    document: dict[str, Any] = {
        "total": min(counted, COUNT_LIMIT), "total_exact": counted <= COUNT_LIMIT,
        "offset": offset, "limit": limit, "complaints": complaints,
        # The next page's `after`: where this one ended in the list's order.
        "next": _cursor(rows[-1], len(order), received is None and overdue is None)
        if more and rows else None}
    return document


def _cursor(row: Any, keys: int, by_state: bool) -> str:
    """The sort key of a page's last row, as text: its instant, complaint id (and row id)."""
    tail = row[-(keys - 1):]  # the order's columns after the instant, added at the end
    instant = row.received_at if by_state else row[5]
    return "|".join([queries.iso(instant) or "", *(str(value) for value in tail)])


def _cursor_values(after: str, keys: int) -> list[Any]:
    parts = after.split("|")
    if len(parts) != keys:
        raise ValueError("after: not a `next` of this list")
    try:
        instant = datetime.fromisoformat(parts[0])
        ids = [int(part) for part in parts[2:]]
    except ValueError:
        raise ValueError("after: not a `next` of this list") from None
    return [instant, parts[1], *ids]
