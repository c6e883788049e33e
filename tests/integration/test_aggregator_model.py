"""The aggregator's fold against the database, without a broker: the outbox's own messages are
folded in process, in order, with re-deliveries, and the live figures must equal the record's.

Real SQLite, real handlers (event-time ingest of the bundled sample and a generated stream);
the broker tests (test_aggregator.py) then show the same through Tansu and a restart.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.generate import generate
from consumers.file_ingest import ingest_file
from reporting.items import MONTHLY, QUARTERLY
from reporting.numbers import as_json_number
from reporting.ops.records import Rules, apply, new_record
from reporting.ops.view import MONTHLY_ITEMS, QUARTERLY_ITEMS, Aggregator, LiveView
from reporting.periods import parse_month, parse_quarter
from reporting.report import run_report
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.schema import OutboxMessage

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"
WHOLE_RECORD = datetime(3000, 1, 1, tzinfo=UTC)
# Instants at which the backlog is compared: mid-stream, a DST change, after everything.
AS_OF = ("2026-01-20T10:00:00+00:00", "2026-03-29T01:30:00+00:00",
         "2026-04-30T23:59:59.999999+01:00", "2026-12-31T12:00:00+00:00")


@dataclass
class Scenario:
    app: App
    messages: list[tuple[str, str, dict[str, Any]]]  # (logical topic, key, payload)


def crafted_events() -> list[dict[str, Any]]:
    """Two complaints for the figures a short generated stream rarely reaches: a repeat
    complaint resolved more than eight weeks after its original receipt (C14), and an
    Ombudsman remedy left unimplemented past its deadline (a remedy overdue)."""
    customer = {"account_id": "ACC-X", "name": "Test Customer", "address": ["1 Road"],
                "postcode": "EX1 1AA", "preferred_contact": "letter"}
    received = {"type": "complaint.received", "category": "B11", "fuel": "gas",
                "summary": "Complaint", "customer": customer}
    manager = {"id": "m-9", "name": "Manager"}
    timeline: list[tuple[str, str, str, dict[str, Any]]] = [
        ("X-1", "2026-01-05T10:00:00+00:00", "complaint.received",
         {**received, "channel": "telephone", "handler": {"id": "h-9", "name": "Front"}}),
        ("X-1", "2026-01-05T15:00:00+00:00", "complaint.resolved",
         {"resolution": {"apology": True, "explanation": "Fixed"}}),
        ("X-1", "2026-03-09T10:00:00+00:00", "complaint.reopened",
         {"channel": "email", "summary": "Not fixed"}),
        ("X-1", "2026-03-09T16:00:00+00:00", "complaint.resolved",
         {"resolution": {"apology": True, "explanation": "Fixed now"}}),
        ("X-2", "2026-01-07T09:00:00+00:00", "complaint.received",
         {**received, "channel": "letter"}),
        ("X-2", "2026-01-07T12:00:00+00:00", "complaint.assigned",
         {"handler": {"id": "h-8", "name": "Handler"}}),
        ("X-2", "2026-01-08T09:00:00+00:00", "complaint.escalation_requested", {}),
        ("X-2", "2026-01-09T09:00:00+00:00", "complaint.senior_manager_response",
         {"manager": manager, "summary": "Our position"}),
        ("X-2", "2026-01-13T09:00:00+00:00", "complaint.deadlock_reached",
         {"position": "Final", "offer_open": False}),
        ("X-2", "2026-01-20T09:00:00+00:00", "complaint.referred_to_ombudsman",
         {"ombudsman_ref": "EO-X2"}),
        ("X-2", "2026-01-26T09:00:00+00:00", "complaint.ombudsman_decision",
         {"accepted": True, "remedies": {"apology": True, "explanation": False}}),
        # (v2) withdrawn after a deadlock letter of 13 Jan 2025, referred after its window
        # ended (end of 13 Jan 2026): a late referral, with the Ombudsman. (A year before the
        # rest, so the clock does not run past the generated stream's pending deadlines.)
        ("X-3", "2025-01-06T09:00:00+00:00", "complaint.received",
         {**received, "channel": "email"}),
        ("X-3", "2025-01-13T09:00:00+00:00", "complaint.deadlock_reached",
         {"position": "Final", "offer_open": False}),
        ("X-3", "2025-02-03T09:00:00+00:00", "complaint.withdrawn", {"summary": "Withdrew"}),
        ("X-3", "2026-01-14T09:00:00+00:00", "complaint.referred_to_ombudsman",
         {"ombudsman_ref": "EO-X3"}),
    ]
    return [{"event_id": f"{cid}-{n}", "type": kind, "occurred_at": at, "complaint_id": cid,
             **fields} for n, (cid, at, kind, fields) in enumerate(timeline)]


def scenario_events(total: int, seed: int) -> list[dict[str, Any]]:
    """A generated stream with two crafted complaints merged in time order, then
    recategorisations (one of them late, so that the latest-effective rule matters), then the
    bundled sample (late events: the clock has passed them) with its rejections and duplicate
    record."""
    events = sorted([*generate(total, seed), *crafted_events()],
                    key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    complaints = [e["complaint_id"] for e in events if e["type"] == "complaint.received"]
    last = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    chosen = complaints[5:25:3]

    def recategorise(n: int, cid: str, at: str, category: str) -> dict[str, Any]:
        return {"event_id": f"recat-{n}", "type": "complaint.recategorised",
                "occurred_at": at, "complaint_id": cid, "category": category}

    extra = [recategorise(n, cid, last.isoformat(), "B9") for n, cid in enumerate(chosen)]
    extra.append(recategorise(100, chosen[0], "2026-01-06T09:00:00+00:00", "B12"))  # late
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines()
              if line.strip().startswith("{")]
    return [*events, *extra, *sample]


def build_scenario(directory: Path, total: int = 2500, seed: int = 11) -> Scenario:
    path = directory / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in scenario_events(total, seed)))
    app = bootstrap(f"sqlite:///{directory / 'record.db'}", "kilowatt-connect")
    report = ingest_file(app, path)
    assert report.applied > total * 0.9
    with app.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.topic, OutboxMessage.key, OutboxMessage.payload)
            .where(OutboxMessage.topic.in_(("lifecycle", "letters")))
            .order_by(OutboxMessage.id)).all()
    return Scenario(app, [(r.topic, r.key, dict(r.payload)) for r in rows])


def database_figures(app: App, as_of: datetime, months: list[str],
                     quarters: list[str]) -> dict[str, Any]:
    with app.sessions() as session:
        backlog = queries.backlog(session, as_of, app.procedure.calendar)
    figures: dict[str, Any] = {"backlog": backlog}
    for month in months:
        report = run_report(app, MONTHLY, parse_month(month), WHOLE_RECORD)
        figures[month] = {code: as_json_number(report.values[code]) for code in MONTHLY_ITEMS}
    for quarter in quarters:
        report = run_report(app, QUARTERLY, parse_quarter(quarter), WHOLE_RECORD)
        figures[quarter] = {code: as_json_number(report.values[code])
                            for code in QUARTERLY_ITEMS}
    return figures


def live_figures(view: LiveView, app: App, as_of: datetime, months: list[str],
                 quarters: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {"backlog": view.backlog(as_of, app.procedure.calendar)}
    figures.update({month: view.monthly(month)["items"] for month in months})
    figures.update({quarter: view.quarterly(quarter)["items"] for quarter in quarters})
    return figures


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    built = build_scenario(tmp_path_factory.mktemp("aggregator-model"))
    yield built
    built.app.engine.dispose()


def fold(scenario: Scenario, messages: list[tuple[str, str, dict[str, Any]]]) -> Aggregator:
    aggregator = Aggregator(Rules(scenario.app.procedure.calendar))
    for topic, _, payload in messages:
        aggregator.handle(topic, json.dumps(payload))  # type: ignore[arg-type]
    return aggregator


def test_fold_equals_the_record(scenario: Scenario) -> None:
    aggregator = fold(scenario, scenario.messages)
    periods = aggregator.view.periods()
    assert len(periods["months"]) >= 4 and len(periods["quarters"]) >= 2
    for text in AS_OF:
        as_of = datetime.fromisoformat(text)
        assert live_figures(aggregator.view, scenario.app, as_of, **periods) == \
            database_figures(scenario.app, as_of, **periods), text
    counts = aggregator.view.counts
    # The scenario exercises what the fold has to get right, not only the easy cases.
    assert any(k[0] == "m" and k[2] == "A4" for k in counts), "reopens"
    assert counts["state", "duplicate"] == 1
    assert any(k[0] == "q" and k[2] == "C14" for k in counts), "late repeat resolution"
    assert counts["remedy_overdue",] == 1
    assert counts["late_referral",] == 1, "X-3, referred after its window"
    assert counts["m", "2026-01", "category", "B9"] > 0, "recategorised"


def test_redelivered_and_reordered_duplicates_change_nothing(scenario: Scenario) -> None:
    once = fold(scenario, scenario.messages)
    rng = random.Random(5)
    # A relay that crashed after publishing publishes a batch again, later; a consumer that
    # crashed before committing reads one again. Either way the copies come after the first.
    replayed: list[tuple[str, str, dict[str, Any]]] = []
    for index, message in enumerate(scenario.messages):
        replayed.append(message)
        if index % 997 == 239:
            chunk = scenario.messages[index - 239:index - 199]
            replayed.extend(rng.sample(chunk, len(chunk)))
    twice = fold(scenario, replayed)
    assert twice.stats.duplicates >= 40
    assert twice.view.counts == once.view.counts
    assert twice.view.sorted == once.view.sorted


def test_view_rebuilt_from_records_equals_the_incremental_one(scenario: Scenario) -> None:
    aggregator = fold(scenario, scenario.messages)
    rebuilt = LiveView()
    rebuilt.rebuild(aggregator.store.values())
    assert rebuilt.counts == aggregator.view.counts
    assert rebuilt.sorted == aggregator.view.sorted
    # Records survive the changelog's JSON round trip unchanged.
    for record in list(aggregator.store.values())[:200]:
        assert json.loads(json.dumps(record)) == record


def test_malformed_messages_are_skipped_and_counted(scenario: Scenario) -> None:
    aggregator = Aggregator(Rules(scenario.app.procedure.calendar))
    for raw in (b"not json", b"[1, 2]", b'{"event_id": "x"}', None,
                b'{"event_id": "y", "complaint_id": "C-1", "type": "deadline.scheduled"}',
                "\udcff".encode("utf-8", "surrogatepass")):
        assert aggregator.handle("lifecycle", raw) == "malformed"
    assert aggregator.stats.malformed == 6
    assert aggregator.complaints == 0


def test_a_later_contract_type_is_recorded_and_ignored() -> None:
    record = apply(None, "lifecycle", {"event_id": "z", "complaint_id": "C-9",
                                       "type": "complaint.something_new"},
                   Rules(bootstrap("sqlite://").procedure.calendar))
    assert record is not None
    assert {k: v for k, v in record.items() if k != "seen"} == \
        {k: v for k, v in new_record().items() if k != "seen"}


def test_the_encoded_backlog_is_the_backlog_at_every_instant_asked_in_turn(
        scenario: Scenario) -> None:
    # backlog_json keeps a few encoded documents (a dashboard at "now" and a probe at a fixed
    # instant ask in turn); each answer must be the document of its own instant and of the
    # view as it is then, however the asks interleave with changes.
    aggregator = Aggregator(Rules(scenario.app.procedure.calendar))
    calendar = scenario.app.procedure.calendar
    instants = [datetime.fromisoformat(text) for text in AS_OF]
    instants += [at + timedelta(seconds=1) for at in instants] + [
        datetime.fromisoformat("2026-01-20T23:59:59.999999+00:00"),
        datetime.fromisoformat("2026-01-21T00:00:00+00:00")]
    asked = 0
    for index, (topic, _, payload) in enumerate(scenario.messages):
        aggregator.handle(topic, json.dumps(payload))  # type: ignore[arg-type]
        if index % 251 == 0:
            for at in instants + instants[::-1]:
                encoded = aggregator.view.backlog_json(at, calendar)
                assert json.loads(encoded) == aggregator.view.backlog(at, calendar), (index, at)
                asked += 1
    assert asked > 100
