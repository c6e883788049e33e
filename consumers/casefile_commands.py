"""`complaints casefile`, `complaints erase` and `complaints retention` (docs/contract.md v2).

Registered on the `complaints` group by consumers/cli.py; the options every command shares
come from reporting/cli_support.py.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reporting.cli_support import common_options, instant, open_app
from workflow.queries import default_as_of


def _emit(fmt: str, document: Any, human: str) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False) if fmt == "json" else human)


@click.command()
@click.argument("complaint_id")
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Output file: .pdf (the case file) or .zip (it and every letter's PDF).")
@common_options
def casefile(complaint_id: str, target: Path, db: str | None, config: str | None,
             fmt: str) -> None:
    """The complaint's case file for the Energy Ombudsman (CHR reg. 4 record)."""
    from reporting.casefile import casefile_bytes

    suffix = target.suffix.lower()
    if suffix not in (".pdf", ".zip"):
        raise click.BadParameter(f"{str(target)!r}: the file name must end in .pdf or .zip",
                                 param_hint="--to")
    app = open_app(db, config)
    try:
        data = casefile_bytes(app, complaint_id, "pdf" if suffix == ".pdf" else "zip",
                              datetime.now(UTC))
    finally:
        app.engine.dispose()
    if data is None:
        click.echo(f"unknown complaint {complaint_id}", err=True)
        sys.exit(1)
    target.write_bytes(data)
    _emit(fmt, {"complaint_id": complaint_id, "file": str(target), "bytes": len(data)},
          f"wrote {target}")


@click.command()
@click.option("--customer", "account_id", required=True, help="The account id to erase.")
@click.option("--force", is_flag=True, help="Erase complaints under legal hold too "
                                            "(needs --reason; recorded).")
@click.option("--reason", default=None, help="Why a legal hold is overridden (with --force).")
@click.option("--by", "by", default=None,
              help="Who asks for the erasure [env COMPLAINTS_OPERATOR, else the login name].")
@click.option("--letters-dir", default=None, envvar="COMPLAINTS_LETTERS_DIR",
              help="The letter store to erase files in [env COMPLAINTS_LETTERS_DIR; "
                   "default letters-out].")
@click.option("--print-dir", default=None, envvar="COMPLAINTS_PRINT_DIR",
              help="The print queue to erase files in [env COMPLAINTS_PRINT_DIR; "
                   "default print-queue].")
@common_options
def erase(account_id: str, force: bool, reason: str | None, by: str | None,
          letters_dir: str | None, print_dir: str | None, db: str | None, config: str | None,
          fmt: str) -> None:
    """Erase the personal data of every complaint of an account; every return stays the
    same. Refused (exit 1) when a complaint is under legal hold, unless --force --reason."""
    from consumers.erasure import erase_account, operator_name, print_queue_dir
    from consumers.erasure import letters_dir as store

    if force and not (reason and reason.strip()):
        raise click.UsageError("--force needs --reason TEXT (it is recorded)")
    if reason is not None and not force:
        raise click.UsageError("--reason goes with --force")
    app = open_app(db, config)
    try:
        outcome = erase_account(app, account_id, now=datetime.now(UTC),
                                by=by or operator_name(), force=force,
                                reason=reason.strip() if reason else None,
                                letters=store(letters_dir),
                                print_queue=print_queue_dir(print_dir))
    finally:
        app.engine.dispose()
    erased = len(outcome.erased)
    if outcome.held:
        for complaint_id, why in outcome.held.items():
            click.echo(f"not erased: {complaint_id} is under legal hold: {why}", err=True)
        click.echo(f"erased {erased} other complaint(s) of the account; --force --reason TEXT "
                   "overrides the hold", err=True)
        if fmt == "json":
            click.echo(json.dumps({"complaints": erased, "held": [
                {"complaint_id": c, "why": w} for c, w in outcome.held.items()]}, indent=2))
        sys.exit(1)
    _emit(fmt, {"complaints": erased},
          f"erased {erased} complaint(s)"
          + (f" (legal hold overridden: {', '.join(outcome.overridden)})"
             if outcome.overridden else ""))


@click.command()
@click.option("--apply", "apply", is_flag=True, help="Erase what is due.")
@click.option("--as-of", "as_of", default=None,
              help="Instant to judge at [default: now, never before the record's clock].")
@click.option("--by", "by", default=None,
              help="Who applies it [env COMPLAINTS_OPERATOR, else the login name].")
@click.option("--letters-dir", default=None, envvar="COMPLAINTS_LETTERS_DIR",
              help="The letter store [env COMPLAINTS_LETTERS_DIR; default letters-out].")
@click.option("--print-dir", default=None, envvar="COMPLAINTS_PRINT_DIR",
              help="The print queue [env COMPLAINTS_PRINT_DIR; default print-queue].")
@common_options
def retention(apply: bool, as_of: str | None, by: str | None, letters_dir: str | None,
              print_dir: str | None, db: str | None, config: str | None, fmt: str) -> None:
    """Complaints resolved or closed more than retention_years ago and not under legal hold;
    --apply erases them as `erase` does."""
    from consumers.erasure import letters_dir as store
    from consumers.erasure import operator_name, print_queue_dir, run_retention

    app = open_app(db, config)
    try:
        # Default: the record's now (offline, event time: docs/rules.md s.5), as `erase`
        # judges its holds; the erasure itself is stamped with the wall clock.
        wall = datetime.now(UTC)
        if as_of:
            when = instant(as_of, "--as-of")
        else:
            with app.sessions() as session:
                when = default_as_of(session, wall)
        due, erased = run_retention(app, when, apply=apply, by=by or operator_name(),
                                    letters=store(letters_dir),
                                    print_queue=print_queue_dir(print_dir), now=wall)
    finally:
        app.engine.dispose()
    if apply:
        _emit(fmt, {"erased": erased}, f"erased {erased} complaint(s)")
        return
    rows = [d.as_json() for d in due]
    human = "\n".join(f"{r['complaint_id']}  closed {r['closed_at']}  due {r['due']}"
                      for r in rows) or "(none due)"
    _emit(fmt, rows, human)
