"""Events in (docs/contract.md "Events in"), validated at the edge with precise, actionable reasons.

`parse_event` turns one raw message into a typed event or raises `InvalidEvent` whose message a
person can act on ("category B99 is not one of B5..B22", "occurred_at has no UTC offset").
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from workflow.codes import CATEGORIES, CHANNELS, OTHER_CATEGORY
from workflow.limits import MAX_MESSAGE_BYTES


class InvalidEvent(ValueError):
    """Bad input: the reason is meant for the person who has to fix the message."""


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("instant_type", "must be an ISO-8601 string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "instant_format", "{value} is not an ISO-8601 instant", {"value": repr(value)}
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError("instant_offset", "has no UTC offset")
    return parsed


def _iso_date(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "must be an ISO date string (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "date_format", "{value} is not an ISO date (YYYY-MM-DD)", {"value": repr(value)}
        ) from None


def _one_of(codes: dict[str, Any] | tuple[str, ...], label: str) -> AfterValidator:
    allowed = tuple(codes)

    def check(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError(
                "code", "{value} is not one of {label}", {"value": value, "label": label}
            )
        return value

    return AfterValidator(check)


Instant = Annotated[datetime, BeforeValidator(_instant)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[str, Field(strict=True, min_length=1)]
# Counts and amounts in pence: never negative, and within what a BIGINT column holds (an
# unbounded JSON integer would otherwise reach the database and fail there, not here).
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
CategoryCode = Annotated[Text, _one_of(CATEGORIES, "B5..B22")]
ChannelCode = Annotated[Text, _one_of(CHANNELS, ", ".join(CHANNELS))]


def _choice(*values: str) -> Any:
    return Annotated[Text, _one_of(values, ", ".join(values))]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Person(_Part):
    id: Text
    name: Text


class Customer(_Part):
    account_id: Text
    name: Text
    address: list[Text] = Field(min_length=1)
    postcode: Text
    email: Text | None = None
    phone: Text | None = None
    preferred_contact: _choice("letter", "email", "phone")  # type: ignore[valid-type]
    region: _choice("ENG", "WLS", "SCT") | None = None  # type: ignore[valid-type]
    vulnerable: StrictBool | None = None
    # (v2) How letters are printed; absent means "standard".
    accessible_format: _choice("standard", "large_print") | None = None  # type: ignore[valid-type]


class Resolution(_Part):
    apology: StrictBool
    explanation: Text
    corrective_action: Text | None = None
    goodwill_pence: Count | None = None
    compensation_pence: Count | None = None


class Offer(_Part):
    """(v2) An offer made to settle the complaint, stated in full in the deadlock letter."""

    description: Text
    amount_pence: Count | None = None


class Remedies(_Part):
    apology: StrictBool
    explanation: StrictBool
    action: str | None = None
    award_pence: Count | None = None

    def any(self) -> bool:
        """docs/rules.md s.4: a decision has a remedy when any of these is given."""
        return bool(
            self.apology or self.explanation or (self.action or "").strip()
            or (self.award_pence or 0) > 0
        )


class Event(BaseModel):
    """The envelope on every event."""

    model_config = ConfigDict(extra="allow", frozen=True)
    event_id: Annotated[Text, Field(max_length=128)]
    type: str
    occurred_at: Instant


class ComplaintEvent(Event):
    complaint_id: Annotated[Text, Field(max_length=64)]


class _Categorised(ComplaintEvent):
    category: CategoryCode
    other_explanation: Text | None = None

    @model_validator(mode="after")
    def _other_needs_explanation(self) -> _Categorised:
        # Blank is no explanation: the monthly return must explain every B22 (docs/rules.md s.7).
        if self.category == OTHER_CATEGORY and not (self.other_explanation or "").strip():
            raise PydanticCustomError(
                "b22", "other_explanation is required when category is B22"
            )
        return self


class ComplaintReceived(_Categorised):
    type: Literal["complaint.received"]
    channel: ChannelCode
    source: _choice("direct", "citizens_advice", "extra_help_unit") = "direct"  # type: ignore[valid-type]
    subsidiary_categories: list[CategoryCode] = Field(default_factory=list)
    duplicate_of: Annotated[Text, Field(max_length=64)] | None = None
    contact_id: Text | None = None
    meter_type: _choice(  # type: ignore[valid-type]
        "classic_credit", "classic_prepayment", "smart_credit", "smart_prepayment", "unknown"
    ) = "unknown"
    fuel: _choice("electricity", "gas", "dual")  # type: ignore[valid-type]
    summary: Text
    handler: Person | None = None
    customer: Customer


class ComplaintAssigned(ComplaintEvent):
    type: Literal["complaint.assigned"]
    handler: Person


class ComplaintAcknowledged(ComplaintEvent):
    type: Literal["complaint.acknowledged"]
    by: Text


class ContactLogged(ComplaintEvent):
    type: Literal["complaint.contact_logged"]
    channel: ChannelCode
    summary: Text
    party: _choice(  # type: ignore[valid-type]
        "customer", "representative", "citizens_advice", "extra_help_unit", "ombudsman"
    )


class ComplaintRecategorised(_Categorised):
    type: Literal["complaint.recategorised"]


class EscalationRequested(ComplaintEvent):
    type: Literal["complaint.escalation_requested"]
    summary: Text | None = None


class SeniorManagerResponse(ComplaintEvent):
    type: Literal["complaint.senior_manager_response"]
    manager: Person
    summary: Text
    offer: Offer | None = None  # (v2)


class CustomerDissatisfied(ComplaintEvent):
    type: Literal["complaint.dissatisfied"]
    summary: Text


class DeadlockReached(ComplaintEvent):
    type: Literal["complaint.deadlock_reached"]
    position: Text
    offer_open: StrictBool
    offer: Offer | None = None  # (v2) the offer made to settle


class ComplaintResolved(ComplaintEvent):
    type: Literal["complaint.resolved"]
    resolution: Resolution


class ComplaintReopened(ComplaintEvent):
    type: Literal["complaint.reopened"]
    channel: ChannelCode
    summary: Text


class ReferredToOmbudsman(ComplaintEvent):
    type: Literal["complaint.referred_to_ombudsman"]
    ombudsman_ref: Text


class OmbudsmanDecision(ComplaintEvent):
    type: Literal["complaint.ombudsman_decision"]
    accepted: StrictBool
    remedies: Remedies
    notified_at: Instant | None = None

    @property
    def notified(self) -> datetime:
        return self.notified_at or self.occurred_at


class RemedyImplemented(ComplaintEvent):
    type: Literal["complaint.remedy_implemented"]
    summary: Text


class ComplaintWithdrawn(ComplaintEvent):
    type: Literal["complaint.withdrawn"]
    summary: Text


class ContactReceived(Event):
    type: Literal["contact.received"]
    contact_id: Text
    channel: ChannelCode
    kind: _choice("enquiry", "off_supply_report")  # type: ignore[valid-type]


class AccountsSnapshot(Event):
    type: Literal["accounts.snapshot"]
    as_of: IsoDate
    electricity_accounts: Count
    gas_accounts: Count


EVENT_TYPES: dict[str, type[Event]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        ComplaintReceived, ComplaintAssigned, ComplaintAcknowledged, ContactLogged,
        ComplaintRecategorised, EscalationRequested, SeniorManagerResponse,
        CustomerDissatisfied, DeadlockReached, ComplaintResolved, ComplaintReopened,
        ReferredToOmbudsman, OmbudsmanDecision, RemedyImplemented, ComplaintWithdrawn,
        ContactReceived, AccountsSnapshot,
    )
}


def decode(raw: bytes | str) -> dict[str, Any]:
    """Bytes or text -> a JSON object, or InvalidEvent saying precisely what is wrong."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise InvalidEvent(f"message is {size} bytes, over the 1 MiB limit")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"message is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(document, dict):
        raise InvalidEvent(f"not a JSON object but a JSON {type(document).__name__}")
    return document


def clock_fields(document: dict[str, Any]) -> tuple[str, datetime] | None:
    """(event_id, occurred_at) when both are usable: what moves the event-time clock."""
    event_id, occurred = document.get("event_id"), document.get("occurred_at")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        return None
    try:
        return event_id, _instant(occurred)
    except PydanticCustomError:
        return None


def occurred_at_of(raw: bytes | str) -> datetime | None:
    """(v2) A message's `occurred_at` when it can be read (a JSON object whose `occurred_at`
    is an instant with an offset), else None: what offline ingest orders a file's lines by."""
    try:
        document = decode(raw)
        return _instant(document.get("occurred_at"))  # type: ignore[no-any-return]
    except (InvalidEvent, PydanticCustomError):
        return None


def validate(document: dict[str, Any]) -> Event:
    """A decoded object -> its typed event, or InvalidEvent with every problem named."""
    kind = document.get("type")
    if kind is None:
        raise InvalidEvent("type is required")
    model = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidEvent(f"unknown event type {kind!r}")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent("; ".join(_reason(err) for err in exc.errors())) from None


def parse_event(raw: bytes | str) -> Event:
    return validate(decode(raw))


def _reason(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return f"{where} is required"
    if kind == "b22" or not where:
        return str(message)
    if kind in ("code", "instant_offset", "instant_format", "date_format"):
        return f"{where} {message}"
    if kind == "extra_forbidden":
        return f"{where} is not allowed"
    return f"{where}: {message}"
