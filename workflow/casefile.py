"""The Ombudsman case file's content: the complaint's CHR reg. 4 record as one document.

What the supplier hands the Energy Ombudsman when a customer takes a complaint there: who the
customer is, the dates that matter, every event in date order (instant in UK time, channel and
whether oral or written, who, summary), the states it went through, every deadline with what
its firing did, every letter (and how it was dispatched, where that is recorded), and each
event's payload as recorded. Read from the record only; `letters/casefile.py` renders it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.codes import CATEGORIES, ORAL_CHANNELS
from workflow.procedure import Procedure
from workflow.schema import (
    Complaint,
    Deadline,
    Dispatch,
    ErasedComplaint,
    HistoryEntry,
    Letter,
)

LONDON: Final = ZoneInfo("Europe/London")
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec")
LETTER_NAMES: Final = {
    "acknowledgement": "Acknowledgement",
    "progress_update": "Progress update",
    "senior_manager_update": "Senior manager update",
    "deadlock": "Deadlock letter",
    "eight_week": "8-week letter",
    "resolution": "Resolution letter",
    "ombudsman_outcome": "Ombudsman outcome letter",
    "withdrawal": "Withdrawal letter",
}
PARTIES: Final = {
    "customer": "the customer", "representative": "the customer's representative",
    "citizens_advice": "Citizens Advice", "extra_help_unit": "the Extra Help Unit",
    "ombudsman": "the Energy Ombudsman",
}
SOURCES: Final = {"direct": "the customer", "citizens_advice": "Citizens Advice (referral)",
                  "extra_help_unit": "the Extra Help Unit (referral)"}


def uk_time(instant: datetime | None) -> str | None:
    """`2026-01-05T09:30:00+00:00` -> `5 Jan 2026 09:30:00 GMT` (UK civil time, named)."""
    if instant is None:
        return None
    local = instant.astimezone(LONDON)
    return (f"{local.day} {MONTHS[local.month - 1]} {local.year} "
            f"{local:%H:%M:%S} {local.tzname()}")


def _name(person: Any) -> str | None:
    return person.get("name") if isinstance(person, dict) else None


def _pounds(pence: Any) -> str:
    return f"£{pence / 100:,.2f}" if isinstance(pence, int) else ""


def _offer(offer: Any) -> str:
    if not isinstance(offer, dict):
        return ""
    amount = _pounds(offer.get("amount_pence"))
    return f" Offer: {offer.get('description', '')}{' (' + amount + ')' if amount else ''}."


def describe(entry: HistoryEntry, complaint: Complaint) -> dict[str, Any]:
    """Who, channel and summary of one history entry (an event applied or a deadline fired)."""
    d = entry.detail or {}
    kind = entry.type
    channel = d.get("channel")
    who: str | None = None
    summary = d.get("summary")
    if kind == "complaint.received":
        taken = _name(d.get("handler"))
        who = SOURCES.get(d.get("source", "direct"), "the customer")
        who += f"; taken by {taken}" if taken else ""
        summary = d.get("summary")
    elif kind == "complaint.assigned":
        who, summary = "the supplier", f"Assigned to {_name(d.get('handler'))}"
    elif kind == "complaint.acknowledged":
        who, summary = d.get("by"), f"Acknowledged by {d.get('by')}"
    elif kind == "complaint.contact_logged":
        who = PARTIES.get(d.get("party", ""), d.get("party"))
    elif kind == "complaint.recategorised":
        code = d.get("category", "")
        who = "the supplier"
        summary = f"Recategorised as {code} ({CATEGORIES.get(code, '')})"
        if d.get("other_explanation"):
            summary += f": {d['other_explanation']}"
    elif kind == "complaint.escalation_requested":
        who, summary = "the customer", summary or "Asked for a senior manager review"
    elif kind == "complaint.senior_manager_response":
        who = _name(d.get("manager"))
        summary = (summary or "") + _offer(d.get("offer"))
    elif kind == "complaint.dissatisfied":
        who = "the customer"
    elif kind == "complaint.deadlock_reached":
        who = "the supplier"
        summary = (f"Final position: {d.get('position', '')}" + _offer(d.get("offer"))
                   + (" The offer stays open if the customer goes to the Ombudsman."
                      if d.get("offer_open") else ""))
    elif kind == "complaint.resolved":
        who = "the supplier"
        r = d.get("resolution") or {}
        parts = [str(r.get("explanation", ""))]
        if r.get("apology"):
            parts.append("Apology given.")
        if r.get("corrective_action"):
            parts.append(f"Corrective action: {r['corrective_action']}.")
        for key, label in (("goodwill_pence", "Goodwill payment"),
                           ("compensation_pence", "Compensation")):
            if r.get(key):
                parts.append(f"{label}: {_pounds(r[key])}.")
        summary = " ".join(p for p in parts if p)
    elif kind == "complaint.reopened":
        who = "the customer"
    elif kind == "complaint.referred_to_ombudsman":
        who = "the customer"
        summary = f"Referred to the Energy Ombudsman (case {d.get('ombudsman_ref')})"
    elif kind == "complaint.ombudsman_decision":
        who = "the Energy Ombudsman"
        remedies = d.get("remedies") or {}
        required = [name for name, on in (("an apology", remedies.get("apology")),
                                          ("an explanation", remedies.get("explanation")))
                    if on]
        if remedies.get("action"):
            required.append(str(remedies["action"]))
        if remedies.get("award_pence"):
            required.append(f"an award of {_pounds(remedies['award_pence'])}")
        summary = ("Decision accepted by the customer" if d.get("accepted")
                   else "Decision not accepted by the customer")
        summary += f"; required: {', '.join(required)}" if required else "; nothing required"
        if d.get("notified_at"):
            summary += f"; supplier notified {uk_time(datetime.fromisoformat(d['notified_at']))}"
    elif kind == "complaint.remedy_implemented":
        who = "the supplier"
    elif kind == "complaint.withdrawn":
        who = "the customer"
    elif kind.startswith("deadline."):
        who = "deadline (the service)"
        summary = f"Due {uk_time(datetime.fromisoformat(d['due_at']))}: {d.get('outcome')}" \
            if d.get("due_at") else d.get("outcome")
    if kind == "complaint.received" and channel is None:
        channel = complaint.channel
    mode = None if channel is None else ("oral" if channel in ORAL_CHANNELS else "written")
    return {
        "at": entry.at.isoformat(), "at_uk": uk_time(entry.at), "type": kind,
        "event_id": entry.event_id, "channel": channel, "mode": mode, "who": who,
        "summary": summary, "from": entry.from_state, "to": entry.to_state,
        "cycle": entry.cycle,
        "payload": json.dumps(d, indent=2, ensure_ascii=False, sort_keys=True),
    }


def casefile_record(session: Session, complaint_id: str, procedure: Procedure,
                    generated_at: datetime) -> dict[str, Any] | None:
    """The case file's content, or None for an unknown complaint."""
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        return None
    history = list(session.scalars(
        select(HistoryEntry).where(HistoryEntry.complaint_id == complaint_id)
        .order_by(HistoryEntry.at, HistoryEntry.id)))
    deadlines = list(session.scalars(
        select(Deadline).where(Deadline.complaint_id == complaint_id)
        .order_by(Deadline.due_at, Deadline.id)))
    letters = list(session.scalars(
        select(Letter).where(Letter.complaint_id == complaint_id)
        .order_by(Letter.issued_at, Letter.letter_id)))
    erased = session.get(ErasedComplaint, complaint_id)
    events = [describe(h, complaint) for h in history]
    states = [{"at_uk": e["at_uk"], "from": e["from"], "to": e["to"], "cause": e["type"]}
              for e in events if e["from"] != e["to"] or e["type"] == "complaint.received"]

    def first(kind: str) -> str | None:
        return next((e["at_uk"] for e in events if e["type"] == kind), None)

    remedy = next((d for d in reversed(deadlines) if d.kind == "remedy"), None)
    signposting = [x for x in letters if x.kind in ("eight_week", "deadlock")]
    customer = complaint.customer or {}
    dispatches = letter_dispatches(session, [x.letter_id for x in letters])
    return {
        "generated_at": generated_at.isoformat(),
        "generated_at_uk": uk_time(generated_at),
        "supplier": procedure.supplier.model_dump(include={"name", "address", "phone", "email",
                                                           "website"}),
        "complaint_id": complaint.complaint_id,
        "reference": complaint.reference,
        "state": complaint.state,
        "category": complaint.category,
        "category_description": CATEGORIES.get(complaint.category, ""),
        "other_explanation": complaint.other_explanation,
        "channel": complaint.channel,
        "source": complaint.source,
        "duplicate_of": complaint.duplicate_of,
        "cycle": complaint.cycle,
        "customer": {
            "name": customer.get("name"), "account_id": customer.get("account_id"),
            "address": list(customer.get("address") or []), "postcode": customer.get("postcode"),
            "email": customer.get("email"), "phone": customer.get("phone"),
            "preferred_contact": customer.get("preferred_contact"),
        },
        "taken_by": _name(complaint.taken_by),
        # (v2) the person letters name; before it, the handler.
        "owner": _name(complaint.owner) or _name(complaint.handler),
        "ombudsman_ref": complaint.ombudsman_ref,
        "erased_at_uk": uk_time(erased.erased_at) if erased else None,
        "dates": {
            "received": uk_time(complaint.received_at),
            "signposting_letters": [
                {"kind": LETTER_NAMES.get(x.kind, x.kind), "at_uk": uk_time(x.issued_at)}
                for x in signposting],
            "referred": first("complaint.referred_to_ombudsman"),
            "decision": first("complaint.ombudsman_decision"),
            "remedy_deadline": uk_time(remedy.due_at) if remedy else None,
            "resolved": next((e["at_uk"] for e in reversed(events) if e["to"] == "resolved"
                              and e["from"] != "resolved"), None),
            "closed": next((e["at_uk"] for e in reversed(events) if e["to"] == "closed"
                            and e["from"] != "closed"), None),
        },
        "events": events,
        "states": states,
        "deadlines": [
            {"kind": d.kind, "cycle": d.cycle, "due_uk": uk_time(d.due_at),
             "fired_uk": uk_time(d.fired_at), "outcome": d.outcome or "not yet due or fired"}
            for d in deadlines],
        "letters": [
            {"letter_id": x.letter_id, "kind": x.kind, "name": LETTER_NAMES.get(x.kind, x.kind),
             "issued_uk": uk_time(x.issued_at), "cycle": x.cycle,
             "dispatches": dispatches.get(x.letter_id, [])}
            for x in letters],
    }


def letter_dispatches(session: Session, letter_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """How each letter went out: every delivery attempt (channel, address used, instant,
    outcome, the mail server's reply or the print file), oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not letter_ids:
        return found
    for d in session.scalars(select(Dispatch).where(Dispatch.letter_id.in_(letter_ids))
                             .order_by(Dispatch.letter_id, Dispatch.attempt)):
        found.setdefault(d.letter_id, []).append({
            "channel": d.channel, "address": d.address, "at_uk": uk_time(d.attempted_at),
            "outcome": d.outcome, "receipt": d.receipt})
    return found
