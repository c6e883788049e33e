"""Writes workflow/samples/sample-events.jsonl: the scenario of tests/e2e/test_sample_scenario.py.

Run `python -m tests.e2e.make_sample` after changing it; the test holds the hand-worked outcome.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.builders import assigned, event, received, reopened, resolved, simple

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
ADA = {"account_id": "KC-0001", "name": "Ada Lovelace", "address": ["1 High Street", "Exeter"],
       "postcode": "EX1 1AA", "preferred_contact": "letter", "email": "ada@example.org"}
BOB = {"account_id": "KC-0002", "name": "Bob O'Brien", "address": ["2 Mill Lane", "Crediton"],
       "postcode": "EX17 2AB", "preferred_contact": "email", "email": "bob@example.org"}
CAT = {"account_id": "KC-0003", "name": "Cat Nguyen", "address": ["3 Station Road", "Tiverton"],
       "postcode": "EX16 3CD", "preferred_contact": "letter"}
DEV = {"account_id": "KC-0004", "name": "Dev Shah", "address": ["4 Quay Street", "Topsham"],
       "postcode": "EX3 4EF", "preferred_contact": "phone", "phone": "01392 000000"}
EVE = {"account_id": "KC-0005", "name": "Eve Adams", "address": ["5 Fore Street", "Exmouth"],
       "postcode": "EX8 5GH", "preferred_contact": "letter"}
HANDLER = {"id": "h-17", "name": "Sam Patel"}


def lines() -> list[dict | str]:
    return [
        received("e-1", "C-100", "2026-01-05T09:00:00+00:00", customer=ADA, handler=HANDLER,
                 contact_id="call-1"),
        received("e-2", "C-104", "2026-01-05T12:00:00+00:00", customer=ADA,
                 source="citizens_advice", duplicate_of="C-100", channel="email"),
        resolved("e-3", "C-100", "2026-01-05T15:00:00+00:00"),
        received("e-4", "C-101", "2026-01-06T10:00:00+00:00", customer=BOB, channel="email",
                 category="B9", summary="Nobody called back as promised"),
        assigned("e-5", "C-101", "2026-01-06T11:00:00+00:00"),
        simple("complaint.acknowledged", "e-6", "C-101", "2026-01-06T11:05:00+00:00"),
        assigned("e-5", "C-101", "2026-01-06T11:00:00+00:00"),  # re-delivered: duplicate
        received("e-7", "C-102", "2026-01-07T14:00:00+00:00", customer=CAT, channel="letter",
                 category="B11", fuel="gas", summary="Direct debit taken twice"),
        simple("complaint.escalation_requested", "e-8", "C-100", "2026-01-07T15:00:00+00:00"),
        simple("complaint.escalation_requested", "e-9", "C-102", "2026-01-08T10:00:00+00:00",
               summary="Wants a senior manager"),
        received("e-10", "C-103", "2026-01-08T10:30:00+00:00", customer=DEV, channel="webchat",
                 category="B22", other_explanation="Complaint about a community energy scheme",
                 fuel="dual", summary="Scheme credit missing"),
        resolved("e-11", "C-101", "2026-01-09T10:00:00+00:00", resolution={
            "apology": True, "explanation": "The call-back was missed.",
            "goodwill_pence": 2500}),
        "this line is not JSON",
        received("e-12", "C-101", "2026-01-09T11:00:00+00:00", customer=BOB),
        "",
        reopened("e-13", "C-100", "2026-01-12T10:00:00+00:00", channel="telephone",
                 summary="The re-bill is still wrong"),
        simple("complaint.senior_manager_response", "e-14", "C-102", "2026-01-12T10:00:00+00:00",
               summary="The second collection was correct: it was for the previous month."),
        simple("complaint.dissatisfied", "e-15", "C-102", "2026-01-13T10:00:00+00:00"),
        received("e-16", "C-105", "2026-01-14T09:00:00+00:00", customer=EVE, category="B22"),
        received("e-16", "C-105", "2026-01-14T09:00:00+00:00", customer=EVE, category="B22",
                 other_explanation="Letter sent in the wrong language"),
        received("e-17", "C-106", "2026-01-14T09:30:00+00:00", customer=EVE, category="B99"),
        received("e-18", "C-107", "2026-01-14T10:00:00", customer=EVE),
        event("contact.received", "e-19", "2026-01-15T09:00:00+00:00", contact_id="call-9",
              channel="telephone", kind="enquiry"),
        resolved("e-20", "C-999", "2026-01-15T10:00:00+00:00"),
        event("complaint.praised", "e-21", "2026-01-15T10:30:00+00:00", "C-101"),
        assigned("e-22", "C-104", "2026-01-15T11:00:00+00:00"),
        resolved("e-23", "C-100", "2026-01-23T10:00:00+00:00", resolution={
            "apology": True, "explanation": "We re-read the meter and re-billed.",
            "corrective_action": "Meter reading schedule corrected", "compensation_pence": 3000}),
        simple("complaint.referred_to_ombudsman", "e-24", "C-102", "2026-01-26T09:00:00+00:00",
               ombudsman_ref="EO-2026-0042"),
        event("accounts.snapshot", "e-25", "2026-02-01T09:00:00+00:00", as_of="2026-01-31",
              electricity_accounts=41250, gas_accounts=30875),
        event("accounts.snapshot", "e-26", "2026-03-10T09:00:00+00:00", as_of="2026-02-28",
              electricity_accounts=41410, gas_accounts=30902),
    ]


def main() -> None:
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines()) + "\n"
    SAMPLE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
