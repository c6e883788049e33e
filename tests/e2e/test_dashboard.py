"""The ops dashboard in headless Chromium (Debian's `chromium`, driven by Playwright).

The page is served by the real web application over a live view folded from a recorded
scenario (no broker needed: the broker path is tests/integration/test_aggregator.py). Checked:
the token link is accepted and removed from the address bar, every chart is drawn with the
API's figures, the charts refresh by themselves when the figures move, a page without a token
asks for one and refuses a wrong one, and nothing breaks the page's content security policy.
A screenshot is written (to COMPLAINTS_SCREENSHOT_DIR when set, else the test's tmp dir).

    apt-get install -y chromium        # the browser (never `playwright install`)
    pip install playwright             # the driver
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.file_ingest import ingest_file
from reporting.items import MONTHLY
from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.submissions import ObligationsSource, submit
from reporting.web import OpsState
from tests.builders import write_jsonl
from tests.e2e.ops_server import ops_server
from tests.integration.test_aggregator_model import build_scenario
from tests.integration.test_submissions import JANUARY, STAGE_1, STAGE_2
from workflow.bootstrap import App, bootstrap
from workflow.clock import EventClock

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TOKEN = "dashboard-test-token"
MONTH = "2026-01"
AS_OF = "2026-04-20T10:00:00Z"
HELD_BACK = 150  # messages applied only after the first render, to see the page refresh


def _require_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright)"
    else:
        if CHROMIUM.exists():
            return sync_playwright
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Server:
    url: str
    state: OpsState
    loop: asyncio.AbstractEventLoop
    held_back: list[tuple[str, str, dict[str, Any]]]

    def apply_held_back(self) -> None:
        """Fold the remaining messages in the server's own loop (the view is single-owner)."""
        def fold() -> None:
            for topic, _, payload in self.held_back:
                self.state.aggregator.handle(topic, json.dumps(payload))  # type: ignore[arg-type]

        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (fold(), done.set()))
        assert done.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    scenario = build_scenario(tmp_path_factory.mktemp("dashboard"), total=1500, seed=3)
    aggregator = Aggregator(Rules(scenario.app.procedure.calendar))
    for topic, _, payload in scenario.messages[:-HELD_BACK]:
        aggregator.handle(topic, json.dumps(payload))  # type: ignore[arg-type]
    state = OpsState(scenario.app.procedure.calendar, aggregator, status="running",
                     delivery_paused=("complaints_manager",))  # (v2) the bundled placeholder
    record = _submissions_record(tmp_path_factory.mktemp("submissions"))
    # "Now" for the gauges is the page's as-of instant (time injected).
    state.obligations = ObligationsSource(record, clock=EventClock(datetime.fromisoformat(AS_OF)))
    with ops_server(state, TOKEN) as (url, loop):
        yield Server(url, state, loop, scenario.messages[-HELD_BACK:])
    scenario.app.engine.dispose()
    record.engine.dispose()


def _submissions_record(directory: Path) -> App:
    """(v2) A record for the submissions panel (tests/integration/test_submissions.py's
    stages): January submitted on 20 Feb, then S4's late January receipt recorded; February
    never submitted. As of the page's 20 Apr: January needs resubmitting, February is overdue
    (due Mon 30 Mar), March's return is next, due Tue 28 Apr (with Q1's, then its
    publication on 5 May)."""
    record = bootstrap(f"sqlite:///{directory / 'submissions.db'}", "kilowatt-connect")
    ingest_file(record, write_jsonl(directory / "stage1.jsonl", STAGE_1))
    submit(record, MONTHLY, JANUARY, now=datetime.fromisoformat("2026-02-20T10:00:00+00:00"),
           by="Priya Shah")
    ingest_file(record, write_jsonl(directory / "stage2.jsonl", STAGE_2))
    return record


def _bars(page: Any, chart: str) -> dict[str, list[int]]:
    return page.eval_on_selector_all(
        f"#chart-{chart} g.row",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.key, "
        "[...r.querySelectorAll('rect.bar')].map(b => Number(b.dataset.value))]))")


def test_dashboard_renders_refreshes_and_guards_its_token(server: Server, tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    view = server.state.aggregator.view
    calendar = server.state.calendar

    as_of = datetime.fromisoformat(AS_OF)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{server.url}/?month={MONTH}&as_of={AS_OF}#token={TOKEN}")
            page.wait_for_selector("#chart-types g.row rect.bar", timeout=10_000)

            # The token left the address bar for this tab's sessionStorage.
            assert "token" not in page.url and page.url.endswith(f"as_of={AS_OF}")
            assert page.evaluate("sessionStorage.getItem('complaints-ops-token')") == TOKEN
            assert page.text_content("#status") == "live"

            backlog = view.backlog(as_of, calendar)
            month = view.monthly(MONTH)
            states = _bars(page, "states")
            assert {k: v[0] for k, v in states.items()} == backlog["by_state"]
            deadlines = _bars(page, "deadlines")
            assert {k: v[0] for k, v in deadlines.items()} == backlog["overdue"]
            assert {k: v[1] for k, v in deadlines.items()} == \
                backlog["due_within_5_working_days"]
            types = _bars(page, "types")
            assert len(types) == 18 and sum(v[0] for v in types.values()) == \
                month["items"]["A1"] > 0
            channels = _bars(page, "channels")
            assert {k: v[0] for k, v in channels.items()} == month["receipts_by_channel"]
            # Bars are drawn to scale: the largest type fills the most width.
            widths = page.eval_on_selector_all(
                "#chart-types rect.bar", "bars => bars.map(b => Number(b.getAttribute('width')))")
            assert max(widths) > 100 and widths.count(0) < len(widths)
            assert page.text_content("#tile-received") == str(month["items"]["A1"])
            # (v2) Letters waiting, and the placeholder pause naming its keys.
            assert backlog["undelivered_letters"] > 0
            assert page.text_content("#tile-undelivered") == str(backlog["undelivered_letters"])
            banner = page.text_content("#delivery-paused") or ""
            assert page.is_visible("#delivery-paused")
            assert "delivery paused" in banner and "[complaints_manager]" in banner

            # (v2) The Ofgem submissions panel, as a person reads it.
            page.wait_for_selector("#sub-list li")
            assert page.text_content("#sub-next") == "Monthly return 2026-03 due Tue 28 Apr 2026"
            assert page.text_content("#sub-overdue") == "1"
            assert page.text_content("#sub-resubmit") == "1"
            assert "alert" in (page.get_attribute("#sub-overdue", "class") or "")
            assert page.eval_on_selector_all("#sub-list li", "items => items.map(i => "
                                             "i.textContent)") == [
                "Overdue: Monthly return 2026-02 (due Mon 30 Mar 2026)",
                "Resubmission needed: Monthly return 2026-01 (submitted as 2026-01-S1)"]
            assert page.text_content("#sub-status") == (
                f"as of {as_of.isoformat()}: 0 submitted, 3 due, 1 overdue, "
                "1 needing resubmission")
            assert page.is_visible("#submissions")
            # The same calendar as Prometheus gauges; the next due is 28 Apr, which ends at
            # 22:59:59.999999 UTC (BST).
            request = urllib.request.Request(f"{server.url}/metrics",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                metrics = response.read().decode()
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in text_string_to_metric_families(metrics)
                       for s in family.samples if "submission" in s.name}
            next_due = datetime.fromisoformat("2026-04-28T22:59:59.999999+00:00").timestamp()
            assert samples == {
                ("complaints_submissions_obligations", (("status", "submitted"),)): 0,
                ("complaints_submissions_obligations", (("status", "due"),)): 3,
                ("complaints_submissions_obligations", (("status", "overdue"),)): 1,
                ("complaints_submissions_obligations",
                 (("status", "resubmission_needed"),)): 1,
                ("complaints_submissions_overdue", ()): 1,
                ("complaints_submissions_resubmission_needed", ()): 1,
                ("complaints_submission_next_due_timestamp_seconds",
                 (("kind", "monthly"), ("period", "2026-03"))): pytest.approx(next_due),
            }

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            keep = os.environ.get("COMPLAINTS_SCREENSHOT_DIR")
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(keep) / "dashboard.png")

            # The page refreshes itself (every 5 s) when the figures move.
            server.apply_held_back()
            moved = view.backlog(as_of, calendar)["by_state"]
            assert moved != backlog["by_state"]
            page.wait_for_function(
                "expected => [...document.querySelectorAll('#chart-states g.row')].every(r => "
                "Number(r.querySelector('rect.bar').dataset.value) === expected[r.dataset.key])",
                arg=moved, timeout=12_000)
            assert problems == [], problems

            # Without a token the page asks for one, and refuses a wrong one.
            fresh = browser.new_context().new_page()
            fresh.goto(f"{server.url}/")
            fresh.wait_for_selector("#login:not([hidden])")
            assert fresh.is_hidden("#figures")
            fresh.fill("#token", "wrong-token")
            fresh.click("#login button[type=submit]")
            fresh.wait_for_selector("#login-error:has-text('not accepted')")
            fresh.fill("#token", TOKEN)
            fresh.click("#login button[type=submit]")
            fresh.wait_for_selector("#figures:not([hidden])")
            assert fresh.locator("#chart-states g.row").count() == 10
            assert fresh.is_hidden("#login")
        finally:
            browser.close()
