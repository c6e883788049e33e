"""Kafka offsets of work that is done, kept until the group has them.

A record's offset is committed only after its work is (in the database, or written to
files), so the consumers that do work keep the offsets still to commit here: `DoneOffsets`
retries a commit that failed and drops the offsets of partitions this member lost, and
`ForgetRevoked` (the rebalance listener) tells it which those are. Used by the workflow
consumer and the letter service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from consumers.logtext import short
from consumers.stopping import commit_offsets

log = logging.getLogger(__name__)

Record = Any  # kafka.consumer.fetcher.ConsumerRecord (kafka-python ships no type hints)


class DoneOffsets:
    """Offsets of records whose work is done (in the database, or written to files), to be
    committed to the group: kept and retried when a commit fails, dropped for partitions this
    member no longer owns (their new owner reads those records again, and finds them done)."""

    def __init__(self, what: str) -> None:
        self.what = what  # for the log: whose offsets
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self._timed_out_at = -1e9  # when a commit last went unanswered (monotonic)

    def commit(self, consumer: KafkaConsumer,
               offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        self._uncommitted.update(offsets)
        if not self._uncommitted:
            return
        assigned = consumer.assignment()
        pending = {tp: om for tp, om in self._uncommitted.items() if tp in assigned}
        self._uncommitted = pending
        if not pending:
            return
        if not offsets and time.monotonic() - self._timed_out_at < 1.0:
            return  # a retry right after a commit went unanswered (a stop): not worth the wait
        try:
            commit_offsets(consumer, pending)  # bounded: the broker may be gone
            self._uncommitted = {}
        except CommitFailedError as exc:
            # The group rebalanced: the new owner re-reads these records and finds them done.
            log.info("%s offset commit refused after a rebalance: %s", self.what, short(exc))
            self._uncommitted = {}
        except KafkaError as exc:
            if isinstance(exc, KafkaTimeoutError):
                self._timed_out_at = time.monotonic()
            log.warning("%s offset commit failed, will retry: %s", self.what, short(exc))

    def forget(self, tp: TopicPartition) -> None:
        self._uncommitted.pop(tp, None)


class ForgetRevoked(ConsumerRebalanceListener):
    """Runs inside poll(): work is committed before every poll, so nothing is in flight; the
    offsets still pending for a revoked partition are dropped (its new owner reads those
    records again and finds them done)."""

    def __init__(self, offsets: DoneOffsets,
                 on_assigned: Callable[[], None] | None = None) -> None:
        self.offsets = offsets
        self.on_assigned = on_assigned
        # For readiness (consumers.health): the partitions this member owns, None until the
        # group has assigned it some (or none: an idle standby has joined too).
        self.assigned: set[TopicPartition] | None = None
        # Between a revocation and the next assignment (a rebalance under way); with
        # `assigned` None, before the first (AssignmentWatch).
        self.rebalancing = False

    @property
    def waiting(self) -> bool:
        """Without an assignment: before the first, or since a rebalance took them away."""
        return self.assigned is None or self.rebalancing

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        if self.assigned is not None:
            self.rebalancing = True  # until the next assignment (kafka-python: eager)
        if revoked:
            log.info("%s partitions revoked: %s", self.offsets.what, describe_partitions(revoked))
        for tp in revoked:
            self.offsets.forget(tp)
        if self.assigned is not None:
            self.assigned -= revoked

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = set(assigned)
        self.rebalancing = False
        self.assigned = (self.assigned or set()) | assigned
        if self.on_assigned is not None:
            self.on_assigned()
        log.info("%s partitions assigned: %s", self.offsets.what, describe_partitions(assigned))


class NotAssigned(RuntimeError):
    """A member that the group has not assigned anything in its bound: made again."""


class AssignmentWatch:
    """Bounds how long a member may wait for an assignment: its first, and each after a
    rebalance took its partitions away.

    A group normally forms in a few seconds, and a rebalance waits at most its rebalance
    timeout (kafka-python's max_poll_interval_ms, 300 s) for a slow member. A member still
    without an assignment well past that is stuck (a coordinator that kept a stale member,
    or a client that stopped retrying its join), and waits for ever while its partitions go
    unread. So `check` raises NotAssigned then: the component is closed (leaving the group)
    and made again by its supervisor (consumers.runtime), as a member with a new id. An
    assignment of no partitions (an idle standby) is an assignment. While the client knows
    no coordinator (the broker is unreachable: /ready says so) the wait is not counted: a
    new member would wait the same.
    """

    def __init__(self, listener: ForgetRevoked, consumer: KafkaConsumer, bound_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.listener = listener
        self.consumer = consumer
        self.bound_s = bound_s
        self.clock = clock
        self.since: float | None = clock()  # waiting since (None: assigned)

    def check(self) -> None:
        if self.bound_s <= 0:
            return
        now = self.clock()
        if not self.listener.waiting:
            self.since = None
            return
        if self.since is None or _coordinator_unknown(self.consumer):
            self.since = now
            return
        waited = now - self.since
        if waited > self.bound_s:
            raise NotAssigned(f"{self.listener.offsets.what} consumer not assigned partitions "
                              f"after {waited:.0f} s ({membership(self.consumer)}); "
                              "joining again as a new member")


def _coordinator_unknown(consumer: KafkaConsumer) -> bool:
    """The client knows no group coordinator (read, not asked: kafka-python's own
    coordinator_unknown() may change its state, from its network thread's side)."""
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is not None and getattr(coordinator, "coordinator_id", 0) is None


def membership(consumer: KafkaConsumer) -> str:
    """What the client knows of its membership, for the log (no personal data)."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:
        return "no coordinator"
    generation = getattr(coordinator, "_generation", None)
    return (f"state {getattr(coordinator, 'state', '?')}, "
            f"generation {getattr(generation, 'generation_id', '?')}, "
            f"coordinator {getattr(coordinator, 'coordinator_id', '?')}")


def describe_partitions(partitions: Iterable[TopicPartition]) -> str:
    grouped: dict[str, list[int]] = {}
    for tp in partitions:
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{t} {sorted(p)}" for t, p in sorted(grouped.items())) or "none"


def next_offsets(records: list[Record]) -> dict[TopicPartition, OffsetAndMetadata]:
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if tp not in offsets or offsets[tp].offset <= r.offset:
            offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
    return offsets


def first_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    return first
