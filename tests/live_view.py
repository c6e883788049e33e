"""The ops service's pieces over a test's record: the live view folded from the record's
outbox (what the aggregator would have read from `complaints.lifecycle` and `.letters`), and
the ops state serving that record."""

from __future__ import annotations

import json

from sqlalchemy import select

from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.web import OpsState
from workflow.bootstrap import App
from workflow.schema import OutboxMessage


def fold_outbox(app: App) -> tuple[Aggregator, list[str]]:
    """A new live view fed the record's lifecycle and letters messages in outbox order, and
    what it answered to each (`applied`, ...)."""
    aggregator = Aggregator(Rules(app.procedure.calendar))
    with app.sessions() as session:
        outcomes = [aggregator.handle(topic, json.dumps(payload))
                    for topic, payload in session.execute(
                        select(OutboxMessage.topic, OutboxMessage.payload)
                        .where(OutboxMessage.topic.in_(("lifecycle", "letters")))
                        .order_by(OutboxMessage.id)).all()]
    return aggregator, outcomes


def serving(app: App, aggregator: Aggregator | None = None) -> OpsState:
    """The ops state of a running service over `app`'s record (an empty live view unless
    one is given)."""
    state = OpsState(app.procedure.calendar,
                     aggregator or Aggregator(Rules(app.procedure.calendar)), status="running")
    state.record = app
    return state
