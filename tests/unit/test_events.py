"""Validation at the edge: every malformed input is refused with a reason a person can act on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.builders import event, received, simple
from workflow import events as ev

AT = "2026-01-05T09:30:00+00:00"


def reason(document: dict[str, Any] | bytes | str) -> str:
    raw = document if isinstance(document, (bytes, str)) else json.dumps(document)
    with pytest.raises(ev.InvalidEvent) as caught:
        ev.parse_event(raw)
    return str(caught.value)


def test_every_type_in_the_contract_is_known() -> None:
    assert sorted(ev.EVENT_TYPES) == sorted([
        "complaint.received", "complaint.assigned", "complaint.acknowledged",
        "complaint.contact_logged", "complaint.recategorised", "complaint.escalation_requested",
        "complaint.senior_manager_response", "complaint.dissatisfied",
        "complaint.deadlock_reached", "complaint.resolved", "complaint.reopened",
        "complaint.referred_to_ombudsman", "complaint.ombudsman_decision",
        "complaint.remedy_implemented", "complaint.withdrawn", "contact.received",
        "accounts.snapshot",
    ])


def test_a_valid_receipt_parses_with_defaults() -> None:
    parsed = ev.parse_event(json.dumps(received("e1", "C1", "2026-01-05T09:30:00Z")))
    assert isinstance(parsed, ev.ComplaintReceived)
    assert parsed.source == "direct" and parsed.meter_type == "unknown"
    assert parsed.occurred_at.utcoffset() is not None


@pytest.mark.parametrize(("raw", "expected"), [
    (b"\xff\xfe", "message is not UTF-8 (invalid start byte at byte 0)"),
    ("[1, 2]", "not a JSON object but a JSON list"),
    ('"text"', "not a JSON object but a JSON str"),
    ("{", "not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ("{}", "type is required"),
])
def test_not_an_event(raw: bytes | str, expected: str) -> None:
    assert reason(raw) == expected


def test_over_one_mebibyte() -> None:
    big = json.dumps(received("e1", "C1", AT, summary="x" * (1024 * 1024)))
    assert reason(big).endswith("bytes, over the 1 MiB limit")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"type": "complaint.praised"}, "unknown event type 'complaint.praised'"),
    ({"occurred_at": "2026-01-05T09:30:00"}, "occurred_at has no UTC offset"),
    ({"occurred_at": "yesterday"}, "occurred_at 'yesterday' is not an ISO-8601 instant"),
    ({"category": "B99"}, "category B99 is not one of B5..B22"),
    ({"category": "B22"}, "other_explanation is required when category is B22"),
    ({"category": "B22", "other_explanation": " \t"},
     "other_explanation is required when category is B22"),
    ({"channel": "fax"}, "channel fax is not one of telephone, in_person, letter, email, "
                         "webform, webchat, social_media"),
    ({"source": "ofgem"}, "source ofgem is not one of direct, citizens_advice, extra_help_unit"),
    ({"summary": ""}, "summary: String should have at least 1 character"),
    ({"summary": 5}, "summary: Input should be a valid string"),
    ({"event_id": "x" * 129}, "event_id: String should have at most 128 characters"),
    ({"complaint_id": None}, "complaint_id: Input should be a valid string"),
    ({"subsidiary_categories": ["B9", "B4"]},
     "subsidiary_categories.1 B4 is not one of B5..B22"),
])
def test_receipt_rejections(changes: dict[str, Any], expected: str) -> None:
    document = received("e1", "C1", AT)
    document.update(changes)
    assert reason(document) == expected


def test_missing_fields_are_named() -> None:
    document = received("e1", "C1", AT)
    del document["channel"]
    del document["customer"]["postcode"]
    assert reason(document) == "channel is required; customer.postcode is required"


@pytest.mark.parametrize("bad", [True, 1.0, -1, "100"])
def test_counts_are_json_integers_at_least_zero(bad: Any) -> None:
    document = event("accounts.snapshot", "s1", AT, as_of="2026-01-31",
                     electricity_accounts=bad, gas_accounts=0)
    assert reason(document).startswith("electricity_accounts: Input should be")


def test_counts_beyond_a_bigint_are_refused_here_not_by_the_database() -> None:
    # 2**63 - 1 is the largest value of the BIGINT column; one more is bad input.
    largest = event("accounts.snapshot", "s1", AT, as_of="2026-01-31",
                    electricity_accounts=9_223_372_036_854_775_807, gas_accounts=0)
    assert ev.validate(largest).electricity_accounts == 9_223_372_036_854_775_807
    too_big = dict(largest, electricity_accounts=9_223_372_036_854_775_808)
    assert reason(too_big) == ("electricity_accounts: Input should be less than or equal to "
                               "9223372036854775807")


def test_booleans_are_json_booleans() -> None:
    document = simple("complaint.deadlock_reached", "e1", "C1", AT, offer_open="yes")
    assert reason(document) == "offer_open: Input should be a valid boolean"


def test_snapshot_date_must_be_a_date() -> None:
    document = event("accounts.snapshot", "s1", AT, as_of="31/01/2026",
                     electricity_accounts=1, gas_accounts=0)
    assert reason(document) == "as_of '31/01/2026' is not an ISO date (YYYY-MM-DD)"


def test_recategorisation_to_other_needs_an_explanation() -> None:
    document = simple("complaint.recategorised", "e1", "C1", AT, category="B22")
    assert reason(document) == "other_explanation is required when category is B22"


def test_unknown_fields_are_kept() -> None:
    parsed = ev.parse_event(json.dumps(received("e1", "C1", AT, crm_ticket="T-9")))
    assert parsed.model_dump()["crm_ticket"] == "T-9"


@pytest.mark.parametrize(("remedies", "has_remedy"), [
    ({"apology": False, "explanation": False}, False),
    ({"apology": False, "explanation": False, "action": "  ", "award_pence": 0}, False),
    ({"apology": True, "explanation": False}, True),
    ({"apology": False, "explanation": True}, True),
    ({"apology": False, "explanation": False, "action": "Re-bill"}, True),
    ({"apology": False, "explanation": False, "award_pence": 1}, True),
])
def test_a_decision_has_a_remedy(remedies: dict[str, Any], has_remedy: bool) -> None:
    document = simple("complaint.ombudsman_decision", "e1", "C1", AT, remedies=remedies)
    parsed = ev.parse_event(json.dumps(document))
    assert isinstance(parsed, ev.OmbudsmanDecision)
    assert parsed.remedies.any() is has_remedy


@pytest.mark.parametrize("type_", ["complaint.deadlock_reached",
                                   "complaint.senior_manager_response"])
def test_an_offer_is_optional_and_checked(type_: str) -> None:
    # (v2) `offer`: {"description": str, "amount_pence": int?} on both events.
    assert ev.validate(simple(type_, "e1", "C1", AT)).offer is None  # type: ignore[union-attr]
    offer = {"description": "A goodwill credit", "amount_pence": 2500}
    parsed = ev.validate(simple(type_, "e1", "C1", AT, offer=offer))
    assert parsed.offer is not None and parsed.offer.amount_pence == 2500  # type: ignore[union-attr]
    described = ev.validate(simple(type_, "e1", "C1", AT, offer={"description": "An apology"}))
    assert described.offer.amount_pence is None  # type: ignore[union-attr]
    assert reason(simple(type_, "e1", "C1", AT, offer={"amount_pence": 100})) == (
        "offer.description is required")
    assert reason(simple(type_, "e1", "C1", AT, offer={
        "description": "x", "amount_pence": -1})).startswith("offer.amount_pence:")


@pytest.mark.parametrize(("value", "ok"), [("standard", True), ("large_print", True),
                                           ("braille", False)])
def test_accessible_format(value: str, ok: bool) -> None:
    document = received("e1", "C1", AT)
    document["customer"]["accessible_format"] = value
    if ok:
        parsed = ev.validate(document)
        assert parsed.customer.accessible_format == value  # type: ignore[union-attr]
    else:
        assert "customer.accessible_format" in reason(document)
