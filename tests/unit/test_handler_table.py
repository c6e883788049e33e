"""The one handler table: every event class has a row, and every row names a real trigger."""

from __future__ import annotations

import typing

from workflow import events as ev
from workflow.handlers import COMPLAINT_WIDE_DEADLINES, DEADLINE_KINDS, HANDLERS
from workflow.lifecycle import STATES, ComplaintLifecycle


def _event_classes() -> set[type[ev.Event]]:
    """Every event class with a `type` of its own (the ones a message can be)."""
    found: set[type[ev.Event]] = set()
    pending: list[type[ev.Event]] = [ev.Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        annotation = typing.get_type_hints(cls).get("type")
        if typing.get_origin(annotation) is typing.Literal:
            found.add(cls)
    return found


def test_every_event_class_has_one_row() -> None:
    assert set(HANDLERS) == _event_classes() == set(ev.EVENT_TYPES.values())


def test_every_trigger_is_an_event_of_the_machine() -> None:
    machine_events = {event.id for event in ComplaintLifecycle.events}
    named = {h.trigger for h in HANDLERS.values() if isinstance(h.trigger, str)}
    assert named == {"assign", "escalate", "reach_deadlock", "resolve", "reopen", "refer",
                     "implement_remedy", "withdraw"}
    assert named <= machine_events


def test_declared_once_in_lifecycle_order() -> None:
    assert STATES == ("received", "immediate", "senior_manager", "deadlock", "eight_week",
                      "ombudsman", "resolved", "reopened", "closed", "duplicate")
    assert DEADLINE_KINDS == ("acknowledgement", "progress_update", "senior_manager_review",
                              "deadlock_letter", "eight_week", "remedy", "referral_window")
    assert COMPLAINT_WIDE_DEADLINES == {"eight_week", "remedy", "referral_window"}
