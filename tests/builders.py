"""Event builders for tests: valid events by default, any field overridable.

Instants are written as strings exactly as a contact centre would send them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CUSTOMER: dict[str, Any] = {
    "account_id": "ACC-1",
    "name": "Ada Lovelace",
    "address": ["1 High Street", "Exeter"],
    "postcode": "EX1 1AA",
    "preferred_contact": "letter",
}
HANDLER = {"id": "h-1", "name": "Sam Patel"}


def event(type_: str, event_id: str, at: str, complaint_id: str | None = None,
          **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"event_id": event_id, "type": type_, "occurred_at": at}
    if complaint_id is not None:
        document["complaint_id"] = complaint_id
    document.update(fields)
    return document


def received(event_id: str, complaint_id: str, at: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "channel": "telephone",
        "category": "B13",
        "fuel": "electricity",
        "summary": "Bill is estimated although readings were given",
        "customer": dict(CUSTOMER),
    }
    base.update(fields)
    return event("complaint.received", event_id, at, complaint_id, **base)


def assigned(event_id: str, complaint_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return event("complaint.assigned", event_id, at, complaint_id,
                 **{"handler": dict(HANDLER), **fields})


def resolved(event_id: str, complaint_id: str, at: str, **fields: Any) -> dict[str, Any]:
    resolution = {"apology": True, "explanation": "We re-read the meter and re-billed."}
    return event("complaint.resolved", event_id, at, complaint_id,
                 **{"resolution": resolution, **fields})


def reopened(event_id: str, complaint_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return event("complaint.reopened", event_id, at, complaint_id,
                 **{"channel": "email", "summary": "Still wrong", **fields})


def simple(type_: str, event_id: str, complaint_id: str, at: str, **fields: Any) -> dict[str, Any]:
    """Any other complaint event with sensible required fields for its type."""
    defaults: dict[str, dict[str, Any]] = {
        "complaint.acknowledged": {"by": "Sam Patel"},
        "complaint.contact_logged": {"channel": "telephone", "summary": "Called back",
                                     "party": "customer"},
        "complaint.recategorised": {"category": "B9"},
        "complaint.escalation_requested": {},
        "complaint.senior_manager_response": {"manager": {"id": "m-1", "name": "Jo Reyes"},
                                              "summary": "We stand by the bill."},
        "complaint.dissatisfied": {"summary": "Not satisfied with the review"},
        "complaint.deadlock_reached": {"position": "We will not re-bill.", "offer_open": True},
        "complaint.referred_to_ombudsman": {"ombudsman_ref": "EO-1"},
        "complaint.ombudsman_decision": {"accepted": True, "remedies": {
            "apology": True, "explanation": False, "action": None, "award_pence": 5000}},
        "complaint.remedy_implemented": {"summary": "Paid the award"},
        "complaint.withdrawn": {"summary": "Customer withdrew"},
    }
    return event(type_, event_id, at, complaint_id, **{**defaults.get(type_, {}), **fields})


def write_jsonl(path: Path, documents: Iterable[dict[str, Any] | str]) -> Path:
    lines = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
