"""The complaint lifecycle (docs/rules.md s.4) as a python-statemachine `StateMachine`.

The machine declares states and transitions only. Guards read the model (the stored complaint);
the machine reads the stored state for every event, and a refused transition raises
`TransitionNotAllowed` before anything changes.
"""

from __future__ import annotations

from typing import Any, Final

from statemachine import State, StateMachine
from statemachine.callbacks import CallbackGroup
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


# (state, trigger) -> the machine's candidate transitions from that state, in declaration order:
# (target, the names of the guards that must all hold). Derived once from the machine above, so
# the machine stays the one declaration; `tests/unit/test_lifecycle.py` checks that the table
# agrees with `ComplaintLifecycle.send` for every state, trigger and guard value. It exists for
# speed: the machine's `send` costs about 77 us an event here, a lookup about 1 us, and ingest
# and the what-if replays (docs/rules.md s.4) run one transition per event.
Candidates = tuple[tuple[str, tuple[str, ...]], ...]


def _derive_table() -> dict[tuple[str, str], Candidates]:
    table: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = {}
    for state in ComplaintLifecycle.states:
        for declared in state.transitions:
            guards = tuple(
                str(spec.func) for spec in declared._specs
                if spec.group is CallbackGroup.COND
            )
            for trigger in declared.events:
                table.setdefault((state.id, str(trigger)), []).append(
                    (declared.target.id, guards))
    return {key: tuple(candidates) for key, candidates in table.items()}


TRANSITIONS: Final[dict[tuple[str, str], Candidates]] = _derive_table()
TRIGGERS: Final[frozenset[str]] = frozenset(trigger for _, trigger in TRANSITIONS)
_STATE_OBJECTS: Final = {state.id: state for state in ComplaintLifecycle.states}


def transition(model: Any, trigger: str) -> tuple[str, str]:
    """Run `trigger` from `model.state` by the machine's table; returns (from, to).

    Guards are read from the model (`signposting_letter_issued`, `referable_when_closed`).
    Raises `TransitionNotAllowed` (the model untouched) when the rules forbid it.
    """
    before = model.state
    for target, guards in TRANSITIONS.get((before, trigger), ()):
        # (Most candidates have no guard: no generator built for them.)
        if not guards or all(getattr(model, guard) for guard in guards):
            model.state = target
            return before, target
    event = getattr(ComplaintLifecycle, trigger, None) if trigger in TRIGGERS else None
    raise TransitionNotAllowed(event, {_STATE_OBJECTS[before]} if before in _STATE_OBJECTS
                               else set())


__all__ = [
    "ComplaintLifecycle", "OPEN_STATES", "STATES", "TRANSITIONS", "TransitionNotAllowed",
    "transition",
]
