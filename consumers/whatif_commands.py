"""`complaints export-events`, `complaints simulate` and `complaints risk` (CONTRACT.md v2).

Kept apart from consumers/cli.py, which adds them to the `complaints` group at its end.
"""

from __future__ import annotations

import sys

import click

from consumers.cli import instant, open_app


@click.command(name="export-events")
@click.option("--from", "start", default=None,
              help="Only events with occurred_at at or after this instant (ISO-8601 with offset).")
@click.option("--to", "end", default=None,
              help="Only events with occurred_at at or before this instant.")
@click.option("--db", "db", default=None,
              help="Database URL [env COMPLAINTS_DATABASE_URL; default sqlite:///complaints.db].")
@click.option("--config", "config", default=None, envvar="COMPLAINTS_CONFIG",
              help="Procedure (not used by the export; accepted like every command).")
def export_events_command(start: str | None, end: str | None, db: str | None,
                          config: str | None) -> None:
    """The raw events applied to the record, one per line (JSONL), in applied order: a file
    `complaints ingest` and `complaints simulate` read back. What the export could not give
    byte for byte is said on stderr."""
    from consumers.event_export import export_events

    since = instant(start, "--from") if start else None
    until = instant(end, "--to") if end else None
    app = open_app(db, config)
    out = sys.stdout.buffer
    try:
        lines, notes = export_events(app.engine, since, until)
        for line in lines:
            out.write(line + b"\n")
        out.flush()
    finally:
        app.engine.dispose()
    for message in notes.messages():
        click.echo(f"note: {message}", err=True)
