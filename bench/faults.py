"""Fault soak: the fault tests' scenarios (tests/fault_runs.py), longer and larger, by hand.

    .venv/bin/python -m bench.faults                       # all three, 10 faults each
    .venv/bin/python -m bench.faults --scenario broker --faults 20 --scale 2

Each scenario injects its fault into real components (Tansu with its log in S3 on moto; a
PostgreSQL cluster of its own; the service on SQLite killed mid-commit), checks the end state
against the stream's hand-derived expectations (every event applied once, one letter per
acknowledgement written once, no deadline lost, every bad message rejected: an assertion
fails otherwise) and prints one JSON line of figures, then a Markdown table for
RELIABILITY.md. Needs the test extras (`make install`) and, for PostgreSQL, the machine's
server binaries (never its running server).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from consumers.broker import EmbeddedBroker
from tests.fault_runs import broker_crash, postgres_crash, sqlite_kills
from tests.pgcluster import PostgresCluster


def run(scenario: str, faults: int, scale: float, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    # About 1,000 lines per fault (two consumer batches), so that each lands mid-stream.
    total = max(100, round(1000 * scale * faults))
    old, new, bad = total // 10, total - total // 10, max(3, total // 100)
    if scenario == "broker":
        return broker_crash(work, kills=faults, old=old, new=new, bad=bad)
    with EmbeddedBroker() as broker:
        if scenario == "postgres":
            with PostgresCluster() as cluster:
                return postgres_crash(work, broker, cluster, crashes=faults, old=old, new=new,
                                      bad=bad)
        return sqlite_kills(work, broker, kills=faults, old=old, new=new, bad=bad)


def table(results: list[dict[str, Any]], command: str) -> str:
    lines = ["| fault | injected | events | in flight per fault (mean, max) | lost | "
             "duplicated | recovery s (median, max) | SIGTERM while down |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rounds = r["rounds"]
        in_flight = [x["in_flight"] for x in rounds if "in_flight" in x]
        recovery = [x["recovery_s"] for x in rounds if "recovery_s" in x]
        sigterm = r.get("sigterm_broker_down_s", r.get("sigterm_database_down_s"))
        lines.append(
            f"| {r['fault']} | {r['injected']} | {r['events']} | "
            + (f"{statistics.mean(in_flight):.0f}, {max(in_flight)}" if in_flight else "-")
            + " | 0 | 0 | "
            + (f"{statistics.median(recovery):.1f}, {max(recovery):.1f}" if recovery else "-")
            + " | " + (f"exit 0 in {sigterm} s" if sigterm is not None else "-") + " |")
    return "\n".join(lines) + f"\n\n`{command}`"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("broker", "postgres", "sqlite", "all"),
                        default="all")
    parser.add_argument("--faults", type=int, default=10, help="faults injected per scenario")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="stream size: 1 is about 1,000 complaints per fault (a tenth "
                             "with a letter)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args(argv)
    scenarios = ("broker", "postgres", "sqlite") if args.scenario == "all" else (args.scenario,)
    work = Path(tempfile.mkdtemp(prefix="complaints-faults-"))
    results = []
    try:
        for scenario in scenarios:
            result = run(scenario, args.faults, args.scale, work / scenario)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        if args.keep:
            print(f"logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    command = ("python -m bench.faults --scenario " + args.scenario
               + f" --faults {args.faults} --scale {args.scale:g}")
    print(table(results, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
