"""Running a return against the database and shaping it as docs/contract.md's JSON or as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reporting import measures as m
from reporting.model import CheckResult, Context, ReturnSpec
from reporting.numbers import Value, as_json_number, as_text
from reporting.periods import Period
from reporting.statements import statements
from workflow import queries
from workflow.bootstrap import App


@dataclass(frozen=True)
class Report:
    spec: ReturnSpec
    period: Period
    as_of: datetime
    values: dict[str, Value]
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    annexes: dict[str, Any] = field(default_factory=dict)  # (v2) name -> JSON value

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.ok]


def default_as_of(app: App, now: datetime | None = None) -> datetime:
    """A return's as-of instant when none is given: now (docs/rules.md s.7, "default: now").

    In offline processing now is event time (docs/rules.md s.5): the clock has reached at least the
    latest event and deadline applied. So the default is the wall clock or the record's clock
    (workflow/queries.py `record_clock`), whichever is later; a record ingested from files
    dated after today is counted in full, not cut off at today's date.
    """
    wall = (now or datetime.now(UTC)).astimezone(UTC)
    with app.engine.connect() as conn:
        return queries.default_as_of(conn, wall)


def run_report(app: App, spec: ReturnSpec, period: Period, as_of: datetime) -> Report:
    """Every item and check of `spec` for `period`, counting events at or before `as_of`.

    All queries run in one read transaction, so a report taken while events are being applied
    still adds up (REPEATABLE READ on PostgreSQL; a SQLite read transaction is a snapshot).
    """
    return run_reports(app, [(spec, period)], as_of)[0]


def run_reports(app: App, wanted: list[tuple[ReturnSpec, Period]],
                as_of: datetime) -> list[Report]:
    """(v2) Several returns in one read transaction, sharing their measures: a quarter's
    return, its publication figures and its months' returns run each query once."""
    shared: dict[Any, Any] = {}
    reports: list[Report] = []
    with app.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for spec, period in wanted:
                context = Context(conn, spec, period, as_of, app.procedure, shared)
                values = context.values()
                checks = context.run_checks()
                notes = _notes(context)
                annexes = {annex.name: annex.compute(context) for annex in spec.annexes}
                reports.append(Report(
                    spec, period, as_of, values, checks, notes,
                    statements(app.procedure) if spec.shape == "annual" else [], annexes))
    return reports


def _notes(context: Context) -> list[str]:
    notes = [f"counting events at or before {context.as_of.isoformat()}"]
    if context.spec.shape == "return":
        snapshot = context.measure(m.accounts)
        notes.append(f"accounts from the snapshot dated {snapshot.as_of}" if snapshot.as_of
                     else "no accounts snapshot dated in the period: accounts and rates are null")
    return notes


def to_json(report: Report) -> dict[str, Any]:
    """The document docs/contract.md specifies for the report's command."""
    items = {code: as_json_number(value) for code, value in report.values.items()}
    shape = report.spec.shape
    if shape == "return":
        return {"period": report.period.label, "items": items,
                "checks": [check.as_json() for check in report.checks], **report.annexes}
    if shape == "figures":
        return {"period": report.period.label, **items}
    return {"period_start": report.period.first.isoformat(),
            "period_end": report.period.last.isoformat(), **items,
            "statements": list(report.statements)}


def period_caption(report: Report) -> str:
    if report.spec.shape == "annual":
        return f"{report.period.first.isoformat()} to {report.period.last.isoformat()}"
    return report.period.label


def to_text(report: Report) -> str:
    """For people: the items as a table under their section headings, then the checks."""
    lines = [f"{report.spec.title}: {period_caption(report)}",
             *(f"({note})" for note in report.notes), ""]
    width = max(len(item.code) for item in report.spec.items)
    section: str | None = None
    for item in report.spec.items:
        heading = report.spec.section(item.code)
        if heading and heading != section:
            lines.append(f"{item.code[0]}. {heading}")
            section = heading
        value = as_text(report.values[item.code]) or "null"
        lines.append(f"  {item.code.ljust(width)}  {value:>12}  {item.description}")
    if report.checks:
        lines += ["", "Checks"]
        lines += [f"  [{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}"
                  for c in report.checks]
    for annex in report.spec.annexes:
        lines += ["", annex.title]
        rows = annex.rows(report.annexes[annex.name])
        lines += [f"  {'  '.join(str(cell) for cell in row)}" for row in rows] or ["  (none)"]
    if report.statements:
        lines += ["", *report.statements]
    return "\n".join(lines)
