"""The complaints behind the dashboard's other counts (reporting/countlists.py,
`GET /complaints/behind`), on SQLite and PostgreSQL, over the week of test_trends.py.

Worked by hand (Kilowatt Connect: progress updates 240 h after receipt; a senior manager
review 5 working days after the escalation, s.5), as of Thu 5 Mar 08:00Z:
- unresolved: C-2, C-4 (received), C-3 (senior manager), C-5 (immediate); C-1 is resolved.
- due within 5 working days (Fri 6 .. end of Thu 12 Mar): progress updates of C-1 (12 Mar
  09:00; resolved, but its deadline is unfired and counted, as the backlog counts it), C-2
  (10:00) and C-3 (11:00); not C-4 or C-5 (13 Mar). C-3's review: end of Wed 11 Mar.
- undelivered: all four acknowledgements (no delivery has run); letters of Tue 3 Mar: C-2's
  and C-3's.
- received in March 2026: five, all by telephone; none by email.
As of Thu 12 Mar 12:00Z (nothing fired since the 5th), overdue: C-3's review (end of 11 Mar),
then the progress updates of C-1, C-2, C-3 (09:00, 10:00, 11:00).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.file_ingest import ingest_file
from reporting.countlists import behind
from reporting.periods import parse_month
from reporting.trends import trends
from tests.builders import write_jsonl
from tests.integration.test_trends import AS_OF, build_week
from tests.live_view import ask, fold_outbox, serving
from workflow import queries
from workflow.bootstrap import App, bootstrap


@pytest.fixture
def week(app: App, tmp_path: Path) -> Iterator[App]:
    build_week(app, tmp_path)
    yield app


def _list(app: App, count: str, as_of: datetime = AS_OF, **options: Any) -> dict[str, Any]:
    with app.sessions() as session:
        return behind(session, count, as_of=as_of, calendar=app.procedure.calendar, **options)


def _ids(document: dict[str, Any]) -> list[str]:
    return [c["complaint_id"] for c in document["complaints"]]


def test_each_list_is_its_count(week: App) -> None:
    with week.sessions() as session:
        backlog = queries.backlog(session, AS_OF, week.procedure.calendar)
    unresolved = _list(week, "unresolved")
    assert _ids(unresolved) == ["C-2", "C-3", "C-4", "C-5"]  # oldest first
    assert unresolved["total"] == 4 == sum(
        backlog["by_state"][s] for s in ("received", "immediate", "senior_manager"))
    soon = _list(week, "due_soon", kind="progress_update")
    assert [(c["complaint_id"], c["due_at"]) for c in soon["complaints"]] == [
        ("C-1", "2026-03-12T09:00:00+00:00"), ("C-2", "2026-03-12T10:00:00+00:00"),
        ("C-3", "2026-03-12T11:00:00+00:00")]
    assert soon["total"] == backlog["due_within_5_working_days"]["progress_update"] == 3
    review = _list(week, "due_soon", kind="senior_manager_review")
    assert [(c["complaint_id"], c["kind"], c["due_at"]) for c in review["complaints"]] == [
        ("C-3", "senior_manager_review", "2026-03-11T23:59:59.999999+00:00")]
    undelivered = _list(week, "undelivered")
    assert sorted(_ids(undelivered)) == ["C-2", "C-3", "C-4", "C-5"]
    assert undelivered["total"] == backlog["undelivered_letters"] == 4
    assert {c["letter_kind"] for c in undelivered["complaints"]} == {"acknowledgement"}
    tuesday = _list(week, "letters", day=date(2026, 3, 3))
    assert sorted(_ids(tuesday)) == ["C-2", "C-3"]
    assert {c["issued_at"] for c in tuesday["complaints"]} == {
        "2026-03-03T23:59:59.999999+00:00"}
    march = _list(week, "received_month", month=parse_month("2026-03"))
    assert _ids(march) == ["C-1", "C-2", "C-3", "C-4", "C-5"]
    assert _list(week, "received_month", month=parse_month("2026-03"),
                 channel="telephone")["total"] == 5
    assert _list(week, "received_month", month=parse_month("2026-03"),
                 channel="email")["total"] == 0
    assert _list(week, "late_referrals")["total"] == backlog["late_referrals"] == 0
    assert _list(week, "overdue")["total"] == 0 == sum(backlog["overdue"].values())


def test_overdue_of_every_kind_a_week_on(week: App) -> None:
    later = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
    overdue = _list(week, "overdue", as_of=later)
    assert [(c["complaint_id"], c["kind"]) for c in overdue["complaints"]] == [
        ("C-3", "senior_manager_review"), ("C-1", "progress_update"),
        ("C-2", "progress_update"), ("C-3", "progress_update")]
    with week.sessions() as session:
        backlog = queries.backlog(session, later, week.procedure.calendar)
    assert overdue["total"] == sum(backlog["overdue"].values()) == 4
    # Paginated: the second page of two.
    second = _list(week, "overdue", as_of=later, offset=2, limit=2)
    assert (second["total"], _ids(second)) == (4, ["C-2", "C-3"])


def test_an_unknown_count_is_refused(week: App) -> None:
    with pytest.raises(ValueError, match="count must be one of"):
        _list(week, "everything")


def test_served_behind_the_token(sqlite_url: str, tmp_path: Path) -> None:
    app = bootstrap(sqlite_url, "kilowatt-connect")
    build_week(app, tmp_path)
    state = serving(app)
    token = "behind-test-token"
    as_of = "&as_of=2026-03-05T08:00:00Z"
    asks = [("?count=due_soon&kind=progress_update" + as_of, token),
            ("?count=letters&day=2026-03-03&limit=1" + as_of, token),
            ("?count=unresolved", None), ("?count=unresolved", "wrong"),
            ("?count=everything", token), ("?count=due_soon", token),
            ("?count=due_soon&kind=lunch", token), ("?count=letters", token),
            ("?count=received_month&month=March", token),
            ("?count=unresolved&channel=email", token), ("?count=unresolved&limit=0", token),
            ("?count=unresolved&limit=abc", token), ("?count=unresolved&stat=resolved", token)]

    try:
        answers = ask(state, token, [(f"/complaints/behind{query}", given)
                                     for query, given in asks])
    finally:
        app.engine.dispose()
    (soon_status, soon), (letters_status, letters), *refused = answers
    assert (soon_status, soon["total"], _ids(soon)) == (200, 3, ["C-1", "C-2", "C-3"])
    assert (letters_status, letters["total"], len(letters["complaints"])) == (200, 2, 1)
    assert [status for status, _ in refused] == [401, 401] + [400] * 9
    # The rule, not Python's words; a misspelt filter is named, never ignored.
    assert refused[-2][1] == {"error": "offset must be >= 0 and limit 1..500"}
    assert refused[-1][1]["error"].startswith("unknown parameter stat: this list takes ")


def test_a_stage_at_the_end_of_a_day(week: App) -> None:
    """The complaints behind each point of the trends' backlog: end of Mon 2 Mar, received
    C-1, C-2; end of Tue 3 Mar, immediate C-3, C-5 (C-1 was assigned, then resolved at 15:00);
    end of Wed 4 Mar, senior manager C-3. As of Tue 13:00, immediate: C-1 (assigned at noon),
    C-3, C-5. And every point agrees with the trends' count, on every day and stage."""
    def on(state: str, day: date, as_of: datetime = AS_OF) -> list[str]:
        return _ids(_list(week, "stage_on", as_of=as_of, state=state, day=day))

    assert on("received", date(2026, 3, 2)) == ["C-1", "C-2"]
    assert on("immediate", date(2026, 3, 3)) == ["C-3", "C-5"]
    assert on("resolved", date(2026, 3, 3)) == ["C-1"]
    assert on("senior_manager", date(2026, 3, 4)) == ["C-3"]
    assert on("immediate", date(2026, 3, 3), datetime(2026, 3, 3, 13, 0, tzinfo=UTC)) == [
        "C-1", "C-3", "C-5"]
    assert on("received", date(2026, 3, 1)) == []
    with week.sessions() as session:
        document = trends(session, AS_OF, 5)
    for state, counts in document["backlog"].items():
        for day, expected in zip(document["days"], counts, strict=True):
            assert _list(week, "stage_on", state=state,
                         day=date.fromisoformat(day))["total"] == expected, (state, day)


def test_a_months_receipts_of_a_type(week: App, tmp_path: Path) -> None:
    """A type is the complaint's category as it stands now, as the live view counts it: C-2
    recategorised to B9; C-3 to B12 (effective Wed noon), then, arriving later, to B9
    effective Tuesday noon: the latest by effective instant wins, so C-3 is B12. So in March,
    B9: C-2; B12: C-3; B13 (the registrations'): C-1, C-4, C-5; as the live view has them."""
    def recategorised(event_id: str, complaint_id: str, at: str, category: str) -> dict[
            str, Any]:
        return {"event_id": event_id, "type": "complaint.recategorised", "occurred_at": at,
                "complaint_id": complaint_id, "category": category}

    ingest_file(week, write_jsonl(tmp_path / "recat1.jsonl", [
        recategorised("C-2-k", "C-2", "2026-03-04T09:00:00Z", "B9"),
        recategorised("C-3-k", "C-3", "2026-03-04T12:00:00Z", "B12")]))
    ingest_file(week, write_jsonl(tmp_path / "recat2.jsonl", [
        recategorised("C-3-k2", "C-3", "2026-03-03T12:00:00Z", "B9")]))
    march = parse_month("2026-03")
    found = {code: _ids(_list(week, "received_month", month=march, category=code))
             for code in ("B9", "B12", "B13")}
    assert found == {"B9": ["C-2"], "B12": ["C-3"], "B13": ["C-1", "C-4", "C-5"]}
    aggregator, _ = fold_outbox(week)
    items = aggregator.view.monthly("2026-03")["items"]
    assert {code: items[code] for code in found} == {
        code: len(ids) for code, ids in found.items()}
