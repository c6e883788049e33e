"""`complaints export-events`, `complaints simulate` and `complaints risk` (docs/contract.md v2).

Kept apart from consumers/cli.py, which adds them to the `complaints` group at its end.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import click

from consumers.file_ingest import UnreadableFile
from reporting.cli_support import common_options, emit, instant, open_app, table


@click.command(name="export-events")
@click.option("--from", "start", default=None,
              help="Only events with occurred_at at or after this instant (ISO-8601 with offset).")
@click.option("--to", "end", default=None,
              help="Only events with occurred_at at or before this instant.")
@common_options
def export_events_command(start: str | None, end: str | None, db: str | None,
                          config: str | None, fmt: str) -> None:
    """The raw events applied to the record, one per line (JSONL), in applied order: a file
    `complaints ingest` and `complaints simulate` read back. What the export could not give
    byte for byte is said on stderr. The record is only read (no migration, no write);
    --config is not used, and --format changes nothing (the lines are the events)."""
    since = instant(start, "--from") if start else None
    until = instant(end, "--to") if end else None
    _export(db, sys.stdout.buffer, since, until)


def _export(db: str | None, out: BinaryIO, since: datetime | None = None,
            until: datetime | None = None, *, missing: str = "give an existing --db") -> None:
    """Write the record's applied events to `out`, then its notes on stderr. The record is
    only read: no migration (an older record exports what it holds), no write, and a SQLite
    file that does not exist is bad usage rather than a new empty record."""
    from consumers.event_export import export_events
    from workflow.database import database_url, make_engine

    url = database_url(db)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            click.echo(f"error: no record at {path} ({missing})", err=True)
            sys.exit(2)
    engine = make_engine(url)
    try:
        lines, notes = export_events(engine, since, until)
        for line in lines:
            out.write(line + b"\n")
        out.flush()
    finally:
        engine.dispose()
    for message in notes.messages():
        click.echo(f"note: {message}", err=True)


@click.command(name="simulate")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--variant", "variant_config", default=None,
              help="The variant procedure: a bundled name or a TOML file [default: --config].")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Replace a procedure key in the variant (repeatable): eight_weeks_days=42, "
                   "progress_update_interval_days=none, supplier.phone=..., region=SCT.")
@click.option("--until", "until", default=None,
              help="Replay up to this instant [default: the last event's].")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Also write a report with charts for people.")
@common_options
def simulate_command(file: Path | None, variant_config: str | None, settings: tuple[str, ...],
                     until: str | None, html_path: Path | None, db: str | None,
                     config: str | None, fmt: str) -> None:
    """Replay the events (FILE, in event-time order as ingest applies it, or the raw events
    recorded in --db, in the order the record applied them) twice, in scratch stores with
    event-time deadlines, under the --config procedure and under the variant, and compare
    letters, states, every return item and every complaint whose outcome differs. --db is
    not changed."""
    from consumers.simulate import BadSetting, prepare, simulate, with_settings
    from workflow.procedure import load_procedure

    end = instant(until, "--until") if until else None
    if html_path is not None:
        _check_writable(html_path)  # before the replays, not after them
    try:
        base = load_procedure(config)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    try:
        variant = load_procedure(variant_config) if variant_config else base
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--variant") from None
    try:
        variant = with_settings(variant, list(settings))
    except BadSetting as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    with tempfile.TemporaryDirectory(prefix="complaints-simulate-") as workdir:
        source = file if file is not None else _recorded_events(db, Path(workdir))
        try:
            events = prepare(source, end, Path(workdir), as_applied=file is None)
        except UnreadableFile as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        result = simulate(events, base, variant)
    for side, counts in result.ingest.items():
        if counts["rejected"]:
            click.echo(f"note: {side}: {counts['rejected']} line(s) rejected "
                       f"({counts['applied']} applied, {counts['duplicates']} duplicate)",
                       err=True)
    if html_path is not None:
        from reporting.simulation_html import write_simulation_html

        try:
            write_simulation_html(result, html_path)
        except OSError as exc:
            click.echo(f"error: cannot write {html_path}: {exc.strerror}", err=True)
            sys.exit(1)
        click.echo(f"wrote {html_path}", err=True)
    emit(fmt, result.document, _human_simulation)


def _check_writable(path: Path) -> None:
    """Bad usage (exit 2) when `path` cannot be written: its folder is missing or read-only,
    or it is there and read-only."""
    folder = path.parent
    if not folder.is_dir():
        problem = f"no folder {folder}"
    elif path.exists() and not os.access(path, os.W_OK):
        problem = "it is read-only"
    elif not path.exists() and not os.access(folder, os.W_OK):
        problem = f"folder {folder} is read-only"
    else:
        return
    raise click.BadParameter(f"cannot write {path}: {problem}", param_hint="--html")


def _recorded_events(db: str | None, workdir: Path) -> Path:
    """The record's applied events, exported to a file (the record is only read)."""
    target = workdir / "recorded.jsonl"
    with target.open("wb") as out:
        _export(db, out, missing="give a FILE or an existing --db")
    return target


def _human_simulation(d: dict[str, Any]) -> str:
    from consumers.simulate import changed_items

    changed_keys = [{"key": k, "base": d["base"][k], "variant": d["variant"].get(k)}
                    for k in d["base"] if d["base"][k] != d["variant"].get(k)]
    letters = [{"letter": k, **v} for k, v in d["letters"].items()]
    states = [{"state": k, **v} for k, v in d["states"].items()]
    items = changed_items(d)
    complaints = [{**c, "base_letters": ", ".join(c["base_letters"]),
                   "variant_letters": ", ".join(c["variant_letters"])}
                  for c in d["complaints"]]
    return "\n\n".join([
        f"Simulation up to {d['until']}",
        "Procedure changed\n" + table(changed_keys, ["key", "base", "variant"]),
        "Letters\n" + table(letters, ["letter", "base", "variant"]),
        "Complaints by state\n" + table(states, ["state", "base", "variant"]),
        "Return items that differ\n" + table(items, ["return", "period", "item", "base",
                                                      "variant"]),
        f"Complaints whose outcome differs ({len(complaints)})\n" + table(
            complaints, ["complaint_id", "base_state", "variant_state", "base_letters",
                         "variant_letters"]),
    ])


@click.command(name="risk")
@click.option("--as-of", "as_of", default=None,
              help="Instant to judge at [default: now, never before the record's latest event].")
@common_options
def risk_command(as_of: str | None, db: str | None, config: str | None, fmt: str) -> None:
    """Every complaint that can still breach eight weeks (open, no 8-week or deadlock letter
    yet), with the probability of an 8-week letter learnt from the record's own history
    (a prior while that history is short), highest first."""
    from datetime import UTC, datetime

    from reporting.risk import at_risk
    from workflow import queries

    app = open_app(db, config)
    try:
        with app.sessions() as session:
            when = (instant(as_of, "--as-of") if as_of
                    else queries.default_as_of(session, datetime.now(UTC)))
            rows = at_risk(session, when, app.procedure.eight_weeks_days)
    finally:
        app.engine.dispose()
    emit(fmt, rows, lambda r: table(r, ["p_breach", "complaint_id", "reference", "state",
                                        "owner", "eight_week_due", "model"]))
