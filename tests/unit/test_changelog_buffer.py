"""The aggregator's producer buffer: a commit's flush waits until every table (changelog)
write queued before it is acknowledged, however slowly the writes go out (consumers/aggregator.py,
ChangelogBuffer). No broker: the changelog topic is a stand-in that takes its time."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.exceptions import ProducerSendError
from faust.transport.producer import ProducerBuffer
from faust.types.tuples import FutureMessage

from consumers.aggregator import ChangelogBuffer

# Longer than the 0.1 s after which faust's own flush stops waiting for the next hand-over.
HAND_OVER_S = 0.15
WRITES = 3


class SlowChangelog:
    """Stands for the changelog topic: each write takes HAND_OVER_S to go out, then is
    acknowledged, or refused when its key is in `refused`."""

    def __init__(self, refused: frozenset[int] = frozenset()) -> None:
        self.refused = refused

    async def publish_message(self, fut: FutureMessage, wait: bool = False) -> FutureMessage:
        await asyncio.sleep(HAND_OVER_S)
        if fut.message.key in self.refused:
            fut.set_exception(ConnectionError("refused"))
        else:
            fut.set_result(None)  # type: ignore[arg-type]
        return fut


async def _flush(kind: type[ProducerBuffer], refused: frozenset[int] = frozenset(),
                 settle_first: bool = False) -> tuple[list[bool], BaseException | None]:
    """Queue WRITES writes (and let them settle, with `settle_first`), flush; which writes
    were settled when the flush returned, and how it failed."""
    buffer = kind(loop=asyncio.get_running_loop())
    buffer.app = faust.App("changelog-buffer-test", autodiscover=False, store="memory://")
    await buffer.start()
    changelog = SlowChangelog(refused)
    writes: list[FutureMessage] = []
    for key in range(WRITES):
        message: Any = SimpleNamespace(channel=changelog, key=key)
        writes.append(FutureMessage(message))
        buffer.put(writes[-1])
    if settle_first:
        await asyncio.gather(*writes, return_exceptions=True)
    failure: BaseException | None = None
    try:
        await buffer.flush()
    except ProducerSendError as exc:
        failure = exc
    settled = [write.done() for write in writes]
    if failure is not None:  # and every later commit fails too, not only this one
        with pytest.raises(ProducerSendError):
            await buffer.flush()
    await asyncio.gather(*writes, return_exceptions=True)  # so that the stop finds none queued
    await buffer.stop()
    return settled, failure


def test_the_flush_returns_only_once_every_queued_write_is_acknowledged() -> None:
    settled, failure = asyncio.run(_flush(ChangelogBuffer))
    assert settled == [True] * WRITES and failure is None


def test_a_refused_write_fails_the_flush_so_no_commit_covers_its_event() -> None:
    settled, failure = asyncio.run(_flush(ChangelogBuffer, refused=frozenset({1})))
    assert settled == [True] * WRITES
    assert isinstance(failure, ProducerSendError)
    assert isinstance(failure.__cause__, ConnectionError)


def test_a_write_refused_before_the_flush_began_fails_it_too() -> None:
    settled, failure = asyncio.run(_flush(ChangelogBuffer, refused=frozenset({0}),
                                          settle_first=True))
    assert settled == [True] * WRITES and isinstance(failure, ProducerSendError)


def test_faust_own_flush_returns_with_writes_still_queued() -> None:
    # Why ChangelogBuffer exists (faust-streaming 0.15): when this fails, faust's own flush
    # waits, and the subclass may no longer be needed.
    settled, failure = asyncio.run(_flush(ProducerBuffer))
    assert settled.count(False) >= WRITES - 1 and failure is None

