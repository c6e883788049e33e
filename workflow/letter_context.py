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
from workflow.procedure import Procedure
from workflow.schema import Complaint

LETTER_KINDS: Final = (
    "acknowledgement",
    "progress_update",
    "senior_manager_update",
    "deadlock",
    "eight_week",
    "resolution",
    "ombudsman_outcome",
)
SIGNPOSTING_KINDS: Final = frozenset({"deadlock", "eight_week"})
DEFAULT_POSITION: Final = "Our position is set out in our previous correspondence."


def dedupe_key(complaint: Complaint, kind: str, escalation: str | None = None) -> str:
    """At most one letter per cause (RULES s.6): per kind and cycle, except the senior manager
    update (per escalation), the 8-week letter (once per complaint, ever) and (v2) the
    progress update (per progress-update deadline: `escalation` is then that deadline's
    cause)."""
    if kind == "progress_update" and escalation is not None:
        return f"{complaint.complaint_id}/progress_update/{complaint.cycle}/{escalation}"
    if kind == "eight_week":
        return f"{complaint.complaint_id}/eight_week"
    if kind == "senior_manager_update":
        return f"{complaint.complaint_id}/senior_manager_update/{escalation}"
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
        },
        "owner": complaint.handler,
        "procedure": procedure.durations(),
        "ombudsman": procedure.ombudsman.model_dump(exclude={"placeholder"}),
        "citizens_advice": procedure.advice_england_and_wales.model_dump(
            exclude={"placeholder", "welsh_phone"}
        ),
        "category": complaint.category,
        "category_description": CATEGORIES[complaint.category],
        "summary": complaint.summary,
        "received_on": local_date(complaint.cycle_received_at).isoformat(),
        "original_received_on": local_date(complaint.received_at).isoformat(),
        "cycle": complaint.cycle,
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
