"""Bounded stop: every wait on the broker during a stop has a deadline, and a last resort.

A SIGTERM must end the process within a bound whatever the broker or the database is doing
(a Kubernetes pod gets `terminationGracePeriodSeconds`, then SIGKILL). So:

- every Kafka call a component makes while it works or stops is bounded: an offset commit
  (`commit_offsets`), a consumer's close (`close_consumer`, which also leaves the group),
  a producer's flush (`await_delivery`, which gives up early once a stop is asked for) and
  close (`consumers.producer.OwnedProducer.close`);
- `StopWatchdog` is armed when the stop begins: if the components have not all stopped after
  `COMPLAINTS_STOP_TIMEOUT_S` (default 30), it logs what was left (the components still
  running and where each one waits) and ends the process with exit status 1.

Nothing committed is lost by giving up: the database commit always comes before the offset
commit, and a record whose offset was not committed is read again on the next start, where
the processed-events table makes it a duplicate (DESIGN.md "exactly once in effect").
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

log = logging.getLogger(__name__)

#: One offset commit, coordinator wait, consumer close or producer close.
KAFKA_CALL_TIMEOUT_S: Final = 3.0
#: How long a producer's acknowledgements are waited for in normal work (a round that takes
#: longer fails and is retried: nothing is marked published before its acknowledgement).
DELIVERY_TIMEOUT_S: Final = 30.0
#: Once a stop is asked for, acknowledgements still missing are waited for this long at most.
STOPPING_DELIVERY_S: Final = 3.0
#: One flush wait. kafka-python waits it for each incomplete batch in turn, and a round of
#: the relay can hold dozens of batches: 5 ms keeps one flush call well under a second.
FLUSH_WAIT_S: Final = 0.005
DEFAULT_STOP_TIMEOUT_S: Final = 30.0
#: Exit status of a stop that did not finish in time (docs/contract.md: 1 is a failure).
STOP_TIMEOUT_EXIT: Final = 1


def commit_offsets(consumer: Any, offsets: Mapping[Any, Any],
                   timeout_s: float = KAFKA_CALL_TIMEOUT_S) -> None:
    """`consumer.commit(offsets)` that gives up after `timeout_s` (KafkaTimeoutError).

    kafka-python's synchronous commit retries until the coordinator answers; with the broker
    gone that is its request timeout (30 s) per commit, or for ever in older releases.
    """
    from kafka.errors import KafkaTimeoutError

    try:
        consumer.commit(dict(offsets), timeout_ms=int(timeout_s * 1000))
    except KafkaTimeoutError:
        raise KafkaTimeoutError(f"not acknowledged within {timeout_s:g} s") from None


def close_consumer(consumer: Any, timeout_s: float = KAFKA_CALL_TIMEOUT_S) -> None:
    """Close without committing anything more (the owner commits what is done first), and
    without waiting longer than `timeout_s` to leave the group."""
    try:
        consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))
    except Exception as exc:  # noqa: BLE001 - closing must not hide why we stop
        log.warning("consumer did not close cleanly: %s", type(exc).__name__)


def await_delivery(producer: Any, futures: Iterable[Any], *,
                   stop: threading.Event | None = None,
                   timeout_s: float = DELIVERY_TIMEOUT_S,
                   stopping_s: float = STOPPING_DELIVERY_S) -> None:
    """Flush `producer` and wait for every future's acknowledgement (raising the first
    failure), for `timeout_s` at most, and for `stopping_s` at most once `stop` is set.

    Raises KafkaTimeoutError when the acknowledgements did not all come in time: the caller
    marks nothing as published, and the rows go out again on the next round or start.
    """
    from kafka.errors import KafkaTimeoutError  # deferred: settings import this module

    deadline = time.monotonic() + timeout_s
    stopping = False
    while True:
        now = time.monotonic()
        if not stopping and stop is not None and stop.is_set():
            deadline = min(deadline, now + stopping_s)
            stopping = True
        remaining = deadline - now
        if remaining <= 0:
            raise KafkaTimeoutError("no acknowledgement from the broker in time"
                                    + (" (stopping)" if stopping else ""))
        try:
            # Short waits, repeated: kafka-python's flush waits its timeout for each incomplete
            # batch in turn (one per partition), so one long wait would overshoot the bound
            # many times over (10 s past a stop, seen with the broker down).
            producer.flush(timeout=min(FLUSH_WAIT_S, remaining))
            break
        except KafkaTimeoutError:
            continue
    for future in futures:
        # Flushed: each is done, and `get` only returns its result or raises its failure.
        future.get(timeout=max(FLUSH_WAIT_S, deadline - time.monotonic()))


def stop_timeout_s(value: str | None) -> float:
    """COMPLAINTS_STOP_TIMEOUT_S: seconds, more than 0."""
    if not value:
        return DEFAULT_STOP_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"COMPLAINTS_STOP_TIMEOUT_S: {value!r} is not a number of seconds "
                         "above 0")
    return seconds


_OWN_CODE: Final = re.compile(r"/(consumers|workflow|letters|reporting)/[^/]+\.py$")


def where_threads_wait(threads: Iterable[threading.Thread]) -> list[str]:
    """For each live thread, its name and the innermost frames of its stack (function and
    line only: never a variable's value, which could be a customer's data)."""
    frames = sys._current_frames()
    lines = []
    for thread in threads:
        if not thread.is_alive():
            continue
        frame = frames.get(thread.ident or -1)
        stack = traceback.extract_stack(frame) if frame is not None else []
        # The innermost frames, and the innermost of the service's own (what it waits for).
        ours = [f for f in stack if _OWN_CODE.search(f.filename)][-2:]
        shown = [*ours, *[f for f in stack[-3:] if f not in ours]]
        where = " <- ".join(f"{f.name} ({os.path.basename(f.filename)}:{f.lineno})"
                            for f in reversed(shown))
        lines.append(f"{thread.name}: {where or 'unknown'}")
    return lines


class StopWatchdog:
    """The last resort of a stop: after `timeout_s`, log what is left and exit non-zero.

    `left` describes what was still running (it is called from the watchdog's thread and must
    not block); `exit` is `os._exit` (a blocked thread cannot stop a normal exit: the
    interpreter would wait for it) and is replaced in tests.
    """

    def __init__(self, timeout_s: float, left: Callable[[], list[str]], *,
                 exit: Callable[[int], Any] = os._exit) -> None:
        self.timeout_s = timeout_s
        self.left = left
        self._exit = exit
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = False

    def arm(self) -> StopWatchdog:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="stop-watchdog",
                                            daemon=True)
            self._thread.start()
        return self

    def disarm(self) -> None:
        self._cancelled.set()

    def _watch(self) -> None:
        if not self._cancelled.wait(self.timeout_s):
            self.expire()

    def expire(self) -> None:
        """Give up now: log what is left and exit (also called when a join timed out)."""
        if self.fired:
            return
        self.fired = True
        try:
            left = self.left()
        except Exception as exc:  # noqa: BLE001 - the exit must happen whatever
            left = [f"(could not describe: {type(exc).__name__})"]
        log.critical("stop did not finish within %g s (COMPLAINTS_STOP_TIMEOUT_S); exiting "
                     "with status %d. Still running:\n  %s\nWhat was committed to the database"
                     " is kept; records whose offsets were not committed are read again on "
                     "the next start.", self.timeout_s, STOP_TIMEOUT_EXIT,
                     "\n  ".join(left) or "nothing (the exit itself was slow)")
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # noqa: BLE001, S110 - best effort before the exit
                pass
        sys.stdout.flush()
        sys.stderr.flush()
        self._exit(STOP_TIMEOUT_EXIT)
