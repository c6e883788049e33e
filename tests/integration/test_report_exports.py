"""CSV and workbook exports of the returns, checked cell by cell, on SQLite and PostgreSQL.

Values are those worked by hand in test_report_returns.py's scenario.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from reporting.export import (
    COMPUTED_FILL,
    HEADER_ROW,
    SHEET_COLUMNS,
    render_annual_html,
    write_annual_pdf,
    write_csv,
    write_xlsx,
)
from reporting.items import ANNUAL, MONTHLY, QUARTERLY
from reporting.periods import parse_month, parse_quarter, twelve_months_ending
from reporting.report import Report, run_report
from tests.integration.test_report_returns import AS_OF, build_scenario
from workflow.bootstrap import App


@pytest.fixture
def scenario(app: App, tmp_path: Path) -> App:
    return build_scenario(app, tmp_path)


def quarter_one(app: App) -> Report:
    return run_report(app, QUARTERLY, parse_quarter("2026-Q1"), datetime.fromisoformat(AS_OF))


def rows_by_code(path: Path) -> dict[str, tuple[Any, ...]]:
    sheet = load_workbook(path).worksheets[0]
    return {str(row[0].value): tuple(c for c in row)
            for row in sheet.iter_rows(min_row=HEADER_ROW + 1) if row[0].value}


def test_quarterly_csv(scenario: App, tmp_path: Path) -> None:
    path = tmp_path / "q1.csv"
    write_csv(quarter_one(scenario), path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["period", "code", "description", "value"]
    assert [r[1] for r in rows[1:]] == [item.code for item in QUARTERLY.items]
    values = {r[1]: r[3] for r in rows[1:]}
    assert values["B6"] == "11"
    assert values["C12_pct"] == "50.00"
    assert values["C15"] == "3.01"
    assert values["E21"] == "10.48"
    assert all(r[0] == "2026-Q1" for r in rows[1:])
    assert rows[1][2] == "Total contacts received (sum of A2-A5)"


def test_monthly_csv_leaves_null_cells_empty(scenario: App, tmp_path: Path) -> None:
    february = run_report(scenario, MONTHLY, parse_month("2026-02"),
                          datetime.fromisoformat(AS_OF))
    path = tmp_path / "feb.csv"
    write_csv(february, path)
    with path.open(newline="", encoding="utf-8") as handle:
        values = {r["code"]: r["value"] for r in csv.DictReader(handle)}
    assert values["A1"] == "2"
    assert values["C24"] == "" and values["C28"] == ""


def test_quarterly_workbook(scenario: App, tmp_path: Path) -> None:
    path = tmp_path / "q1.xlsx"
    write_xlsx(quarter_one(scenario), path, "Kilowatt Connect")
    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    assert sheet.title == "Quarterly"
    assert sheet["A1"].value == "Ofgem quarterly complaints return"
    assert sheet["B2"].value == "Kilowatt Connect"
    assert sheet["B4"].value == "2026-Q1"
    assert tuple(c.value for c in sheet[HEADER_ROW][:4]) == SHEET_COLUMNS
    rows = rows_by_code(path)
    # Every item once, in the table's order, with its section headings between them.
    assert [code for code in rows if not code.startswith("Section")
            and code in {i.code for i in QUARTERLY.items}] == [i.code for i in QUARTERLY.items]
    assert {code for code in rows if code.startswith("Section")} == {
        f"Section {letter}" for letter in "ABCDE"}
    # Counted cells are plain; calculated ones are marked and shaded.
    assert rows["B7"][2].value == 5 and rows["B7"][3].value is None
    assert rows["B6"][2].value == 11 and rows["B6"][3].value == "calculated"
    assert rows["B6"][2].fill.fgColor.rgb.endswith(COMPUTED_FILL.fgColor.rgb[-6:])
    assert rows["C15"][2].value == 3.01 and rows["C15"][2].number_format == "0.00"
    assert rows["E21"][2].value == 10.48 and rows["E21"][3].value == "calculated"
    assert rows["D16"][2].value == 1 and rows["D17"][2].value == 1
    checks = workbook["Checks"]
    assert [(r[0].value, r[1].value) for r in checks.iter_rows(min_row=2)] == [
        ("B6 = sum of monthly A1", True), ("C11 = C13 + C14", True), ("C12 <= C13", True),
        ("accounts at period end", True)]


def test_monthly_workbook_null_accounts(scenario: App, tmp_path: Path) -> None:
    february = run_report(scenario, MONTHLY, parse_month("2026-02"),
                          datetime.fromisoformat(AS_OF))
    path = tmp_path / "feb.xlsx"
    write_xlsx(february, path, "Kilowatt Connect")
    rows = rows_by_code(path)
    assert rows["A1"][2].value == 2
    assert rows["B23"][3].value == "calculated"
    assert rows["C24"][2].value is None and rows["C27"][2].value is None
    sheet = load_workbook(path).worksheets[0]
    assert sheet["A8"].value == "Notes"
    assert "no accounts snapshot" in str(sheet["B8"].value)


def test_annual_html_and_pdf(scenario: App, tmp_path: Path) -> None:
    annual = run_report(scenario, ANNUAL, twelve_months_ending("2026-03"),
                        datetime.fromisoformat(AS_OF))
    html = render_annual_html(annual, "Watts & <Volts>")
    assert "Watts &amp; &lt;Volts&gt;" in html  # autoescaped
    assert "1 April 2025" in html and "31 March 2026" in html
    assert ">5<" in html
    path = tmp_path / "annual.pdf"
    write_annual_pdf(annual, path, "Kilowatt Connect")
    assert path.read_bytes().startswith(b"%PDF")
