"""A return as CSV, as a workbook laid out like Ofgem's template, and the annual report as
HTML or PDF. Every layout walks the same item table (`reporting.items`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jinja2
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from reporting.model import Kind
from reporting.numbers import as_json_number, as_text
from reporting.report import Report, period_caption

CSV_COLUMNS: Final = ("period", "code", "description", "value")
# The workbook's header row; tests and reviewers find items by the code in column A.
SHEET_COLUMNS: Final = ("Item", "Description", "Value", "Computed")
HEADER_ROW: Final = 10
COMPUTED_FILL: Final = PatternFill("solid", fgColor="D9D9D9")  # grey, like template formulas
OK_FILL: Final = PatternFill("solid", fgColor="C6EFCE")
FAILED_FILL: Final = PatternFill("solid", fgColor="FFC7CE")
BOLD: Final = Font(bold=True)
TEMPLATES: Final = Path(__file__).parent / "templates"


NOT_SUBMITTED: Final = "not submitted (a computation of the return, not a submission)"


@dataclass(frozen=True)
class SubmissionMark:
    """(v2) What a submitted return's workbook names in its title rows."""

    id: str
    sha256: str


def csv_bytes(report: Report) -> bytes:
    """One row per item: period, code, description, value (empty when null); UTF-8, CRLF
    line ends (the csv module's). Ofgem's template columns exactly: the annexes are not in
    the CSV (they are in the JSON and the workbook)."""
    caption = period_caption(report)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for item in report.spec.items:
        writer.writerow([caption, item.code, item.description,
                         as_text(report.values[item.code])])
    return buffer.getvalue().encode("utf-8")


def write_csv(report: Report, path: Path) -> None:
    path.write_bytes(csv_bytes(report))


def xlsx_bytes(report: Report, supplier: str, licence_number: str | None = None,
               submission: SubmissionMark | None = None) -> bytes:
    """The workbook as bytes. openpyxl stamps each save with the time (zip entries, document
    properties), so a submitted workbook is stored as these bytes, never made again."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = report.spec.name.capitalize()
    _write_items(sheet, report, supplier, licence_number, submission)
    if report.checks:
        _write_checks(workbook.create_sheet("Checks"), report)
    for annex in report.spec.annexes:
        _write_annex(workbook.create_sheet(annex.title), annex.columns,
                     annex.rows(report.annexes[annex.name]))
    if report.statements:
        statements = workbook.create_sheet("Statements")
        for row, text in enumerate(report.statements, start=1):
            statements.cell(row, 1, text).alignment = Alignment(wrap_text=True)
        statements.column_dimensions["A"].width = 120
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_xlsx(report: Report, path: Path, supplier: str, licence_number: str | None = None,
               submission: SubmissionMark | None = None) -> None:
    path.write_bytes(xlsx_bytes(report, supplier, licence_number, submission))


def _write_annex(sheet: Worksheet, columns: tuple[str, ...],
                 rows: list[tuple[object, ...]]) -> None:
    for column, heading in enumerate(columns, start=1):
        sheet.cell(1, column, heading).font = BOLD
    for row, values in enumerate(rows, start=2):
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
    widths = (80, 12) if len(columns) == 2 else (12, 80, 12)
    for letter, width in zip("ABC", widths, strict=False):
        sheet.column_dimensions[letter].width = width


def _write_items(sheet: Worksheet, report: Report, supplier: str, licence_number: str | None,
                 submission: SubmissionMark | None) -> None:
    sheet.cell(1, 1, report.spec.title).font = Font(bold=True, size=14)
    for row, (label, value) in enumerate(
        [("Supplier", supplier), ("Licence number", licence_number or ""),
         ("Period", period_caption(report)), ("As of", report.as_of.isoformat()),
         ("Submission", submission.id if submission else NOT_SUBMITTED),
         ("SHA-256", submission.sha256 if submission else ""),
         ("Notes", "; ".join(report.notes))], start=2):
        sheet.cell(row, 1, label).font = BOLD
        sheet.cell(row, 2, value)
    for column, heading in enumerate(SHEET_COLUMNS, start=1):
        sheet.cell(HEADER_ROW, column, heading).font = BOLD
    row = HEADER_ROW
    section: str | None = None
    for item in report.spec.items:
        title = report.spec.section(item.code)
        if title and title != section:
            row += 1
            sheet.cell(row, 1, f"Section {item.code[0]}").font = BOLD
            sheet.cell(row, 2, title).font = BOLD
            section = title
        row += 1
        sheet.cell(row, 1, item.code)
        sheet.cell(row, 2, item.description).alignment = Alignment(wrap_text=True)
        value = sheet.cell(row, 3, as_json_number(report.values[item.code]))
        value.number_format = "0.00" if item.kind.decimal else "0"
        if item.derived:
            sheet.cell(row, 4, "calculated")
            for column in range(1, 5):
                sheet.cell(row, column).fill = COMPUTED_FILL
    sheet.cell(row + 2, 1, "Grey rows are calculated from other items, as in Ofgem's "
                           "template; the others are counted from the complaints record.")
    for letter, width in zip("ABCD", (12, 90, 14, 12), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = sheet.cell(HEADER_ROW + 1, 1)


def _write_checks(sheet: Worksheet, report: Report) -> None:
    for column, heading in enumerate(("Check", "OK", "Detail"), start=1):
        sheet.cell(1, column, heading).font = BOLD
    for row, check in enumerate(report.checks, start=2):
        sheet.cell(row, 1, check.name)
        sheet.cell(row, 2, check.ok).fill = OK_FILL if check.ok else FAILED_FILL
        sheet.cell(row, 3, check.detail)
    for letter, width in zip("ABC", (28, 8, 100), strict=True):
        sheet.column_dimensions[letter].width = width


# --------------------------------------------------------------------------- annual report
def _environment() -> jinja2.Environment:
    # Autoescape always: supplier names and addresses come from configuration files.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def render_annual_html(report: Report, supplier: str) -> str:
    template = _environment().get_template("annual.html")
    figures = [
        {"description": item.description, "value": as_text(report.values[item.code]),
         "count": item.kind in (Kind.COUNT, Kind.ACCOUNTS)}
        for item in report.spec.items
    ]
    return template.render(
        title=report.spec.title, supplier=supplier,
        period_start=report.period.first, period_end=report.period.last,
        figures=figures, statements=report.statements, as_of=report.as_of,
    )


def write_annual_html(report: Report, path: Path, supplier: str) -> None:
    path.write_text(render_annual_html(report, supplier), encoding="utf-8")


def write_annual_pdf(report: Report, path: Path, supplier: str) -> None:
    # Imported here: WeasyPrint loads Pango at import, which the other commands never need.
    from weasyprint import HTML

    HTML(string=render_annual_html(report, supplier), base_url=str(TEMPLATES)).write_pdf(path)
