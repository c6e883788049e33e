"""The operations work queue's reads from the record: find a complaint by reference or id,
and one complaint's timeline (served on the ops API, `reporting/web.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from workflow import queries
from workflow.schema import Complaint

SEARCH_LIMIT = 20


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
        .where(or_(Complaint.complaint_id.like(escaped[0] + "%", escape="\\"),
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
    handler = session.scalar(select(Complaint.handler)
                             .where(Complaint.complaint_id == complaint_id))
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
