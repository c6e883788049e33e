"""What counts in an Ofgem return: each rule of docs/rules.md s.7.1 declared once.

Three readers decide the same things and all take them from here: the handlers, when they
record a resolution or a contact (`workflow.handlers`); the SQL measures, which build their
expressions from these declarations (`reporting.measures`, `reporting.submissions`,
`workflow.queries` for the backlog); and the streaming fold behind the live view
(`reporting.ops`). Changing a rule (Ofgem 5.10's counted resolution, say) is one edit here;
`complaints reconcile` still compares the two readings, now of one rule.

The comparisons are written with the plain operators (`<=`), so one predicate serves Python
values (datetimes, or the fold's integer microseconds) and SQLAlchemy columns alike: given
columns, it returns the SQL expression.

Category codes (B5-B22) and the channel table (A2-A5, B7-B10) are in `workflow.codes`, the
codes' one table, which events validate against; the item lookups over them are here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from workflow.calendar import WorkingCalendar, elapsed_days
from workflow.codes import CATEGORIES, CHANNELS, OTHER_CATEGORY
from workflow.letter_context import SIGNPOSTING_KINDS

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, SQLColumnExpression

__all__ = [
    "CATEGORIES", "CHANNELS", "COMPLAINTS", "CONTACTS", "CONTACT_LOGGED_KIND", "CONTACT_PARTIES",
    "CONTACT_RECEIVED_KINDS", "DEADLOCK_LETTER", "DUE_SOON_WORKING_DAYS", "EIGHT_WEEK_LETTER",
    "OFGEM_EIGHT_WEEKS_DAYS", "OMBUDSMAN_STATE", "OTHER_CATEGORY", "RESOLUTION_EVENTS",
    "SIGNPOSTING_ITEMS", "SIGNPOSTING_LETTERS", "by_deadline", "channels_of", "complaints_item",
    "contacts_item", "counted_resolution", "d_plus_1", "eight_weeks_boundary", "is_contact",
    "is_receipt", "item_codes", "with_the_ombudsman",
]

# --------------------------------------------------------------------------- receipts
# A receipt is a registration that is not a duplicate record, or a reopen (Ofgem 4.5-4.9).
DUPLICATE_STATE: Final = "duplicate"


def is_receipt(registered_state: str) -> bool:
    """Whether a `complaint.received` counts as a receipt, from the state it registered in."""
    return registered_state != DUPLICATE_STATE


# --------------------------------------------------------------------------- resolutions
# The events that resolve a complaint for the returns (Ofgem 5.10).
RESOLUTION_EVENTS: Final = frozenset({"complaint.resolved", "complaint.remedy_implemented"})
EIGHT_WEEK_LETTER: Final = "eight_week"  # quarterly D16
DEADLOCK_LETTER: Final = "deadlock"  # quarterly D17
# The letters that signpost the Ombudsman (declared with the letter kinds); once one is
# issued, a later resolution of that complaint is not counted (Ofgem 5.10).
SIGNPOSTING_LETTERS: Final = SIGNPOSTING_KINDS
# Quarterly D16 and D17 count these letters issued in the quarter (Ofgem 5.13).
SIGNPOSTING_ITEMS: Final = {"D16": EIGHT_WEEK_LETTER, "D17": DEADLOCK_LETTER}


def counted_resolution(signposting_letter_issued: bool) -> bool:
    """Ofgem 5.10: a resolution counts in C11 unless an 8-week or deadlock letter was issued
    for that complaint before it was applied."""
    return not signposting_letter_issued


# C13's boundary is Ofgem's eight weeks, 56 x 24 h after the original receipt, whatever the
# procedure's `eight_weeks_days` (which moves the 8-week letter, not this line).
OFGEM_EIGHT_WEEKS_DAYS: Final = 56


def eight_weeks_boundary(original_received_at: datetime) -> datetime:
    """The instant C13 ends and C14 begins for a complaint received at this instant."""
    return elapsed_days(original_received_at, OFGEM_EIGHT_WEEKS_DAYS)


def d_plus_1(calendar: WorkingCalendar, received_at: datetime) -> datetime:
    """The D+1 deadline of a receipt (monthly A2; of the original receipt, quarterly C12):
    the end of the first working day after the receipt's date."""
    return calendar.d_plus_1(received_at)


T = TypeVar("T", int, datetime)


@overload
def by_deadline(at: T, deadline: T) -> bool: ...
@overload
def by_deadline(at: SQLColumnExpression[Any],
                deadline: SQLColumnExpression[Any]) -> ColumnElement[bool]: ...
def by_deadline(at: Any, deadline: Any) -> Any:
    """Resolved in time: at or before the deadline, the deadline's own instant included.

    The one comparison behind A2 (a receipt's D+1), C12 (the original D+1) and C13 (the
    eight-week boundary; C14 is its negation). On columns it is the SQL expression.
    """
    return at <= deadline


# --------------------------------------------------------------------------- contacts
# Contacts in Ofgem's sense (5.5): every receipt, every `contact.received` (these kinds), and
# a logged contact whose party is the customer or their representative (not Citizens Advice,
# the Extra Help Unit or the Ombudsman).
CONTACT_RECEIVED_KINDS: Final = ("enquiry", "off_supply_report")
CONTACT_LOGGED_KIND: Final = "contact_logged"
CONTACT_PARTIES: Final = frozenset({"customer", "representative"})


def is_contact(kind: str, party: str | None) -> bool:
    """Whether a contacts row (by its kind and party) is a contact for quarterly A2-A5."""
    return kind in CONTACT_RECEIVED_KINDS or (
        kind == CONTACT_LOGGED_KIND and party in CONTACT_PARTIES)


# --------------------------------------------------------------------------- channel -> item
# `CHANNELS` maps a channel to (quarterly contacts item, quarterly complaints item). These
# lookups read it at each call, so the table is the one place the mapping is decided.
CONTACTS: Final = 0
COMPLAINTS: Final = 1


def contacts_item(channel: str) -> str:
    """Quarterly A2-A5: the item a contact by this channel counts in."""
    return CHANNELS[channel][CONTACTS]


def complaints_item(channel: str) -> str:
    """Quarterly B7-B10: the item a receipt by this channel counts in."""
    return CHANNELS[channel][COMPLAINTS]


def channels_of(item_code: str, position: int) -> list[str]:
    """The channels that map to a quarterly item (position CONTACTS or COMPLAINTS)."""
    return [channel for channel, items in CHANNELS.items() if items[position] == item_code]


def item_codes(position: int) -> list[str]:
    """The quarterly items the channels map to (A2-A5 or B7-B10), in code order."""
    codes = {items[position] for items in CHANNELS.values()}
    return sorted(codes, key=lambda code: int(code[1:]))


# --------------------------------------------------------------------------- the backlog
# Not a return, but counted the same two ways (`workflow.queries.backlog` in SQL, the live
# view's /backlog from the fold): deadlines "due soon" are due within this many working days;
# a remedy overdue and a late referral count while the complaint is with the Ombudsman.
DUE_SOON_WORKING_DAYS: Final = 5
OMBUDSMAN_STATE: Final = "ombudsman"


@overload
def with_the_ombudsman(state: str | None) -> bool: ...
@overload
def with_the_ombudsman(state: SQLColumnExpression[Any]) -> ColumnElement[bool]: ...
def with_the_ombudsman(state: Any) -> Any:
    """The complaint is with the Ombudsman (a state, or the SQL test of a state column)."""
    return state == OMBUDSMAN_STATE
