"""What the service publishes (docs/contract.md "Events out"), as models for the contract.

The workflow writes these payloads as outbox rows; the models describe them for the AsyncAPI
document, and the contract test validates real outbox payloads against them, so the
description cannot drift from what is sent. Extra fields are allowed: the contract grows by
adding fields, never by renaming.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class LifecycleEvent(_Out):
    """An applied change to a complaint, keyed by complaint id, in the order it happened."""

    event_id: str = Field(description="Unique and derived from the cause: a re-publish after "
                                      "a crash carries the same id.")
    type: str
    complaint_id: str
    reference: str = Field(description="The customer-facing complaint reference.")
    occurred_at: datetime = Field(description="When the change happened (event time).")
    category: str
    channel: str
    state: str = Field(description="The complaint's state after the change.")


class ComplaintRegistered(LifecycleEvent):
    type: Literal["complaint.registered"]
    source: str
    duplicate_of: str | None
    cycle: int
    contact_id: str | None


class StateChanged(LifecycleEvent):
    type: Literal["complaint.state_changed"]
    from_: str | None = Field(alias="from")
    to: str
    cause: str = Field(description="The event type or deadline (deadline.<kind>) that caused it.")
    cycle: int
    late_referral: bool | None = Field(
        default=None,
        description="(v2) On a referral to the Ombudsman only: true when it came at or after "
                    "the end of the latest 8-week or deadlock letter's referral window.")


class Recategorised(LifecycleEvent):
    type: Literal["complaint.recategorised"]
    cycle: int


class DeadlineScheduled(LifecycleEvent):
    type: Literal["deadline.scheduled"]
    kind: str
    deadline_key: str
    due_at: datetime


class DeadlineFired(LifecycleEvent):
    type: Literal["deadline.fired"]
    kind: str
    deadline_key: str
    due_at: datetime
    outcome: str = Field(description="What firing did: a letter, a transition, or why it no "
                                     "longer applied.")


class RemedyOverdue(LifecycleEvent):
    type: Literal["complaint.remedy_overdue"]
    decision_event_id: str
    ombudsman_ref: str | None


LIFECYCLE_MESSAGES: tuple[type[LifecycleEvent], ...] = (
    ComplaintRegistered, StateChanged, Recategorised, DeadlineScheduled, DeadlineFired,
    RemedyOverdue,
)


class LetterIssued(_Out):
    """A letter was issued. The letter service writes it as files (COMPLAINTS_LETTERS_DIR);
    `complaints letters render LETTER_ID` renders it again, byte for byte."""

    event_id: str = Field(description="Equal to letter_id.")
    letter_id: str
    complaint_id: str
    kind: str
    issued_at: datetime
    reference: str
    cycle: int
    formats: list[str]
    delivery: Literal["email", "post"] | None = Field(
        default=None, description="(v2) How it will be delivered first: email (the customer "
                                  "prefers email and gave an address) or post.")


class LetterDispatched(_Out):
    """(v2) A letter was delivered: accepted by the mail server, or put in the print queue.
    Once per letter; an email refused for good is then posted, and only that is published."""

    event_id: str = Field(description="<letter_id>:dispatched")
    type: Literal["letter.dispatched"]
    letter_id: str
    complaint_id: str
    channel: Literal["email", "post"]
    address: str = Field(description="The email address, or the postal address on one line.")
    dispatched_at: datetime
    receipt: str = Field(description="The mail server's reply to the message, or the print "
                                     "file (<print run>/<letter_id>.pdf in the print queue).")


class DeadlineDue(_Out):
    """A due deadline, from the timer service to the workflow consumer (internal)."""

    event_id: str = Field(description="deadline:<deadline_key>")
    deadline_key: str
    complaint_id: str
    kind: str
    due_at: datetime


class RawBytes(_Out):
    encoding: Literal["utf-8", "base64"] | None = Field(
        description="utf-8: data is the text; base64: the bytes were not UTF-8; null: absent.")
    data: str | None


class Header(RawBytes):
    key: str


class MessageRejected(_Out):
    """An input message that was not applied, with a reason a person can act on."""

    event_id: str = Field(description="rejected:<topic>:<partition>:<offset>")
    type: Literal["message.rejected"]
    reason: str
    rejected_at: datetime
    source: str = Field(description="The topic the message was read from.")
    topic: str
    partition: int
    offset: int
    position: str = Field(description="<partition>/<offset>, as in `complaints rejected`.")
    timestamp_ms: int | None
    original_event_id: str | None = Field(description="The message's event_id, if it had one.")
    key: RawBytes
    headers: list[Header]
    raw: RawBytes = Field(description="The message as received (its first 1 MiB).")
    raw_size: int
    raw_truncated: bool
