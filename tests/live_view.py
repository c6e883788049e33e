"""The ops service's pieces over a test's record: the live view folded from the record's
outbox (what the aggregator would have read from `complaints.lifecycle` and `.letters`), the
ops state serving that record, and requests to the real ops app serving it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from sqlalchemy import select

from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.web import OpsState, bound_port, create_app, serve
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


def ask(state: OpsState, token: str,
        requests: list[tuple[str, str | None]]) -> list[tuple[int, Any]]:
    """Each `(path, bearer token or None)` asked in turn of the ops app serving `state` with
    `token` on a free loopback port: `(status, JSON body)` each."""
    async def run() -> list[tuple[int, Any]]:
        runner = await serve(create_app(state, token), "127.0.0.1", 0)
        found = []
        try:
            async with aiohttp.ClientSession() as session:
                for path, given in requests:
                    headers = {"Authorization": f"Bearer {given}"} if given else {}
                    async with session.get(f"http://127.0.0.1:{bound_port(runner)}{path}",
                                           headers=headers) as reply:
                        found.append((reply.status, await reply.json()))
        finally:
            await runner.cleanup()
        return found

    return asyncio.run(run())
