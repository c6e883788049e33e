"""(v2) Delivering issued letters (docs/rules.md s.6 "Delivery"): the decisions, free of I/O.

A letter goes by the customer's `preferred_contact` as it stood when the letter was issued
(the context stored with it): `email`, when the customer has an email address, as an email;
otherwise by post (the print queue). Every attempt is recorded; what happens next depends only
on the attempt's outcome, the delivery's state and the instant, so it is decided here and
carried out by the delivery service (consumers/delivery.py):

- accepted (a 2xx reply, or the PDF in the print queue): dispatched, never sent again;
- a permanent refusal (a 5xx reply to the recipient or the message): by post, at once;
- anything else (a 4xx reply, no connection, a timeout): retried with a growing back-off,
  until the email has been undelivered for `email_give_up_hours` since its first attempt,
  then by post. A post attempt that fails (the print queue's disk) is retried, never given up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

Channel = Literal["email", "post"]
Outcome = Literal["dispatched", "deferred", "refused", "gave_up"]

PENDING: Final = "pending"
DISPATCHED: Final = "dispatched"
# Never sent: the customer's personal data was erased first (workflow/erasure.py).
CANCELLED_BY_ERASURE: Final = "erased"
# How long a claimed letter is held by the worker that claimed it: a worker that dies after
# claiming leaves it due again after this (and may have sent it: same Message-ID).
LEASE: Final = timedelta(minutes=10)
FIRST_RETRY: Final = timedelta(minutes=1)
MAX_RETRY: Final = timedelta(hours=1)
DEFAULT_EMAIL_GIVE_UP_HOURS: Final = 24


def initial_channel(customer: Mapping[str, Any]) -> Channel:
    """`email` only when the customer asked for it and gave an address (docs/rules.md s.6)."""
    email = customer.get("email")
    wants_email = customer.get("preferred_contact") == "email"
    return "email" if wants_email and isinstance(email, str) and email.strip() else "post"


def new_delivery(letter_id: str, complaint_id: str, customer: Mapping[str, Any],
                 now: datetime) -> dict[str, Any]:
    """The `deliveries` row written with the letter: due at once, nothing attempted yet."""
    return {"letter_id": letter_id, "complaint_id": complaint_id, "status": PENDING,
            "channel": initial_channel(customer), "attempts": 0, "failures": 0,
            "next_attempt_at": now,
            "email_since": None, "created_at": now, "dispatched_at": None}


def retry_delay(failures: int, first: timedelta = FIRST_RETRY,
                cap: timedelta = MAX_RETRY) -> timedelta:
    """1, 2, 4, 8 ... minutes after the 1st, 2nd, 3rd ... failure in a row, at most an hour."""
    if failures < 1:
        raise ValueError("retry_delay is for a failed attempt (failures >= 1)")
    # Doubling stops once past the cap (no overflow on a letter failing for weeks).
    return min(first * (2 ** min(failures - 1, 32)), cap)


def smtp_outcome(code: int | None) -> Outcome:
    """What an SMTP reply means for the letter: None is no reply (no connection, timeout)."""
    if code is not None and 200 <= code < 300:
        return "dispatched"
    if code is not None and 500 <= code < 600:
        return "refused"
    return "deferred"


@dataclass(frozen=True)
class State:
    """What a delivery knows between attempts (the `deliveries` row)."""

    channel: Channel
    attempts: int  # attempts made so far, on every channel
    failures: int  # failed attempts in a row on the current channel (for the back-off)
    email_since: datetime | None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome  # recorded with the attempt
    status: str  # pending | dispatched
    channel: Channel  # of the next attempt (post after a refusal or a give-up)
    next_attempt_at: datetime
    email_since: datetime | None


def after_attempt(state: State, outcome: Outcome, now: datetime, *,
                  email_give_up_hours: int = DEFAULT_EMAIL_GIVE_UP_HOURS,
                  first_retry: timedelta = FIRST_RETRY,
                  max_retry: timedelta = MAX_RETRY) -> Decision:
    """The delivery after an attempt on `state.channel` that ended in `outcome` at `now`."""
    email_since = state.email_since
    if state.channel == "email" and email_since is None:
        email_since = now  # the give-up clock starts with the first email attempt
    if outcome == "dispatched":
        return Decision("dispatched", DISPATCHED, state.channel, now, email_since)
    delay = retry_delay(state.failures + 1, first_retry, max_retry)
    if state.channel == "email":
        if outcome == "refused":
            return Decision("refused", PENDING, "post", now, email_since)
        assert email_since is not None
        give_up_at = email_since + timedelta(hours=email_give_up_hours)
        if now >= give_up_at:
            return Decision("gave_up", PENDING, "post", now, email_since)
        # The last retry falls on the give-up instant, not after it: posted on time.
        return Decision("deferred", PENDING, "email", min(now + delay, give_up_at),
                        email_since)
    # A post attempt is never "refused": the print queue is ours, so it is retried.
    return Decision("deferred", PENDING, "post", now + delay, email_since)


def dispatched_event(letter_id: str, complaint_id: str, channel: Channel, address: str,
                     dispatched_at: datetime, receipt: str) -> dict[str, Any]:
    """The `letter.dispatched` message on `complaints.letters` (docs/contract.md, v2). A letter is
    dispatched once, so its id names the cause: a re-publish carries the same `event_id`."""
    event_id = f"{letter_id}:dispatched"
    return {"event_id": event_id, "type": "letter.dispatched", "letter_id": letter_id,
            "complaint_id": complaint_id, "channel": channel, "address": address,
            "dispatched_at": dispatched_at.isoformat(), "receipt": receipt}


def placeholder_pause(placeholders: Iterable[str], demo: bool) -> tuple[str, ...]:
    """The placeholder keys that stop delivery (none in the demo, which delivers anyway)."""
    return () if demo else tuple(placeholders)


def pause_message(keys: Iterable[str]) -> str:
    names = ", ".join(f"[{k}]" for k in keys)
    return (f"delivery paused: the procedure marks {names} as placeholder = true; no letter "
            "is emailed or posted until those details are real (replace them in the "
            "procedure file, remove placeholder = true and restart). Letters are still "
            "issued and rendered, and wait undelivered.")
