"""`GET /risk` on the ops API: the at-risk list of the latest refit, behind the token, and
the refits `complaints up` runs on a schedule (reporting.risk.WithRiskRefits)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.risk import WithRiskRefits
from reporting.web import OpsState, bound_port, create_app, serve
from tests.integration.test_risk import AS_OF, _record
from workflow.bootstrap import bootstrap

TOKEN = "risk-test-token"


class _Fixed:
    def now(self) -> datetime:
        return datetime.fromisoformat(AS_OF)


class _Service:
    """Stands in for the ops service: its state, and a run that lasts until stopped."""

    def __init__(self, state: OpsState) -> None:
        self.state = state
        self.stats: dict[str, int] = {}

    def run(self, stop: threading.Event) -> None:
        stop.wait()


async def _get_all(port: int, requests: list[tuple[str, str | None]]) -> list[tuple[int, Any]]:
    found = []
    async with aiohttp.ClientSession() as session:
        for path, token in requests:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as reply:
                found.append((reply.status, await reply.json()))
    return found


def _ask(state: OpsState, requests: list[tuple[str, str | None]]) -> list[tuple[int, Any]]:
    async def run() -> list[tuple[int, Any]]:
        runner = await serve(create_app(state, TOKEN), "127.0.0.1", 0)
        try:
            return await _get_all(bound_port(runner), requests)
        finally:
            await runner.cleanup()

    return asyncio.run(run())


def test_risk_endpoint_serves_the_scheduled_refit(tmp_path: Path) -> None:
    app = bootstrap(_record(tmp_path, 20), "kilowatt-connect")
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar), store={}))
    (missing, _), (before, _) = _ask(state, [("/risk", None), ("/risk", TOKEN)])
    assert (missing, before) == (401, 503)

    stop = threading.Event()
    service = WithRiskRefits(_Service(state), app, interval=3600, clock=_Fixed())
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while state.risk is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert state.risk is not None
    (ok, page), (ok2, second), (bad, _) = _ask(state, [
        ("/risk", TOKEN), ("/risk?offset=1&limit=1", TOKEN), ("/risk?limit=0", TOKEN)])
    assert (ok, ok2, bad) == (200, 200, 400)
    # Refitted at 1 Jun 2026 09:00Z: the prior's figures of test_risk (20 complaints).
    assert page["total"] == 2 and page["model"] == "prior"
    assert page["as_of"] == AS_OF
    assert [(r["complaint_id"], r["p_breach"]) for r in page["complaints"]] == [
        ("S-1", 0.8003), ("A-1", 0.4102)]
    assert [r["complaint_id"] for r in second["complaints"]] == ["A-1"]
    assert second["offset"] == 1 and second["limit"] == 1
