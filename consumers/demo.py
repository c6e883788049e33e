"""`complaints up --demo`: a simulated contact centre publishing a live, realistic stream.

New complaints arrive on every channel at `rate` per second, each following a script like
`bench/generate.py`'s (first-contact resolutions, assignments, escalations, senior manager
responses, deadlocks and Ombudsman referrals, withdrawals, reopens); the script's days pass in
seconds (`speed` simulated seconds per real second) and every event carries the instant it is
sent. Enquiries, off-supply reports and monthly account snapshots are mixed in, and now and
then a bad message, so the rejection path shows too.

At the start a small backlog of complaints received weeks ago (as if migrated from an older
system) is sent with their real receipt dates: their deadlines are already due, so the timer
service fires them within seconds and letters and escalations appear at once.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from consumers.producer import OwnedProducer
from consumers.settings import Settings
from workflow.clock import Clock, SystemClock
from workflow.codes import CATEGORIES, CHANNELS

log = logging.getLogger(__name__)

BAD_MESSAGES: tuple[bytes, ...] = (
    b"this is not JSON",
    bytes(range(256)),  # binary
    b'{"event_id": "bad-1", "type": "accounts.snapshot", "occurred_at": '
    b'"2026-01-31T06:00:00+00:00", "as_of": "2026-01-31", "electricity_accounts": "many", '
    b'"gas_accounts": -1}',
    b'{"event_id": "bad-2", "type": "complaint.teleported", "occurred_at": '
    b'"2026-01-31T06:00:00+00:00", "complaint_id": "C-0"}',
    b'["a", "list"]',
)


@dataclass
class DemoStats:
    published: int = 0
    complaints: int = 0
    bad: int = 0


class ContactCentre:
    def __init__(self, settings: Settings, *, rate: float = 2.0, speed: float = 3600.0,
                 backlog: int = 24, bad_every: int = 150, seed: int | None = None,
                 producer: KafkaProducer | None = None, clock: Clock | None = None) -> None:
        self.topic = settings.topics.events
        self.rate = rate
        self.speed = speed
        self.backlog = backlog
        self.bad_every = bad_every
        self.rng = random.Random(seed)
        self.clock = clock or SystemClock()
        # Ids unique per run, so a demo can run again on the same database.
        self.run_id = format(int(time.time()) % 36**5, "x")
        self._producer = OwnedProducer(settings, producer)
        self._queue: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._numbers = itertools.count(1)
        self._sim_month: tuple[int, int] | None = None
        self.stats = DemoStats()

    @property
    def producer(self) -> KafkaProducer:
        return self._producer.get()

    # -- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("demo contact centre: %.1f new complaints/s, 1 s = %.0f simulated minutes",
                 self.rate, self.speed / 60)
        started = time.monotonic()
        try:
            self._send_backlog()
            next_arrival = time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_arrival:
                    self._new_complaint(now)
                    next_arrival = now + self.rng.expovariate(self.rate)
                self._monthly_snapshot(started, now)
                while self._queue and self._queue[0][0] <= now:
                    _, _, body = heapq.heappop(self._queue)
                    self._send(body)
                wake = min(next_arrival, self._queue[0][0]) if self._queue else next_arrival
                wait = wake - time.monotonic()
                stop.wait(max(0.0, min(wait, 0.5)))
        finally:
            self._producer.close(flush=True)
            log.info("demo contact centre stopped: %d events, %d complaints, %d bad messages",
                     self.stats.published, self.stats.complaints, self.stats.bad)

    # -- what is sent ----------------------------------------------------------------------
    def _complaint_id(self, n: int) -> str:
        return f"DEMO-{self.run_id}-{n:05d}"

    def _script(self, n: int) -> list[tuple[timedelta, dict[str, Any]]]:
        """A complaint's events as (time after receipt, body without `occurred_at`)."""
        return complaint_script(self.rng, self._complaint_id(n), n)

    def _new_complaint(self, now: float) -> None:
        n = next(self._numbers)
        self.stats.complaints += 1
        for offset, body in self._script(n):
            self._schedule(now + offset.total_seconds() / self.speed, body)
        if self.rng.random() < 1 / 7:
            kind = "off_supply_report" if self.rng.random() < 0.1 else "enquiry"
            self._send({"event_id": f"DEMO-{self.run_id}-enq-{n}", "type": "contact.received",
                        "contact_id": f"DEMO-{self.run_id}-call-{n}",
                        "channel": self.rng.choice(["telephone", "email", "webchat"]),
                        "kind": kind})
        if self.bad_every and self.stats.published // self.bad_every > self.stats.bad:
            self.stats.bad += 1
            raw = BAD_MESSAGES[self.stats.bad % len(BAD_MESSAGES)]
            self.producer.send(self.topic, key=None, value=raw)
            log.debug("sent a bad message on purpose (%d bytes)", len(raw))

    def _send_backlog(self) -> None:
        now = self.clock.now()
        for _ in range(self.backlog):
            n = next(self._numbers)
            self.stats.complaints += 1
            received = now - timedelta(days=self.rng.uniform(2, 70))
            script = self._script(n)
            # The receipt, and for some the next steps, happened weeks ago.
            for step, (_, body) in enumerate(script[:self.rng.choice([1, 1, 2, 3])]):
                self._send(body, at=received + timedelta(hours=step))

    def _monthly_snapshot(self, started: float, now: float) -> None:
        simulated = self.clock.now() + timedelta(seconds=(now - started) * self.speed)
        month = (simulated.year, simulated.month)
        if month == self._sim_month:
            return
        self._sim_month = month
        as_of = date(simulated.year, simulated.month, 1) - timedelta(days=1)
        self._send({"event_id": f"DEMO-{self.run_id}-snap-{as_of}", "type": "accounts.snapshot",
                    "as_of": as_of.isoformat(),
                    "electricity_accounts": 81_000 + self.rng.randint(0, 500),
                    "gas_accounts": 62_000 + self.rng.randint(0, 500)})

    def _schedule(self, at: float, body: dict[str, Any]) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), body))

    def _send(self, body: dict[str, Any], at: datetime | None = None) -> None:
        body = {**body, "occurred_at": (at or self.clock.now()).astimezone(UTC).isoformat()}
        key = body.get("complaint_id") or body.get("contact_id") or body["event_id"]
        self.producer.send(self.topic, key=str(key).encode(),
                           value=json.dumps(body, separators=(",", ":")).encode())
        self.stats.published += 1


CHANNEL_WEIGHTS = {"telephone": 40, "in_person": 5, "letter": 8, "email": 20, "webform": 12,
                   "webchat": 10, "social_media": 5}
CATEGORY_CODES = [c for c in CATEGORIES if c != "B22"]
assert set(CHANNEL_WEIGHTS) == set(CHANNELS)


def complaint_script(rng: random.Random, cid: str,
                     n: int) -> list[tuple[timedelta, dict[str, Any]]]:
    """One complaint's life, as (time after receipt, event body without `occurred_at`).

    The mix follows bench/generate.py: half resolved at first contact or within days, a
    third escalated to a senior manager (some then deadlocked and referred to the Ombudsman),
    some withdrawn, some left open for the eight-week deadline, a few reopened.
    """
    script: list[tuple[timedelta, dict[str, Any]]] = []
    t = timedelta()
    steps = itertools.count(1)

    def add(kind: str, **fields: Any) -> None:
        script.append((t, {"event_id": f"{cid}-{next(steps)}", "type": kind,
                           "complaint_id": cid, **fields}))

    category = rng.choice(CATEGORY_CODES) if rng.random() > 0.03 else "B22"
    receipt: dict[str, Any] = {
        "channel": rng.choices(list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))[0],
        "category": category, "fuel": rng.choice(["electricity", "gas", "dual"]),
        "meter_type": rng.choice(["classic_credit", "smart_credit", "smart_prepayment",
                                  "unknown"]),
        "summary": "Complaint summary", "customer": {
            "account_id": f"ACC-{n:07d}", "name": f"Demo Customer {n}",
            "address": [f"{rng.randint(1, 200)} High Street", "Exeter"], "postcode": "EX1 1AA",
            "preferred_contact": rng.choice(["letter", "email", "phone"])}}
    if receipt["customer"]["preferred_contact"] == "email":  # (v2) emailed: to the demo sink
        receipt["customer"]["email"] = f"demo.customer.{n}@example.org"
    if category == "B22":
        receipt["other_explanation"] = "Not covered by the listed types"
    first_contact = rng.random() < 0.5
    if first_contact:
        receipt["handler"] = {"id": "h-1", "name": "Front Line"}
    add("complaint.received", **receipt)
    if not first_contact:
        t += timedelta(hours=rng.randint(1, 30))
        add("complaint.assigned", handler={"id": f"h-{rng.randint(1, 40)}", "name": "Handler"})
    if rng.random() < 0.4:
        t += timedelta(minutes=5)
        add("complaint.acknowledged", by="Handler")
    roll = rng.random()
    if roll < 0.55:
        t += timedelta(hours=rng.choice([2, 6, 20, 50, 120]))
        add("complaint.resolved", resolution={"apology": True, "explanation": "Fixed"})
        if rng.random() < 0.08:
            t += timedelta(days=rng.randint(3, 20))
            add("complaint.reopened", channel="telephone", summary="Still not fixed")
            t += timedelta(days=rng.randint(1, 10))
            add("complaint.resolved", resolution={"apology": True, "explanation": "Fixed"})
    elif roll < 0.85:
        t += timedelta(days=rng.randint(1, 5))
        add("complaint.contact_logged", channel="telephone", summary="Chased", party="customer")
        t += timedelta(days=rng.randint(1, 4))
        add("complaint.escalation_requested", summary="Wants a manager")
        t += timedelta(days=rng.randint(2, 9))
        add("complaint.senior_manager_response", manager={"id": "m-1", "name": "Manager"},
            summary="Our position")
        t += timedelta(days=rng.randint(1, 5))
        if rng.random() < 0.6:
            add("complaint.resolved", resolution={"apology": False, "explanation": "Explained"})
        else:
            add("complaint.dissatisfied", summary="Not satisfied")
            if rng.random() < 0.5:
                # The supplier states its final position: a referral before an 8-week or
                # deadlock letter would be (rightly) rejected.
                t += timedelta(days=rng.randint(1, 4))
                add("complaint.deadlock_reached", position="We maintain our position.",
                    offer_open=rng.random() < 0.5)
                t += timedelta(days=rng.randint(3, 20))
                add("complaint.referred_to_ombudsman", ombudsman_ref=f"EO-{cid}")
                t += timedelta(days=rng.randint(20, 60))
                add("complaint.ombudsman_decision", accepted=True,
                    remedies={"apology": True, "explanation": False, "award_pence": 5000})
                t += timedelta(days=rng.randint(5, 25))
                add("complaint.remedy_implemented", summary="Award paid")
    elif roll < 0.92:
        t += timedelta(days=rng.randint(1, 20))
        add("complaint.withdrawn", summary="No longer wishes to pursue")
    # else: left open; the eight-week deadline will take it
    return script
