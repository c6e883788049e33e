"""`complaints reconcile`: the aggregator's live counts against the database's, figure by figure.

The database is the record; the aggregator derives the same counts from the output topics. Any
figure that differs once the aggregator has caught up is a bug (in the fold, the relay or the
handlers), so every one is listed: `{"differences": [{"figure", "aggregator", "database"}]}`,
exit status 1 when there is any.

Compared: the backlog (`complaints backlog` at `--as-of`, default now: by state, overdue and
due within 5 working days, by kind), and for each month and quarter that either side has
figures for, the return items the aggregator counts (reporting.ops.view MONTHLY_ITEMS and
QUARTERLY_ITEMS) against `complaints report monthly|quarterly`. The returns are compared over
everything recorded, because the stream counts everything published, whatever the instant.

The aggregator lags the database by the relay's and its own delay, so differences are re-checked
for up to `--settle` seconds before they are reported.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import click
from sqlalchemy import func, select

from reporting.numbers import as_json_number
from reporting.ops.records import micros, periods_of
from reporting.ops.view import MONTHLY_ITEMS, QUARTERLY_ITEMS
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.calendar import local_date
from workflow.schema import Letter, Receipt, ResolutionRecord

# The returns are compared over the whole record: an as-of instant after any event.
WHOLE_RECORD: Final = datetime(3000, 1, 1, tzinfo=UTC)
HTTP_TIMEOUT_S: Final = 10.0


class AggregatorUnavailable(Exception):
    """The aggregator could not be asked (down, not ready, or the token refused)."""


@dataclass
class Comparison:
    as_of: datetime
    months: list[str]
    quarters: list[str]
    compared: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    def check(self, figure: str, aggregator: Any, database: Any) -> None:
        self.compared += 1
        if aggregator != database:
            self.differences.append(
                {"figure": figure, "aggregator": aggregator, "database": database})

    def as_json(self, url: str) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "aggregator": url,
                "periods": {"months": self.months, "quarters": self.quarters},
                "compared": self.compared, "differences": self.differences}


# --------------------------------------------------------------------------- the two sides
class AggregatorClient:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}{path}{query}", headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                document: dict[str, Any] = json.loads(response.read())
                return document
        except urllib.error.HTTPError as exc:
            reason = {401: "the token was refused", 503: "it is not ready (recovering?)"}.get(
                exc.code, f"HTTP {exc.code}")
            raise AggregatorUnavailable(f"{self.url}{path}: {reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise AggregatorUnavailable(f"{self.url}{path}: {exc}") from None


def _months_between(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def database_periods(app: App) -> tuple[set[str], set[str]]:
    """Months and quarters from the first to the last receipt, resolution or letter recorded."""
    with app.sessions() as session:
        bounds = [session.execute(select(func.min(column), func.max(column))).one()
                  for column in (Receipt.received_at, ResolutionRecord.resolved_at,
                                 Letter.issued_at)]
    instants = [value for pair in bounds for value in pair if value is not None]
    if not instants:
        return set(), set()
    months = _months_between(local_date(min(instants)), local_date(max(instants)))
    quarters = {f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in months}
    return set(months), quarters


def compare(app: App, client: AggregatorClient, as_of: datetime,
            months: list[str] | None = None, quarters: list[str] | None = None) -> Comparison:
    from reporting.items import MONTHLY, QUARTERLY
    from reporting.periods import parse_month, parse_quarter
    from reporting.report import run_report

    # The aggregator is read first: whatever it has applied, the database has committed, so a
    # difference caused by the lag between them shows as the aggregator being behind.
    live_backlog = client.get("/backlog", as_of=as_of.isoformat())
    current = client.get("/returns/current", as_of=as_of.isoformat())
    if months is None or quarters is None:
        db_months, db_quarters = database_periods(app)
        month_now, quarter_now = periods_of(micros(as_of))
        months = sorted({month_now, *current["periods"]["months"], *db_months})
        quarters = sorted({quarter_now, *current["periods"]["quarters"], *db_quarters})
    live_months = {m: client.get("/returns/current", month=m)["month"] for m in months}
    live_quarters = {q: client.get("/returns/current", quarter=q)["quarter"] for q in quarters}

    result = Comparison(as_of, months, quarters)
    with app.sessions() as session:
        record = queries.backlog(session, as_of, app.procedure.calendar)
    for section in ("by_state", "overdue", "due_within_5_working_days"):
        for key, value in record[section].items():
            result.check(f"backlog.{section}.{key}", live_backlog[section].get(key), value)
    # (v2) letters not yet delivered: the outbox carries each dispatch to the aggregator
    result.check("backlog.undelivered_letters", live_backlog.get("undelivered_letters"),
                 record["undelivered_letters"])
    for month in months:
        report = run_report(app, MONTHLY, parse_month(month), WHOLE_RECORD)
        for code in MONTHLY_ITEMS:
            result.check(f"monthly {month} {code}", live_months[month]["items"].get(code),
                         as_json_number(report.values[code]))
    for quarter in quarters:
        report = run_report(app, QUARTERLY, parse_quarter(quarter), WHOLE_RECORD)
        for code in QUARTERLY_ITEMS:
            result.check(f"quarterly {quarter} {code}",
                         live_quarters[quarter]["items"].get(code),
                         as_json_number(report.values[code]))
    return result


def reconcile_until_settled(app: App, client: AggregatorClient, as_of: datetime | None,
                            settle_s: float, months: list[str] | None = None,
                            quarters: list[str] | None = None) -> Comparison:
    """Compare; while differences remain, compare again (1 s apart) for up to `settle_s`."""
    deadline = time.monotonic() + settle_s
    while True:
        result = compare(app, client, as_of or datetime.now(UTC), months, quarters)
        if not result.differences or time.monotonic() >= deadline:
            return result
        time.sleep(1.0)


# --------------------------------------------------------------------------- the command
def _default_url() -> str:
    from reporting.web import web_address  # deferred: aiohttp is not needed for --help

    host, port = web_address()
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO-8601 instant",
                                 param_hint="--as-of") from None
    if value.utcoffset() is None:
        raise click.BadParameter(f"{text!r} has no UTC offset", param_hint="--as-of")
    return value


def _text_report(result: Comparison, url: str) -> str:
    head = (f"compared {result.compared} figure(s) of {url} with the database "
            f"(backlog as of {result.as_of.isoformat()}; months {', '.join(result.months)}; "
            f"quarters {', '.join(result.quarters)})")
    if not result.differences:
        return head + "\nno differences"
    width = max(len(d["figure"]) for d in result.differences)
    lines = [head, f"{len(result.differences)} difference(s):",
             f"  {'figure'.ljust(width)}  {'aggregator':>10}  {'database':>10}"]
    lines += [f"  {d['figure'].ljust(width)}  {d['aggregator']!s:>10}  {d['database']!s:>10}"
              for d in result.differences]
    return "\n".join(lines)


@click.command()
@click.option("--db", "db", default=None, envvar="COMPLAINTS_DATABASE_URL",
              help="Database URL [env COMPLAINTS_DATABASE_URL; default sqlite:///complaints.db].")
@click.option("--config", "config", default=None, envvar="COMPLAINTS_CONFIG",
              help="Procedure: kilowatt-connect, lastmile or a TOML path [env COMPLAINTS_CONFIG].")
@click.option("--url", default=None, envvar="COMPLAINTS_OPS_URL",
              help="The aggregator's ops API [env COMPLAINTS_OPS_URL; default "
                   "http://COMPLAINTS_WEB_HOST:COMPLAINTS_WEB_PORT].")
@click.option("--token", default=None, envvar="COMPLAINTS_OPS_TOKEN",
              help="Bearer token of the ops API [env COMPLAINTS_OPS_TOKEN].")
@click.option("--as-of", "as_of", default=None,
              help="Instant for the backlog's overdue and due-soon counts [default: now].")
@click.option("--month", "months", multiple=True,
              help="Compare this month (YYYY-MM; repeatable) [default: every month either "
                   "side has figures for].")
@click.option("--quarter", "quarters", multiple=True,
              help="Compare this quarter (YYYY-Qn; repeatable) [default: likewise].")
@click.option("--settle", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to keep re-checking while the aggregator may be catching up.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: one JSON document on stdout.")
def reconcile(db: str | None, config: str | None, url: str | None, token: str | None,
              as_of: str | None, months: tuple[str, ...], quarters: tuple[str, ...],
              settle: float, fmt: str) -> None:
    """Compare the streaming aggregator's counts with the database's; exit 1 on any difference.

    \b
    {"as_of", "aggregator", "periods", "compared",
     "differences": [{"figure", "aggregator", "database"}]}
    """
    from reporting.periods import BadPeriod, parse_month, parse_quarter

    if not token:
        raise click.UsageError("no ops token: set COMPLAINTS_OPS_TOKEN or pass --token")
    instant = _instant(as_of) if as_of else None
    try:
        chosen_months = [parse_month(m).label for m in months] or None
        chosen_quarters = [parse_quarter(q).label for q in quarters] or None
    except BadPeriod as exc:
        raise click.BadParameter(str(exc)) from None
    if (chosen_months is None) != (chosen_quarters is None):
        # One list given: the other side compares only the given kind.
        chosen_months, chosen_quarters = chosen_months or [], chosen_quarters or []
    try:
        app = bootstrap(db, config, run_migrations=False)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    target = url or _default_url()
    client = AggregatorClient(target, token)
    try:
        result = reconcile_until_settled(app, client, instant, settle, chosen_months,
                                         chosen_quarters)
    except AggregatorUnavailable as exc:
        if fmt == "json":
            click.echo(json.dumps({"error": f"aggregator unavailable: {exc}",
                                   "differences": None}))
        click.echo(f"error: aggregator unavailable: {exc}", err=True)
        sys.exit(1)
    finally:
        app.engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(result.as_json(target), indent=2))
    else:
        click.echo(_text_report(result, target))
    sys.exit(1 if result.differences else 0)
