"""`complaints report ...` through the command line, on SQLite and PostgreSQL.

The data is the hand-worked scenario of tests/integration/test_report_returns.py, ingested and
ticked with the `ingest` and `tick` commands; expected figures are worked out there.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from consumers.cli import main
from tests.builders import event, received, resolved, simple, write_jsonl
from tests.integration.test_report_returns import AS_OF, SCENARIO

PROCEDURE = Path(__file__).parents[2] / "workflow" / "procedures" / "kilowatt-connect.toml"


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> str:
    runner = CliRunner()
    events = write_jsonl(tmp_path / "events.jsonl", SCENARIO)
    ingested = runner.invoke(main, ["ingest", str(events), "--db", db_url, "--format", "json"])
    assert ingested.exit_code == 0, ingested.output
    assert json.loads(ingested.stdout)["rejected"] == 0
    ticked = runner.invoke(main, ["tick", "--until", AS_OF, "--db", db_url])
    assert ticked.exit_code == 0, ticked.output
    return db_url


def run(db_url: str, *args: str) -> Any:
    result = CliRunner().invoke(main, ["report", *args, "--db", db_url, "--as-of", AS_OF,
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout holds exactly one JSON document


def test_monthly_and_quarterly_json(loaded: str) -> None:
    january = run(loaded, "monthly", "2026-01")
    assert set(january) == {"period", "items", "checks", "b22_explanations",
                            "subsidiary_types"}
    assert (january["items"]["A1"], january["items"]["C28"]) == (8, 1.11)
    quarter = run(loaded, "quarterly", "2026-Q1")
    assert quarter["period"] == "2026-Q1"
    assert (quarter["items"]["B6"], quarter["items"]["C11"], quarter["items"]["C15"]) == (
        11, 10, 3.01)
    assert all(check["ok"] for check in quarter["checks"])


def test_publication_json(loaded: str) -> None:
    figures = run(loaded, "publication", "2026-Q1")
    assert list(figures) == [
        "period", "complaints_received", "received_per_100k", "received_per_10k",
        "complaints_resolved", "resolved_per_100k", "resolved_per_10k",
        "pct_resolved_next_working_day", "pct_resolved_within_8_weeks"]
    assert figures["received_per_10k"] == 1.05 and figures["pct_resolved_within_8_weeks"] == 90.0


def test_as_of_changes_the_count(loaded: str) -> None:
    result = CliRunner().invoke(main, ["report", "monthly", "2026-01", "--db", loaded,
                                       "--as-of", "2026-01-12T16:00:00+00:00", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["items"]["A1"] == 5


def test_text_output_and_files(loaded: str, tmp_path: Path) -> None:
    csv_path, xlsx_path = tmp_path / "q.csv", tmp_path / "q.xlsx"
    result = CliRunner().invoke(main, [
        "report", "quarterly", "2026-Q1", "--db", loaded, "--as-of", AS_OF,
        "--config", str(PROCEDURE), "--csv", str(csv_path), "--xlsx", str(xlsx_path)])
    assert result.exit_code == 0, result.output
    assert "Ofgem quarterly complaints return: 2026-Q1" in result.stdout
    assert "C15" in result.stdout and "3.01" in result.stdout
    assert "[ok] C11 = C13 + C14" in result.stdout
    with csv_path.open(newline="", encoding="utf-8") as handle:
        assert {r["code"]: r["value"] for r in csv.DictReader(handle)}["C14"] == "1"
    sheet = load_workbook(xlsx_path).worksheets[0]
    assert sheet["B2"].value == "Kilowatt Connect"


def test_annual_json_html_pdf(loaded: str, tmp_path: Path) -> None:
    # A procedure file whose supplier name needs escaping in HTML.
    config = tmp_path / "procedure.toml"
    config.write_text(PROCEDURE.read_text("utf-8").replace(
        'name = "Kilowatt Connect"', 'name = "Watts & <Volts>"'), encoding="utf-8")
    html, pdf = tmp_path / "annual.html", tmp_path / "annual.pdf"
    result = CliRunner().invoke(main, [
        "report", "annual", "2026-03", "--db", loaded, "--as-of", AS_OF, "--format", "json",
        "--config", str(config), "--html", str(html), "--pdf", str(pdf)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == ["period_start", "period_end", "not_resolved_by_next_working_day",
                              "statements"]
    assert (document["period_start"], document["period_end"]) == ("2025-04-01", "2026-03-31")
    assert document["not_resolved_by_next_working_day"] == 5
    assert document["statements"][0].startswith("Watts & <Volts> has a complaints handling")
    page = html.read_text("utf-8")
    assert "Watts &amp; &lt;Volts&gt;" in page and "<Volts>" not in page
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(("command", "period"), [
    ("monthly", "2026-13"), ("monthly", "2026-1"), ("monthly", "2026-Q1"),
    ("quarterly", "2026-Q5"), ("quarterly", "2026-03"), ("publication", "Q1-2026"),
    ("annual", "2026"),
])
def test_bad_period_is_bad_usage(command: str, period: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", command, period,
                                       "--db", f"sqlite:///{tmp_path / 'c.db'}"])
    assert result.exit_code == 2
    assert "Invalid value for PERIOD" in result.output
    assert "expected YYYY-" in result.output


def test_as_of_without_offset_is_bad_usage(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "monthly", "2026-01", "--as-of",
                                       "2026-01-31T00:00:00", "--db",
                                       f"sqlite:///{tmp_path / 'c.db'}"])
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output


# A record dated after today's date: docs/rules.md s.7 takes a return "as of now" by default, and in
# offline processing now is event time (s.5), so nothing in an ingested file is in the future.
# Kilowatt Connect, ENG: Sun 1 and Mon 2 Jan 2090 are bank holidays (New Year's Day, and its
# substitute); January is GMT, so local dates are UTC dates.
# F1 received Wed 4 Jan 10:00 (telephone, B13); D+1 = end of Thu 5 Jan; resolved Thu 5 Jan
#    09:00 -> A2, C12. 23 h = 0.958333 d.
# F2 received Thu 5 Jan 10:00 (telephone, B13); D+1 = end of Fri 6 Jan; resolved Mon 9 Jan 10:00
#    -> A3, C13 not C12. 4 d exactly. Recategorised to B9 on Tue 10 Jan (as of now: B9).
# Snapshot dated 31 Jan 2090, sent 1 Feb: 600 electricity + 400 gas = 1,000 accounts.
FUTURE_RECORD: list[dict[str, Any]] = [
    received("f1-1", "F1", "2090-01-04T10:00:00+00:00"),
    resolved("f1-2", "F1", "2090-01-05T09:00:00+00:00"),
    received("f2-1", "F2", "2090-01-05T10:00:00+00:00"),
    resolved("f2-2", "F2", "2090-01-09T10:00:00+00:00"),
    simple("complaint.recategorised", "f2-3", "F2", "2090-01-10T10:00:00+00:00",
           category="B9"),
    event("accounts.snapshot", "s-1", "2090-02-01T09:00:00+00:00", as_of="2090-01-31",
          electricity_accounts=600, gas_accounts=400),
]


def test_default_as_of_is_never_before_the_record(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    events = write_jsonl(tmp_path / "future.jsonl", FUTURE_RECORD)
    ingested = runner.invoke(main, ["ingest", str(events), "--db", db_url, "--format", "json"])
    assert ingested.exit_code == 0, ingested.output
    assert json.loads(ingested.stdout) == {"applied": 6, "duplicates": 0, "rejected": 0}

    def report(*args: str) -> Any:  # no --as-of: the default
        result = runner.invoke(main, ["report", *args, "--db", db_url, "--format", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    january = report("monthly", "2090-01")
    assert january["items"] == {
        "A1": 2, "A2": 1, "A3": 1, "A4": 0,
        **{f"B{n}": 0 for n in range(5, 23)}, "B9": 1, "B13": 1, "B23": 2,
        "C24": 600, "C25": 400, "C26": 1000,
        "C27": 200.0,  # 2 x 100,000 / 1,000
        "C28": 20.0,  # 2 x 10,000 / 1,000
    }
    assert all(check["ok"] for check in january["checks"])
    quarter = report("quarterly", "2090-Q1")["items"]
    assert (quarter["A1"], quarter["A2"], quarter["B6"], quarter["B7"]) == (2, 2, 2, 2)
    assert (quarter["C11"], quarter["C12"], quarter["C13"], quarter["C14"]) == (2, 1, 2, 0)
    assert (quarter["C12_pct"], quarter["C13_pct"], quarter["C14_pct"]) == (50.0, 100.0, 0.0)
    # Median of 23/24 d and 4 d: (0.958333 + 4) / 2 = 2.479167 -> 2.48.
    assert quarter["C15"] == 2.48
    assert (quarter["E20"], quarter["E21"], quarter["E22"]) == (1000, 200.0, 20.0)
    assert report("annual", "2090-12")["not_resolved_by_next_working_day"] == 1
