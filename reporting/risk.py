"""`complaints risk`: which open complaints will breach eight weeks (an 8-week letter)?

A complaint breaches when it is still open and unresolved at its eight-week deadline; a
resolution, a deadlock letter, a withdrawal or a referral ends the risk without one. So what is
learnt is the hazard of that *ending*: a complaint with h days left breaches if it does not end
within h days, and p_breach = S(h | x), the probability of surviving (staying open) h more days.

The model (lifelines' Cox proportional hazards, `CoxPHFitter`) is fitted on the record's own
history as of the instant asked, as landmark rows: every complaint still open at ages 0, 3, 7,
14, 21, 28, 35, 42 and 49 days gives one row with what was known then (stage, category,
channel, escalations so far, days since its last event) and what happened next (ended after d
days: an event; breached or still open at the fit instant: censored). The fit is stratified by
landmark, so age enters as each landmark's own baseline hazard rather than as a straight-line
effect. Predicting uses the same features at the instant asked, the latest landmark at or
before the complaint's age, and the time left to its eight-week deadline.

With too little history (fewer than `MIN_HISTORY` complaints past their eight weeks), or when
the fit fails, a documented prior answers instead (`prior_p_breach`), and each row's `"model"`
says which: `"cox_ph"` or `"prior"`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.clock import Clock, SystemClock
from workflow.handlers import COMPLAINT_WIDE_DEADLINES
from workflow.lifecycle import OPEN_STATES
from workflow.queries import iso, owner_name
from workflow.schema import Complaint, Deadline, HistoryEntry, Letter

DAY = timedelta(days=1)
MIN_HISTORY = 50  # complaints past their eight weeks before the record's own model answers
LANDMARK_DAYS = (0, 3, 7, 14, 21, 28, 35, 42, 49)
MAX_ROWS = 60_000  # landmark rows fitted (a random sample beyond that: the fit is O(n log n))
PENALIZER = 0.01  # a light ridge penalty: keeps the fit stable with sparse categories
SIGNPOSTING = ("eight_week", "deadlock")
# The prior (no history of our own): while someone works a complaint, half of the open ones
# end within a week; a complaint silent for two weeks or more ends four times more slowly.
PRIOR_HALF_LIFE_DAYS = 7.0
PRIOR_SILENT_HALF_LIFE_DAYS = 28.0
PRIOR_SILENT_AFTER_DAYS = 14.0


@dataclass
class Timeline:
    """One complaint's history as of the instant asked (first cycle's risk, later cycles')."""

    complaint_id: str
    reference: str
    category: str
    channel: str
    received_at: datetime
    owner: str | None
    # (at, type, to_state) of every history row at or before the instant, in applied order.
    rows: list[tuple[datetime, str, str]]

    def state_at(self, instant: datetime) -> str | None:
        state = None
        for at, _, to_state in self.rows:
            if at > instant:
                break
            state = to_state
        return state

    def features_at(self, instant: datetime, since: datetime | None = None) -> dict[str, Any]:
        """What was known at `instant`; the age is that of its open stretch (a reopened
        complaint is aged from its reopening), which started at `since` when the caller
        knows it."""
        escalations, last_event = 0, self.received_at
        for at, kind, _ in self.rows:
            if at > instant:
                break
            if not kind.startswith("deadline."):
                last_event = max(last_event, at)
            if kind == "complaint.escalation_requested":
                escalations += 1
        start = since if since is not None else self.open_since(instant)
        return {"age_days": (instant - start) / DAY,
                "silent_days": max(0.0, (instant - last_event) / DAY),
                "escalations": escalations, "stage": self.state_at(instant) or "received",
                "category": self.category, "channel": self.channel}

    def spells(self) -> list[tuple[datetime, datetime | None, bool]]:
        """(start, end, breached) of each stretch the complaint was open: from its receipt,
        and from each reopen, to when it next left the open states (None: still open).
        A stretch that ended in an 8-week or deadlock letter is its last one that counts:
        once signposted, a complaint cannot breach again (RULES s.5)."""
        found: list[tuple[datetime, datetime | None, bool]] = []
        start: datetime | None = self.received_at
        for at, kind, to_state in self.rows:
            if start is not None and to_state not in OPEN_STATES:
                breached = to_state == "eight_week" and kind == "deadline.eight_week"
                found.append((start, at, breached))
                if breached or to_state == "deadlock":
                    return found
                start = None
            elif start is None and to_state in OPEN_STATES:
                start = at  # reopened: a new cycle (its eight-week deadline: RULES s.5)
        if start is not None:
            found.append((start, None, False))
        return found

    def open_since(self, instant: datetime) -> datetime:
        """The start of the open stretch `instant` falls in (its cycle's receipt)."""
        since = self.received_at
        for start, _, _ in self.spells():
            if start <= instant:
                since = start
        return since


def load(session: Session, as_of: datetime) -> list[Timeline]:
    history: dict[str, list[tuple[datetime, str, str]]] = {}
    for complaint_id, at, kind, to_state in session.execute(
            select(HistoryEntry.complaint_id, HistoryEntry.at, HistoryEntry.type,
                   HistoryEntry.to_state)
            .where(HistoryEntry.at <= as_of).order_by(HistoryEntry.id)):
        history.setdefault(complaint_id, []).append((at, kind, to_state))
    timelines = []
    for row in session.execute(
            select(Complaint.complaint_id, Complaint.reference, Complaint.category,
                   Complaint.channel, Complaint.received_at, Complaint.owner)
            .where(Complaint.received_at <= as_of, Complaint.duplicate_of.is_(None))
            .order_by(Complaint.complaint_id)):
        # The owner as it stands now (RULES s.6), even at an earlier as-of.
        timelines.append(Timeline(
            row.complaint_id, row.reference, row.category, row.channel, row.received_at,
            owner_name(row.owner), history.get(row.complaint_id, [])))
    return timelines


# -- training rows --------------------------------------------------------------------------
def landmark_rows(timelines: list[Timeline], as_of: datetime,
                  eight_weeks_days: int) -> list[dict[str, Any]]:
    """Landmark rows of every open stretch (a first cycle, and each reopened one, aged from
    its own start), as of `as_of`."""
    rows = []
    for timeline in timelines:
        for start, end, breached in timeline.spells():
            for day in LANDMARK_DAYS:
                if day >= eight_weeks_days:
                    break
                at = start + day * DAY
                if at > as_of or (end is not None and end <= at):
                    break
                if end is None:
                    duration, ended = (as_of - at) / DAY, 0
                else:
                    duration, ended = (end - at) / DAY, 0 if breached else 1
                if duration <= 0:
                    continue
                rows.append({**timeline.features_at(at, start), "landmark": day,
                             "duration": duration, "ended": ended})
    return rows


def past_eight_weeks(timelines: list[Timeline], as_of: datetime, eight_weeks_days: int) -> int:
    return sum(1 for t in timelines if t.received_at + eight_weeks_days * DAY <= as_of)


# -- the model ------------------------------------------------------------------------------
class CoxModel:
    """lifelines' CoxPHFitter over the landmark rows, one-hot coded, stratified by landmark:
    each landmark age has its own baseline hazard (how fast complaints of that age end), the
    features scale it."""

    CATEGORICAL = ("stage", "category", "channel")

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        import pandas as pd
        from lifelines import CoxPHFitter

        if len(rows) > MAX_ROWS:
            rows = random.Random(7).sample(rows, MAX_ROWS)
        frame = pd.get_dummies(pd.DataFrame(rows).drop(columns=["age_days"]),
                               columns=list(self.CATEGORICAL), dtype=float)
        covariates = [c for c in frame.columns if c not in ("duration", "ended", "landmark")
                      and frame[c].nunique() > 1]
        if not frame["ended"].any():
            raise ValueError("no complaint in the history ended: nothing to learn from")
        self.columns = covariates
        self.fitter = CoxPHFitter(penalizer=PENALIZER)
        self.fitter.fit(frame[[*covariates, "landmark", "duration", "ended"]],
                        duration_col="duration", event_col="ended", strata=["landmark"])
        baseline = self.fitter.baseline_cumulative_hazard_
        self._times = [float(t) for t in baseline.index]
        self._hazard = {int(column): [float(h) for h in baseline[column]]
                        for column in baseline.columns}
        # How long after each landmark the history shows a complaint still open: past that the
        # baseline is flat (nothing ends there), which would read as a certain breach.
        self._support = {int(day): float(d)
                         for day, d in frame.groupby("landmark")["duration"].max().items()}

    def _cumulative(self, landmark: int, after: float) -> float:
        """The landmark's baseline cumulative hazard `after` days after it (a step function)."""
        import bisect

        index = bisect.bisect_right(self._times, after) - 1
        return self._hazard[landmark][index] if index >= 0 else 0.0

    def p_breach(self, features: list[dict[str, Any]],
                 horizons: list[float]) -> list[float | None]:
        """Open at age a (landmark L = the latest at or before a) with h days left: stays
        open h more days with probability exp(-(H_L(a - L + h) - H_L(a - L)) x partial).
        None where a - L is beyond what the history shows of landmark L: the model has
        nothing to say there (the caller answers with the prior)."""
        import pandas as pd

        if not features:
            return []
        frame = pd.get_dummies(pd.DataFrame(features), columns=list(self.CATEGORICAL),
                               dtype=float)
        landmarks = [self._landmark(f["age_days"]) for f in features]
        frame["landmark"] = landmarks
        partial = self.fitter.predict_partial_hazard(
            frame.reindex(columns=[*self.columns, "landmark"], fill_value=0.0))
        found: list[float | None] = []
        for feature, landmark, horizon, scale in zip(features, landmarks, horizons, partial,
                                                     strict=True):
            offset = feature["age_days"] - landmark
            if offset > self._support.get(landmark, 0.0):
                found.append(None)
                continue
            hazard = self._cumulative(landmark, offset + horizon) - self._cumulative(
                landmark, offset)
            found.append(math.exp(-max(0.0, hazard) * float(scale)))
        return found

    def _landmark(self, age_days: float) -> int:
        fitted = [day for day in LANDMARK_DAYS if day in self._hazard and day <= age_days]
        return fitted[-1] if fitted else min(self._hazard)


def prior_p_breach(features: dict[str, Any], horizon_days: float) -> float:
    """No history of our own: complaints end at a constant rate, half within
    PRIOR_HALF_LIFE_DAYS while worked, four times more slowly once silent for
    PRIOR_SILENT_AFTER_DAYS; the chance of still being open at the deadline."""
    half_life = (PRIOR_SILENT_HALF_LIFE_DAYS
                 if features["silent_days"] >= PRIOR_SILENT_AFTER_DAYS else PRIOR_HALF_LIFE_DAYS)
    return math.exp(-math.log(2) / half_life * max(0.0, horizon_days))


# -- the list ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    timeline: Timeline
    state: str
    eight_week_due: datetime
    next_deadline: tuple[str, datetime] | None


def candidates(session: Session, timelines: list[Timeline], as_of: datetime) -> list[Candidate]:
    """Open at as-of, no 8-week or deadlock letter issued by then, an eight-week deadline
    still to fire. The next deadline is the earliest still to fire that will act: one of an
    earlier cycle does nothing when it fires (RULES s.5), except those of the complaint."""
    signposted = set(session.scalars(
        select(Letter.complaint_id).where(Letter.kind.in_(SIGNPOSTING), Letter.issued_at <= as_of)))
    pending: dict[str, list[tuple[datetime, int, str, int]]] = {}
    for complaint_id, kind, due_at, ident, cycle in session.execute(
            select(Deadline.complaint_id, Deadline.kind, Deadline.due_at, Deadline.id,
                   Deadline.cycle)
            .where(Deadline.created_at <= as_of,
                   (Deadline.fired_at.is_(None)) | (Deadline.fired_at > as_of))):
        pending.setdefault(complaint_id, []).append((due_at, ident, kind, cycle))
    found = []
    for timeline in timelines:
        state = timeline.state_at(as_of)
        if state not in OPEN_STATES or timeline.complaint_id in signposted:
            continue
        cycle = sum(1 for start, _, _ in timeline.spells() if start <= as_of)
        deadlines = sorted(d for d in pending.get(timeline.complaint_id, [])
                           if d[2] in COMPLAINT_WIDE_DEADLINES or d[3] == cycle)
        eight_weeks = [due for due, _, kind, _ in deadlines if kind == "eight_week"]
        if not eight_weeks:
            continue
        following = deadlines[0]
        found.append(Candidate(timeline, state, max(eight_weeks),
                               (following[2], following[0])))
    return found


def at_risk(session: Session, as_of: datetime, eight_weeks_days: int) -> list[dict[str, Any]]:
    """docs/contract.md's `complaints risk` list, highest p_breach first."""
    timelines = load(session, as_of)
    found = candidates(session, timelines, as_of)
    features = [c.timeline.features_at(as_of) for c in found]
    horizons = [max(0.0, (c.eight_week_due - as_of) / DAY) for c in found]
    priors = [prior_p_breach(f, h) for f, h in zip(features, horizons, strict=True)]
    learnt: list[float | None] = [None] * len(found)
    if past_eight_weeks(timelines, as_of, eight_weeks_days) >= MIN_HISTORY and found:
        try:
            model = CoxModel(landmark_rows(timelines, as_of, eight_weeks_days))
            learnt = model.p_breach(features, horizons)
        except Exception:  # noqa: BLE001 - a failed fit (no events, no convergence): the prior
            pass
    answers = [(prior, "prior") if p is None else (p, "cox_ph")
               for p, prior in zip(learnt, priors, strict=True)]
    rows: list[dict[str, Any]] = [{
        "complaint_id": c.timeline.complaint_id,
        "reference": c.timeline.reference,
        "state": c.state,
        "owner": c.timeline.owner,
        "received_at": iso(c.timeline.received_at),
        "eight_week_due": iso(c.eight_week_due),
        "p_breach": round(min(1.0, max(0.0, p)), 4),
        "next_deadline": ({"kind": c.next_deadline[0], "due_at": iso(c.next_deadline[1])}
                          if c.next_deadline else None),
        "model": model_name,
    } for c, (p, model_name) in zip(found, answers, strict=True)]
    rows.sort(key=lambda r: (-float(r["p_breach"]), str(r["eight_week_due"]),
                             str(r["complaint_id"])))
    return rows


# -- served on the ops API (`complaints up`) ------------------------------------------------
@dataclass(frozen=True)
class RiskBoard:
    """The latest at-risk list, as the ops API serves it (replaced whole at each refit)."""

    as_of: datetime
    computed_at: datetime
    seconds: float  # how long the fit and prediction took
    rows: list[dict[str, Any]]

    @property
    def model(self) -> str | None:
        """"cox_ph" when the record's own model answered any row (rows beyond what its
        history shows answer with the prior, and say so), "prior" when none did."""
        if not self.rows:
            return None
        return "cox_ph" if any(r["model"] == "cox_ph" for r in self.rows) else "prior"

    def page(self, offset: int, limit: int) -> dict[str, Any]:
        return {"as_of": iso(self.as_of), "computed_at": iso(self.computed_at),
                "model": self.model, "total": len(self.rows), "offset": offset, "limit": limit,
                "complaints": self.rows[offset:offset + limit]}


def compute_board(app: Any, now: datetime) -> RiskBoard:
    """Fit and predict from the record as of now (never before its latest instant)."""
    import time

    from workflow import queries

    started = time.perf_counter()
    with app.sessions() as session:
        as_of = queries.default_as_of(session, now)
        rows = at_risk(session, as_of, app.procedure.eight_weeks_days)
    return RiskBoard(as_of, now, time.perf_counter() - started, rows)


class WithRiskRefits:
    """The ops service (aggregator and web server) with the at-risk list refitted from the
    database every `interval` seconds in a thread of its own, and put on the ops state the
    web server reads (`OpsState.risk`, served at `/risk`)."""

    def __init__(self, service: Any, app: Any, interval: float,
                 clock: Clock | None = None) -> None:
        self.service = service
        self.app = app
        self.interval = interval
        self.clock = clock or SystemClock()
        self._thread: Any = None
        service.state.record = app  # the work queue's reads (search, timeline)

    @property
    def stats(self) -> Any:
        return self.service.stats

    def run(self, stop: Any) -> None:
        import threading

        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._refits, args=(stop,), name="risk",
                                            daemon=True)
            self._thread.start()
        self.service.run(stop)

    def _refits(self, stop: Any) -> None:
        import logging

        log = logging.getLogger(__name__)
        while not stop.is_set():
            try:
                board = compute_board(self.app, self.clock.now())
                self.service.state.risk = board
                log.info("risk refitted: %d complaints at risk (%s) in %.1f s",
                         len(board.rows), board.model or "none", board.seconds)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.error("risk refit failed (%s)", type(exc).__name__)
            stop.wait(self.interval)
