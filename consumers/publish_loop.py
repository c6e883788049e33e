"""The one loop of the outbox relay and the timer service: claim rows, publish, mark.

Both turn database rows into Kafka messages with the same guarantees: a round claims up to a
batch of rows (PostgreSQL `FOR UPDATE SKIP LOCKED`, so several publishers share the work or
skip each other's rows), sends each one, waits for the broker to acknowledge every message,
and only then marks the rows published, in the same transaction as the claim. A crash or a
failed acknowledgement between publishing and marking publishes the rows again, which the
consumers downstream recognise by `event_id`.

What differs is passed in: which rows (the claim query), what message each row becomes
(`send`), how they are marked (`mark`), and for the loop whether this publisher may publish
now (`ready`: the relay's advisory lock) and whether it empties its backlog once stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Executable, Row, Select

from consumers.stopping import await_delivery
from workflow.bootstrap import App

STANDBY_WAIT_S = 5.0  # how often a publisher that may not publish now asks again


def publish_round(app: App, producer: Callable[[], Any], claim: Select,  # type: ignore[type-arg]
                  send: Callable[[Row[Any]], Any],
                  mark: Callable[[Sequence[Row[Any]]], Executable], *,
                  skip_locked: bool, stop: threading.Event | None) -> Sequence[Row[Any]]:
    """Claim, publish and mark one round; returns the rows published (none: nothing to do).

    `producer` is asked for only once there is something to publish (it is made lazily, and
    a round with nothing to do must not depend on the broker)."""
    with app.sessions() as session:
        rows = session.execute(claim).all()
        if not rows:
            return rows
        if not skip_locked:
            # SQLite (one publisher): end the read now, so the mark below starts a fresh
            # write transaction instead of upgrading a read snapshot that a consumer's commit
            # may have made stale meanwhile (SQLITE_BUSY without waiting).
            session.rollback()
        futures = [send(row) for row in rows]
        # Raises (bounded, sooner once stopping): nothing is marked, the round is retried;
        # the consumer makes a re-published message a no-op.
        await_delivery(producer(), futures, stop=stop)
        session.execute(mark(rows))
        session.commit()
    return rows


def run_rounds(stop: threading.Event, run_once: Callable[[], int], *, batch: int,
               interval: float, ready: Callable[[], bool] | None = None,
               drain_on_stop: bool = False) -> None:
    """Run rounds until `stop` is set: at once after a full round (more may be waiting),
    else after `interval`. While `ready()` says no, stand by. With `drain_on_stop`, once
    stopped (and still ready) run full rounds until one is not full: what the stopped
    workflow consumer committed last leaves now."""
    while not stop.is_set():
        if ready is not None and not ready():
            stop.wait(STANDBY_WAIT_S)
            continue
        published = run_once()
        if published < batch:
            stop.wait(interval)
    if drain_on_stop and (ready is None or ready()):
        while run_once() == batch:
            pass
