"""The dashboard's trends, the lists behind its counts and a letter's dispatch in the timeline,
in headless Chromium (Debian's `chromium`, Playwright), with the token handled as a person does.

The record is the week of tests/integration/test_trends.py (Sun 1 .. Thu 5 Mar 2026, as of
Thu 5 Mar 08:00Z), with C-4's customer preferring email; the live view is folded from that
record's own outbox. The delivery service then runs once at 08:00: the four acknowledgements
(C-2, C-3 on Tue 3 Mar; C-4, C-5 on Wed 4 Mar) go out, by post for the three who prefer
letters (printed: `dispatched`) and by email for C-4, which has no mail server here, so its
first attempt is `deferred` and the letter stays `pending` (docs/rules.md s.6).

What a person sees, worked by hand:
- the trends, day by day: receipts 0 3 2 0 0, letters 0 0 2 2 0, and at the end of each day
  received 0 2 2 2 2, immediate 0 1 2 1 1, senior manager 0 0 0 1 1;
- a click on the backlog's "Received" bar (2) lists C-2 and C-4 (oldest first), paginated;
- a click on Mon 2 Mar's receipts column lists its three complaints, C-1, C-2, C-3, and a
  day's stage figure (in the table or on the chart) lists the complaints in that stage then;
- the tiles, a due-soon bar, a day's letters and a month's receipts by channel open theirs;
- a click on a listed complaint opens its timeline, with its letter and the letter's dispatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.delivery import DeliveryService
from consumers.file_ingest import ingest_file, tick
from consumers.settings import Settings
from reporting.submissions import ObligationsSource
from tests.builders import write_jsonl
from tests.e2e.ops_server import ops_server
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.integration.test_trends import AS_OF, week_events
from tests.live_view import fold_outbox, serving
from workflow.bootstrap import bootstrap
from workflow.clock import EventClock

TOKEN = "trends-dashboard-token"
PAGE = "/?as_of=2026-03-05T08:00:00Z&days=5&page_size=2"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    app = bootstrap(f"sqlite:///{tmp_path / 'week.db'}", "kilowatt-connect")
    events = week_events()
    for event in events:
        if event["complaint_id"] == "C-4" and event["type"] == "complaint.received":
            event["customer"] = {**event["customer"], "preferred_contact": "email",
                                 "email": "c4@example.org"}
    ingest_file(app, write_jsonl(tmp_path / "week.jsonl", events))
    tick(app, AS_OF)
    # The bundled procedure marks placeholders, which pause delivery outside the demo.
    delivery = DeliveryService(app, Settings.from_env({}), smtp=None, use_env_smtp=False,
                               print_dir=tmp_path / "print", letters_dir=tmp_path / "letters",
                               clock=EventClock(AS_OF), demo=True)
    assert delivery.run_once() == 4
    state = serving(app, fold_outbox(app)[0])
    # The dashboard also shows the submissions calendar, as `complaints up` serves it.
    state.obligations = ObligationsSource(app, clock=EventClock(AS_OF))
    with ops_server(state, TOKEN) as (url, loop):
        yield url
    app.engine.dispose()


def _texts(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "items => items.map(i => i.textContent)")


def _listed(page: Any) -> list[str]:
    return page.eval_on_selector_all("#wq-list-rows li button",
                                     "buttons => buttons.map(b => b.dataset.complaint)")


def test_trends_counts_and_dispatch(server: str) -> None:
    sync_playwright = _require_browser()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(r.url) if r.status >= 500 else None)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            # Without a token: the login form, no trends; the token typed in shows them.
            page.goto(f"{server}{PAGE}")
            page.wait_for_selector("#login:not([hidden])", timeout=10_000)
            assert page.is_hidden("#trends")
            page.fill("#token", TOKEN)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#trends-rows tr", state="attached", timeout=10_000)

            # The trends: the figures a person reads in the table, latest day first.
            page.click("#trends-figures summary")
            assert _texts(page, "#trends-head th")[:6] == [
                "Day", "Receipts", "Letters", "Received", "Immediate", "Senior manager"]
            rows = page.eval_on_selector_all(
                "#trends-rows tr", "rows => rows.map(r => [...r.cells].slice(0, 6)"
                ".map(c => c.textContent))")
            assert rows == [["2026-03-05", "0", "0", "2", "1", "1"],
                            ["2026-03-04", "0", "2", "2", "1", "1"],
                            ["2026-03-03", "2", "2", "2", "2", "0"],
                            ["2026-03-02", "3", "0", "2", "1", "0"],
                            ["2026-03-01", "0", "0", "0", "0", "0"]]
            assert page.is_visible("#trends-rows")
            # ... and in the charts: a column per day, a line per stage occupied.
            assert page.eval_on_selector_all(
                "#chart-receipts g.day", "g => g.map(d => Number(d.dataset.value))") == [
                0, 3, 2, 0, 0]
            assert page.eval_on_selector_all(
                "#chart-letters g.day", "g => g.map(d => Number(d.dataset.value))") == [
                0, 0, 2, 2, 0]
            assert page.eval_on_selector_all(
                "#chart-backlog g.stage", "g => g.map(s => [s.dataset.stage, "
                "[...s.querySelectorAll('circle')].map(c => Number(c.dataset.value))])") == [
                ["received", [0, 2, 2, 2, 2]], ["immediate", [0, 1, 2, 1, 1]],
                ["senior_manager", [0, 0, 0, 1, 1]]]
            assert page.text_content("#trends-note") == "5 receipt(s) and 4 letter(s) in 5 day(s)."
            assert page.text_content("#trends-window").startswith("2026-03-01 to 2026-03-05")

            # A day's figure opens the complaints behind it: immediate at the end of Tuesday
            # (C-3, C-5), from the table and from the chart's point.
            page.click("#trends-rows tr[data-day='2026-03-03'] td:nth-child(5)")
            page.wait_for_selector("#wq-list-note:has-text("
                                   "'Immediate at the end of 2026-03-03: 2 complaint(s)')")
            assert _listed(page) == ["C-3", "C-5"]
            page.click("#chart-backlog g.stage-senior_manager circle[data-day='2026-03-04']")
            page.wait_for_selector("#wq-list-note:has-text("
                                   "'Senior manager at the end of 2026-03-04: 1 complaint(s)')")
            assert _listed(page) == ["C-3"]

            # A click on the backlog's Received bar (the live view: 2) lists C-2 and C-4.
            bar = "#chart-states g.row[data-key=received]"
            assert page.get_attribute(f"{bar} rect.bar", "data-value") == "2"
            page.click(bar)
            page.wait_for_selector("#wq-list-note:has-text('In stage: Received: 2 complaint(s)')")
            assert _listed(page) == ["C-2", "C-4"]
            assert [t.split(" ", 1)[1] for t in _texts(page, "#wq-list-rows li")] == [
                "received, unassigned", "received, unassigned"]
            assert page.input_value("#wq-list-by") == "state=received"

            # A click on Mon 2 Mar's receipts: three complaints, two to a page here.
            page.click("#chart-receipts g.day[data-day='2026-03-02']")
            page.wait_for_selector(
                "#wq-list-note:has-text('Received on 2026-03-02: 3 complaint(s), 1-2 shown')")
            assert _listed(page) == ["C-1", "C-2"]
            assert page.is_hidden("#wq-list-prev")
            page.click("#wq-list-next")
            page.wait_for_selector("#wq-list-note:has-text('3-3 shown')")
            assert _listed(page) == ["C-3"]
            assert page.is_hidden("#wq-list-next")
            page.click("#wq-list-prev")
            page.wait_for_selector("#wq-list-note:has-text('1-2 shown')")
            # A day without receipts opens nothing (its column is not a link).
            assert page.get_attribute("#chart-receipts g.day[data-day='2026-03-01']",
                                      "data-list") is None

            # An overdue kind, from the keyboard: none overdue at 08:00 on Thursday.
            page.focus("#chart-deadlines g.row[data-key=acknowledgement]")
            page.keyboard.press("Enter")
            page.wait_for_selector(
                "#wq-list-note:has-text('Deadline overdue: Acknowledgement: 0 complaint(s)')")
            assert _listed(page) == []

            # The tiles: the unresolved complaints (4, two to a page), and the one letter
            # still undelivered (C-4's email) after the delivery round.
            assert page.text_content("#tile-open") == "4"
            page.click("#tile-open")
            page.wait_for_selector(
                "#wq-list-note:has-text('Unresolved complaints: 4 complaint(s), 1-2 shown')")
            assert _listed(page) == ["C-2", "C-3"]
            page.click("#wq-list-next")
            page.wait_for_selector("#wq-list-note:has-text('3-4 shown')")
            assert _listed(page) == ["C-4", "C-5"]
            assert page.text_content("#tile-undelivered") == "1"
            page.click("#tile-undelivered")
            page.wait_for_selector(
                "#wq-list-note:has-text('Letters not yet delivered: 1 complaint(s)')")
            assert _texts(page, "#wq-list-rows li") == [
                f"{page.text_content('#wq-list-rows li button')} received, unassigned, "
                "letter acknowledgement issued 2026-03-04 23:59"]
            assert _listed(page) == ["C-4"]
            # A due-soon bar: progress updates by end of Thu 12 Mar (C-1's is counted too:
            # unfired although C-1 is resolved, as the backlog counts it).
            soon = "#chart-deadlines g.row[data-key=progress_update] rect.bar-soon"
            assert page.get_attribute(soon, "data-value") == "3"
            page.click(soon)
            page.wait_for_selector("#wq-list-note:has-text("
                                   "'Due within 5 working days: Progress update: 3 complaint')")
            assert _listed(page) == ["C-1", "C-2"]
            # Tuesday's letters column: C-2's and C-3's acknowledgements.
            page.click("#chart-letters g.day[data-day='2026-03-03']")
            page.wait_for_selector(
                "#wq-list-note:has-text('Letters issued on 2026-03-03: 2 complaint(s)')")
            assert sorted(_listed(page)) == ["C-2", "C-3"]
            # Receipts this month, by telephone: all five.
            page.click("#chart-channels g.row[data-key=telephone]")
            page.wait_for_selector("#wq-list-note:has-text("
                                   "'Received in 2026-03 by telephone: 5 complaint(s)')")
            page.click("#chart-types g.row[data-key=B13]")
            page.wait_for_selector("#wq-list-note:has-text("
                                   "'Received in 2026-03, B13 Billing: 5 complaint(s)')")

            # A listed complaint opens its timeline: the letter and its dispatch by post.
            page.click("#chart-states g.row[data-key=received]")
            page.wait_for_selector("#wq-list-rows li button[data-complaint=C-2]")
            page.click("#wq-list-rows li button[data-complaint=C-2]")
            page.wait_for_selector("#wq-timeline-title:has-text('(C-2)')")
            page.wait_for_selector("#wq-timeline-rows .wq-dispatch")
            letter = page.text_content("#wq-timeline-rows li.wq-letter")
            assert letter.startswith("2026-03-03 23:59 letter: acknowledgement")
            assert _texts(page, "#wq-timeline-rows li.wq-letter .wq-dispatch li") == [
                "delivery: dispatched, 1 attempt(s)",
                "attempt 1: post dispatched 2026-03-05 08:00"]

            # C-4's email, with no mail server: one deferred attempt, still pending.
            page.click("#wq-list-rows li button[data-complaint=C-4]")
            page.wait_for_selector("#wq-timeline-title:has-text('(C-4)')")
            page.wait_for_selector("#wq-timeline-rows .wq-dispatch")
            assert _texts(page, "#wq-timeline-rows li.wq-letter .wq-dispatch li") == [
                "delivery: pending, 1 attempt(s)", "attempt 1: email deferred 2026-03-05 08:00"]
            assert problems == []

            # A wrong token in the link: asked again, and no trends shown.
            other = browser.new_context().new_page()
            other.goto(f"{server}{PAGE}#token=wrong")
            other.wait_for_selector("#login:not([hidden])", timeout=10_000)
            assert other.is_hidden("#trends")
            assert other.eval_on_selector_all("#trends-rows tr", "rows => rows.length") == 0
            assert "token=" not in other.url
        finally:
            browser.close()
