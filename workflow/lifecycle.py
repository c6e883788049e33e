"""The complaint lifecycle (docs/rules.md s.4) as a python-statemachine `StateMachine`.

The machine declares states and transitions only. Guards read the model (the stored complaint);
the machine reads the stored state for every event, and a refused transition raises
`TransitionNotAllowed` before anything changes.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

OPEN_STATES: Final = frozenset({"received", "immediate", "reopened", "senior_manager"})


class ComplaintLifecycle(StateMachine):
    # `duplicate` is entered only at registration (a second record of a known complaint) and
    # `received`/`immediate` are chosen at registration too, so one state has no incoming edge.
    validate_disconnected_states = False
    # (v2) The one final state is `duplicate`, entered only at registration; no other state is
    # final (a resolved complaint can be reopened, a closed one may still be referred), so
    # the other states have no path to a final state, by design.
    validate_final_reachability = False

    received = State(initial=True)
    immediate = State()
    senior_manager = State()
    deadlock = State()
    eight_week = State()
    ombudsman = State()
    resolved = State()
    reopened = State()
    # Not final (v2): a complaint withdrawn, or whose referral window lapsed, after an 8-week or
    # deadlock letter can still be referred to the Ombudsman (docs/rules.md s.4).
    closed = State()
    duplicate = State(final=True)

    assign = (
        received.to(immediate)
        | immediate.to.itself(internal=True)
        | reopened.to.itself(internal=True)
        | senior_manager.to.itself(internal=True)
        | eight_week.to.itself(internal=True)
        | deadlock.to.itself(internal=True)
        | ombudsman.to.itself(internal=True)
    )
    resolve = (
        received.to(resolved) | immediate.to(resolved) | reopened.to(resolved)
        | senior_manager.to(resolved) | eight_week.to(resolved) | deadlock.to(resolved)
    )
    escalate = (
        received.to(senior_manager) | immediate.to(senior_manager)
        | reopened.to(senior_manager) | eight_week.to(senior_manager)
    )
    reach_deadlock = (
        received.to(deadlock) | immediate.to(deadlock) | reopened.to(deadlock)
        | senior_manager.to(deadlock) | eight_week.to(deadlock)
    )
    eight_weeks_pass = (
        received.to(eight_week) | immediate.to(eight_week) | reopened.to(eight_week)
        | senior_manager.to(eight_week)
    )
    refer = (
        deadlock.to(ombudsman) | eight_week.to(ombudsman)
        | received.to(ombudsman, cond="signposting_letter_issued")
        | immediate.to(ombudsman, cond="signposting_letter_issued")
        | reopened.to(ombudsman, cond="signposting_letter_issued")
        | senior_manager.to(ombudsman, cond="signposting_letter_issued")
        | closed.to(ombudsman, cond="referable_when_closed")
    )
    decide_with_remedy = ombudsman.to.itself(internal=True)
    decide_without_remedy = ombudsman.to(closed)
    implement_remedy = ombudsman.to(resolved)
    withdraw = (
        received.to(closed) | immediate.to(closed) | reopened.to(closed)
        | senior_manager.to(closed) | eight_week.to(closed) | deadlock.to(closed)
    )
    lapse_referral_window = deadlock.to(closed) | eight_week.to(closed)
    reopen = resolved.to(reopened)


# Every state, in the order the machine declares them: the one list of states.
STATES: Final[tuple[str, ...]] = tuple(state.id for state in ComplaintLifecycle.states)


class _Complaint:
    """The complaint a machine is working on, as the machine's model.

    The machine reads the state (and the guard) through this on every event, so one machine
    serves every complaint in turn: building a machine costs about twice a transition, and
    ingest loads a new complaint object for most events.
    """

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: Any = None

    @property
    def state(self) -> str:
        return str(self.current.state)

    @state.setter
    def state(self, value: str) -> None:
        self.current.state = value

    @property
    def signposting_letter_issued(self) -> bool:
        return bool(self.current.signposting_letter_issued)

    @property
    def referable_when_closed(self) -> bool:
        return bool(self.current.referable_when_closed)


class _Shared(threading.local):
    # One per thread: the Kafka runtime runs its components in threads.
    model: _Complaint | None = None
    machine: ComplaintLifecycle | None = None


_shared = _Shared()


def transition(model: Any, trigger: str) -> tuple[str, str]:
    """Run `trigger` on the machine restored from `model.state`; returns (from, to).

    Raises `TransitionNotAllowed` (the model untouched) when the rules forbid it.
    """
    before = model.state
    if _shared.machine is None or _shared.model is None:
        _shared.model = _Complaint()
        _shared.model.current = model
        _shared.machine = ComplaintLifecycle(_shared.model, state_field="state")
    _shared.model.current = model
    try:
        _shared.machine.send(trigger)
    finally:
        _shared.model.current = None
        # The one thing a machine remembers itself is having reached a final state: it then
        # refuses every event, whatever the next complaint's state, so it is not reused.
        if _shared.machine.is_terminated:
            _shared.machine = None
    return before, model.state


__all__ = ["ComplaintLifecycle", "OPEN_STATES", "STATES", "TransitionNotAllowed", "transition"]
