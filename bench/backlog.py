"""Benchmark: GET /backlog from the aggregator's live view, beside the same counts by SQL.

    .venv/bin/python bench/backlog.py [--complaints 1000000] [--requests 40000]
                                      [--concurrency 200] [--sql-repeat 20]

1. 1,000,000 complaints and their deadlines (about 3.3 million rows, most fired, as a year of
   a large supplier's record would have) are bulk-loaded with COPY into a PostgreSQL schema of
   their own in the `test` database (dropped afterwards), then ANALYZEd.
2. Baseline: `workflow.queries.backlog`, the `complaints backlog` query (GROUP BY state over
   the complaints, GROUP BY kind over the unfired deadlines overdue / due within 5 working
   days, and the remedies overdue), timed on one connection.
3. The same complaints as aggregator records (reporting/ops/records.py) build the live view
   (`LiveView.rebuild`, as after a recovery); its backlog is checked equal to the database's.
4. The real ops web app (reporting.web: bearer token, JSON) serves that view in a child
   process. A load generator keeps `--concurrency` keep-alive connections busy with
   `GET /backlog?as_of=...` (each connection sends its next request when it has read the
   answer) and times every request from write to last byte. It is a lean asyncio protocol,
   not an HTTP library, so that on a 2-core machine the client is not the bottleneck.

Prints p50/p99 of both, and whether the target (HTTP p99 under 20 ms) is met.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pgschema import scratch_schema  # noqa: E402
from reporting.ops.records import Record, Rules, micros, new_record  # noqa: E402
from reporting.ops.view import Aggregator  # noqa: E402
from reporting.web import OpsState, create_app, serve  # noqa: E402
from workflow import queries  # noqa: E402
from workflow.bootstrap import App, bootstrap  # noqa: E402
from workflow.calendar import WorkingCalendar  # noqa: E402
from workflow.codes import CATEGORIES, CHANNELS  # noqa: E402

AS_OF = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
TOKEN = "bench-token"
TARGET_P99_MS = 20.0
# State mix of a year's record: most resolved; a working backlog of open ones.
STATES = {"resolved": 74.0, "closed": 8.0, "immediate": 3.0, "received": 1.0,
          "senior_manager": 2.0, "reopened": 0.5, "deadlock": 4.0, "eight_week": 5.0,
          "ombudsman": 2.0, "duplicate": 0.5}
OPEN = ("received", "immediate", "senior_manager", "reopened")


# --------------------------------------------------------------------------- the data
@dataclass
class Complaint:
    cid: str
    state: str
    category: str
    channel: str
    received_at: datetime
    remedy_overdue: bool
    deadlines: list[tuple[str, datetime, bool]] = field(default_factory=list)  # kind, due, fired


def complaints(total: int, seed: int, calendar: WorkingCalendar) -> Iterator[Complaint]:
    """The same complaints for a seed, every time (the database and the view get the same)."""
    rng = random.Random(seed)
    states, weights = list(STATES), list(STATES.values())
    categories, channels = list(CATEGORIES), list(CHANNELS)
    start = AS_OF - timedelta(days=365)
    for n in range(total):
        received = start + timedelta(seconds=rng.randrange(365 * 86_400))
        state = rng.choices(states, weights)[0]
        complaint = Complaint(f"C-{n:08d}", state, rng.choice(categories),
                              rng.choice(channels), received,
                              state == "ombudsman" and rng.random() < 0.2)
        if state != "duplicate":
            complaint.deadlines = list(_deadlines(rng, complaint, calendar))
        yield complaint


def _deadlines(rng: random.Random, c: Complaint,
               calendar: WorkingCalendar) -> Iterator[tuple[str, datetime, bool]]:
    received, state = c.received_at, c.state
    # A timer service that is a little behind leaves a few due deadlines unfired: overdue.
    late = rng.random() < 0.003

    def pending(due: datetime) -> bool:
        return due > AS_OF or late

    d1 = calendar.d_plus_1(received)
    open_now = state in OPEN
    yield "acknowledgement", d1, not (open_now and pending(d1))
    progress = received + timedelta(days=10)
    yield "progress_update", progress, not (open_now and pending(progress))
    eight = received + timedelta(days=56)
    yield "eight_week", eight, not (open_now and pending(eight))
    if state == "senior_manager":
        review = calendar.working_days_after(received + timedelta(days=rng.randint(1, 9)), 5)
        yield "senior_manager_review", review, not pending(review)
        if rng.random() < 0.3:
            letter = calendar.working_days_after(review, 5)
            yield "deadlock_letter", letter, not pending(letter)
    if state in ("deadlock", "eight_week", "ombudsman", "closed"):
        window = received + timedelta(days=rng.randint(20, 80) + 365)
        yield "referral_window", window, not (state in ("deadlock", "eight_week")
                                              and pending(window))
    if state == "ombudsman":
        remedy = received + timedelta(days=rng.randint(60, 200))
        yield "remedy", remedy, not pending(remedy) or c.remedy_overdue


def record_of(c: Complaint) -> Record:
    """The aggregator's record of the complaint, as the fold would have left it."""
    record = new_record()
    record["state"] = c.state
    record["remedy_overdue"] = c.remedy_overdue
    if c.state != "duplicate":
        at = micros(c.received_at)
        record.update(category=c.category, category_at=at, cycle=1, received_at=at)
        record["receipts"].append({"id": f"{c.cid}-1", "at": at, "channel": c.channel,
                                   "reopen": False, "cycle": 1, "d1": None, "by_d1": False})
    record["pending"] = {f"{c.cid}/{kind}/{n}": [kind, micros(due)]
                         for n, (kind, due, fired) in enumerate(c.deadlines) if not fired}
    return record


# --------------------------------------------------------------------------- PostgreSQL
COMPLAINT_COLUMNS = (
    "complaint_id", "reference", "state", "category", "subsidiary_categories", "channel",
    "source", "fuel", "meter_type", "summary", "customer", "received_at", "received_event_id",
    "cycle", "cycle_received_at", "cycle_d1_deadline", "senior_manager_responded",
    "remedy_overdue", "last_event_at", "version")
DEADLINE_COLUMNS = ("deadline_key", "complaint_id", "kind", "cycle", "due_at", "cause",
                    "created_at", "fired_at", "outcome")


def naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def load(app: App, total: int, seed: int) -> tuple[int, int]:
    calendar = app.procedure.calendar
    raw = app.engine.raw_connection()
    rows = deadline_rows = 0
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY complaints ({', '.join(COMPLAINT_COLUMNS)}) "  # type: ignore[attr-defined]
                         "FROM STDIN") as copy:
            for c in complaints(total, seed, calendar):
                at = naive(c.received_at)
                copy.write_row((c.cid, f"KC-{c.cid}", c.state, c.category, "[]", c.channel,
                                "direct", "gas", "unknown", "s", "{}", at, f"{c.cid}-1", 1, at,
                                naive(calendar.d_plus_1(c.received_at)), False,
                                c.remedy_overdue, at, 1))
                rows += 1
        with cursor.copy(f"COPY deadlines ({', '.join(DEADLINE_COLUMNS)}) "  # type: ignore[attr-defined]
                         "FROM STDIN") as copy:
            for c in complaints(total, seed, calendar):
                at = naive(c.received_at)
                for n, (kind, due, fired) in enumerate(c.deadlines):
                    copy.write_row((f"{c.cid}/{kind}/{n}", c.cid, kind, 1, naive(due),
                                    f"{c.cid}-1", at, naive(due) if fired else None,
                                    "fired" if fired else None))
                    deadline_rows += 1
        raw.commit()
        cursor.execute("ANALYZE complaints")
        cursor.execute("ANALYZE deadlines")
        raw.commit()
    finally:
        raw.close()
    return rows, deadline_rows


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def time_sql(app: App, repeat: int) -> tuple[list[float], dict[str, Any]]:
    times: list[float] = []
    document: dict[str, Any] = {}
    with app.sessions() as session:
        queries.backlog(session, AS_OF, app.procedure.calendar)  # warm the cache
        for _ in range(repeat):
            started = time.perf_counter()
            document = queries.backlog(session, AS_OF, app.procedure.calendar)
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times), document


def postgres_phase(total: int, seed: int, repeat: int) -> tuple[list[float], dict[str, Any],
                                                                 dict[str, Any]]:
    with scratch_schema(prefix="bench_backlog") as url:
        app = bootstrap(url, "kilowatt-connect")
        try:
            started = time.perf_counter()
            rows, deadline_rows = load(app, total, seed)
            loaded = time.perf_counter() - started
            print(f"postgresql: loaded {rows:,} complaints and {deadline_rows:,} deadlines in "
                  f"{loaded:.0f} s", file=sys.stderr, flush=True)
            times, document = time_sql(app, repeat)
            return times, document, {"complaints": rows, "deadlines": deadline_rows}
        finally:
            app.engine.dispose()


# --------------------------------------------------------------------------- HTTP
class Connection(asyncio.Protocol):
    """One keep-alive connection sending `request` again each time an answer is complete."""

    def __init__(self, run: LoadRun) -> None:
        self.run = run
        self.buffer = b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if not self.run.take():
            self.transport.close()
            return
        self.buffer = b""
        self.started = time.perf_counter()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15:head.find(b"\r\n", start)].strip())
        if len(self.buffer) - head_end - 4 < length:
            return
        self.run.record(time.perf_counter() - self.started, self.buffer[9:12] == b"200")
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.closed()


class LoadRun:
    def __init__(self, request: bytes, requests: int, connections: int) -> None:
        self.request = request
        self.remaining = requests
        self.open = connections
        self.latencies: list[float] = []
        self.errors = 0
        self.done = asyncio.get_running_loop().create_future()

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def record(self, seconds: float, ok: bool) -> None:
        self.latencies.append(seconds * 1000)
        self.errors += not ok

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)


async def load_test(port: int, requests: int, connections: int,
                    path: str) -> tuple[LoadRun, float]:
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {TOKEN}\r\nAccept: application/json\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    run = LoadRun(request, requests, connections)
    started = time.perf_counter()
    await asyncio.gather(*(loop.create_connection(lambda: Connection(run), "127.0.0.1", port)
                           for _ in range(connections)))
    await run.done
    return run, time.perf_counter() - started


def serve_forever(state: OpsState, port_pipe: int) -> None:
    """The child: the real ops app over the inherited view, until SIGTERM."""
    gc.freeze()  # the view is built: nothing for the collector to scan again

    async def main() -> None:
        runner = await serve(create_app(state, TOKEN), "127.0.0.1", 0)
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        os.write(port_pipe, str(port).encode())
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def http_phase(state: OpsState, requests: int, concurrency: int,
               paths: list[str]) -> list[tuple[LoadRun, float]]:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the server process
        os.close(read_end)
        try:
            serve_forever(state, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    port = int(os.read(read_end, 16))
    os.close(read_end)
    try:
        asyncio.run(load_test(port, min(10_000, requests), concurrency, paths[0]))  # warm-up
        return [asyncio.run(load_test(port, requests, concurrency, path)) for path in paths]
    finally:
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sql-repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args()

    sql_times, database_backlog, sizes = postgres_phase(args.complaints, args.seed,
                                                        args.sql_repeat)
    bootstrapped = bootstrap("sqlite://", "kilowatt-connect")
    calendar = bootstrapped.procedure.calendar
    aggregator = Aggregator(Rules(calendar), store={})
    started = time.perf_counter()
    aggregator.view.rebuild(record_of(c) for c in complaints(args.complaints, args.seed,
                                                             calendar))
    built = time.perf_counter() - started
    live = aggregator.view.backlog(AS_OF, calendar)
    if live != database_backlog:
        print(json.dumps({"database": database_backlog, "aggregator": live}, indent=1))
        raise SystemExit("the live view's backlog differs from the database's: not comparable")
    print(f"live view: built from {args.complaints:,} records in {built:.0f} s; its backlog "
          f"equals the database's", file=sys.stderr, flush=True)
    compute = time_compute(aggregator, calendar)
    state = OpsState(calendar, aggregator, status="running")
    aggregator.ready = True
    # The dashboard's call (as of now), and the reconciliation's (as of the SQL's instant).
    paths = ["/backlog", f"/backlog?as_of={AS_OF.isoformat().replace('+', '%2B')}"]
    runs = http_phase(state, args.requests, args.concurrency, paths)
    result: dict[str, Any] = {
        "complaints": sizes["complaints"], "deadline_rows": sizes["deadlines"],
        "sql_group_by_ms": {"p50": round(percentile(sql_times, 0.5), 2),
                            "p99": round(percentile(sql_times, 0.99), 2),
                            "runs": len(sql_times)},
        "view_compute_us": compute,
        "http": [summarise(path, run, elapsed, args.concurrency)
                 for path, (run, elapsed) in zip(paths, runs, strict=True)],
        "target_p99_ms": TARGET_P99_MS,
    }
    result["target_met"] = all(h["p99_ms"] < TARGET_P99_MS and h["errors"] == 0
                               for h in result["http"])
    bootstrapped.engine.dispose()
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    sql = result["sql_group_by_ms"]
    print(f"\nbacklog of {result['complaints']:,} complaints "
          f"({result['deadline_rows']:,} deadline rows)")
    print(f"  SQL GROUP BY (workflow.queries.backlog), one connection, {sql['runs']} runs: "
          f"p50 {sql['p50']:.1f} ms, p99 {sql['p99']:.1f} ms")
    print(f"  the same from the live view, computed in process without cache, "
          f"{compute['runs']} runs: p50 {compute['p50']:.0f} us, p99 {compute['p99']:.0f} us")
    for http in result["http"]:
        print(f"  GET {http['path']}: {http['concurrency']} concurrent connections, "
              f"{http['requests']:,} requests at {http['requests_per_second']:,}/s: "
              f"p50 {http['p50_ms']:.2f} ms, p90 {http['p90_ms']:.2f} ms, "
              f"p99 {http['p99_ms']:.2f} ms, max {http['max_ms']:.2f} ms, "
              f"errors {http['errors']}")
    print(f"target (HTTP p99 < {TARGET_P99_MS:.0f} ms at {args.concurrency} concurrent): "
          f"{'met' if result['target_met'] else 'NOT met'}")


def time_compute(aggregator: Aggregator, calendar: WorkingCalendar,
                 runs: int = 2_000) -> dict[str, Any]:
    """The backlog from the view without the response cache: bisections and the horizon."""
    times = []
    for n in range(runs):
        as_of = AS_OF + timedelta(seconds=n)
        started = time.perf_counter()
        aggregator.view.backlog(as_of, calendar)
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return {"p50": round(percentile(times, 0.5), 1), "p99": round(percentile(times, 0.99), 1),
            "runs": runs}


def summarise(path: str, run: LoadRun, elapsed: float, concurrency: int) -> dict[str, Any]:
    latencies = sorted(run.latencies)
    return {"path": path, "concurrency": concurrency, "requests": len(latencies),
            "errors": run.errors, "requests_per_second": round(len(latencies) / elapsed),
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p90_ms": round(percentile(latencies, 0.9), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(latencies[-1], 2),
            "mean_ms": round(statistics.fmean(latencies), 2)}


if __name__ == "__main__":
    main()
