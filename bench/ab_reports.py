"""Benchmark: the quarterly return from two source trees, alternately, on one SQLite database.

    .venv/bin/python bench/ab_reports.py --before DIR --after DIR [--complaints 100000]
                                         [--rounds 4] [--repeat 5]

For a refactor that should not change the SQL (issue #13): `bench/reports.py`'s generator
loads one database, then each round times `complaints report quarterly 2026-Q2` (median of
`--repeat`) in a fresh process importing the `--before` tree, then one importing `--after`
(e.g. a `git worktree` of the base commit, and this tree). Alternating on one database takes
the shared machine's drift out of the comparison. Each process also prints C11, C13 and B9,
which must agree, and the SQL statements' digest, equal when the trees send the same SQL
(bound values aside). Times are wall clock and, since SQLite runs in the process, CPU time
(`time.process_time`): on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import hashlib, json, statistics, sys, time
root, url, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, root)
from datetime import UTC, datetime
from sqlalchemy import event
import reporting.measures
assert reporting.measures.__file__.startswith(root), reporting.measures.__file__
from reporting.items import QUARTERLY
from reporting.periods import parse_quarter
from reporting.report import run_report
from workflow.bootstrap import bootstrap
app = bootstrap(url, "kilowatt-connect")
statements = []
event.listen(app.engine, "before_cursor_execute",
             lambda conn, cursor, statement, *rest: statements.append(statement))
as_of, times, cpu = datetime(2027, 1, 1, tzinfo=UTC), [], []
for _ in range(repeat):
    start, start_cpu = time.perf_counter(), time.process_time()
    report = run_report(app, QUARTERLY, parse_quarter("2026-Q2"), as_of)
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
print(json.dumps({"median": statistics.median(times), "cpu": statistics.median(cpu),
                  "items": [str(report.values[c]) for c in ("C11", "C13", "B9")],
                  "sql": hashlib.sha256("\n".join(statements).encode()).hexdigest()[:12]}))
"""


def load(url: str, complaints: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.reports import Generator, load_sqlite  # noqa: PLC0415
    from workflow.bootstrap import bootstrap  # noqa: PLC0415

    app = bootstrap(url, "kilowatt-connect")
    for chunk in Generator(seed=2026).chunks(complaints):
        load_sqlite(app, chunk)
    app.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'record.db'}"
        started = time.perf_counter()
        load(url, args.complaints)
        print(f"loaded {args.complaints:,} complaints in {time.perf_counter() - started:.1f} s")
        medians: dict[str, list[float]] = {"before": [], "after": []}
        cpu: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for name in ("before", "after"):
                root = str(Path(getattr(args, name)).resolve())
                out = subprocess.run([sys.executable, "-c", CHILD, root, url, str(args.repeat)],
                                     check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                medians[name].append(result["median"])
                cpu[name].append(result["cpu"])
                print(f"{name}: {result['median']:.3f} s (CPU {result['cpu']:.3f} s)  "
                      f"C11, C13, B9 = "
                      f"{', '.join(result['items'])}  sql {result['sql']}")
        for name, values in medians.items():
            print(f"{name}: median of {len(values)} rounds {statistics.median(values):.3f} s "
                  f"(CPU {statistics.median(cpu[name]):.3f} s)")



if __name__ == "__main__":
    main()
