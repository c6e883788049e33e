"""The `complaints` command line (docs/contract.md "Commands").

`--format json` prints exactly one JSON document on stdout; people get tables. Exit status:
0 success, 1 failure (e.g. unknown complaint), 2 bad usage or bad input file.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from consumers.casefile_commands import casefile, erase, retention
from consumers.commands import publish, up
from consumers.file_ingest import UnreadableFile, ingest_file, tick
from consumers.gc_tuning import tune_garbage_collector
from consumers.whatif_commands import export_events_command, risk_command, simulate_command
from reporting.cli_support import common_options, emit, instant, open_app, table
from reporting.commands import report
from reporting.reconcile import reconcile
from reporting.submission_commands import submissions_group
from workflow import queries
from workflow.letter_context import LETTER_KINDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Complaints workflow service for GB energy suppliers (CHR 2008, Ofgem returns)."""
    tune_garbage_collector()


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@common_options
def ingest(file: Path, db: str | None, config: str | None, fmt: str) -> None:
    """Apply a JSONL file of events in event-time order (occurred_at; ties in file order), with
    event-time deadlines."""
    app = open_app(db, config)

    def report_rejection(line: int, reason: str) -> None:
        click.echo(f"{file}: line {line}: rejected: {reason}", err=True)

    try:
        report = ingest_file(app, file, on_rejection=report_rejection)
    except UnreadableFile as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    emit(fmt, report.as_json(), lambda d: "applied {applied}, duplicates {duplicates}, "
                                          "rejected {rejected}".format(**d))


@main.command(name="tick")
@click.option("--until", "until", required=True, help="Fire deadlines due at or before this.")
@common_options
def tick_command(until: str, db: str | None, config: str | None, fmt: str) -> None:
    """Fire every deadline due at or before --until."""
    when = instant(until, "--until")
    fired = tick(open_app(db, config), when)
    emit(fmt, {"fired": fired}, lambda d: f"fired {d['fired']} deadline(s)")


@main.command()
@click.argument("complaint_id")
@common_options
def show(complaint_id: str, db: str | None, config: str | None, fmt: str) -> None:
    """One complaint: state, history, deadlines and letters."""
    app = open_app(db, config)
    with app.sessions() as session:
        document = queries.show_complaint(session, complaint_id)
    if document is None:
        click.echo(f"unknown complaint {complaint_id}", err=True)
        sys.exit(1)
    emit(fmt, document, _human_complaint)


def _human_complaint(d: dict[str, Any]) -> str:
    head = (f"{d['complaint_id']}  ref {d['reference']}  state {d['state']}  "
            f"category {d['category']}  channel {d['channel']}  cycle {d['cycle']}\n"
            f"received {d['received_at']}"
            + (f"  duplicate of {d['duplicate_of']}" if d["duplicate_of"] else "")
            + (f"  closed by {d['closed_by']}" if d.get("closed_by") else "")
            + ("  LATE REFERRAL (after the referral window ended)"
               if d.get("late_referral") else ""))
    return "\n\n".join([
        head,
        "History\n" + table(d["history"], ["at", "type", "from", "to", "event_id"]),
        "Deadlines\n" + table(d["deadlines"], ["kind", "cycle", "due_at", "fired_at", "outcome"]),
        "Letters\n" + table(d["letters"], ["letter_id", "kind", "issued_at", "delivery"]),
        "Deliveries\n" + table(
            [{"letter_id": x["letter_id"], **a} for x in d["letters"]
             for a in x.get("dispatches", [])],
            ["letter_id", "attempt", "channel", "at", "outcome", "receipt"]),
    ])


@main.command()
@click.option("--as-of", "as_of", default=None,
              help="Instant the deadlines are compared with [default: now, never before the "
                   "record's latest event]. States, remedy and late-referral flags are as the "
                   "record stands: an earlier instant is not a replay (`simulate --until` is).")
@common_options
def backlog(as_of: str | None, db: str | None, config: str | None, fmt: str) -> None:
    """Complaints per state; deadlines overdue and due within 5 working days."""
    app = open_app(db, config)
    with app.sessions() as session:
        when = (instant(as_of, "--as-of") if as_of
                else queries.default_as_of(session, datetime.now(UTC)))
        document = queries.backlog(session, when, app.procedure.calendar)
    emit(fmt, document, _human_backlog)


def _human_backlog(d: dict[str, Any]) -> str:
    states = [{"state": s, "complaints": n} for s, n in d["by_state"].items()]
    kinds = [{"deadline": k, "overdue": n, "due within 5 working days":
              d["due_within_5_working_days"][k]} for k, n in d["overdue"].items()]
    return (f"Backlog as of {d['as_of']}\n\n" + table(states, ["state", "complaints"]) + "\n\n"
            + table(kinds, ["deadline", "overdue", "due within 5 working days"])
            + f"\n\nLate referrals with the Ombudsman: {d.get('late_referrals', 0)}"
            + f"\nLetters not yet delivered: {d.get('undelivered_letters', 0)}")


@main.command()
@common_options
def rejected(db: str | None, config: str | None, fmt: str) -> None:
    """The stored rejections, oldest first."""
    app = open_app(db, config)
    with app.sessions() as session:
        rows = queries.rejections(session)
    emit(fmt, rows, lambda r: table(r, ["rejected_at", "source", "position", "reason"]))


@main.group()
def letters() -> None:
    """Letters issued to customers."""


@letters.command(name="list")
@click.option("--complaint", "complaint_id", default=None, help="Only this complaint's.")
@click.option("--kind", type=click.Choice(LETTER_KINDS), default=None, help="Only this kind.")
@common_options
def letters_list(complaint_id: str | None, kind: str | None, db: str | None,
                 config: str | None, fmt: str) -> None:
    """Issued letters, by issue instant."""
    app = open_app(db, config)
    with app.sessions() as session:
        rows = queries.letters(session, complaint_id, kind)
    emit(fmt, rows, lambda r: table(r, ["letter_id", "complaint_id", "kind", "issued_at"]))


@letters.command(name="render")
@click.argument("letter_id")
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Output file: .html, .txt or .pdf.")
@common_options
def letters_render(letter_id: str, target: Path, db: str | None, config: str | None,
                   fmt: str) -> None:
    """Write a letter as HTML, text or PDF, from the data stored when it was issued."""
    from letters.render import format_for_suffix, render

    try:
        out_format = format_for_suffix(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    app = open_app(db, config)
    with app.sessions() as session:
        context = queries.letter_context(session, letter_id)
    if context is None:
        click.echo(f"unknown letter {letter_id}", err=True)
        sys.exit(1)
    target.write_bytes(render(context, out_format))
    emit(fmt, {"letter_id": letter_id, "file": str(target), "format": out_format},
         lambda d: f"wrote {d['file']}")


# Command groups defined beside what they serve (none of them imports this module), registered
# here so `complaints --help` lists them all.
for _command in (report, up, publish, reconcile, submissions_group):
    main.add_command(_command)

# The Ombudsman case file, erasure and retention (issue 15).
for _command in (casefile, erase, retention):
    main.add_command(_command)

for _command in (export_events_command, simulate_command, risk_command):
    main.add_command(_command)


if __name__ == "__main__":
    main()
