"""The declarations of what counts (docs/rules.md s.7.1), with hand-worked values, and that
every reader takes them from `workflow.counting` rather than restating them."""

from __future__ import annotations

from datetime import UTC, datetime

from reporting import measures
from reporting.ops import records
from workflow import counting, handlers, letter_context
from workflow.deadline_keys import cause_of, deadline_key


def test_by_deadline_includes_the_deadline_instant() -> None:
    d1 = datetime(2026, 1, 6, 23, 59, 59, 999999, tzinfo=UTC)
    assert counting.by_deadline(d1, d1)
    assert not counting.by_deadline(datetime(2026, 1, 7, tzinfo=UTC), d1)
    assert counting.by_deadline(5, 6) and not counting.by_deadline(7, 6)  # the fold's micros


def test_the_eight_week_boundary_is_56_times_24_hours() -> None:
    # Sun 1 Mar 2026 12:00Z + 56 x 24 h = Sun 26 Apr 12:00Z (13:00 BST: elapsed, not local).
    received = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert counting.eight_weeks_boundary(received) == datetime(2026, 4, 26, 12, tzinfo=UTC)


def test_counted_resolution_and_receipts() -> None:
    assert counting.counted_resolution(signposting_letter_issued=False)
    assert not counting.counted_resolution(signposting_letter_issued=True)
    assert counting.is_receipt("received") and counting.is_receipt("immediate")
    assert not counting.is_receipt("duplicate")
    assert counting.RESOLUTION_EVENTS == {"complaint.resolved", "complaint.remedy_implemented"}
    assert counting.SIGNPOSTING_LETTERS == {"eight_week", "deadlock"}


def test_contacts() -> None:
    assert counting.is_contact("enquiry", None)
    assert counting.is_contact("off_supply_report", None)
    assert counting.is_contact("contact_logged", "customer")
    assert counting.is_contact("contact_logged", "representative")
    for party in ("citizens_advice", "extra_help_unit", "ombudsman", None):
        assert not counting.is_contact("contact_logged", party)


def test_channel_items() -> None:
    assert counting.contacts_item("in_person") == "A2"
    assert counting.complaints_item("social_media") == "B10"
    assert counting.channels_of("B9", counting.COMPLAINTS) == ["email", "webform"]
    assert counting.item_codes(counting.CONTACTS) == ["A2", "A3", "A4", "A5"]
    assert counting.item_codes(counting.COMPLAINTS) == ["B7", "B8", "B9", "B10"]


def test_readers_hold_the_declarations_themselves() -> None:
    assert handlers.CONTACT_PARTIES is counting.CONTACT_PARTIES
    assert measures.CONTACT_PARTIES is counting.CONTACT_PARTIES
    assert measures.CONTACT_RECEIVED_KINDS is counting.CONTACT_RECEIVED_KINDS
    assert records.RESOLUTION_CAUSES is counting.RESOLUTION_EVENTS
    assert letter_context.SIGNPOSTING_KINDS is counting.SIGNPOSTING_LETTERS


def test_deadline_keys_round_trip() -> None:
    key = deadline_key("C-1", "acknowledgement", "ev/1:x")
    assert key == "C-1/acknowledgement/ev/1:x"
    assert cause_of(key, "C-1", "acknowledgement") == "ev/1:x"  # slashes in the cause kept
    assert cause_of(key, "C-1", "eight_week") is None
    assert cause_of(key, "C-10", "acknowledgement") is None


def test_the_backlog_declarations() -> None:
    from reporting.ops import view
    from workflow import queries

    assert counting.with_the_ombudsman("ombudsman")
    assert not counting.with_the_ombudsman("closed") and not counting.with_the_ombudsman(None)
    assert queries.DUE_SOON_WORKING_DAYS is view.DUE_SOON_WORKING_DAYS
    assert counting.DUE_SOON_WORKING_DAYS == 5


def test_the_signposting_items() -> None:
    assert counting.SIGNPOSTING_ITEMS == {"D16": "eight_week", "D17": "deadlock"}
    assert set(counting.SIGNPOSTING_ITEMS.values()) == counting.SIGNPOSTING_LETTERS
