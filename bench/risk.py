"""Backtest of `complaints risk`: fit on the record up to a date, predict, score against what
then happened.

    .venv/bin/python -m bench.risk [--complaints 3000] [--seed 11]

A generated stream where breaches depend on the features: complaints arrive over nine months
of 2026 on four channels; each is resolved after an exponential time whose rate depends on its
channel (telephone fast, letter slow), on an escalation (slower) and on whether anyone works it
(a "neglected" third get no logged contact and are resolved four times more slowly); one not
resolved within 56 days gets its 8-week letter (a breach). The stream is ingested into a
scratch SQLite record, then at each cutoff (1 Jun, 1 Jul, 1 Aug) `reporting.risk.at_risk`
judges the complaints that can still breach with what the record held then, and each
prediction is scored by whether an 8-week letter followed.

Scores (pooled over the cutoffs): the Brier score beside that of the base rate (the share of
complaints past their eight weeks at the cutoff that breached: what one would predict knowing
nothing about a complaint), and beside a constant at the scored set's own breach rate; skill =
1 - Brier / reference. Calibration: predictions by decile, mean predicted against observed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from consumers.file_ingest import ingest_file
from consumers.gc_tuning import tune_garbage_collector
from reporting.risk import DAY, at_risk, load, past_eight_weeks
from workflow.bootstrap import bootstrap
from workflow.schema import Letter

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUTOFFS = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC),
           datetime(2026, 8, 1, tzinfo=UTC))
CHANNELS = {"telephone": (45, 1.5), "email": (30, 1.0), "webchat": (10, 1.2),
            "letter": (15, 0.5)}  # weight, resolution-rate factor
BASE_RATE_PER_DAY = 1 / 15


def _at(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def generate(complaints: int, seed: int) -> list[tuple[datetime, dict[str, Any]]]:
    rng = random.Random(seed)
    events: list[tuple[datetime, dict[str, Any]]] = []
    channels, weights = list(CHANNELS), [w for w, _ in CHANNELS.values()]
    for n in range(complaints):
        cid = f"R-{n:06d}"
        received = START + timedelta(days=rng.uniform(0, 270))
        channel = rng.choices(channels, weights)[0]
        neglected = rng.random() < 0.3
        escalated = rng.random() < 0.2
        rate = BASE_RATE_PER_DAY * CHANNELS[channel][1] * (0.6 if escalated else 1.0) * (
            0.25 if neglected else 1.0)
        resolve_after = rng.expovariate(rate)

        def add(days: float, kind: str, start: datetime = received, c: str = cid,
                **fields: Any) -> None:
            when = start + timedelta(days=days)
            events.append((when, {"event_id": f"{c}-{len(events)}", "type": kind,
                                  "occurred_at": _at(when), "complaint_id": c, **fields}))

        add(0, "complaint.received", channel=channel, category=rng.choice(["B9", "B13", "B15"]),
            fuel="electricity", summary="Complaint", customer={
                "account_id": f"A-{n}", "name": f"Customer {n}", "address": ["1 High St"],
                "postcode": "EX1 1AA", "preferred_contact": "letter"},
            handler={"id": "h-1", "name": "Sam Patel"})
        if escalated:
            add(rng.uniform(1, 8), "complaint.escalation_requested")
        end = min(resolve_after, 56.0)
        if not neglected:
            day = rng.uniform(3, 7)
            while day < end:
                add(day, "complaint.contact_logged", channel="telephone", summary="Update",
                    party="customer")
                day += rng.uniform(4, 9)
        if resolve_after < 56:
            add(resolve_after, "complaint.resolved",
                resolution={"apology": True, "explanation": "Put right"})
    events.sort(key=lambda pair: pair[0])
    return events


def brier(predictions: list[float], outcomes: list[int]) -> float:
    return sum((p - y) ** 2 for p, y in zip(predictions, outcomes, strict=True)) / len(outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--complaints", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    tune_garbage_collector()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        events = generate(args.complaints, args.seed)
        path.write_text("".join(json.dumps(e) + "\n" for _, e in events), encoding="utf-8")
        app = bootstrap(f"sqlite:///{Path(tmp) / 'record.db'}", "kilowatt-connect")
        started = time.perf_counter()
        report = ingest_file(app, path)
        print(f"\n{args.complaints} complaints, {len(events)} events (seed {args.seed}); "
              f"ingested {report.applied} in {time.perf_counter() - started:.1f} s")
        with app.sessions() as session:
            breached = {cid for cid, in session.execute(
                select(Letter.complaint_id).where(Letter.kind == "eight_week"))}
            predictions: list[float] = []
            outcomes: list[int] = []
            base_rates: list[float] = []
            for cutoff in CUTOFFS:
                started = time.perf_counter()
                rows = at_risk(session, cutoff, 56)
                spent = time.perf_counter() - started
                timelines = load(session, cutoff)
                past = [t for t in timelines if t.received_at + 56 * DAY <= cutoff]
                signposted = {cid for cid, at in session.execute(
                    select(Letter.complaint_id, Letter.issued_at)
                    .where(Letter.kind == "eight_week")) if at <= cutoff}
                base = (sum(1 for t in past if t.complaint_id in signposted) / len(past)
                        if past else 0.0)
                ys = [1 if r["complaint_id"] in breached else 0 for r in rows]
                ps = [float(r["p_breach"]) for r in rows]
                print(f"cutoff {cutoff:%Y-%m-%d}: {len(rows)} at risk, model "
                      f"{rows[0]['model'] if rows else '-'}, fitted on "
                      f"{past_eight_weeks(timelines, cutoff, 56)} complaints past eight weeks "
                      f"(base rate {base:.3f}); {sum(ys)} then breached; fit+predict "
                      f"{spent:.1f} s")
                predictions += ps
                outcomes += ys
                base_rates += [base] * len(rows)
    score = brier(predictions, outcomes)
    reference = brier(base_rates, outcomes)
    own = sum(outcomes) / len(outcomes)
    constant = brier([own] * len(outcomes), outcomes)
    print(f"\nscored {len(outcomes)} predictions, {sum(outcomes)} breaches "
          f"(rate {own:.3f})")
    print(f"{'':44}{'Brier':>8}{'skill':>8}")
    print(f"{'model':44}{score:8.4f}")
    print(f"{'base rate of the history at the cutoff':44}{reference:8.4f}"
          f"{1 - score / reference:8.3f}")
    print(f"{'constant at the scored set own rate':44}{constant:8.4f}"
          f"{1 - score / constant:8.3f}")
    print("\ncalibration by decile of p_breach")
    print(f"{'decile':>8}{'n':>6}{'mean p':>9}{'observed':>10}")
    ranked = sorted(zip(predictions, outcomes, strict=True))
    for decile in range(10):
        part = ranked[math.floor(decile * len(ranked) / 10):
                      math.floor((decile + 1) * len(ranked) / 10)]
        if part:
            print(f"{decile + 1:8}{len(part):6}{sum(p for p, _ in part) / len(part):9.3f}"
                  f"{sum(y for _, y in part) / len(part):10.3f}")


if __name__ == "__main__":
    main()
