"""Retention (docs/contract.md `complaints retention`): complaints resolved or closed more than
`retention_years` (6, the default) before as-of and not under legal hold.

Worked by hand (due = the end of the same local date six years after the closing instant):

- C-R1: resolved 2019-01-08T12:00; due 2025-01-08T23:59:59.999999 (GMT);
- C-R5: the duplicate record of C-R1: with it;
- C-R7: resolved again 2019-02-05T10:00 after a reopen (the latest counts); due
  2025-02-05T23:59:59.999999;
- C-R3: withdrawn 2019-03-10T10:00 after its 8-week letter (2019-03-04); due
  2025-03-10T23:59:59.999999;
- C-R2: resolved 2019-06-04T09:00; due 2025-06-04T22:59:59.999999 (BST);
- C-R4: closed 2020-03-04T23:59:59.999999, the referral window of its 8-week letter
  (2019-03-04T10:00) lapsed; due 2026-03-04T23:59:59.999999;
- C-R6: resolved 2024-12-01T10:00; due 2030-12-01T23:59:59.999999;
- C-R8: open (received 2024-11-29): never.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from consumers.cli import main
from consumers.file_ingest import ingest_file
from consumers.retention import RetentionService
from reporting.items import MONTHLY, QUARTERLY
from reporting.ops.records import Rules
from reporting.ops.view import Aggregator
from reporting.periods import parse_month, parse_quarter
from reporting.report import run_report, to_json
from reporting.web import OpsState, ViewCollector
from tests.builders import CUSTOMER, received, reopened, resolved, simple, write_jsonl
from workflow.bootstrap import App

H = {"id": "h-1", "name": "Sam Patel"}
EVENTS = [
    received("r-1", "C-R1", "2019-01-07T10:00:00+00:00", handler=H),
    resolved("r-2", "C-R1", "2019-01-08T12:00:00+00:00"),
    received("r-3", "C-R5", "2019-01-07T11:00:00+00:00", duplicate_of="C-R1",
             source="citizens_advice"),
    received("r-4", "C-R7", "2019-01-07T10:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-7"}),
    resolved("r-5", "C-R7", "2019-01-08T10:00:00+00:00"),
    reopened("r-6", "C-R7", "2019-02-01T10:00:00+00:00"),
    resolved("r-7", "C-R7", "2019-02-05T10:00:00+00:00"),
    received("r-8", "C-R3", "2019-01-07T10:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-3"}),
    simple("complaint.withdrawn", "r-9", "C-R3", "2019-03-10T10:00:00+00:00"),
    received("r-10", "C-R2", "2019-06-03T09:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-2"}),
    resolved("r-11", "C-R2", "2019-06-04T09:00:00+00:00"),
    received("r-12", "C-R4", "2019-01-07T10:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-4"}),
    received("r-13", "C-R6", "2024-11-28T10:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-6"}),
    resolved("r-14", "C-R6", "2024-12-01T10:00:00+00:00"),
    received("r-15", "C-R8", "2024-11-29T10:00:00+00:00", handler=H,
             customer={**CUSTOMER, "account_id": "ACC-8"}),
]


def _ids(rows: list[dict[str, str]]) -> list[str]:
    return [r["complaint_id"] for r in rows]


def _retention(db_url: str, *args: str) -> tuple[int, object]:
    result = CliRunner().invoke(main, ["retention", "--db", db_url, "--format", "json", *args])
    return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else result.output


def _returns(app: App) -> str:
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    return json.dumps([to_json(run_report(app, MONTHLY, parse_month(m), as_of))
                       for m in ("2019-01", "2019-02", "2019-03", "2019-06", "2024-12")]
                      + [to_json(run_report(app, QUARTERLY, parse_quarter(q), as_of))
                         for q in ("2019-Q1", "2019-Q2")], sort_keys=True)


def test_retention_lists_what_is_due_and_applies_it(app: App, db_url: str,
                                                    tmp_path: Path) -> None:
    report = ingest_file(app, write_jsonl(tmp_path / "r.jsonl", EVENTS))
    assert report.rejected == 0
    with app.sessions() as session:  # the 8-week letter C-R3's withdrawal came after
        from workflow import queries
        shown = queries.show_complaint(session, "C-R3")
        assert shown is not None and "eight_week" in [x["kind"] for x in shown["letters"]]

    code, rows = _retention(db_url, "--as-of", "2025-07-01T00:00:00Z")
    assert code == 0 and isinstance(rows, list)
    assert _ids(rows) == ["C-R1", "C-R5", "C-R7", "C-R3", "C-R2"]
    assert rows[0] == {"complaint_id": "C-R1", "closed_at": "2019-01-08T12:00:00+00:00",
                       "due": "2025-01-08T23:59:59.999999+00:00"}
    assert rows[1]["closed_at"] == "2019-01-08T12:00:00+00:00"  # the duplicate, with C-R1
    assert rows[2]["closed_at"] == "2019-02-05T10:00:00+00:00"
    assert rows[3]["due"] == "2025-03-10T23:59:59.999999+00:00"
    assert rows[4]["due"] == "2025-06-04T22:59:59.999999+00:00"
    # "More than" six years: not at the due instant itself, from the next microsecond.
    assert _retention(db_url, "--as-of", "2025-01-08T23:59:59.999999+00:00")[1] == []
    assert _ids(_retention(db_url, "--as-of", "2025-01-09T00:00:00+00:00")[1]) == [  # type: ignore[arg-type]
        "C-R1", "C-R5"]
    assert _ids(_retention(db_url, "--as-of", "2025-03-01T00:00:00Z")[1]) == [  # type: ignore[arg-type]
        "C-R1", "C-R5", "C-R7"]

    before = _returns(app)
    assert _retention(db_url, "--apply", "--as-of", "2025-07-01T00:00:00Z") == (0, {"erased": 5})
    assert _returns(app) == before
    assert _retention(db_url, "--as-of", "2025-07-01T00:00:00Z") == (0, [])
    assert _retention(db_url, "--apply", "--as-of", "2025-07-01T00:00:00Z") == (0, {"erased": 0})
    with app.sessions() as session:
        from workflow.schema import Complaint, Erasure
        erased = session.get(Complaint, "C-R1")
        assert erased is not None and erased.customer["name"] == "[erased]"
        kept = session.get(Complaint, "C-R8")
        assert kept is not None and kept.customer["name"] == CUSTOMER["name"]
        assert {e.trigger for e in session.query(Erasure)} == {"retention"}

    # Later C-R4 and C-R6 fall due too; the open C-R8 never does.
    code, later = _retention(db_url, "--as-of", "2031-01-01T00:00:00Z")
    assert isinstance(later, list) and _ids(later) == ["C-R4", "C-R6"]
    assert later[0]["closed_at"] == "2020-03-04T23:59:59.999999+00:00"


def test_the_daily_run_of_complaints_up_erases_and_reports_in_metrics(
        app: App, tmp_path: Path) -> None:
    ingest_file(app, write_jsonl(tmp_path / "r.jsonl", EVENTS))
    service = RetentionService(app, letters_dir=tmp_path / "letters",
                               print_dir=tmp_path / "print")
    assert service.run_once(datetime(2025, 3, 1, tzinfo=UTC)) == 3  # C-R1, C-R5, C-R7
    assert service.run_once(datetime(2025, 3, 2, tzinfo=UTC)) == 0
    assert (service.stats.runs, service.stats.erased, service.stats.due) == (2, 3, 0)
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar)),
                     retention=service.stats)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ViewCollector(state))
    text = generate_latest(registry).decode()
    assert "complaints_retention_erased_total 3.0" in text
    assert "complaints_retention_runs_total 2.0" in text
    assert "complaints_retention_due 0.0" in text
    assert "complaints_retention_last_run_timestamp_seconds" in text


def test_the_default_as_of_is_the_records_now(app: App, db_url: str, tmp_path: Path) -> None:
    # C-Q1 resolved Mon 5 Jan 2026 15:00 UTC: due for erasure after the end of 5 Jan 2032
    # (GMT). C-Q2's receipt on Mon 2 Feb 2032 takes the record's clock past that, while the
    # wall clock is years earlier: offline, now is event time (rules s.5), so with no
    # --as-of C-Q1 is listed.
    events = [received("q-1", "C-Q1", "2026-01-05T10:00:00+00:00", handler=H,
                       customer={**CUSTOMER, "account_id": "ACC-Q1"}),
              resolved("q-2", "C-Q1", "2026-01-05T15:00:00+00:00"),
              received("q-3", "C-Q2", "2032-02-02T10:00:00+00:00", handler=H,
                       customer={**CUSTOMER, "account_id": "ACC-Q2"})]
    assert ingest_file(app, write_jsonl(tmp_path / "q.jsonl", events)).rejected == 0
    assert _retention(db_url) == (0, [{"complaint_id": "C-Q1",
                                       "closed_at": "2026-01-05T15:00:00+00:00",
                                       "due": "2032-01-05T23:59:59.999999+00:00"}])
