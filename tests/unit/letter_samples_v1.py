"""Frozen: letter contexts as template version 1 stored them (before rules revision 2, with no
`template_version` key). Letters already issued must keep rendering exactly as they were, so
these and their golden files (tests/golden/letters/v1/) never change.

Two suppliers: Kilowatt Connect (a 10-day resolution target) and Lastmile (no target).
"""

from __future__ import annotations

import copy
from typing import Any

KILOWATT: dict[str, Any] = {
    "supplier": {
        "name": "Kilowatt Connect",
        "address": ["83 Tarka Way", "Crediton", "EX17 3FF"],
        "phone": "07791 683981",
        "email": "complaints@kilowattconnect.co.uk",
        "website": "www.kilowattconnect.co.uk",
    },
    "procedure": {
        "acknowledge_within_working_days": 3,
        "resolution_target_days": 10,
        "senior_manager_review_working_days": 5,
        "deadlock_letter_working_days": 5,
        "eight_weeks_days": 56,
        "referral_window_months": 12,
        "remedy_days": 28,
    },
    "reference": "KC-QZXYG-XFYEF-D",
    "complaint_id": "C-1001",
    "customer": {
        "name": "Ada Lovelace",
        "address": ["1 High Street", "Exeter"],
        "postcode": "EX1 1AA",
        "account_id": "A-1",
        "email": None,
        "phone": None,
        "preferred_contact": "letter",
    },
    "owner": {"id": "h1", "name": "Sam Patel"},
    "category": "B13",
    "category_description": "Billing and meter reading issues unrelated with meter type",
    "summary": "Customer says the March bill is estimated although she sent a meter reading "
    "on 28 February, and the bill is £212.40 higher than expected.",
    "received_on": "2026-03-02",
    "original_received_on": "2026-03-02",
    "cycle": 1,
}

LASTMILE: dict[str, Any] = {
    "supplier": {
        "name": "Lastmile",
        "address": ["Lastmile Customer Services", "PO Box 100", "London", "EC1A 1AA"],
        "phone": "0300 000 0000",
        "email": "complaints@lastmile.example",
        "website": "www.lastmile.example",
    },
    "procedure": {
        "acknowledge_within_working_days": 1,
        "resolution_target_days": None,
        "senior_manager_review_working_days": 5,
        "deadlock_letter_working_days": 5,
        "eight_weeks_days": 56,
        "referral_window_months": 12,
        "remedy_days": 28,
    },
    "reference": "LM-KG10H-66RBE-G",
    "complaint_id": "C-2001",
    "customer": {
        "name": "Grace Hopper",
        "address": ["Flat 2", "14 Mill Lane", "Leeds"],
        "postcode": "LS1 4AB",
        "account_id": "LM-000417",
        "email": "grace@example.org",
        "phone": "0113 496 0000",
        "preferred_contact": "email",
    },
    "owner": {"id": "h9", "name": "Tom Evans"},
    "category": "B16",
    "category_description": "Customer service",
    "summary": "Customer was promised a call back about a faulty meter twice and received none.",
    "received_on": "2026-01-05",
    "original_received_on": "2026-01-05",
    "cycle": 1,
}

COMMON: dict[str, Any] = {
    "ombudsman": {
        "name": "Energy Ombudsman",
        "address": ["P.O. Box 966", "Warrington", "WA4 9DF"],
        "phone": "0330 440 1624",
        "email": None,
        "website": "www.energyombudsman.org",
    },
    "citizens_advice": {
        "name": "Citizens Advice consumer service",
        "address": [],
        "phone": "0808 223 1133",
        "email": None,
        "website": "www.citizensadvice.org.uk",
    },
}


def _context(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    context = {**copy.deepcopy(COMMON), **copy.deepcopy(base), **fields}
    # Key order as build_context produces it (irrelevant to rendering, but realistic).
    order = (
        "kind", "letter_id", "issued_at", "date", "reference", "complaint_id", "supplier",
        "customer", "owner", "procedure", "ombudsman", "citizens_advice", "category",
        "category_description", "summary", "received_on", "original_received_on", "cycle",
    )  # fmt: skip
    return {**{key: context[key] for key in order}, **context}


SAMPLES: dict[str, dict[str, Any]] = {
    "acknowledgement": _context(
        KILOWATT,
        kind="acknowledgement",
        letter_id="L-64A37929FB113E18DAA6",
        issued_at="2026-03-03T23:59:59.999999+00:00",
        date="2026-03-03",
        expected_by="2026-03-12",
        eight_week_date="2026-04-27",
    ),
    "progress_update": _context(
        KILOWATT,
        kind="progress_update",
        letter_id="L-3D1F2AE627A3560AEBF3",
        issued_at="2026-03-12T09:15:00+00:00",
        date="2026-03-12",
        expected_by="2026-03-22",
        eight_week_date="2026-04-27",
    ),
    "senior_manager_update": _context(
        LASTMILE,
        kind="senior_manager_update",
        letter_id="L-5AF308BEC132BD499660",
        issued_at="2026-01-14T23:59:59.999999+00:00",
        date="2026-01-14",
        senior_manager={"id": "m7", "name": "Priya Shah"},
        escalated_on="2026-01-07",
        eight_week_date="2026-03-02",
    ),
    "deadlock": _context(
        KILOWATT,
        kind="deadlock",
        letter_id="L-2CA69EFD4EA5AF91A637",
        issued_at="2026-04-10T14:30:00+01:00",
        date="2026-04-10",
        position=(
            "We have checked your meter readings and our records. The reading you sent on "
            "28 February reached us after your bill was prepared, so the bill was estimated "
            "correctly under your terms.\n"
            "We have rebilled your account using your reading, and we offered you a goodwill "
            "payment of £30.00 for the inconvenience."
        ),
        offer_open=True,
        referral_deadline="2027-04-10",
    ),
    "eight_week": _context(
        LASTMILE,
        kind="eight_week",
        letter_id="L-65DF95085AFD0817927F",
        issued_at="2026-03-02T10:00:00+00:00",
        date="2026-03-02",
        referral_deadline="2027-03-02",
    ),
    "resolution": _context(
        KILOWATT,
        kind="resolution",
        letter_id="L-6EEB55F76600D4AD08BE",
        issued_at="2026-03-09T16:45:00+00:00",
        date="2026-03-09",
        resolution={
            "apology": True,
            "explanation": (
                "Your meter reading of 28 February was received but not applied to your "
                "account before the March bill was produced, so the bill used an estimate."
            ),
            "corrective_action": (
                "We have applied your reading and reissued the March bill, which is now "
                "£212.40 lower."
            ),
            "goodwill_pence": 2500,
            "compensation_pence": 3000,
        },
    ),
    "ombudsman_outcome": _context(
        LASTMILE,
        kind="ombudsman_outcome",
        letter_id="L-C717C54E83C054CB36D4",
        issued_at="2026-06-15T11:00:00+01:00",
        date="2026-06-15",
        ombudsman_ref="EO-2026-000123",
        remedy_summary=(
            "We have apologised in writing, replaced your faulty meter on 10 June 2026 and "
            "paid you £75.00 as the Ombudsman required."
        ),
    ),
}

# Lastmile's acknowledgement: no resolution target (expected_by null) and no handler yet.
LASTMILE_ACKNOWLEDGEMENT: dict[str, Any] = _context(
    LASTMILE,
    kind="acknowledgement",
    letter_id="L-DFDC99816166ED39AA0D",
    issued_at="2026-01-06T23:59:59.999999+00:00",
    date="2026-01-06",
    owner=None,
    expected_by=None,
    eight_week_date="2026-03-02",
)

GOLDEN: dict[str, dict[str, Any]] = {
    **SAMPLES,
    "acknowledgement-lastmile": LASTMILE_ACKNOWLEDGEMENT,
}


def sample(kind: str) -> dict[str, Any]:
    """A fresh (deep) copy of the sample context of `kind`, safe to modify."""
    return copy.deepcopy(SAMPLES[kind])
