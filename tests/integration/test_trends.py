"""The work queue's trends (reporting/trends.py, `GET /trends`), on SQLite and PostgreSQL.

The record (Kilowatt Connect, March 2026: GMT, so a local date is the UTC date):

    Mon 2 Mar  09:00 C-1 received (no handler: `received`)
               10:00 C-2 received (`received`)
               11:00 C-3 received with a handler (`immediate`)
    Tue 3 Mar  09:00 C-4 received (`received`)
               10:00 C-5 received with a handler (`immediate`)
               12:00 C-1 assigned (`immediate`);  15:00 C-1 resolved (`resolved`)
               end of day: the D+1 acknowledgements of C-1..C-3 fire (s.5): C-1 is resolved,
               so no letter; C-2 and C-3 get theirs (2 letters)
    Wed 4 Mar  10:00 C-3 asks for a senior manager (`senior_manager`)
               end of day: C-4's and C-5's acknowledgements (2 letters)
    Thu 5 Mar  08:00 the clock stops (as_of)

Worked by hand, for the five dates Sun 1 .. Thu 5 Mar:
    receipts                   0 3 2 0 0
    letters (acknowledgement)  0 0 2 2 0
    at the end of each day:
      received                 0 2 2 2 2    (C-1, C-2; then C-2, C-4)
      immediate                0 1 2 1 1    (C-3; C-3, C-5; then C-5)
      senior_manager           0 0 0 1 1    (C-3 from Wed)
      resolved                 0 0 1 1 1    (C-1 from Tue)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from consumers.file_ingest import ingest_file, tick
from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.trends import trends
from reporting.web import OpsState, bound_port, create_app, serve
from tests.builders import HANDLER, assigned, received, resolved, simple, write_jsonl
from tests.live_view import ask, serving
from workflow.bootstrap import App, bootstrap

AS_OF = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
TOKEN = "trends-test-token"
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]


def week_events() -> list[dict[str, Any]]:
    return [
        received("C-1-r", "C-1", "2026-03-02T09:00:00Z"),
        received("C-2-r", "C-2", "2026-03-02T10:00:00Z"),
        received("C-3-r", "C-3", "2026-03-02T11:00:00Z", handler=dict(HANDLER)),
        received("C-4-r", "C-4", "2026-03-03T09:00:00Z"),
        received("C-5-r", "C-5", "2026-03-03T10:00:00Z", handler=dict(HANDLER)),
        assigned("C-1-a", "C-1", "2026-03-03T12:00:00Z"),
        resolved("C-1-z", "C-1", "2026-03-03T15:00:00Z"),
        simple("complaint.escalation_requested", "C-3-e", "C-3", "2026-03-04T10:00:00Z"),
    ]


def build_week(app: App, directory: Path) -> None:
    ingest_file(app, write_jsonl(directory / "week.jsonl", week_events()))
    tick(app, AS_OF)  # the acknowledgement deadlines fire by event time


@pytest.fixture
def week(app: App, tmp_path: Path) -> Iterator[App]:
    build_week(app, tmp_path)
    yield app


def _nonzero(backlog: dict[str, list[int]]) -> dict[str, list[int]]:
    return {state: counts for state, counts in backlog.items() if any(counts)}


def test_the_week_by_hand(week: App) -> None:
    with week.sessions() as session:
        document = trends(session, AS_OF, 5)
    assert document["days"] == DAYS
    assert document["receipts"] == [0, 3, 2, 0, 0]
    assert document["letters"] == [0, 0, 2, 2, 0]
    assert document["letters_by_kind"] == {"acknowledgement": [0, 0, 2, 2, 0]}
    assert _nonzero(document["backlog"]) == {
        "received": [0, 2, 2, 2, 2], "immediate": [0, 1, 2, 1, 1],
        "senior_manager": [0, 0, 0, 1, 1], "resolved": [0, 0, 1, 1, 1]}


def test_the_last_day_stops_at_as_of(week: App) -> None:
    """As of Tue 3 Mar 13:00: C-1 has been assigned (12:00) but not yet resolved (15:00), and
    no acknowledgement has fired (end of the day). Mon: C-1, C-2 received, C-3 immediate; Tue
    so far: C-2, C-4 received; C-3, C-5, C-1 immediate."""
    with week.sessions() as session:
        document = trends(session, datetime(2026, 3, 3, 13, 0, tzinfo=UTC), 2)
    assert document["days"] == ["2026-03-02", "2026-03-03"]
    assert document["receipts"] == [3, 2]
    assert document["letters"] == [0, 0]
    assert _nonzero(document["backlog"]) == {"received": [2, 2], "immediate": [1, 3]}


def test_a_day_is_a_london_date(app: App, tmp_path: Path) -> None:
    """23:30Z on Mon 1 June 2026 is 00:30 BST on Tue 2 June: a receipt of the 2nd."""
    ingest_file(app, write_jsonl(tmp_path / "bst.jsonl",
                                 [received("B-1-r", "B-1", "2026-06-01T23:30:00Z")]))
    with app.sessions() as session:
        document = trends(session, datetime(2026, 6, 2, 12, 0, tzinfo=UTC), 2)
    assert document["days"] == ["2026-06-01", "2026-06-02"]
    assert document["receipts"] == [0, 1]
    assert _nonzero(document["backlog"]) == {"received": [0, 1]}


def test_served_behind_the_token(sqlite_url: str, tmp_path: Path) -> None:
    app = bootstrap(sqlite_url, "kilowatt-connect")
    build_week(app, tmp_path)
    state = serving(app)
    as_of = "2026-03-05T08:00:00%2B00:00"

    try:
        (ok, ok_body), (none, _), (wrong, _), (zero, zero_body), (text, _), (bad, bad_body) = ask(
            state, TOKEN, [(f"/trends?days=5&as_of={as_of}", TOKEN),
                           (f"/trends?days=5&as_of={as_of}", None),
                           (f"/trends?days=5&as_of={as_of}", "wrong"),
                           ("/trends?days=0", TOKEN), ("/trends?days=x", TOKEN),
                           ("/trends?as_of=yesterday", TOKEN)])
    finally:
        app.engine.dispose()
    assert ok == 200
    assert (ok_body["days"], ok_body["receipts"], ok_body["letters"]) == (
        DAYS, [0, 3, 2, 0, 0], [0, 0, 2, 2, 0])
    assert ok_body["backlog"]["senior_manager"] == [0, 0, 0, 1, 1]
    assert (none, wrong) == (401, 401)
    assert (zero, text, bad) == (400, 400, 400)
    assert zero_body["error"] == "days must be 1..366"
    assert "as_of" in bad_body["error"]


def test_without_a_record_an_empty_answer(sqlite_url: str) -> None:
    """A server with no database (python -m consumers.aggregator): trends are empty, not an
    error, so the dashboard's page shows no panel and logs no failure."""
    app = bootstrap(sqlite_url, "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar)),
                     status="running")
    app.engine.dispose()

    async def run() -> tuple[int, Any]:
        runner = await serve(create_app(state, TOKEN), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as client, client.get(
                    f"http://127.0.0.1:{bound_port(runner)}/trends?days=3",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                return reply.status, await reply.json()
        finally:
            await runner.cleanup()

    status, body = asyncio.run(run())
    assert status == 200
    assert (body["days"], body["receipts"], body["backlog"]) == ([], [], {})
    assert "no record" in body["note"]
