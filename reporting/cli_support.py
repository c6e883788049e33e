"""What every `complaints` command shares: the common options, opening the app, parsing an
instant, and printing (`--format json`: one JSON document on stdout; people get tables).

Here, below every package with commands, so that `reporting` and `consumers` both define
their commands beside what they serve and `consumers.cli` registers them all, without an
import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from workflow.bootstrap import App, bootstrap

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
