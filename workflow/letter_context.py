"""What a letter says, frozen at issue: the context stored with the letter and rendered from it.

Storing the context (not re-reading the complaint later) makes a letter reproducible
byte-for-byte from stored data, even after the complaint or the procedure changes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

from workflow.calendar import elapsed_days, local_date
from workflow.codes import CATEGORIES
from workflow.letter_kinds import KINDS
from workflow.procedure import Procedure
from workflow.schema import Complaint

# Declared once, with what each kind is, in workflow/letter_kinds.py (KINDS): a signposting letter
# (deadlock, 8-week) opens a referral window (docs/rules.md s.6).
LETTER_KINDS: Final[tuple[str, ...]] = tuple(KINDS)
SIGNPOSTING_KINDS: Final = frozenset(kind for kind, spec in KINDS.items() if spec.signposting)
# The templates a letter issued now is rendered with (letters/templates/v<N>/), stored in its
# context so that a later change of templates leaves it as issued (docs/rules.md s.6).
TEMPLATE_VERSION: Final = 2
DEFAULT_POSITION: Final = "Our position is set out in our previous correspondence."


def dedupe_key(complaint: Complaint, kind: str, escalation: str | None = None) -> str:
    """At most one letter per cause (docs/rules.md s.6): per kind and cycle, except the senior
    manager update (per escalation), the 8-week letter (once per complaint, ever) and (v2) the
    progress update (per progress-update deadline: `escalation` is then that deadline's
    cause)."""
    if kind == "progress_update" and escalation is not None:
        return f"{complaint.complaint_id}/progress_update/{complaint.cycle}/{escalation}"
    if kind == "eight_week":
        return f"{complaint.complaint_id}/eight_week"
    if kind == "senior_manager_update":
        return f"{complaint.complaint_id}/senior_manager_update/{escalation}"
    if kind == "withdrawal":
        return f"{complaint.complaint_id}/withdrawal"  # (v2) once per complaint
    return f"{complaint.complaint_id}/{kind}/{complaint.cycle}"


def letter_id_for(key: str) -> str:
    return "L-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20].upper()


def build_context(
    complaint: Complaint,
    procedure: Procedure,
    kind: str,
    letter_id: str,
    issued_at: datetime,
    specifics: dict[str, Any],
) -> dict[str, Any]:
    customer = complaint.customer
    region = customer.get("region")
    return {
        "kind": kind,
        "letter_id": letter_id,
        "issued_at": issued_at.isoformat(),
        "date": local_date(issued_at).isoformat(),
        "reference": complaint.reference,
        "complaint_id": complaint.complaint_id,
        "supplier": procedure.supplier.model_dump(exclude={"placeholder"}),
        "customer": {
            "name": customer["name"],
            "address": list(customer["address"]),
            "postcode": customer["postcode"],
            "account_id": customer["account_id"],
            "email": customer.get("email"),
            "phone": customer.get("phone"),
            "preferred_contact": customer["preferred_contact"],
            "region": region,
            "accessible_format": customer.get("accessible_format") or "standard",
        },
        "owner": letter_owner(complaint, procedure),
        "procedure": procedure.durations(),
        "ombudsman": procedure.ombudsman.model_dump(exclude={"placeholder"}),
        "advice": procedure.advice_body(region).model_dump(exclude={"placeholder"}),
        "category": complaint.category,
        "category_description": CATEGORIES[complaint.category],
        "summary": complaint.summary,
        "received_on": local_date(complaint.cycle_received_at).isoformat(),
        "original_received_on": local_date(complaint.received_at).isoformat(),
        "cycle": complaint.cycle,
        "template_version": TEMPLATE_VERSION,
        **specifics,
    }


def expected_resolution_date(
    procedure: Procedure, complaint: Complaint, from_instant: datetime
) -> str | None:
    """When we now expect to resolve: the resolution target counted from `from_instant`,
    never later than the eight-week date while that date is still ahead (our reading; the
    procedures name no other date). Once the eight weeks have passed (a repeat complaint
    reopened late) the cap would put the "new expected date" in the past, so the target
    alone is quoted."""
    if procedure.resolution_target_days is None:
        return None
    target = elapsed_days(from_instant, procedure.resolution_target_days)
    eight_weeks = elapsed_days(complaint.received_at, procedure.eight_weeks_days)
    if eight_weeks > from_instant:
        target = min(target, eight_weeks)
    return local_date(target).isoformat()


# --- (v2) the owner, and what the deadlock and 8-week letters say from the record -------------

HANDLER_ROLE: Final = "Complaint handler"
SENIOR_MANAGER_ROLE: Final = "Senior manager"


def owner_from(person: dict[str, Any], role: str) -> dict[str, Any]:
    """The owner as the complaint keeps it: the person (`id`, `name`) and the role signed."""
    return {"id": person["id"], "name": person["name"], "role": role}


def letter_owner(complaint: Complaint, procedure: Procedure) -> dict[str, Any]:
    """The person a letter names and is signed by (docs/rules.md s.6 "A person, not a team"): the
    complaint's owner, else the procedure's complaints manager."""
    if complaint.owner:
        return dict(complaint.owner)
    manager = procedure.complaints_manager
    return {"id": None, "name": manager.name, "role": manager.role}


HistoryRows = list[tuple[str, datetime, dict[str, Any]]]
LetterRows = list[tuple[str, datetime]]

# The history entries a deadlock letter summarises, by the name its template gives them.
COMMUNICATIONS: Final = {
    "complaint.received": "receipt",
    "complaint.reopened": "reopen",
    "complaint.contact_logged": "contact",
    "complaint.escalation_requested": "escalation",
    "complaint.senior_manager_response": "senior_manager_response",
    "complaint.dissatisfied": "dissatisfied",
}


def communications(history: HistoryRows, letters: LetterRows) -> list[dict[str, Any]]:
    """The communications before a deadlock letter, in date order (docs/rules.md s.6): each receipt
    and reopen (date, channel, summary), contact logged (date, channel, who, summary),
    escalation request (date, summary if given), senior manager response (date, manager,
    summary), dissatisfaction (date, summary) and letter (date, kind). Equal instants keep
    the record's order, events before letters."""
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for order, (entry_type, at, detail) in enumerate(history):
        kind = COMMUNICATIONS.get(entry_type)
        if kind is None:
            continue
        who = None
        if kind == "contact":
            who = detail.get("party")
        elif kind == "senior_manager_response":
            who = (detail.get("manager") or {}).get("name")
        items.append((at, order, {
            "date": local_date(at).isoformat(),
            "kind": kind,
            "channel": detail.get("channel") if kind in ("receipt", "reopen", "contact")
            else None,
            "who": who,
            "summary": detail.get("summary"),
        }))
    for order, (letter_kind, issued_at) in enumerate(letters, start=len(history)):
        items.append((issued_at, order, {
            "date": local_date(issued_at).isoformat(), "kind": "letter",
            "channel": None, "who": None, "summary": None, "letter_kind": letter_kind,
        }))
    items.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in items]


def latest_offer(history: HistoryRows) -> dict[str, Any] | None:
    """The offer of the latest senior manager response that carried one (for a deadlock
    reached by its deadline, docs/rules.md s.6)."""
    for entry_type, _, detail in reversed(history):
        if entry_type == "complaint.senior_manager_response" and detail.get("offer"):
            return _offer(detail["offer"])
    return None


def offer_of(offer: Any) -> dict[str, Any] | None:
    """An event's offer, as a letter states it."""
    return None if offer is None else _offer(offer.model_dump(mode="json"))


def _offer(offer: dict[str, Any]) -> dict[str, Any]:
    return {"description": offer["description"], "amount_pence": offer.get("amount_pence")}


def where_it_stands(stage: str, history: HistoryRows) -> dict[str, Any]:
    """What the 8-week letter says of the complaint (docs/rules.md s.6): the stage it had reached,
    and the latest senior manager response, else the latest contact logged, else neither."""
    latest: dict[str, Any] | None = None
    for wanted in ("complaint.senior_manager_response", "complaint.contact_logged"):
        for entry_type, at, detail in reversed(history):
            if entry_type == wanted:
                latest = {
                    "kind": COMMUNICATIONS[wanted],
                    "date": local_date(at).isoformat(),
                    "who": (detail.get("manager") or {}).get("name"),
                    "summary": detail["summary"],
                }
                break
        if latest is not None:
            break
    return {"stage": stage, "latest_response": latest}
