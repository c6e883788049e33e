"""Fixed letter contexts, shaped exactly as `workflow.letter_context.build_context` stores them
for template version 2 (rules revision 2; version 1's are in letter_samples_v1.py).

Two suppliers: Kilowatt Connect (a 10-day resolution target) and Lastmile (no target). The
golden files in tests/golden/letters/ are rendered from `GOLDEN`.
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
        "progress_update_interval_days": 10,
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
        "region": None,
        "accessible_format": "standard",
    },
    "owner": {"id": "h1", "name": "Sam Patel", "role": "Complaint handler"},
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
        "progress_update_interval_days": None,
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
        "region": "ENG",
        "accessible_format": "standard",
    },
    "owner": {"id": "h9", "name": "Tom Evans", "role": "Complaint handler"},
    "category": "B16",
    "category_description": "Customer service",
    "summary": "Customer was promised a call back about a faulty meter twice and received none.",
    "received_on": "2026-01-05",
    "original_received_on": "2026-01-05",
    "cycle": 1,
}

COMMON: dict[str, Any] = {
    "template_version": 2,
    "ombudsman": {
        "name": "Energy Ombudsman",
        "address": ["P.O. Box 966", "Warrington", "WA4 9DF"],
        "phone": "0330 440 1624",
        "email": None,
        "website": "www.energyombudsman.org",
    },
    "advice": {
        "name": "Citizens Advice consumer service",
        "address": [],
        "phone": "0808 223 1133",
        "email": None,
        "website": "www.citizensadvice.org.uk",
        "welsh_phone": "0808 223 1144",
    },
}

SCOTLAND_ADVICE: dict[str, Any] = {
    "name": "Advice Direct Scotland",
    "address": [],
    "phone": "0808 164 6000",
    "email": None,
    "website": "www.consumeradvice.scot",
    "welsh_phone": None,
}


def _context(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    context = {**copy.deepcopy(COMMON), **copy.deepcopy(base), **fields}
    # Key order as build_context produces it (irrelevant to rendering, but realistic).
    order = (
        "kind", "letter_id", "issued_at", "date", "reference", "complaint_id", "supplier",
        "customer", "owner", "procedure", "ombudsman", "advice", "category",
        "category_description", "summary", "received_on", "original_received_on", "cycle",
        "template_version",
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
        owner={"id": "m7", "name": "Priya Shah", "role": "Senior manager"},
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
        owner={"id": "m2", "name": "Rachel Okafor", "role": "Senior manager"},
        offer_open=True,
        offer={"description": "A goodwill payment for the inconvenience, credited to your "
               "account.", "amount_pence": 3000},
        communications=[
            {"date": "2026-03-02", "kind": "receipt", "channel": "telephone", "who": None,
             "summary": "Customer says the March bill is estimated although she sent a meter "
             "reading on 28 February."},
            {"date": "2026-03-05", "kind": "letter", "channel": None, "who": None,
             "summary": None, "letter_kind": "acknowledgement"},
            {"date": "2026-03-09", "kind": "contact", "channel": "email", "who": "customer",
             "summary": "Sent a photo of the meter showing the reading."},
            {"date": "2026-03-16", "kind": "escalation", "channel": None, "who": None,
             "summary": None},
            {"date": "2026-03-20", "kind": "senior_manager_response", "channel": None,
             "who": "Rachel Okafor", "summary": "Rebilled with the customer's reading; "
             "offered £30.00 goodwill."},
            {"date": "2026-04-02", "kind": "dissatisfied", "channel": None, "who": None,
             "summary": "Wants the estimated bill's late-payment fee refunded too."},
        ],
        referral_deadline="2027-04-10",
    ),
    "eight_week": _context(
        LASTMILE,
        kind="eight_week",
        letter_id="L-65DF95085AFD0817927F",
        issued_at="2026-03-02T10:00:00+00:00",
        date="2026-03-02",
        referral_deadline="2027-03-02",
        stage="immediate",
        latest_response={"kind": "contact", "date": "2026-02-10", "who": None,
                         "summary": "Engineer visit booked for 24 February to test the meter."},
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
    # Withdrawn inside the referral window of the 8-week letter of 2 March 2026.
    "withdrawal": _context(
        LASTMILE,
        kind="withdrawal",
        letter_id="L-0E3A1C5B7D9F2468ACE0",
        issued_at="2026-04-20T15:10:00+01:00",
        date="2026-04-20",
        withdrawn_on="2026-04-20",
        referral_deadline="2027-03-02",
    ),
}

# Lastmile's acknowledgement: no resolution target (expected_by null) and no handler yet, so
# the procedure's complaints manager owns and signs it.
LASTMILE_ACKNOWLEDGEMENT: dict[str, Any] = _context(
    LASTMILE,
    kind="acknowledgement",
    letter_id="L-DFDC99816166ED39AA0D",
    issued_at="2026-01-06T23:59:59.999999+00:00",
    date="2026-01-06",
    owner={"id": None, "name": "Helen Marsh", "role": "Complaints Manager"},
    expected_by=None,
    eight_week_date="2026-03-02",
)

# A Scottish customer's deadlock letter reached by its deadline: no offer, large print.
SCOTLAND_DEADLOCK: dict[str, Any] = _context(
    KILOWATT,
    kind="deadlock",
    letter_id="L-7B1D2E3F4A5B6C7D8E9F",
    issued_at="2026-04-17T23:59:59.999999+01:00",
    date="2026-04-17",
    customer={**KILOWATT["customer"], "name": "Morag Campbell",
              "address": ["3 Rose Street", "Edinburgh"], "postcode": "EH2 2PR",
              "region": "SCT", "accessible_format": "large_print"},
    advice=SCOTLAND_ADVICE,
    position="Our position is set out in our previous correspondence.",
    offer_open=False,
    offer=None,
    communications=[
        {"date": "2026-03-02", "kind": "receipt", "channel": "letter", "who": None,
         "summary": "Bill higher than expected."},
    ],
    referral_deadline="2027-04-17",
)

# Withdrawn with no referral window open (no 8-week or deadlock letter).
WITHDRAWAL_NO_WINDOW: dict[str, Any] = _context(
    KILOWATT,
    kind="withdrawal",
    letter_id="L-1F2E3D4C5B6A79880716",
    issued_at="2026-03-06T12:00:00+00:00",
    date="2026-03-06",
    withdrawn_on="2026-03-06",
    referral_deadline=None,
)

GOLDEN: dict[str, dict[str, Any]] = {
    **SAMPLES,
    "acknowledgement-lastmile": LASTMILE_ACKNOWLEDGEMENT,
    "deadlock-scotland-large-print": SCOTLAND_DEADLOCK,
    "withdrawal-no-window": WITHDRAWAL_NO_WINDOW,
}


def sample(kind: str) -> dict[str, Any]:
    """A fresh (deep) copy of the sample context of `kind`, safe to modify."""
    return copy.deepcopy(SAMPLES[kind])
