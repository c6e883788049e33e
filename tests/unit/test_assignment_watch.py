"""A consumer left without an assignment past its bound is made again (consumers/offsets.py).

The clock is a list the test moves; the consumer is a stand-in with kafka-python's attribute
names, so that the message names the client's membership state.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition

from consumers.offsets import AssignmentWatch, DoneOffsets, ForgetRevoked, NotAssigned
from consumers.settings import Settings


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _consumer() -> Any:
    generation = SimpleNamespace(generation_id=-1)
    return SimpleNamespace(_coordinator=SimpleNamespace(state="REBALANCING",
                                                        _generation=generation,
                                                        coordinator_id="coordinator-0"))


def _watch(bound_s: float) -> tuple[AssignmentWatch, ForgetRevoked, _Clock]:
    clock = _Clock()
    listener = ForgetRevoked(DoneOffsets("letter"))
    return AssignmentWatch(listener, _consumer(), bound_s, clock=clock), listener, clock


def test_a_member_not_assigned_past_its_bound_is_made_again() -> None:
    watch, _, clock = _watch(45.0)
    watch.check()
    clock.now += 45.0
    watch.check()  # at the bound: still waiting
    clock.now += 0.5
    with pytest.raises(NotAssigned) as raised:
        watch.check()
    message = str(raised.value)
    assert message.startswith("letter consumer not assigned partitions after 46 s")
    assert "state REBALANCING, generation -1, coordinator coordinator-0" in message


def test_an_assigned_member_is_not_made_again_even_with_no_partitions() -> None:
    watch, listener, clock = _watch(45.0)
    listener.on_partitions_assigned([])  # an idle standby: joined, nothing to read
    watch.check()
    clock.now += 3600
    watch.check()
    listener.on_partitions_revoked([])  # a rebalance: revoked (nothing), then assigned again
    clock.now += 10
    watch.check()
    listener.on_partitions_assigned([TopicPartition("t", 0)])
    clock.now += 3600
    watch.check()


def test_a_member_a_rebalance_left_unassigned_is_made_again() -> None:
    """Assigned, then a rebalance revoked its partitions and the join that should follow
    never completes: the bound counts from the revocation."""
    watch, listener, clock = _watch(45.0)
    listener.on_partitions_assigned([TopicPartition("t", 0)])
    watch.check()
    clock.now += 600
    listener.on_partitions_revoked([TopicPartition("t", 0)])
    watch.check()  # waiting from now
    clock.now += 45.0
    watch.check()
    clock.now += 1.0
    with pytest.raises(NotAssigned, match="after 46 s"):
        watch.check()


def test_the_wait_is_not_counted_while_no_coordinator_is_known() -> None:
    """The broker unreachable (/ready says so): a new member would wait the same."""
    watch, _, clock = _watch(45.0)
    coordinator = watch.consumer._coordinator
    coordinator.coordinator_id = None
    clock.now += 600
    watch.check()  # the wait starts again: nothing counted while unknown
    coordinator.coordinator_id = "coordinator-0"
    clock.now += 45.0
    watch.check()
    clock.now += 1.0
    with pytest.raises(NotAssigned):
        watch.check()


def test_a_bound_of_zero_waits_for_ever() -> None:
    watch, _, clock = _watch(0.0)
    clock.now += 10 ** 6
    watch.check()


def test_the_bound_is_read_from_the_environment_above_the_rebalance_timeout() -> None:
    assert Settings.from_env({}).assignment_timeout_s == 330.0  # > kafka-python's 300 s
    assert Settings.from_env(
        {"COMPLAINTS_KAFKA_ASSIGNMENT_TIMEOUT_S": "45"}).assignment_timeout_s == 45.0
