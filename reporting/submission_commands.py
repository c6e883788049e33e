"""(v2) `complaints report monthly|quarterly ... --submit` and `complaints submissions
list|export|diff|publish|due` (docs/contract.md (v2)).

Exit 1 when the rules refuse (a period not ended, failing checks without --force, an unknown
submission); exit 2 for bad usage.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reporting.cli_support import common_options, emit, instant, open_app, table
from reporting.model import ReturnSpec
from reporting.periods import BadPeriod, Period, parse_month, parse_quarter
from reporting.report import to_json, to_text
from reporting.submissions import (
    SubmissionRefused,
    dashboard_summary,
    diff,
    list_submissions,
    obligations,
    publish,
    stored_bytes,
    submit,
)

OUTPUT_PATH = click.Path(path_type=Path, dir_okay=False, writable=True)


def _who(by: str | None) -> str:
    if by is not None and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def _refused(exc: Exception) -> None:
    click.echo(f"refused: {exc}", err=True)
    sys.exit(1)


def submit_return(spec: ReturnSpec, period: Period, *, db: str | None, config: str | None,
                  fmt: str, as_of: str | None, csv_path: Path | None, xlsx_path: Path | None,
                  by: str | None, force: bool, reason: str | None) -> None:
    when = instant(as_of, "--as-of") if as_of else None
    app = open_app(db, config)
    try:
        report, submission = submit(app, spec, period, now=datetime.now(UTC), by=_who(by),
                                    as_of=when, force=force, reason=reason)
        # The files written now are the stored bytes: what `submissions export` gives later.
        for path, suffix in ((csv_path, ".csv"), (xlsx_path, ".xlsx")):
            if path is not None:
                path.write_bytes(stored_bytes(app, submission.id, suffix) or b"")
                click.echo(f"wrote {path}", err=True)
    except SubmissionRefused as exc:
        _refused(exc)
        return
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        app.engine.dispose()
    document = {**to_json(report), "submission": submission.receipt()}
    emit(fmt, document, lambda _: to_text(report) + "\n\n" + _human_receipt(submission.receipt(),
                                                                            submission.forced))
    for check in report.failed_checks:
        click.echo(f"warning: submitted with a failing check: {check.name}: {check.detail}",
                   err=True)


def _human_receipt(receipt: dict[str, Any], forced: bool) -> str:
    return (f"Submitted as {receipt['id']} at {receipt['submitted_at']} by {receipt['by']}"
            f"{' (forced)' if forced else ''}\nSHA-256 {receipt['sha256']}")


@click.group(name="submissions")
def submissions_group() -> None:
    """Returns as submitted to Ofgem, publications, what changed since, and what is due."""


@submissions_group.command(name="list")
@common_options
def list_command(db: str | None, config: str | None, fmt: str) -> None:
    """Every submission and publication, oldest first."""
    app = open_app(db, config)
    rows = [s.summary() for s in list_submissions(app)]
    emit(fmt, rows, lambda r: table(r, ["id", "kind", "period", "as_of", "submitted_at", "by",
                                        "sha256"]))


@submissions_group.command(name="export")
@click.argument("submission_id")
@click.option("--to", "target", required=True, type=OUTPUT_PATH,
              help="Output file: .csv or .xlsx (the bytes stored with the submission).")
@common_options
def export_command(submission_id: str, target: Path, db: str | None, config: str | None,
                   fmt: str) -> None:
    """Write the CSV or workbook exactly as it was submitted."""
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise click.BadParameter("the file must end in .csv or .xlsx", param_hint="--to")
    app = open_app(db, config)
    content = stored_bytes(app, submission_id, suffix)
    if content is None:
        click.echo(f"unknown submission {submission_id}", err=True)
        sys.exit(1)
    target.write_bytes(content)
    emit(fmt, {"id": submission_id, "file": str(target), "bytes": len(content)},
         lambda d: f"wrote {d['file']} ({d['bytes']} bytes)")


@submissions_group.command(name="diff")
@click.argument("submission_id")
@click.option("--as-of", "as_of", default=None,
              help="Compute now as of this instant [default: now, never before the record].")
@common_options
def diff_command(submission_id: str, as_of: str | None, db: str | None, config: str | None,
                 fmt: str) -> None:
    """Compare a submission with the same return computed now, item by item."""
    when = instant(as_of, "--as-of") if as_of else None
    app = open_app(db, config)
    document = diff(app, submission_id, now=datetime.now(UTC), as_of=when)
    if document is None:
        click.echo(f"unknown submission {submission_id}", err=True)
        sys.exit(1)
    emit(fmt, document, _human_diff)


def _human_diff(d: dict[str, Any]) -> str:
    head = (f"{d['id']} ({d['kind']} {d['period']}, as of {d['submitted_as_of']}) against "
            f"a computation as of {d['as_of']}: "
            + ("RESUBMISSION NEEDED" if d["resubmission_needed"] else "unchanged"))
    lines = [head]
    for code, entry in d["changed"].items():
        moved = f"  by {entry['by']:+}" if "by" in entry else ""
        lines.append(f"  {code}: submitted {entry['submitted']}, now {entry['now']}{moved}")
        for reason in entry.get("reasons", []):
            who = reason.get("complaint_id") or reason.get("event_id")
            late = " (dated before the as-of: recorded late)" if reason["late"] else ""
            lines.append(f"      {reason['change']} {who} at {reason['at']}{late}")
    if d.get("superseded_by"):
        lines.append(f"(superseded by {d['superseded_by']})")
    return "\n".join(lines)


@submissions_group.command(name="publish")
@click.argument("period")
@click.option("--url", default=None, help="Where the figures were published.")
@click.option("--by", "by", default=None, help="Who published them [default: the OS user].")
@common_options
def publish_command(period: str, url: str | None, by: str | None, db: str | None,
                    config: str | None, fmt: str) -> None:
    """Record that quarter PERIOD's figures (YYYY-Qn) were published on the website."""
    try:
        quarter = parse_quarter(period)
    except BadPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="PERIOD") from None
    app = open_app(db, config)
    try:
        report, publication = publish(app, quarter, now=datetime.now(UTC), by=_who(by), url=url)
    except SubmissionRefused as exc:
        _refused(exc)
        return
    document = {**to_json(report), "publication": {**publication.receipt(), "url": url}}
    emit(fmt, document, lambda _: to_text(report) + f"\n\nRecorded as {publication.id}"
         + (f", published at {url}" if url else ""))


@submissions_group.command(name="due")
@click.option("--as-of", "as_of", default=None,
              help="The instant to list at [default: now, never before the record].")
@click.option("--from", "first", default=None,
              help="First month YYYY-MM [default: the month of the first receipt].")
@common_options
def due_command(as_of: str | None, first: str | None, db: str | None, config: str | None,
                fmt: str) -> None:
    """Every return and publication due, when, and whether it is submitted."""
    when = instant(as_of, "--as-of") if as_of else None
    try:
        start = parse_month(first) if first else None
    except BadPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
    app = open_app(db, config)
    rows = obligations(app, now=datetime.now(UTC), as_of=when, first=start)
    emit(fmt, rows, _human_due)


def _human_due(rows: list[dict[str, Any]]) -> str:
    summary = dashboard_summary(rows)
    counts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in summary["counts"].items())
    return table(rows, ["kind", "period", "due", "status", "submitted_at", "submission_id"]) \
        + f"\n\n{counts}"

