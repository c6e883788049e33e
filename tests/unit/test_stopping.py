"""Bounded stop: the helpers every component's stop goes through, and the last resort."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from consumers.settings import Settings
from consumers.stopping import (
    StopWatchdog,
    await_delivery,
    commit_offsets,
    stop_timeout_s,
    where_threads_wait,
)


class SlowProducer:
    """A producer whose flush never completes (the broker is gone)."""

    def __init__(self) -> None:
        self.flushes = 0

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        time.sleep(min(timeout or 0.05, 0.05))
        raise KafkaTimeoutError("not flushed")


def test_delivery_gives_up_soon_after_a_stop_is_asked_for() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="stopping"):
        await_delivery(SlowProducer(), [], stop=stop, timeout_s=30, stopping_s=0.3)
    # 0.2 s until the stop, then 0.3 s more: far below the 30 s of normal work.
    assert 0.45 <= time.monotonic() - started < 2.0


class ManyBatchesProducer:
    """kafka-python's flush with the broker gone: it waits its timeout for each of the
    incomplete batches (one per partition) in turn, then raises."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def flush(self, timeout: float | None = None) -> None:
        time.sleep((timeout or 1.0) * self.batches)
        raise KafkaTimeoutError("Timeout waiting for future")


def test_delivery_stops_within_its_bound_however_many_batches_are_waiting() -> None:
    # 12 partitions' batches: a 1 s flush wait would take 12 s; the stop bound is 0.3 s.
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="stopping"):
        await_delivery(ManyBatchesProducer(12), [], stop=stop, timeout_s=30, stopping_s=0.3)
    assert time.monotonic() - started < 0.3 + 12 * 0.05 + 0.5


def test_delivery_without_a_stop_waits_its_timeout_then_raises() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError):
        await_delivery(SlowProducer(), [], timeout_s=0.4)
    assert 0.35 <= time.monotonic() - started < 2.0


def test_delivery_returns_each_future_and_raises_its_failure() -> None:
    class Done:
        def flush(self, timeout: float | None = None) -> None:
            pass

    class Future:
        def __init__(self, error: Exception | None) -> None:
            self.error = error

        def get(self, timeout: float) -> None:
            assert timeout > 0
            if self.error:
                raise self.error

    await_delivery(Done(), [Future(None), Future(None)])
    with pytest.raises(ValueError):
        await_delivery(Done(), [Future(None), Future(ValueError("refused"))])


def test_offset_commit_is_given_a_timeout() -> None:
    calls: list[dict[str, Any]] = []

    class Consumer:
        def commit(self, offsets: Any, timeout_ms: int | None = None) -> None:
            calls.append({"offsets": offsets, "timeout_ms": timeout_ms})

    commit_offsets(Consumer(), {"tp": 1}, timeout_s=2.5)
    assert calls == [{"offsets": {"tp": 1}, "timeout_ms": 2500}]


def test_stop_timeout_setting() -> None:
    assert Settings.from_env({}).stop_timeout_s == 30.0
    assert Settings.from_env({"COMPLAINTS_STOP_TIMEOUT_S": "7.5"}).stop_timeout_s == 7.5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ValueError, match="COMPLAINTS_STOP_TIMEOUT_S"):
            stop_timeout_s(bad)
    assert Settings.from_env({"COMPLAINTS_HEALTH_PORT": "8081"}).health_port == 8081
    assert Settings.from_env({}).health_port is None
    with pytest.raises(ValueError, match="COMPLAINTS_HEALTH_PORT"):
        Settings.from_env({"COMPLAINTS_HEALTH_PORT": "http"})


def stuck_in_commit(release: threading.Event) -> None:
    release.wait(10)


def test_watchdog_logs_what_is_left_and_exits_with_status_1(
        caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    stuck = threading.Thread(target=stuck_in_commit, args=(release,), name="consumer")
    stuck.start()
    exits: list[int] = []
    watchdog = StopWatchdog(0.2, lambda: where_threads_wait([stuck]), exit=exits.append)
    with caplog.at_level(logging.CRITICAL, logger="consumers.stopping"):
        watchdog.arm()
        deadline = time.monotonic() + 5
        while not exits and time.monotonic() < deadline:
            time.sleep(0.02)
    release.set()
    stuck.join()
    assert exits == [1]
    message = caplog.records[-1].getMessage()
    assert "within 0.2 s (COMPLAINTS_STOP_TIMEOUT_S)" in message
    assert "consumer: " in message and "stuck_in_commit (test_stopping.py:" in message


def test_a_disarmed_watchdog_does_nothing() -> None:
    exits: list[int] = []
    watchdog = StopWatchdog(0.1, list, exit=exits.append).arm()
    watchdog.disarm()
    time.sleep(0.3)
    assert exits == [] and not watchdog.fired
