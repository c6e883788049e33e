"""Every trigger from every state, against docs/rules.md s.4's transition table
(transcribed by hand)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workflow.lifecycle import STATES, TransitionNotAllowed, transition

OPEN = ("received", "immediate", "reopened", "senior_manager")

# trigger -> {from state: to state}, written out from the table in docs/rules.md s.4.
ALLOWED: dict[str, dict[str, str]] = {
    "assign": {"received": "immediate", "immediate": "immediate", "reopened": "reopened",
               "senior_manager": "senior_manager", "eight_week": "eight_week",
               # (v2) reassignment with the Ombudsman's referral open or under way
               "deadlock": "deadlock", "ombudsman": "ombudsman"},
    "resolve": {**{s: "resolved" for s in OPEN}, "eight_week": "resolved",
                "deadlock": "resolved"},
    "escalate": {s: "senior_manager" for s in ("received", "immediate", "reopened",
                                                "eight_week")},
    "reach_deadlock": {**{s: "deadlock" for s in OPEN}, "eight_week": "deadlock"},
    "eight_weeks_pass": {s: "eight_week" for s in OPEN},
    "refer": {"deadlock": "ombudsman", "eight_week": "ombudsman"},
    "decide_with_remedy": {"ombudsman": "ombudsman"},
    "decide_without_remedy": {"ombudsman": "closed"},
    "implement_remedy": {"ombudsman": "resolved"},
    "withdraw": {**{s: "closed" for s in OPEN}, "eight_week": "closed", "deadlock": "closed"},
    "lapse_referral_window": {"deadlock": "closed", "eight_week": "closed"},
    "reopen": {"resolved": "reopened"},
}


@dataclass
class Record:
    state: str
    signposting_letter_issued: bool = False
    referable_when_closed: bool = False


CASES = [(trigger, state) for trigger in ALLOWED for state in STATES]


@pytest.mark.parametrize(("trigger", "state"), CASES)
def test_transition_table(trigger: str, state: str) -> None:
    record = Record(state)
    expected = ALLOWED[trigger].get(state)
    if expected is None:
        with pytest.raises(TransitionNotAllowed):
            transition(record, trigger)
        assert record.state == state, "a refused transition leaves the complaint untouched"
    else:
        assert transition(record, trigger) == (state, expected)
        assert record.state == expected


@pytest.mark.parametrize("state", OPEN)
def test_open_complaint_may_be_referred_once_a_signposting_letter_was_issued(state: str) -> None:
    # e.g. 8-week letter issued, then the customer asked for a senior manager: still referable.
    record = Record(state, signposting_letter_issued=True)
    assert transition(record, "refer") == (state, "ombudsman")


@pytest.mark.parametrize("state", OPEN)
def test_open_complaint_without_signposting_letter_cannot_be_referred(state: str) -> None:
    with pytest.raises(TransitionNotAllowed):
        transition(Record(state), "refer")


def test_terminal_states_accept_no_trigger() -> None:
    for trigger in ALLOWED:
        for state in ("closed", "duplicate"):
            with pytest.raises(TransitionNotAllowed):
                transition(Record(state), trigger)


def test_closed_after_withdrawal_or_lapse_with_a_signposting_letter_may_be_referred() -> None:
    # (v2) closed is no longer final: referable when withdrawn / lapsed after an 8-week or
    # deadlock letter (the guard, computed by the complaint, says so).
    record = Record("closed", signposting_letter_issued=True, referable_when_closed=True)
    assert transition(record, "refer") == ("closed", "ombudsman")
    # ... and only "refer" leaves closed.
    for trigger in ALLOWED:
        if trigger != "refer":
            with pytest.raises(TransitionNotAllowed):
                transition(Record("closed", True, True), trigger)


def test_closed_not_referable_without_the_guard() -> None:
    # e.g. closed by the Ombudsman's decision, although a signposting letter was issued.
    with pytest.raises(TransitionNotAllowed):
        transition(Record("closed", signposting_letter_issued=True), "refer")


def test_closed_is_not_a_final_state() -> None:
    from workflow.lifecycle import ComplaintLifecycle
    finals = {state.id for state in ComplaintLifecycle.states if state.final}
    assert finals == {"duplicate"}


def test_states_are_the_contract_names() -> None:
    assert STATES == ("received", "immediate", "senior_manager", "deadlock", "eight_week",
                      "ombudsman", "resolved", "reopened", "closed", "duplicate")


def test_a_kept_machine_follows_the_stored_state() -> None:
    # The machine is kept with the loaded complaint; the stored state is what counts,
    # e.g. after a rollback restores an earlier state.
    record = Record("received")
    transition(record, "assign")
    record.state = "resolved"
    assert transition(record, "reopen") == ("resolved", "reopened")


def test_a_machine_that_left_a_state_follows_the_stored_state_again() -> None:
    # Withdrawn (closed), then rolled back to deadlock: deadlock rules apply again.
    record = Record("deadlock")
    transition(record, "withdraw")
    record.state = "deadlock"
    assert transition(record, "resolve") == ("deadlock", "resolved")


GUARD_VALUES = [(sign, closed) for sign in (False, True) for closed in (False, True)]


def _by_machine(record: Record, trigger: str) -> str | None:
    """What python-statemachine itself does: the target, or None when it refuses."""
    from workflow.lifecycle import ComplaintLifecycle
    machine = ComplaintLifecycle(record, state_field="state")
    try:
        machine.send(trigger)
    except TransitionNotAllowed:
        return None
    return record.state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("trigger", [*ALLOWED, "not_a_trigger"])
def test_the_derived_table_agrees_with_the_machine(state: str, trigger: str) -> None:
    # The table `transition` consults is derived from the machine's declaration; for every
    # state, trigger and value of both guards it must do exactly what the machine does.
    for signposting, referable in GUARD_VALUES:
        by_machine = _by_machine(Record(state, signposting, referable), trigger)
        record = Record(state, signposting, referable)
        try:
            by_table: str | None = transition(record, trigger)[1]
        except TransitionNotAllowed:
            by_table = None
            assert record.state == state
        assert by_table == by_machine, (state, trigger, signposting, referable)


def test_the_table_covers_every_declared_event() -> None:
    from workflow.lifecycle import TRANSITIONS, ComplaintLifecycle
    declared = {str(event.id) for event in ComplaintLifecycle.events}
    assert {trigger for _, trigger in TRANSITIONS} == declared == set(ALLOWED)
