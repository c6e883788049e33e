"""Applying one event, or firing one deadline, to one complaint (docs/rules.md s.2-6).

Every check that can refuse an event runs before the first change, so a refused event leaves
the complaint untouched; the caller wraps each message in a savepoint as a second guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import configure_mappers
from statemachine.exceptions import TransitionNotAllowed

from workflow import events as ev
from workflow.calendar import elapsed_days, local_date, referral_window_end, remedy_deadline
from workflow.clock import Clock
from workflow.counting import CONTACT_PARTIES, counted_resolution, d_plus_1, eight_weeks_boundary
from workflow.deadline_keys import deadline_key
from workflow.delivery import new_delivery
from workflow.letter_context import (
    COMMUNICATIONS,
    DEFAULT_POSITION,
    HANDLER_ROLE,
    SENIOR_MANAGER_ROLE,
    SIGNPOSTING_KINDS,
    build_context,
    communications,
    dedupe_key,
    expected_resolution_date,
    latest_offer,
    letter_id_for,
    offer_of,
    owner_from,
    where_it_stands,
)
from workflow.lifecycle import OPEN_STATES, transition
from workflow.procedure import Procedure
from workflow.reference import candidate
from workflow.schema import (
    AccountsSnapshotRow,
    CategoryChange,
    Complaint,
    Contact,
    Deadline,
    Delivery,
    HistoryEntry,
    Letter,
    OutboxMessage,
    Receipt,
    ResolutionRecord,
)
from workflow.unit_of_work import AbstractUnitOfWork, Record

# New complaints and deadlines are made as the ORM makes an instance when loading a row: no
# constructor, no attribute events, the values put straight into the instance's dict. The
# declarative constructor sets each keyword through the attribute instrumentation (history,
# modified flags): Complaint(...) cost about 133 µs and Deadline(...) 47 µs of an ingest's CPU,
# this a tenth of that. The instances hold the same values (columns not given stay unset, as
# with the constructor: the unit of work fills defaults at the INSERT), and changes made to
# them afterwards are tracked as before.
_new_complaint: Final = Complaint.__mapper__.class_manager.new_instance
_new_deadline: Final = Deadline.__mapper__.class_manager.new_instance
# The constructor (or a first query) would configure the mappers, attaching each attribute's
# implementation; an instance made this way does not, so they are configured here, once. A
# process that builds a complaint before anything else (a replay worker) needs it.
configure_mappers()


class Rejected(Exception):
    """The event cannot be applied; the reason is for the person who sent it."""


class Workflow:
    """The handlers, wired to a unit of work, the procedure and a clock."""

    def __init__(self, uow: AbstractUnitOfWork, procedure: Procedure, clock: Clock) -> None:
        self.uow = uow
        self.procedure = procedure
        self.calendar = procedure.calendar
        self.clock = clock
        # Called with each deadline created, so an event-time runner can track the next due.
        self.on_deadline_created: Callable[[Deadline], None] | None = None

    # ------------------------------------------------------------------ events
    def prefetch(self, complaint_ids: set[str]) -> None:
        """Before a batch: its complaints, and whether the references its new complaints would
        take are free, each with one query instead of one per message."""
        new = self.uow.prefetch_complaints(complaint_ids)
        prefix = self.procedure.reference_prefix
        self.uow.prefetch_references({candidate(prefix, cid) for cid in new})

    def apply(self, event: ev.Event) -> None:
        """Apply a validated event, or raise `Rejected` with nothing changed."""
        handles = HANDLERS[type(event)]
        if handles.of_complaint:
            self._complaint_event(event, handles)
        else:
            handles.effect(self, event)
        self.uow.mark_processed(event.event_id, self.clock.now())

    def _received(self, event: ev.ComplaintReceived) -> None:
        if self.uow.complaint(event.complaint_id) is not None:
            raise Rejected(
                f"complaint {event.complaint_id} already exists "
                "(complaint.received for an existing id)"
            )
        if event.duplicate_of is not None:
            original = self.uow.complaint(event.duplicate_of)
            if original is None:
                raise Rejected(f"duplicate_of names unknown complaint {event.duplicate_of}")
            if original.state == "duplicate":
                raise Rejected(
                    f"duplicate_of names {event.duplicate_of}, which is itself a duplicate "
                    f"record (name the original, {original.duplicate_of})"
                )
        at = event.occurred_at
        d1 = self.calendar.d_plus_1(at)
        state = "immediate" if event.handler else "received"
        if event.duplicate_of:
            state = "duplicate"
        handler = event.handler.model_dump() if event.handler else None
        complaint = _new_complaint()
        vars(complaint).update(
            complaint_id=event.complaint_id,
            reference=self._new_reference(event.complaint_id),
            state=state,
            category=event.category,
            other_explanation=event.other_explanation,
            subsidiary_categories=list(event.subsidiary_categories),
            channel=event.channel,
            source=event.source,
            fuel=event.fuel,
            meter_type=event.meter_type,
            summary=event.summary,
            contact_id=event.contact_id,
            duplicate_of=event.duplicate_of,
            customer=event.customer.model_dump(),
            taken_by=handler,
            handler=handler,
            owner=owner_from(handler, HANDLER_ROLE) if handler else None,
            received_at=at,
            received_event_id=event.event_id,
            cycle=1,
            cycle_received_at=at,
            cycle_d1_deadline=d1,
            senior_manager_responded=False,
            remedy_overdue=False,
            last_event_at=at,
        )
        self.uow.add(complaint)
        self._history(complaint, event.event_id, event.type, at, None,
                      lambda: event.model_dump(mode="json"))
        if self.uow.publishes:  # (tested first on the hot paths: no payload built for nothing)
            self._emit(complaint, f"{event.event_id}:registered", "complaint.registered", at, {
                "state": state, "source": event.source, "duplicate_of": event.duplicate_of,
                "cycle": 1, "contact_id": event.contact_id,
            })
        if state == "duplicate":
            return  # recorded and linked; no deadlines, letters or counts (docs/rules.md s.2)
        self._state_changed(complaint, event.event_id, event.type, at, None, state)
        self.uow.append(CategoryChange,
            complaint_id=complaint.complaint_id, event_id=event.event_id, effective_at=at,
            category=event.category, other_explanation=event.other_explanation,
        )
        self._start_cycle(complaint, event.event_id, at, d1, event.channel, is_reopen=False)
        self._schedule(complaint, "eight_week", event.event_id,
                       elapsed_days(at, self.procedure.eight_weeks_days))

    def _complaint_event(self, event: Any, handles: Handles) -> None:
        """A complaint's event: refuse it, or move the lifecycle (the table's trigger), record
        it in the history, then run its handler for the rest of its effects."""
        complaint = self.uow.complaint(event.complaint_id)
        if complaint is None:
            raise Rejected(f"unknown complaint {event.complaint_id}")
        if complaint.state == "duplicate":
            raise Rejected(
                f"complaint {complaint.complaint_id} is a duplicate record of "
                f"{complaint.duplicate_of}; send its events for {complaint.duplicate_of}"
            )
        before = complaint.state
        trigger = handles.trigger(event) if callable(handles.trigger) else handles.trigger
        if trigger is not None:
            try:
                transition(complaint, trigger)
            except TransitionNotAllowed:
                raise Rejected(self._refusal(complaint, event.type, trigger, before)) from None
        at = event.occurred_at
        complaint.last_event_at = max(complaint.last_event_at, at)
        extra: dict[str, Any] = {}
        if complaint.state == "closed" and before != "closed":
            complaint.closed_by = event.type
        if trigger == "refer":
            # (v2) Recorded, not refused: the Ombudsman decides whether a referral is in time.
            complaint.late_referral = self._referral_is_late(complaint, at)
            extra["late_referral"] = complaint.late_referral
        elif trigger == "reopen":
            # The reopen starts the next cycle (its effect, `_reopened`, below): the change
            # into `reopened` is that cycle's first, and its message says so.
            extra["cycle"] = complaint.cycle + 1
        self._history(complaint, event.event_id, event.type, at, before,
                      lambda: event.model_dump(mode="json"))
        if complaint.state != before:
            self._state_changed(complaint, event.event_id, event.type, at, before, complaint.state,
                                channel=getattr(event, "channel", None), extra=extra)
        handles.effect(self, complaint, event)

    @staticmethod
    def _refusal(complaint: Complaint, event_type: str, trigger: str, before: str) -> str:
        reason = f"{event_type} not allowed in state {before}"
        if trigger == "refer" and (before in OPEN_STATES or before == "closed"):
            if not complaint.signposting_letter_issued:
                reason += " (no 8-week or deadlock letter has been issued)"
            elif before == "closed":
                reason += (f" (closed by {complaint.closed_by}: only a complaint withdrawn, or "
                           "whose referral window lapsed, can still be referred)")
        return reason

    def _referral_is_late(self, complaint: Complaint, at: datetime) -> bool:
        """At or after the end of the latest 8-week or deadlock letter's referral window."""
        letter_at = complaint.signposting_letter_at
        if letter_at is None:
            return False
        return at >= referral_window_end(letter_at, self.procedure.referral_window_months)

    # --- effects of each complaint event (after the transition, if any) ----------------
    def _assigned(self, complaint: Complaint, event: ev.ComplaintAssigned) -> None:
        complaint.handler = event.handler.model_dump()
        if complaint.state == "senior_manager":
            # Assigned during the review: the senior manager reviewing it, whose name the
            # senior manager update gives "if known" (docs/rules.md s.6).
            complaint.senior_manager = complaint.handler
        complaint.owner = owner_from(complaint.handler, SENIOR_MANAGER_ROLE
                                     if complaint.state == "senior_manager" else HANDLER_ROLE)

    def _acknowledged(self, complaint: Complaint, event: ev.ComplaintAcknowledged) -> None:
        complaint.acknowledged_cycle = complaint.cycle

    def _contact_logged(self, complaint: Complaint, event: ev.ContactLogged) -> None:
        if event.party in CONTACT_PARTIES:
            self.uow.append(Contact,
                event_id=event.event_id, occurred_at=event.occurred_at, channel=event.channel,
                kind="contact_logged", contact_id=None, complaint_id=complaint.complaint_id,
                party=event.party,
            )

    def _recategorised(self, complaint: Complaint, event: ev.ComplaintRecategorised) -> None:
        complaint.category = event.category
        complaint.other_explanation = event.other_explanation
        self.uow.append(CategoryChange,
            complaint_id=complaint.complaint_id, event_id=event.event_id,
            effective_at=event.occurred_at, category=event.category,
            other_explanation=event.other_explanation,
        )
        self._emit(complaint, f"{event.event_id}:recategorised", "complaint.recategorised",
                   event.occurred_at, {"cycle": complaint.cycle})

    def _escalated(self, complaint: Complaint, event: ev.EscalationRequested) -> None:
        complaint.escalation_event_id = event.event_id
        complaint.escalated_at = event.occurred_at
        complaint.senior_manager = None
        complaint.senior_manager_responded = False
        self._schedule(complaint, "senior_manager_review", event.event_id,
                       self.calendar.working_days_after(
                           event.occurred_at, self.procedure.senior_manager_review_working_days))

    def _senior_manager_response(
        self, complaint: Complaint, event: ev.SeniorManagerResponse
    ) -> None:
        complaint.senior_manager = event.manager.model_dump()
        complaint.owner = owner_from(complaint.senior_manager, SENIOR_MANAGER_ROLE)
        complaint.senior_manager_responded = True
        complaint.senior_manager_position = event.summary

    def _dissatisfied(self, complaint: Complaint, event: ev.CustomerDissatisfied) -> None:
        self._schedule(complaint, "deadlock_letter", event.event_id,
                       self.calendar.working_days_after(
                           event.occurred_at, self.procedure.deadlock_letter_working_days))

    def _deadlock_reached(self, complaint: Complaint, event: ev.DeadlockReached) -> None:
        self._deadlock_letter(complaint, event.event_id, event.occurred_at,
                              event.position, event.offer_open, offer_of(event.offer))

    def _resolved(self, complaint: Complaint, event: ev.ComplaintResolved) -> None:
        self._record_resolution(complaint, event)
        if event.occurred_at > complaint.cycle_d1_deadline:
            self._issue_letter(complaint, "resolution", event.event_id, event.occurred_at,
                               {"resolution": event.resolution.model_dump(mode="json")})

    def _reopened(self, complaint: Complaint, event: ev.ComplaintReopened) -> None:
        at = event.occurred_at
        complaint.cycle += 1
        complaint.cycle_received_at = at
        d1 = self.calendar.d_plus_1(at)
        complaint.cycle_d1_deadline = d1
        self._start_cycle(complaint, event.event_id, at, d1, event.channel, is_reopen=True)
        eight_weeks = elapsed_days(complaint.received_at, self.procedure.eight_weeks_days)
        if eight_weeks <= at:
            # The original eight-week instant has passed: the right arises again at D+1.
            self._schedule(complaint, "eight_week", event.event_id, d1)

    def _referred(self, complaint: Complaint, event: ev.ReferredToOmbudsman) -> None:
        complaint.ombudsman_ref = event.ombudsman_ref

    def _decided(self, complaint: Complaint, event: ev.OmbudsmanDecision) -> None:
        if complaint.state != "ombudsman":
            return  # closed: no remedy required, or the customer rejected the decision
        complaint.remedy_decision_event_id = event.event_id
        complaint.remedy_overdue = False
        remedies = event.remedies
        parts = [name for name, given in (("an apology", remedies.apology),
                                          ("an explanation", remedies.explanation)) if given]
        if remedies.action:
            parts.append(remedies.action)
        if remedies.award_pence:
            parts.append(f"an award of £{remedies.award_pence / 100:,.2f}")
        complaint.remedy_summary = "; ".join(parts)
        self._schedule(complaint, "remedy", event.event_id,
                       remedy_deadline(event.notified, self.procedure.remedy_days))

    def _remedy_implemented(self, complaint: Complaint, event: ev.RemedyImplemented) -> None:
        complaint.remedy_overdue = False
        self._record_resolution(complaint, event)
        self._issue_letter(complaint, "ombudsman_outcome", event.event_id, event.occurred_at, {
            "ombudsman_ref": complaint.ombudsman_ref,
            "remedy_summary": event.summary,
        })

    def _withdrawn(self, complaint: Complaint, event: ev.ComplaintWithdrawn) -> None:
        """(v2) The withdrawal confirmed in writing, once per complaint; inside the referral
        window of the latest 8-week or deadlock letter, with the date it ends
        (docs/rules.md s.6)."""
        at = event.occurred_at
        referral_deadline = None
        if complaint.signposting_letter_at is not None:
            window_end = referral_window_end(complaint.signposting_letter_at,
                                             self.procedure.referral_window_months)
            if at < window_end:
                referral_deadline = local_date(window_end).isoformat()
        self._issue_letter(complaint, "withdrawal", event.event_id, at, {
            "withdrawn_on": local_date(at).isoformat(),
            "referral_deadline": referral_deadline,
        })

    def _no_effect(self, complaint: Complaint, event: ev.ComplaintEvent) -> None:
        """The transition and the history entry are the whole effect."""

    # --- events without a complaint -----------------------------------------------------
    def _contact_received(self, event: ev.ContactReceived) -> None:
        self.uow.append(Contact,
            event_id=event.event_id, occurred_at=event.occurred_at, channel=event.channel,
            kind=event.kind, contact_id=event.contact_id, complaint_id=None, party=None,
        )

    def _accounts_snapshot(self, event: ev.AccountsSnapshot) -> None:
        self.uow.append(AccountsSnapshotRow,
            event_id=event.event_id, as_of=event.as_of,
            electricity_accounts=event.electricity_accounts, gas_accounts=event.gas_accounts,
            occurred_at=event.occurred_at,
        )

    # ------------------------------------------------------------------ deadlines
    def fire(self, deadline: Deadline) -> str:
        """Fire a due deadline: re-check the complaint and act, or record why not."""
        if deadline.fired_at is not None:
            return deadline.outcome or "already fired"
        complaint = self.uow.complaint(deadline.complaint_id)
        assert complaint is not None, "a deadline always belongs to a stored complaint"
        before = complaint.state
        # Each column read once (an instrumented read each); no effect changes them.
        kind, key, due_at = deadline.kind, deadline.deadline_key, deadline.due_at
        if kind not in COMPLAINT_WIDE_DEADLINES and deadline.cycle != complaint.cycle:
            outcome = f"no longer applies: cycle {complaint.cycle} has started"
        else:
            outcome = DEADLINES[kind].effect(self, complaint, deadline)
        self.uow.record_firing(deadline, self.clock.now(), outcome)
        history_id = f"deadline:{key}"
        cause = deadline.cause
        self._history(complaint, history_id, f"deadline.{kind}", due_at, before,
                      lambda: {"due_at": due_at.isoformat(), "cause": cause, "outcome": outcome})
        if complaint.state != before:
            if complaint.state == "closed":
                complaint.closed_by = f"deadline.{kind}"
            self._state_changed(complaint, history_id, f"deadline.{kind}", due_at, before,
                                complaint.state)
        if self.uow.publishes:
            self._emit(complaint, f"{key}:fired", "deadline.fired", due_at,
                       {"kind": kind, "deadline_key": key, "due_at": due_at.isoformat(),
                        "outcome": outcome})
        return outcome

    def _acknowledgement_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state not in OPEN_STATES:
            return f"no longer applies: state {complaint.state}"
        if complaint.acknowledged_cycle == complaint.cycle:
            return "no longer applies: acknowledged by the handler"
        expected = expected_resolution_date(self.procedure, complaint, complaint.cycle_received_at)
        eight_weeks = elapsed_days(complaint.received_at, self.procedure.eight_weeks_days)
        return self._issue_letter(complaint, "acknowledgement", deadline.deadline_key,
                                  deadline.due_at, {
                                      "expected_by": expected,
                                      "eight_week_date": local_date(eight_weeks).isoformat(),
                                  })

    def _progress_update_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state not in OPEN_STATES:
            # Not open: no letter and no next one; this cycle's chain has ended (docs/rules.md s.5).
            return f"no longer applies: state {complaint.state}"
        # (v2) One letter per progress-update deadline (docs/rules.md s.6), keyed by its cause.
        key = dedupe_key(complaint, "progress_update", deadline.cause)
        # Issued already (this cause processed before): so was the next deadline.
        continued = self.uow.letter_exists(complaint.complaint_id, key)
        outcome = self._issue_letter(complaint, "progress_update", deadline.deadline_key,
                                     deadline.due_at, {
                                         "expected_by": expected_resolution_date(
                                             self.procedure, complaint, deadline.due_at),
                                         "eight_week_date": self._eight_week_date(complaint),
                                     }, escalation=deadline.cause)
        interval = self.procedure.progress_update_interval_days
        if interval is None or continued:
            return outcome
        # (v2) The next of the same cycle, interval x 24 h after this one's due instant. Its
        # cause is this deadline's letter: a key of its own for every deadline in the chain.
        due = elapsed_days(deadline.due_at, interval)
        self._schedule(complaint, "progress_update", letter_id_for(key), due)
        return f"{outcome}; next progress update due {due.isoformat()}"

    def _senior_manager_review_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state != "senior_manager" or complaint.escalation_event_id != deadline.cause:
            return "no longer applies: no longer with the senior manager from that escalation"
        if complaint.senior_manager_responded:
            return "no longer applies: the senior manager has responded"
        escalated = complaint.escalated_at
        return self._issue_letter(complaint, "senior_manager_update", deadline.deadline_key,
                                  deadline.due_at, {
                                      "senior_manager": complaint.senior_manager,
                                      "escalated_on": local_date(escalated).isoformat()
                                      if escalated else None,
                                      "eight_week_date": self._eight_week_date(complaint),
                                  }, escalation=deadline.cause)

    def _deadlock_letter_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state not in OPEN_STATES and complaint.state != "eight_week":
            return f"no longer applies: state {complaint.state}"
        before = complaint.state
        transition(complaint, "reach_deadlock")
        # Reached by its deadline: the offer is the latest senior manager response's, and it
        # does not stay open (docs/rules.md s.6).
        record = self._record(complaint)
        letter = self._deadlock_letter(
            complaint, deadline.deadline_key, deadline.due_at,
            complaint.senior_manager_position or DEFAULT_POSITION, False,
            latest_offer(record[0]), record)
        return f"{before} -> deadlock; {letter}"

    def _eight_week_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state not in OPEN_STATES:
            return f"no longer applies: state {complaint.state}"
        if complaint.signposting_letter_issued:
            return "no longer applies: an 8-week or deadlock letter was already issued"
        before = complaint.state
        transition(complaint, "eight_weeks_pass")
        letter = self._issue_letter(complaint, "eight_week", deadline.deadline_key,
                                    deadline.due_at, where_it_stands(
                                        before, self._record(complaint, letters=False)[0]))
        return f"{before} -> eight_week; {letter}"

    def _remedy_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state != "ombudsman" or complaint.remedy_decision_event_id != deadline.cause:
            return "no longer applies: remedy implemented or decision superseded"
        complaint.remedy_overdue = True
        self._emit(complaint, f"{deadline.deadline_key}:remedy_overdue", "complaint.remedy_overdue",
                   deadline.due_at, {"decision_event_id": deadline.cause,
                                     "ombudsman_ref": complaint.ombudsman_ref})
        return "remedy overdue: complaint.remedy_overdue raised"

    def _referral_window_due(self, complaint: Complaint, deadline: Deadline) -> str:
        if complaint.state not in ("deadlock", "eight_week"):
            return f"no longer applies: state {complaint.state}"
        if complaint.signposting_letter_id != deadline.cause:
            return "no longer applies: a later 8-week or deadlock letter was issued"
        before = complaint.state
        transition(complaint, "lapse_referral_window")
        return f"{before} -> closed: referral window lapsed"

    # ------------------------------------------------------------------ helpers
    def _eight_week_date(self, complaint: Complaint) -> str:
        """The local date eight weeks after the original receipt, as letters quote it."""
        eight_weeks = elapsed_days(complaint.received_at, self.procedure.eight_weeks_days)
        return local_date(eight_weeks).isoformat()

    def _start_cycle(self, complaint: Complaint, cause: str, at: datetime, d1: datetime,
                     channel: str, *, is_reopen: bool) -> None:
        self.uow.append(Receipt,
            complaint_id=complaint.complaint_id, event_id=cause, cycle=complaint.cycle,
            is_reopen=is_reopen, received_at=at, d1_deadline=d1, channel=channel,
            contact_id=None if is_reopen else complaint.contact_id,
        )
        self._schedule(complaint, "acknowledgement", cause, d1)
        if self.procedure.resolution_target_days is not None:
            self._schedule(complaint, "progress_update", cause,
                           elapsed_days(at, self.procedure.resolution_target_days))

    def _schedule(self, complaint: Complaint, kind: str, cause: str, due_at: datetime) -> None:
        key = deadline_key(complaint.complaint_id, kind, cause)
        deadline = _new_deadline()
        vars(deadline).update(
            deadline_key=key, complaint_id=complaint.complaint_id, kind=kind,
            cycle=complaint.cycle, due_at=due_at, cause=cause, created_at=self.clock.now(),
        )
        self.uow.add(deadline)
        if self.uow.publishes:
            self._emit(complaint, f"{key}:scheduled", "deadline.scheduled", due_at,
                       {"kind": kind, "deadline_key": key, "due_at": due_at.isoformat()})
        if self.on_deadline_created is not None:
            self.on_deadline_created(deadline)

    def _deadlock_letter(self, complaint: Complaint, cause: str, at: datetime,
                         position: str, offer_open: bool, offer: dict[str, Any] | None,
                         record: tuple[list[Any], list[Any]] | None = None) -> str:
        history, letters = record or self._record(complaint)
        return self._issue_letter(complaint, "deadlock", cause, at, {
            "position": position,
            # With no offer there is nothing to stay open, whatever the event said.
            "offer_open": offer_open and offer is not None,
            "offer": offer,
            "communications": communications(history, letters),
        })

    def _record(self, complaint: Complaint, *, letters: bool = True) -> Record:
        """The complaint's communications, which only a letter's context quotes: none read
        where no context is kept (a replay counting returns keeps no history of them, the
        most of its memory after the complaints themselves, workflow/memory_uow.py)."""
        if not self.uow.keeps_letter_contexts:
            return [], []
        return self.uow.record_of(complaint.complaint_id, COMMUNICATIONS, letters=letters)

    def _issue_letter(self, complaint: Complaint, kind: str, cause: str, issued_at: datetime,
                      specifics: dict[str, Any], escalation: str | None = None) -> str:
        key = dedupe_key(complaint, kind, escalation)
        if self.uow.letter_exists(complaint.complaint_id, key):
            return f"{kind} letter already issued for this cause"
        letter_id = letter_id_for(key)
        if kind in SIGNPOSTING_KINDS:
            window_end = referral_window_end(issued_at, self.procedure.referral_window_months)
            specifics = {**specifics, "referral_deadline": local_date(window_end).isoformat()}
        # Built only where it is kept: a replay counting returns drops it. The delivery's
        # channel then comes from the complaint's customer, whose email and preferred
        # contact the context's customer copies as they are.
        context = (build_context(complaint, self.procedure, kind, letter_id, issued_at,
                                 specifics) if self.uow.keeps_letter_contexts else None)
        delivery = new_delivery(letter_id, complaint.complaint_id,
                                complaint.customer if context is None else context["customer"],
                                self.clock.now())
        self.uow.append(Letter,
            letter_id=letter_id, dedupe_key=key, complaint_id=complaint.complaint_id, kind=kind,
            cycle=complaint.cycle, issued_at=issued_at, cause=cause, context=context,
        )
        self._publish_letter(complaint, letter_id, kind, issued_at, delivery["channel"])
        self.uow.append(Delivery, **delivery)
        if kind in SIGNPOSTING_KINDS:
            complaint.signposting_letter_id = letter_id
            complaint.signposting_letter_at = issued_at
            self._schedule(complaint, "referral_window", letter_id, window_end)
        return f"{kind} letter {letter_id} issued"

    def _record_resolution(self, complaint: Complaint, event: ev.ComplaintEvent) -> None:
        original = complaint.received_at
        self.uow.append(ResolutionRecord,
            complaint_id=complaint.complaint_id, event_id=event.event_id, type=event.type,
            cycle=complaint.cycle, resolved_at=event.occurred_at, original_received_at=original,
            original_d1_deadline=d_plus_1(self.calendar, original),
            eight_weeks_at=eight_weeks_boundary(original),
            counted=counted_resolution(complaint.signposting_letter_issued),
        )

    def _new_reference(self, complaint_id: str) -> str:
        attempt = 0
        while True:
            reference = candidate(self.procedure.reference_prefix, complaint_id, attempt)
            if not self.uow.reference_taken(reference):
                return reference
            attempt += 1  # 50 bits: about one clash in a billion at a million complaints

    def _history(self, complaint: Complaint, event_id: str, kind: str, at: datetime,
                 before: str | None, detail: Callable[[], dict[str, Any]]) -> None:
        """The history entry, its detail made only when it is kept (a replay keeps only the
        entries letters summarise: an event's full dump was about 3 % of its CPU)."""
        if not self.uow.records_history(kind):
            return
        self.uow.append(HistoryEntry,
            complaint_id=complaint.complaint_id, at=at, event_id=event_id, type=kind,
            from_state=before, to_state=complaint.state, cycle=complaint.cycle, detail=detail(),
            recorded_at=self.clock.now(),
        )

    def _state_changed(self, complaint: Complaint, cause_id: str, cause: str, at: datetime,
                       before: str | None, after: str, channel: str | None = None,
                       extra: dict[str, Any] | None = None) -> None:
        if not self.uow.publishes:
            return
        self._emit(complaint, f"{cause_id}:state_changed", "complaint.state_changed", at, {
            "from": before, "to": after, "cause": cause, "cycle": complaint.cycle,
            "channel": channel or complaint.channel, **(extra or {}),
        })

    def _publish_letter(self, complaint: Complaint, letter_id: str, kind: str,
                        issued_at: datetime, channel: str) -> None:
        if not self.uow.publishes:
            return
        self.uow.append(OutboxMessage,
            event_id=letter_id, topic="letters", key=complaint.complaint_id,
            payload={"event_id": letter_id, "letter_id": letter_id,
                     "complaint_id": complaint.complaint_id, "kind": kind,
                     "issued_at": issued_at.isoformat(), "reference": complaint.reference,
                     "cycle": complaint.cycle, "formats": ["html", "txt", "pdf"],
                     "delivery": channel},
            created_at=self.clock.now(),
        )

    def _emit(self, complaint: Complaint, event_id: str, kind: str, at: datetime,
              fields: dict[str, Any]) -> None:
        if not self.uow.publishes:
            return
        self.uow.append(OutboxMessage,
            event_id=event_id, topic="lifecycle", key=complaint.complaint_id,
            payload={"event_id": event_id, "type": kind, "complaint_id": complaint.complaint_id,
                     "reference": complaint.reference, "occurred_at": at.isoformat(),
                     "category": complaint.category, "channel": complaint.channel,
                     "state": complaint.state, **fields},
            created_at=self.clock.now(),
        )


def _decision_trigger(event: ev.OmbudsmanDecision) -> str:
    """A decision needing a remedy keeps the complaint with the Ombudsman; any other closes it."""
    remedy = event.accepted and event.remedies.any()
    return "decide_with_remedy" if remedy else "decide_without_remedy"


@dataclass(frozen=True)
class Handles:
    """What one event class does (the cosmicpython message-bus shape).

    `effect` records everything the event changes on the workflow's unit of work. For a
    complaint's event (`of_complaint`) the complaint is loaded first, refused if unknown or a
    duplicate, moved by the machine `trigger` (a name, or one chosen from the event), and the
    history entry and state change recorded; `effect(workflow, complaint, event)` then does
    the rest. Events without a complaint (or creating one) get `effect(workflow, event)`.
    """

    effect: Callable[..., None]
    trigger: str | Callable[[Any], str] | None = None
    of_complaint: bool = True


# The one table: every event class, the lifecycle trigger it sends and its handler. A new
# event type is a class in workflow/events.py and a row here (README "How it fits together").
HANDLERS: Final[dict[type[ev.Event], Handles]] = {
    ev.ContactReceived: Handles(Workflow._contact_received, of_complaint=False),
    ev.AccountsSnapshot: Handles(Workflow._accounts_snapshot, of_complaint=False),
    ev.ComplaintReceived: Handles(Workflow._received, of_complaint=False),
    ev.ComplaintAssigned: Handles(Workflow._assigned, "assign"),
    ev.ComplaintAcknowledged: Handles(Workflow._acknowledged),
    ev.ContactLogged: Handles(Workflow._contact_logged),
    ev.ComplaintRecategorised: Handles(Workflow._recategorised),
    ev.EscalationRequested: Handles(Workflow._escalated, "escalate"),
    ev.SeniorManagerResponse: Handles(Workflow._senior_manager_response),
    ev.CustomerDissatisfied: Handles(Workflow._dissatisfied),
    ev.DeadlockReached: Handles(Workflow._deadlock_reached, "reach_deadlock"),
    ev.ComplaintResolved: Handles(Workflow._resolved, "resolve"),
    ev.ComplaintReopened: Handles(Workflow._reopened, "reopen"),
    ev.ReferredToOmbudsman: Handles(Workflow._referred, "refer"),
    ev.OmbudsmanDecision: Handles(Workflow._decided, _decision_trigger),
    ev.RemedyImplemented: Handles(Workflow._remedy_implemented, "implement_remedy"),
    ev.ComplaintWithdrawn: Handles(Workflow._withdrawn, "withdraw"),
}


@dataclass(frozen=True)
class DeadlineKind:
    """What firing a deadline of one kind does: `effect` re-checks the complaint, records
    what follows and returns the outcome. A complaint-wide deadline belongs to the complaint
    rather than to the cycle that created it, so a reopening does not stop it
    (docs/rules.md s.5)."""

    effect: Callable[[Workflow, Complaint, Deadline], str]
    complaint_wide: bool = False


# Every kind of deadline, once, in lifecycle order, with its effect beside it.
DEADLINES: Final[dict[str, DeadlineKind]] = {
    "acknowledgement": DeadlineKind(Workflow._acknowledgement_due),
    "progress_update": DeadlineKind(Workflow._progress_update_due),
    "senior_manager_review": DeadlineKind(Workflow._senior_manager_review_due),
    "deadlock_letter": DeadlineKind(Workflow._deadlock_letter_due),
    "eight_week": DeadlineKind(Workflow._eight_week_due, complaint_wide=True),
    "remedy": DeadlineKind(Workflow._remedy_due, complaint_wide=True),
    "referral_window": DeadlineKind(Workflow._referral_window_due, complaint_wide=True),
}
DEADLINE_KINDS: Final = tuple(DEADLINES)
COMPLAINT_WIDE_DEADLINES: Final = frozenset(
    kind for kind, declared in DEADLINES.items() if declared.complaint_wide)
