"""The dashboard's work queue panel in headless Chromium (Debian's `chromium`, Playwright).

Over the record of tests/integration/test_risk.py (20 complaints of history, judged at Mon
1 Jun 2026 09:00Z, so the prior answers): S-1 (silent since 15 Apr, 80 %) and A-1 (worked,
41 %), both 47 days old, both due their eight weeks on 10 Jun. A person sees the at-risk rows,
opens a complaint's timeline with a click, finds one by its id, and sees nothing without the
token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reporting.risk import compute_board
from reporting.submissions import ObligationsSource
from tests.e2e.ops_server import ops_server
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.integration.test_risk import AS_OF, _record
from tests.live_view import serving
from workflow.bootstrap import bootstrap
from workflow.clock import EventClock

TOKEN = "workqueue-test-token"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    app = bootstrap(_record(tmp_path, 20), "kilowatt-connect")
    state = serving(app)
    state.risk = compute_board(app, datetime.fromisoformat(AS_OF))
    # The dashboard also shows the submissions calendar, as `complaints up` serves it.
    state.obligations = ObligationsSource(app, clock=EventClock(datetime.fromisoformat(AS_OF)))
    with ops_server(state, TOKEN) as (url, loop):
        yield url
    app.engine.dispose()


def _cells(page: Any) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#wq-risk-rows tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def test_work_queue_rows_timeline_and_search(server: str) -> None:
    sync_playwright = _require_browser()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{server}/#token={TOKEN}")
            page.wait_for_selector("#wq-risk-rows tr", timeout=10_000)
            rows = _cells(page)
            assert [row[1:] for row in rows] == [
                ["Sam Patel", "immediate", "47", "progress_update 2026-06-04 09:00", "2026-06-10",
                 "80%"],
                ["Kim Lee", "immediate", "47", "progress_update 2026-06-04 09:00", "2026-06-10",
                 "41%"]]
            assert all(row[0].startswith("KC-") for row in rows)
            assert "2 complaint(s) can still breach; model prior" in page.text_content(
                "#wq-risk-note")

            # A click on the first row opens S-1's timeline.
            page.click("#wq-risk-rows tr:first-child button")
            page.wait_for_selector("#wq-timeline-rows li")
            title = page.text_content("#wq-timeline-title")
            assert "(S-1)" in title and "owner Sam Patel" in title
            entries = page.eval_on_selector_all("#wq-timeline-rows li",
                                                "items => items.map(i => i.textContent)")
            assert entries[0].startswith("2026-04-15 09:00 complaint.received")
            assert any("letter: acknowledgement" in e for e in entries)
            assert entries[-1] == "2026-06-10 09:00 due: eight_week"

            # Search by complaint id: one hit, listed and opened.
            page.fill("#wq-query", "A-1")
            page.click("#wq-search button[type=submit]")
            # (selectors, not wait_for_function: the page's CSP forbids evaluating strings)
            page.wait_for_selector("#wq-timeline-title:has-text('(A-1)')")
            hits = page.eval_on_selector_all("#wq-results li",
                                             "items => items.map(i => i.textContent)")
            assert len(hits) == 1 and "A-1, immediate, received 2026-04-15, Kim Lee" in hits[0]
            assert any("complaint.contact_logged" in e for e in page.eval_on_selector_all(
                "#wq-timeline-rows li", "items => items.map(i => i.textContent)"))
            # The complaints behind a count: those in a stage, and those received on a day.
            page.select_option("#wq-list-by", "state=immediate")
            page.click("#wq-list button[type=submit]")
            page.wait_for_selector("#wq-list-note:has-text('2 complaint(s)')")
            listed = page.eval_on_selector_all("#wq-list-rows li",
                                               "items => items.map(i => i.textContent)")
            assert [item.split(" ", 1)[1] for item in listed] == [
                "immediate, Kim Lee", "immediate, Sam Patel"]
            page.select_option("#wq-list-by", "received")
            page.fill("#wq-list-day", "2026-04-15")
            page.click("#wq-list button[type=submit]")
            page.wait_for_selector("#wq-list-rows li:has-text('at 2026-04-15 09:00')")
            page.click("#wq-list-rows li:last-child button")
            page.wait_for_selector("#wq-timeline-title:has-text('(S-1)')")

            page.fill("#wq-query", "NOBODY")
            page.click("#wq-search button[type=submit]")
            page.wait_for_selector("#wq-results li:has-text('No complaint')")
            assert problems == []

            # Without a valid token: the login form, no queue.
            other = browser.new_context().new_page()
            other.goto(f"{server}/#token=wrong")
            other.wait_for_selector("#login:not([hidden])", timeout=10_000)
            assert other.is_hidden("#workqueue")
            assert other.eval_on_selector_all("#wq-risk-rows tr", "rows => rows.length") == 0
        finally:
            browser.close()
