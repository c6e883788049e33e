"""The same data gives the same returns, byte for byte, on SQLite and on PostgreSQL.

Two data sets: the hand-worked scenario (through the handlers), and a few thousand generated
complaints with microsecond instants (bulk-loaded by the benchmark's generator), where exact
ties and sub-second durations would expose any backend difference in the median (C15), the
rounding or the category and contact choices.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reporting.items import ANNUAL, MONTHLY, PUBLICATION, QUARTERLY
from reporting.model import ReturnSpec
from reporting.periods import Period, parse_month, parse_quarter, twelve_months_ending
from reporting.report import run_report, to_json
from tests.integration.test_report_returns import AS_OF, build_scenario
from workflow.bootstrap import App, bootstrap

BENCH = Path(__file__).parents[2] / "bench" / "reports.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_reports", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def every_report(app: App, months: list[str], quarters: list[str], as_of: str) -> str:
    when = datetime.fromisoformat(as_of)
    runs: list[tuple[ReturnSpec, Period]] = [
        *((MONTHLY, parse_month(m)) for m in months),
        *((QUARTERLY, parse_quarter(q)) for q in quarters),
        *((PUBLICATION, parse_quarter(q)) for q in quarters),
        (ANNUAL, twelve_months_ending(months[-1])),
    ]
    documents: list[dict[str, Any]] = [to_json(run_report(app, spec, period, when))
                                       for spec, period in runs]
    return json.dumps(documents, indent=1, sort_keys=False)


@pytest.mark.postgres
def test_scenario_identical_on_both(sqlite_url: str, postgres_url: str, tmp_path: Path) -> None:
    outputs = []
    for url in (sqlite_url, postgres_url):
        app = bootstrap(url, "kilowatt-connect")
        try:
            build_scenario(app, tmp_path)
            outputs.append(every_report(
                app, ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04"],
                ["2025-Q4", "2026-Q1", "2026-Q2"], AS_OF))
        finally:
            app.engine.dispose()
    assert outputs[0] == outputs[1]


@pytest.mark.postgres
def test_generated_year_identical_on_both(sqlite_url: str, postgres_url: str) -> None:
    bench = load_bench()
    outputs = []
    for url, loader in ((sqlite_url, bench.load_sqlite), (postgres_url, bench.load_postgres)):
        app = bootstrap(url, "kilowatt-connect")
        try:
            for chunk in bench.Generator(seed=7).chunks(4_000):
                loader(app, chunk)
            outputs.append(every_report(
                app, [f"2026-{m:02d}" for m in range(1, 13)],
                [f"2026-Q{q}" for q in range(1, 5)], "2026-11-15T12:00:00.123456+00:00"))
        finally:
            app.engine.dispose()
    assert outputs[0] == outputs[1]
    quarterly = json.loads(outputs[0])[12]
    assert quarterly["items"]["C11"] > 500 and quarterly["items"]["C15"] is not None
