"""The `complaints` command line (CONTRACT.md "Commands").

`--format json` prints exactly one JSON document on stdout; people get tables. Exit status:
0 success, 1 failure (e.g. unknown complaint), 2 bad usage or bad input file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from consumers.file_ingest import UnreadableFile, ingest_file, tick
from consumers.gc_tuning import tune_garbage_collector
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.letter_context import LETTER_KINDS

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    func = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                        help="json: one JSON document on stdout.")(func)
    func = click.option("--config", "config", default=None, envvar="COMPLAINTS_CONFIG",
                        help="Procedure: kilowatt-connect, lastmile or a TOML path "
                             "[env COMPLAINTS_CONFIG; default kilowatt-connect].")(func)
    func = click.option("--db", "db", default=None,
                        help="Database URL [env COMPLAINTS_DATABASE_URL; "
                             "default sqlite:///complaints.db].")(func)
    return func


def open_app(db: str | None, config: str | None) -> App:
    try:
        return bootstrap(db, config)
    except ValueError as exc:  # an unknown procedure name or a bad TOML file
        raise click.BadParameter(str(exc), param_hint="--config") from None


def instant(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 instant", param_hint=name) from None
    if parsed.utcoffset() is None:
        raise click.BadParameter(f"{value!r} has no UTC offset", param_hint=name)
    return parsed.astimezone(UTC)


def emit(fmt: str, document: Any, human: Callable[[Any], str]) -> None:
    if fmt == "json":
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(human(document))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Complaints workflow service for GB energy suppliers (CHR 2008, Ofgem returns)."""
    tune_garbage_collector()


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@common_options
def ingest(file: Path, db: str | None, config: str | None, fmt: str) -> None:
    """Apply a JSONL file of events in file order, with event-time deadlines."""
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
            + (f"  duplicate of {d['duplicate_of']}" if d["duplicate_of"] else ""))
    return "\n\n".join([
        head,
        "History\n" + table(d["history"], ["at", "type", "from", "to", "event_id"]),
        "Deadlines\n" + table(d["deadlines"], ["kind", "cycle", "due_at", "fired_at", "outcome"]),
        "Letters\n" + table(d["letters"], ["letter_id", "kind", "issued_at"]),
    ])


@main.command()
@click.option("--as-of", "as_of", default=None,
              help="Instant to count at [default: now, never before the record's latest event].")
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
            + table(kinds, ["deadline", "overdue", "due within 5 working days"]))


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


# Command groups defined beside what they serve, registered here so `complaints --help`
# lists them all.
from consumers.commands import publish, up  # noqa: E402
from reporting.commands import report  # noqa: E402
from reporting.reconcile import reconcile  # noqa: E402

for _command in (report, up, publish, reconcile):
    main.add_command(_command)

# The Ombudsman case file, erasure and retention (issue 15).
from consumers.casefile_commands import casefile, erase, retention  # noqa: E402

for _command in (casefile, erase, retention):
    main.add_command(_command)

from consumers.whatif_commands import (  # noqa: E402
    export_events_command,
    risk_command,
    simulate_command,
)

for _command in (export_events_command, simulate_command, risk_command):
    main.add_command(_command)


if __name__ == "__main__":
    main()
