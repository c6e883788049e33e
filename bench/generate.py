"""A realistic, reproducible stream of contact-centre events for benchmarks and demos.

Complaints arrive over a year on every channel; most are resolved at first contact or within
days, some escalate to a senior manager, deadlock or go to the Ombudsman, some are reopened.
Enquiries and monthly account snapshots are mixed in. Events are written in time order.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from workflow.codes import CATEGORIES, CHANNELS

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CATEGORY_CODES = [c for c in CATEGORIES if c != "B22"]
CHANNEL_CODES = list(CHANNELS)
CHANNEL_WEIGHTS = [40, 5, 8, 20, 12, 10, 5]


def _customer(rng: random.Random, n: int) -> dict[str, Any]:
    return {"account_id": f"ACC-{n:07d}", "name": f"Customer {n}",
            "address": [f"{rng.randint(1, 200)} High Street", "Exeter"],
            "postcode": "EX1 1AA", "preferred_contact": rng.choice(["letter", "email", "phone"])}


def complaint_events(rng: random.Random, n: int, at: datetime) -> list[tuple[datetime, dict]]:
    cid = f"C-{n:07d}"
    seq = iter(range(1, 1000))
    out: list[tuple[datetime, dict]] = []

    def add(when: datetime, kind: str, **fields: Any) -> None:
        body = {"event_id": f"{cid}-{next(seq)}", "type": kind,
                "occurred_at": when.isoformat(), "complaint_id": cid, **fields}
        out.append((when, body))

    category = rng.choice(CATEGORY_CODES) if rng.random() > 0.03 else "B22"
    receipt: dict[str, Any] = {
        "channel": rng.choices(CHANNEL_CODES, CHANNEL_WEIGHTS)[0], "category": category,
        "fuel": rng.choice(["electricity", "gas", "dual"]), "summary": "Complaint summary",
        "customer": _customer(rng, n)}
    if category == "B22":
        receipt["other_explanation"] = "Not covered by the listed types"
    first_contact = rng.random() < 0.5
    if first_contact:
        receipt["handler"] = {"id": "h-1", "name": "Front Line"}
    add(at, "complaint.received", **receipt)
    t = at
    if not first_contact:
        t += timedelta(hours=rng.randint(1, 30))
        add(t, "complaint.assigned", handler={"id": f"h-{rng.randint(1, 40)}", "name": "Handler"})
    if rng.random() < 0.4:
        add(t + timedelta(minutes=5), "complaint.acknowledged", by="Handler")
    roll = rng.random()
    if roll < 0.55:
        t += timedelta(hours=rng.choice([2, 6, 20, 50, 120, 300]))
        add(t, "complaint.resolved", resolution={"apology": True, "explanation": "Fixed"})
        if rng.random() < 0.08:
            t += timedelta(days=rng.randint(3, 70))
            add(t, "complaint.reopened", channel="telephone", summary="Still not fixed")
            t += timedelta(days=rng.randint(1, 10))
            add(t, "complaint.resolved", resolution={"apology": True, "explanation": "Fixed"})
    elif roll < 0.85:
        t += timedelta(days=rng.randint(1, 5))
        add(t, "complaint.contact_logged", channel="telephone", summary="Chased", party="customer")
        t += timedelta(days=rng.randint(1, 4))
        add(t, "complaint.escalation_requested", summary="Wants a manager")
        t += timedelta(days=rng.randint(2, 9))
        add(t, "complaint.senior_manager_response", manager={"id": "m-1", "name": "Manager"},
            summary="Our position")
        if rng.random() < 0.6:
            t += timedelta(days=rng.randint(1, 5))
            add(t, "complaint.resolved", resolution={"apology": False, "explanation": "Explained"})
        else:
            t += timedelta(days=rng.randint(1, 5))
            add(t, "complaint.dissatisfied", summary="Not satisfied")
            if rng.random() < 0.5:
                t += timedelta(days=rng.randint(8, 20))
                add(t, "complaint.referred_to_ombudsman", ombudsman_ref=f"EO-{n}")
                t += timedelta(days=rng.randint(20, 60))
                add(t, "complaint.ombudsman_decision", accepted=True,
                    remedies={"apology": True, "explanation": False, "award_pence": 5000})
                t += timedelta(days=rng.randint(5, 40))
                add(t, "complaint.remedy_implemented", summary="Award paid")
    elif roll < 0.92:
        t += timedelta(days=rng.randint(1, 20))
        add(t, "complaint.withdrawn", summary="No longer wishes to pursue")
    # else: left open; the eight-week deadline will take it
    return out


def generate(total_events: int, seed: int = 7,
             gap_seconds: int | None = None) -> Iterator[dict[str, Any]]:
    """`gap_seconds`: complaints arrive 1 to that many seconds apart (63: about 1,000,000 in
    a year, a large supplier's); by default 1 to 12 minutes apart (the original stream)."""
    rng = random.Random(seed)
    events: list[tuple[datetime, dict]] = []
    n = 0
    at = START
    while len(events) < total_events:
        n += 1
        at += (timedelta(minutes=rng.randint(1, 12)) if gap_seconds is None
               else timedelta(seconds=rng.randint(1, gap_seconds)))
        events.extend(complaint_events(rng, n, at))
        if n % 7 == 0:
            events.append((at, {"event_id": f"enq-{n}", "type": "contact.received",
                                "occurred_at": at.isoformat(), "contact_id": f"call-{n}",
                                "channel": "telephone", "kind": "enquiry"}))
    last = max(when for when, _ in events)
    month = date(START.year, START.month, 1)
    while datetime(month.year, month.month, 1, tzinfo=UTC) < last:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        when = datetime(nxt.year, nxt.month, 1, 6, tzinfo=UTC)
        events.append((when, {"event_id": f"snap-{month}", "type": "accounts.snapshot",
                              "occurred_at": when.isoformat(),
                              "as_of": (nxt - timedelta(days=1)).isoformat(),
                              "electricity_accounts": 80000 + n, "gas_accounts": 60000 + n}))
        month = nxt
    events.sort(key=lambda pair: pair[0])
    for _, body in events[:total_events]:
        yield body


def write(path: Path, total_events: int, seed: int = 7,
          gap_seconds: int | None = None) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for body in generate(total_events, seed, gap_seconds):
            handle.write(json.dumps(body) + "\n")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gap-seconds", type=int, default=None,
                        help="complaints 1..N s apart (63: a large supplier's year)")
    args = parser.parse_args()
    write(args.path, args.events, args.seed, args.gap_seconds)
