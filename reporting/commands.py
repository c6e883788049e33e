"""`complaints report monthly|quarterly|publication|annual` (docs/contract.md "Commands").

Each prints the return (`--format json`: exactly docs/contract.md's document) and can also write it
as CSV and as a workbook; the annual report also as HTML and PDF. Exit 0 with the return
printed, even when a consistency check fails (the failure is in the return, and on stderr);
exit 2 for a bad period or option.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reporting.cli_support import common_options, emit, instant, open_app
from reporting.export import (
    write_annual_html,
    write_annual_pdf,
    write_csv,
    write_xlsx,
)
from reporting.items import ANNUAL, MONTHLY, PUBLICATION, QUARTERLY
from reporting.model import ReturnSpec
from reporting.periods import (
    BadPeriod,
    Period,
    parse_month,
    parse_quarter,
    twelve_months_ending,
)
from reporting.report import (
    Report,
    default_as_of,
    run_report,
    to_json,
    to_text,
)

F = TypeVar("F", bound=Callable[..., Any])

# Built explicitly (not by decorator): `consumers.cli` adds it to `main`.
report: click.Group = click.Group(
    "report", help="Ofgem returns, publication figures and the CHR annual report, from the "
                   "database.")


OUTPUT_PATH = click.Path(path_type=Path, dir_okay=False, writable=True)


def report_options(func: F) -> F:
    func = click.option("--xlsx", "xlsx_path", type=OUTPUT_PATH, default=None,
                        help="Also write the return as an Excel workbook.")(func)
    func = click.option("--csv", "csv_path", type=OUTPUT_PATH, default=None,
                        help="Also write the return as CSV.")(func)
    func = click.option("--as-of", "as_of", default=None,
                        help="Count events at or before this instant (ISO-8601 with offset) "
                             "[default: now, and never before the latest instant in the "
                             "record: offline, now is event time].")(func)
    return common_options(func)


def _period(parse: Callable[[str], Period], text: str) -> Period:
    try:
        return parse(text)
    except BadPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="PERIOD") from None


def _produce(spec: ReturnSpec, period: Period, *, db: str | None, config: str | None,
             fmt: str, as_of: str | None, csv_path: Path | None,
             xlsx_path: Path | None) -> tuple[Report, str]:
    when = instant(as_of, "--as-of") if as_of else None
    app = open_app(db, config)
    try:
        result = run_report(app, spec, period, when or default_as_of(app))
    finally:
        app.engine.dispose()
    supplier = app.procedure.supplier.name
    if csv_path is not None:
        write_csv(result, csv_path)
        click.echo(f"wrote {csv_path}", err=True)
    if xlsx_path is not None:
        write_xlsx(result, xlsx_path, supplier, app.procedure.licence_number)
        click.echo(f"wrote {xlsx_path}", err=True)
    emit(fmt, to_json(result), lambda _: to_text(result))
    for check in result.failed_checks:
        click.echo(f"warning: check failed: {check.name}: {check.detail}", err=True)
    return result, supplier


def submit_options(func: F) -> F:
    """(v2) `--submit [--by NAME] [--force --reason TEXT]` (docs/contract.md)."""
    func = click.option("--reason", default=None,
                        help="With --force: why the return is submitted although a check "
                             "fails (stored with it).")(func)
    func = click.option("--force", is_flag=True, default=False,
                        help="Submit even though a consistency check fails (needs --reason).")(func)
    func = click.option("--by", "by", default=None,
                        help="Who submits it [default: the operating-system user].")(func)
    func = click.option("--submit", is_flag=True, default=False,
                        help="Freeze the return as submitted to Ofgem (once the period has "
                             "ended; refused when a check fails unless --force).")(func)
    return func


def _submit_or_produce(spec: ReturnSpec, period: Period, *, submit: bool, by: str | None,
                       force: bool, reason: str | None, **options: Any) -> None:
    if not submit:
        if by is not None or force or reason is not None:
            raise click.UsageError("--by, --force and --reason go with --submit")
        _produce(spec, period, **options)
        return
    if reason is not None and not force:
        raise click.UsageError("--reason goes with --force")
    from reporting.submission_commands import submit_return

    submit_return(spec, period, by=by, force=force, reason=reason, **options)


@report.command()
@click.argument("period")
@report_options
@submit_options
def monthly(period: str, **options: Any) -> None:
    """The monthly return (A1-A4, B5-B23, C24-C28) for PERIOD = YYYY-MM."""
    _submit_or_produce(MONTHLY, _period(parse_month, period), **options)


@report.command()
@click.argument("period")
@report_options
@submit_options
def quarterly(period: str, **options: Any) -> None:
    """The quarterly return (A1-A5, B6-B10, C11-C15, D16-D17, E18-E22) for YYYY-Qn."""
    _submit_or_produce(QUARTERLY, _period(parse_quarter, period), **options)


@report.command()
@click.argument("period")
@report_options
def publication(period: str, **options: Any) -> None:
    """The figures suppliers publish for quarter PERIOD = YYYY-Qn (Ofgem section 6)."""
    _produce(PUBLICATION, _period(parse_quarter, period), **options)


@report.command()
@click.argument("period")
@report_options
@click.option("--pdf", "pdf_path", type=OUTPUT_PATH, default=None,
              help="Also write the report as PDF.")
@click.option("--html", "html_path", type=OUTPUT_PATH, default=None,
              help="Also write the report as HTML.")
def annual(period: str, html_path: Path | None, pdf_path: Path | None,
           **options: Any) -> None:
    """The CHR reg. 11 annual report for the 12 months ending with month PERIOD (YYYY-MM)."""
    result, supplier = _produce(ANNUAL, _period(twelve_months_ending, period), **options)
    if html_path is not None:
        write_annual_html(result, html_path, supplier)
        click.echo(f"wrote {html_path}", err=True)
    if pdf_path is not None:
        write_annual_pdf(result, pdf_path, supplier)
        click.echo(f"wrote {pdf_path}", err=True)
