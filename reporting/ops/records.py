"""One complaint as the aggregator sees it: a small JSON record folded from its output events.

The workflow publishes every applied change to `complaints.lifecycle` and every letter to
`complaints.letters`, both keyed by complaint id (workflow/handlers.py `_emit`,
`_issue_letter`). Folding a complaint's events, in order, into one record gives everything the
live counts need: its state, its pending deadlines, its receipts (with whether each was
resolved by its D+1 deadline), its counted resolutions and its letters.

Why one record per complaint, rather than a table of counters: a faust table is partitioned
like its source topic and recovered partition by partition, so a counter shared by all
complaints would be written from several partitions and restored wrong. A per-complaint
record is written from its complaint's partition only, and an event and the record of its
having been applied (`seen`) are one changelog message, so a re-delivered event is
recognised even after a crash. The counts are derived from the records in memory
(`reporting.ops.view`) and rebuilt from them after recovery.

Instants are kept as integer microseconds since the epoch (UTC): exact, JSON-native and quick
to compare. Everything here is a pure function of (record, event).

What counts (a receipt, a counted resolution, D+1, the eight-week boundary, the channel map)
is decided by `workflow.counting`, the same declarations the SQL measures are built from.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal

from workflow.calendar import WorkingCalendar, local_date
from workflow.counting import (
    RESOLUTION_EVENTS,
    by_deadline,
    counted_resolution,
    d_plus_1,
    eight_weeks_boundary,
    is_receipt,
    with_the_ombudsman,
)
from workflow.deadline_keys import cause_of

Record = dict[str, Any]
Source = Literal["lifecycle", "letters"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)
RESOLUTION_CAUSES: Final = RESOLUTION_EVENTS
# Families of sorted points a record contributes (see `Contributions.points`).
DUE: Final = "due"
RESOLUTION_TIME: Final = "resolution_time"


class Malformed(ValueError):
    """An output event the aggregator cannot read; the reason names fields, never values."""


@dataclass(frozen=True)
class Rules:
    """What the fold needs from the procedure, for the rare event whose deadline it missed."""

    calendar: WorkingCalendar
    # The procedure's 8-week letter; not C13's boundary, which is Ofgem's (workflow.counting).
    eight_weeks_days: int = 56


def new_record() -> Record:
    return {
        "state": None,  # None until the registration arrives (a letter can come first)
        "category": None,
        "category_at": None,  # when the current category took effect (latest wins)
        "cycle": 0,
        "received_at": None,  # the original receipt
        "d1": None,  # the original receipt's D+1 deadline (C12)
        "eight_weeks_at": None,  # Ofgem's eight weeks after the original receipt (C13/C14)
        "signposted": False,  # an 8-week or deadlock letter was ever issued (Ofgem 5.10)
        "remedy_overdue": False,
        "late_referral": False,  # (v2) the latest referral came after its referral window
        "receipts": [],  # {"id", "at", "channel", "reopen", "cycle", "d1", "by_d1"}
        "resolutions": [],  # {"at", "counted", "c12", "c13", "elapsed"}
        "letters": [],  # {"kind", "at"[, "id", "undelivered" (v2)]}
        "pending": {},  # deadline_key -> [kind, due]
        "seen": [],  # digests of the applied event ids
    }


def micros(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def instant(value: int) -> datetime:
    return EPOCH + value * MICROSECOND


def event_digest(event_id: str) -> str:
    """64 bits of the id: a clash within one complaint's few dozen events is out of reach."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=1 << 16)
def periods_of(at: int) -> tuple[str, str]:
    """(month, quarter) labels of an instant's Europe/London date (docs/rules.md s.1)."""
    day = local_date(instant(at))
    return f"{day.year:04d}-{day.month:02d}", f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


# --------------------------------------------------------------------------- reading events
def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{name} is missing or not a non-empty string")
    return value


def _instant(payload: Mapping[str, Any], name: str) -> int:
    text = _text(payload, name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{name} is not an ISO-8601 instant") from None
    if parsed.utcoffset() is None:
        raise Malformed(f"{name} has no UTC offset")
    return micros(parsed)


def complaint_id_of(payload: Mapping[str, Any]) -> str:
    return _text(payload, "complaint_id")


def event_id_of(payload: Mapping[str, Any]) -> str:
    return _text(payload, "event_id")


# --------------------------------------------------------------------------- the fold
def apply(record: Record | None, source: Source, payload: Mapping[str, Any],
          rules: Rules) -> Record | None:
    """The record after the event, or None when this event was applied already.

    The record passed in is never modified (the caller diffs old against new).
    """
    digest = event_digest(event_id_of(payload))
    complaint_id = complaint_id_of(payload)
    if record is not None and digest in record["seen"]:
        return None
    updated = copy.deepcopy(record) if record is not None else new_record()
    if source == "letters" and payload.get("type") in ("letter.dispatched", "letter.cancelled"):
        # (v2) The letter is delivered, or will never be (its customer's data was erased
        # first): no longer counted as waiting (never a letter again).
        letter_id = _text(payload, "letter_id")
        for letter in updated["letters"]:
            if letter.get("id") == letter_id:
                letter["undelivered"] = False
    elif source == "letters":
        letter = {"kind": _text(payload, "kind"), "at": _instant(payload, "issued_at")}
        if payload.get("delivery") is not None:  # (v2) a letter the delivery service sends
            letter.update(id=_text(payload, "letter_id"), undelivered=True)
        updated["letters"].append(letter)
    else:
        _lifecycle(updated, complaint_id, payload, rules)
    updated["seen"].append(digest)
    return updated


def _lifecycle(record: Record, complaint_id: str, payload: Mapping[str, Any],
               rules: Rules) -> None:
    kind = _text(payload, "type")
    if kind == "complaint.registered":
        _registered(record, payload)
    elif kind == "complaint.state_changed":
        _state_changed(record, payload, rules)
    elif kind == "complaint.recategorised":
        _set_category(record, _text(payload, "category"), _instant(payload, "occurred_at"))
    elif kind == "deadline.scheduled":
        _scheduled(record, complaint_id, payload)
    elif kind == "deadline.fired":
        record["pending"].pop(_text(payload, "deadline_key"), None)
    elif kind == "complaint.remedy_overdue":
        record["remedy_overdue"] = True
    # Any other type is a later addition to the contract: recorded as seen, nothing to count.


def _registered(record: Record, payload: Mapping[str, Any]) -> None:
    at = _instant(payload, "occurred_at")
    state = _text(payload, "state")
    record["state"] = state
    _set_category(record, _text(payload, "category"), at)
    if not is_receipt(state):
        return  # a duplicate record: recorded and linked only, no receipt (docs/rules.md s.2)
    record["cycle"] = 1
    record["received_at"] = at
    record["eight_weeks_at"] = micros(eight_weeks_boundary(instant(at)))
    record["receipts"].append({
        "id": _cause(event_id_of(payload), ":registered"), "at": at,
        "channel": _text(payload, "channel"), "reopen": False, "cycle": 1, "d1": None,
        "by_d1": False,
    })


def _state_changed(record: Record, payload: Mapping[str, Any], rules: Rules) -> None:
    to = _text(payload, "to")
    cause = _text(payload, "cause")
    at = _instant(payload, "occurred_at")
    record["state"] = to
    if cause == "complaint.referred_to_ombudsman":
        record["late_referral"] = payload.get("late_referral") is True
    if cause == "complaint.reopened":
        # A repeat complaint is received again at the reopen, by the reopen's channel.
        record["cycle"] += 1
        record["receipts"].append({
            "id": _cause(event_id_of(payload), ":state_changed"), "at": at,
            "channel": _text(payload, "channel"), "reopen": True, "cycle": record["cycle"],
            "d1": None, "by_d1": False,
        })
    elif to == "resolved" and cause in RESOLUTION_EVENTS:
        _resolved(record, at, rules)
        if cause == "complaint.remedy_implemented":
            record["remedy_overdue"] = False


def _resolved(record: Record, at: int, rules: Rules) -> None:
    # Monthly A2: the receipt of this cycle, if resolved by its own D+1 deadline.
    for receipt in record["receipts"]:
        if receipt["cycle"] == record["cycle"] and not receipt["by_d1"]:
            d1 = receipt["d1"]
            if d1 is None:
                d1 = micros(d_plus_1(rules.calendar, instant(receipt["at"])))
            receipt["by_d1"] = by_deadline(at, d1)
    counted = counted_resolution(record["signposted"])
    received = record["received_at"]
    if received is None:  # a resolution without a registration: count it, untimed
        record["resolutions"].append({"at": at, "counted": counted,
                                      "c12": False, "c13": False, "elapsed": None})
        return
    d1 = record["d1"]
    if d1 is None:
        d1 = micros(d_plus_1(rules.calendar, instant(received)))
    eight_weeks = record["eight_weeks_at"]
    if eight_weeks is None:
        eight_weeks = micros(eight_weeks_boundary(instant(received)))
    # Quarterly C11-C15: timed from the original receipt; not counted after a signposting
    # letter (Ofgem 5.10), whatever the cycle.
    record["resolutions"].append({
        "at": at, "counted": counted, "c12": by_deadline(at, d1),
        "c13": by_deadline(at, eight_weeks), "elapsed": at - received,
    })


def _scheduled(record: Record, complaint_id: str, payload: Mapping[str, Any]) -> None:
    key = _text(payload, "deadline_key")
    kind = _text(payload, "kind")
    due = _instant(payload, "due_at")
    record["pending"][key] = [kind, due]
    cause = cause_of(key, complaint_id, kind)
    if kind == "acknowledgement":
        # Due at the D+1 deadline of the receipt that caused it: the exact instant the record
        # used, so A2 and C12 need no calendar here.
        for receipt in record["receipts"]:
            if receipt["id"] == cause:
                receipt["d1"] = due
                if not receipt["reopen"]:
                    record["d1"] = due
    elif kind == "referral_window":
        record["signposted"] = True  # scheduled exactly when an 8-week/deadlock letter issues
    elif kind == "remedy":
        record["remedy_overdue"] = False  # a new decision with a remedy starts a new clock


def _set_category(record: Record, category: str, at: int) -> None:
    # The category as it stands now: the latest change by effective instant, ties to the one
    # applied last (as reporting.measures ranks category_changes).
    if record["category_at"] is None or at >= record["category_at"]:
        record["category"] = category
        record["category_at"] = at


def _cause(event_id: str, suffix: str) -> str:
    return event_id[: -len(suffix)] if event_id.endswith(suffix) else event_id


# --------------------------------------------------------------------------- contributions
@dataclass
class Contributions:
    """What one record adds to the live view.

    `counts`: counters by key, e.g. ("state", "received"), ("m", "2026-01", "A1").
    `points`: instants or durations to be kept sorted, as (family, group, value): pending
    deadlines' due instants by kind, counted resolutions' elapsed times by quarter.
    """

    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    points: Counter[tuple[str, str, int]] = field(default_factory=Counter)


def contributions(record: Record | None) -> Contributions:
    found = Contributions()
    if record is None:
        return found
    counts, points = found.counts, found.points
    state = record["state"]
    if state is not None:
        counts["state", state] += 1
        if record["remedy_overdue"] and with_the_ombudsman(state):
            counts["remedy_overdue",] += 1
        # .get: records folded before (v2) have no such field.
        if record.get("late_referral") and with_the_ombudsman(state):
            counts["late_referral",] += 1
    category = record["category"]
    for receipt in record["receipts"]:
        month, quarter = periods_of(receipt["at"])
        channel = receipt["channel"]
        counts["m", month, "A1"] += 1
        counts["m", month, "A2" if receipt["by_d1"] else "A3"] += 1
        if receipt["reopen"]:
            counts["m", month, "A4"] += 1
        counts["m", month, "category", category] += 1
        counts["m", month, "channel", channel] += 1
        counts["q", quarter, "channel", channel] += 1
    for resolution in record["resolutions"]:
        if not resolution["counted"]:
            continue
        _, quarter = periods_of(resolution["at"])
        counts["q", quarter, "C11"] += 1
        if resolution["c12"]:
            counts["q", quarter, "C12"] += 1
        counts["q", quarter, "C13" if resolution["c13"] else "C14"] += 1
        if resolution["elapsed"] is not None:
            points[RESOLUTION_TIME, quarter, resolution["elapsed"]] += 1
    for letter in record["letters"]:
        if letter.get("undelivered"):
            counts["undelivered",] += 1
        month, quarter = periods_of(letter["at"])
        counts["m", month, "letter", letter["kind"]] += 1
        counts["q", quarter, "letter", letter["kind"]] += 1
    for kind, due in record["pending"].values():
        points[DUE, kind, due] += 1
    return found
