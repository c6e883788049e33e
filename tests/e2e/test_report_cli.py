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
from tests.builders import write_jsonl
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
    assert set(january) == {"period", "items", "checks"}
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
