"""The work queue's lists on a reader's connection (PostgreSQL, autocommit), where each list's
total and the keys of the rows its pages held are kept with the snapshot they were read in
(reporting/workqueue.py `_read_known`): every page is the document the same request gives
read afresh (through SQLAlchemy, total counted beside the page), in any order of requests,
and a write between two pages is seen by the second (its snapshot differs: nothing kept is
used)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bench.backlog import AS_OF, load
from reporting import workqueue
from reporting.workqueue import listing
from workflow.bootstrap import App, bootstrap

LATER = datetime.fromisoformat("2027-06-01T00:00:00+00:00")  # every unfired deadline due
LISTS: list[dict[str, Any]] = [
    {"state": "resolved"}, {"state": "immediate"}, {"state": "ombudsman"},
    {"overdue": "acknowledgement", "as_of": AS_OF}, {"overdue": "remedy", "as_of": AS_OF},
    {"overdue": "eight_week", "as_of": LATER}, {"overdue": "referral_window", "as_of": LATER},
    {"overdue": "remedy", "as_of": LATER},
    {"received": (AS_OF - timedelta(days=30)).date()}, {"received": AS_OF.date()},
]

pytestmark = pytest.mark.postgres


@pytest.fixture
def sample_app(postgres_url: str) -> Iterator[App]:
    """bench/backlog.py's record of 3,000 complaints (a year's mix of stages, their
    deadlines, receipts, remedies flagged overdue), loaded as the benchmark loads it."""
    app = bootstrap(postgres_url, "kilowatt-connect")
    try:
        load(app, 3_000, 2026)
        yield app
    finally:
        app.engine.dispose()


def _afresh(app: App, monkeypatch: pytest.MonkeyPatch, **arguments: Any) -> dict[str, Any]:
    """The page read through SQLAlchemy in a session: its total counted beside it."""
    with monkeypatch.context() as patch, app.sessions() as session:
        patch.setattr(workqueue, "_RAW", False)
        return listing(session, **arguments)


def _requests() -> list[dict[str, Any]]:
    """Every list's pages of 1, 7 and 50 rows at offsets up to past the end, in an order
    that finds a known row before most pages (and none before some), then backwards."""
    offsets = [0, 3, 1, 2, 10, 9, 50, 60, 7, 14, 100, 400, 2_000, 2_300, 60]
    asked = [{**chosen, "offset": offset, "limit": limit}
             for chosen in LISTS for limit in (1, 7, 50) for offset in offsets]
    return asked + asked[::-1]


def test_pages_equal_the_pages_read_afresh(sample_app: App,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A count limit below the larger lists' sizes: their totals are lower bounds.
    monkeypatch.setattr(workqueue, "COUNT_LIMIT", 300)
    raw = sample_app.engine.raw_connection()
    try:
        driver = raw.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        nonempty = 0
        for request in _requests():
            page = listing(driver, **request)
            assert page == _afresh(sample_app, monkeypatch, **request), request
            nonempty += bool(page["complaints"])
            # Following `next` from a known list: the afresh read's cursor page.
            if page["next"] is not None:
                following = {**request, "after": page["next"]}
                assert listing(driver, **following) == _afresh(sample_app, monkeypatch,
                                                               **following), following
        assert nonempty > 300
        assert any(page for page in workqueue._known[driver].values() if page.keys)
    finally:
        raw.close()


def test_a_write_between_pages_is_seen(sample_app: App,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    raw = sample_app.engine.raw_connection()
    try:
        driver = raw.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        before = [listing(driver, state="resolved", offset=offset, limit=1)
                  for offset in range(4)]
        assert before[0]["total_exact"] and before[0]["total"] >= 4
        first = before[0]["complaints"][0]["complaint_id"]
        # Another connection moves the first resolved complaint out of the list and commits.
        with sample_app.engine.begin() as connection:
            connection.execute(text("UPDATE complaints SET state = 'closed' "
                                    "WHERE complaint_id = :c"), {"c": first})
        after = [listing(driver, state="resolved", offset=offset, limit=1)
                 for offset in range(4)]
        assert after[0]["total"] == before[0]["total"] - 1
        assert [p["complaints"] for p in after[:3]] == [p["complaints"] for p in before[1:]]
        for offset, page in enumerate(after):
            assert page == _afresh(sample_app, monkeypatch, state="resolved", offset=offset,
                                   limit=1)
    finally:
        raw.close()


def test_what_is_kept_is_bounded(sample_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most _KNOWN_LISTS lists and about _KNOWN_KEYS keys per connection (all forgotten
    past either); the pages are the same."""
    monkeypatch.setattr(workqueue, "_KNOWN_LISTS", 2)
    monkeypatch.setattr(workqueue, "_KNOWN_KEYS", 40)
    raw = sample_app.engine.raw_connection()
    try:
        driver = raw.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        for request in _requests()[::7]:
            assert listing(driver, **request) == _afresh(sample_app, monkeypatch, **request)
            lists = workqueue._known[driver]
            assert len(lists) <= 2
            assert lists.keys_known == sum(len(known.keys) for known in lists.values())
            assert lists.keys_known <= 40 + 2 * 501  # the last list's pages, before a new one
    finally:
        raw.close()
