"""Benchmark: the ops API over a 1,000,000-complaint record, with wrk, beside a static file.

    apt-get install -y wrk   # Debian's wrk, the C load generator (not needed by `make test`)
    .venv/bin/python bench/backlog.py [--complaints 1000000] [--duration 15] [--connections 20]
                                      [--threads 2] [--sql-repeat 20] [--schema NAME]
                                      [--only WORD,...] [--writes-per-second N]

1. 1,000,000 complaints and their deadlines (about 3.3 million rows, most fired, as a year of
   a large supplier's record would have) are bulk-loaded with COPY into a PostgreSQL schema of
   their own in the `test` database (dropped afterwards; with `--schema NAME` kept, and reused
   by a later run of the same --complaints and --seed), migrated to head (the work queue's
   indexes included); their receipts, history (received, and each deadline fired) and
   acknowledgement letters are derived from them in the database; then VACUUM (ANALYZE), as
   autovacuum would leave a live record.
2. Baseline of the backlog: `workflow.queries.backlog` (the `complaints backlog` SQL) timed on
   one connection.
3. The same complaints as aggregator records build the live view (`LiveView.rebuild`); its
   backlog is checked equal to the database's. An at-risk board over the open complaints
   (placeholder probabilities: the fit is bench/risk.py's business) is put where `complaints
   up` puts its refit.
4. The real ops web app (reporting.web: bearer token, JSON, the record on PostgreSQL) serves
   in a child process. `wrk -t2 -c20 --latency` (a Lua script adds the token and picks each
   request's path at random from a list: varied pages, references, ids, days, kinds) runs for
   `--duration` seconds against, in turn: a static file of the same server (the floor: the
   server's and the client's own cost), /backlog, the at-risk list, a complaint's timeline,
   search by reference and by id, and the lists behind counts (a stage, an overdue kind, a
   day), paginated.

   With `--writes-per-second N`, N small transactions a second are committed on the
   record's database while each of those is measured (a live record's writes: each gives
   later statements a new snapshot, so the list totals the readers keep are read again).

Prints p50/p99 of each beside the static file's, and whether each target is met (issue 14:
/backlog and /risk p99 < 5 ms; the database-backed ones p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pgschema import POSTGRES_URL, scratch_schema  # noqa: E402
from reporting.ops.records import Record, Rules, micros, new_record  # noqa: E402
from reporting.ops.view import Aggregator  # noqa: E402
from reporting.risk import RiskBoard  # noqa: E402
from reporting.web import OpsState, create_app, serve  # noqa: E402
from workflow import queries  # noqa: E402
from workflow.bootstrap import App, bootstrap  # noqa: E402
from workflow.calendar import WorkingCalendar  # noqa: E402
from workflow.codes import CATEGORIES, CHANNELS  # noqa: E402
from workflow.database import normalise_url  # noqa: E402

AS_OF = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
TOKEN = "bench-token"
MEMORY_TARGET_MS = 5.0  # served from memory: /backlog, /risk
DATABASE_TARGET_MS = 50.0  # from the record: timeline, search, the lists behind counts
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
    "remedy_overdue", "remedy_decision_event_id", "last_event_at", "version")
DEADLINE_COLUMNS = ("deadline_key", "complaint_id", "kind", "cycle", "due_at", "cause",
                    "created_at", "fired_at", "outcome")


def decision_id(c: Complaint) -> str | None:
    """The Ombudsman decision with a remedy of a complaint with the Ombudsman (one each)."""
    return f"{c.cid}-decision" if c.state == "ombudsman" else None


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
                                c.remedy_overdue, decision_id(c), at, 1))
                rows += 1
        with cursor.copy(f"COPY deadlines ({', '.join(DEADLINE_COLUMNS)}) "  # type: ignore[attr-defined]
                         "FROM STDIN") as copy:
            for c in complaints(total, seed, calendar):
                at = naive(c.received_at)
                for n, (kind, due, fired) in enumerate(c.deadlines):
                    # A remedy's cause is the decision, as the handlers schedule it (the
                    # lists of overdue remedies take the latest decision's deadline).
                    cause = decision_id(c) if kind == "remedy" else f"{c.cid}-1"
                    copy.write_row((f"{c.cid}/{kind}/{n}", c.cid, kind, 1, naive(due),
                                    cause, at, naive(due) if fired else None,
                                    "fired" if fired else None))
                    deadline_rows += 1
        raw.commit()
        derive_rows(cursor)
        raw.commit()
        # VACUUM as well as ANALYZE: the visibility map autovacuum keeps on a live record
        # (a table freshly loaded has none until autovacuum's first pass, and every
        # index-only scan would read the heap too).
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        for table in ("complaints", "deadlines", "receipts", "history", "letters"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
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


def derive_rows(cursor: Any) -> None:
    """Receipts, history and acknowledgement letters from the rows loaded, in the database
    (INSERT ... SELECT: no round trip per row), for the day lists and the timelines.

    Without the foreign-key triggers for these statements (the rows are consistent by
    construction): each receipt's check locks its complaint's row, which rewrote all
    1,000,000 complaints' tuples and took over 13 minutes on the loaded machine."""
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute(
        "INSERT INTO receipts (complaint_id, event_id, cycle, is_reopen, received_at, "
        "d1_deadline, channel) SELECT complaint_id, received_event_id, 1, false, received_at, "
        "cycle_d1_deadline, channel FROM complaints WHERE state <> 'duplicate'")
    cursor.execute(
        "INSERT INTO history (complaint_id, at, event_id, type, from_state, to_state, cycle, "
        "detail, recorded_at) SELECT complaint_id, received_at, received_event_id, "
        "'complaint.received', NULL, 'received', 1, '{}'::jsonb, received_at FROM complaints")
    cursor.execute(
        "INSERT INTO history (complaint_id, at, event_id, type, from_state, to_state, cycle, "
        "detail, recorded_at) SELECT d.complaint_id, d.fired_at, 'deadline:' || d.deadline_key, "
        "'deadline.' || d.kind, c.state, c.state, 1, '{}'::jsonb, d.fired_at "
        "FROM deadlines d JOIN complaints c USING (complaint_id) WHERE d.fired_at IS NOT NULL")
    cursor.execute(
        "INSERT INTO letters (letter_id, dedupe_key, complaint_id, kind, cycle, issued_at, "
        "cause, context) SELECT 'L-' || substr(md5(deadline_key), 1, 24), deadline_key, "
        "complaint_id, 'acknowledgement', 1, fired_at, deadline_key, '{}'::jsonb "
        "FROM deadlines WHERE kind = 'acknowledgement' AND fired_at IS NOT NULL")


# --------------------------------------------------------------------------- HTTP
LUA = """-- bench/backlog.py: each request's path at random from the list, with the token.
local paths = {%(paths)s}
local headers = {["Authorization"] = "Bearer %(token)s", ["Accept"] = "application/json"}
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
"""


@dataclass
class Target:
    name: str
    paths: list[str]
    p99_ms: float | None  # None: the baseline


def risk_board(sample: list[Complaint]) -> RiskBoard:
    """An at-risk list over the open complaints, as the refit would leave it (placeholder
    probabilities, highest first: serving it is what is measured here, not fitting it)."""
    rng = random.Random(7)
    rows = [{"complaint_id": c.cid, "reference": f"KC-{c.cid}", "state": c.state,
             "owner": "Sam Patel", "received_at": c.received_at.isoformat(),
             "eight_week_due": (c.received_at + timedelta(days=56)).isoformat(),
             "p_breach": round(rng.random(), 4),
             "next_deadline": {"kind": "eight_week",
                               "due_at": (c.received_at + timedelta(days=56)).isoformat()},
             "model": "cox_ph"} for c in sample if c.state in OPEN]
    rows.sort(key=lambda r: (-float(r["p_breach"]), str(r["complaint_id"])))
    return RiskBoard(AS_OF, AS_OF, 0.0, rows)


def targets(total: int, board: RiskBoard, seed: int) -> list[Target]:
    rng = random.Random(seed)
    ids = [f"C-{rng.randrange(total):08d}" for _ in range(2_000)]
    as_of = AS_OF.isoformat().replace("+", "%2B")
    days = [(AS_OF - timedelta(days=rng.randrange(1, 365))).date().isoformat()
            for _ in range(200)]
    stages = ["resolved", "closed", "eight_week", "deadlock", "immediate", "senior_manager",
              "ombudsman", "received"]
    kinds = ["acknowledgement", "progress_update", "eight_week", "referral_window", "remedy"]
    pages = [rng.randrange(0, 200) * 50 for _ in range(50)]  # offsets up to 10,000
    risk_pages = max(1, len(board.rows) // 50)
    return [
        Target("static file (baseline)", ["/static/favicon.svg"], None),
        Target("/backlog", ["/backlog", f"/backlog?as_of={as_of}"], MEMORY_TARGET_MS),
        Target("/risk (at-risk list, paginated)",
               [f"/risk?offset={rng.randrange(risk_pages) * 50}&limit=50" for _ in range(200)],
               MEMORY_TARGET_MS),
        Target("timeline", [f"/complaints/{cid}/timeline" for cid in ids[:1000]],
               DATABASE_TARGET_MS),
        Target("search by reference", [f"/complaints/search?q=KC-{cid}" for cid in ids[:1000]]
               + [f"/complaints/search?q=kc-{cid.lower()}" for cid in ids[1000:1200]],
               DATABASE_TARGET_MS),
        Target("search by complaint id", [f"/complaints/search?q={cid}" for cid in ids[1000:]],
               DATABASE_TARGET_MS),
        Target("list: a stage", [
            f"/complaints?state={rng.choice(stages)}&offset={rng.choice(pages)}&limit=50"
            for _ in range(500)], DATABASE_TARGET_MS),
        Target("list: an overdue kind", [
            f"/complaints?overdue={rng.choice(kinds)}&as_of={as_of}&offset={rng.choice(pages[:5])}"
            f"&limit=50" for _ in range(200)], DATABASE_TARGET_MS),
        Target("list: a day's receipts", [
            f"/complaints?received={rng.choice(days)}&offset={rng.choice((0, 50, 100, 1000))}"
            f"&limit=50" for _ in range(500)], DATABASE_TARGET_MS),
    ]


WRK_LINE = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$")
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(port: int, target: Target, args: argparse.Namespace, folder: Path,
            seed: int) -> dict[str, Any]:
    script = folder / "paths.lua"
    quoted = ", ".join(json.dumps(path) for path in target.paths)
    script.write_text(LUA % {"paths": quoted, "token": TOKEN, "seed": seed})
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--latency", "-s", str(script), f"http://127.0.0.1:{port}"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, Any] = {"name": target.name, "target_p99_ms": target.p99_ms}
    for line in output.splitlines():
        found = WRK_LINE.match(line)
        if found:
            figures[f"p{found[1]}_ms"] = round(float(found[2]) * UNITS[found[3]], 3)
        elif line.startswith("Requests/sec:"):
            figures["requests_per_second"] = round(float(line.split()[1]))
        elif "requests in" in line:
            figures["requests"] = int(line.split()[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            figures["errors"] = int(line.split(":")[1])
        elif line.strip().startswith("Socket errors:"):
            figures["socket_errors"] = line.split(":", 1)[1].strip()
    figures.setdefault("errors", 0)
    if "p99_ms" not in figures:
        raise SystemExit(f"wrk's output has no latency distribution:\n{output}")
    figures["met"] = (None if target.p99_ms is None
                      else figures["p99_ms"] < target.p99_ms and figures["errors"] == 0)
    return figures


def serve_forever(state: OpsState, port_pipe: int) -> None:
    """The child: the real ops app over the inherited view and the record, until SIGTERM."""
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


def check(port: int, target: Target) -> None:
    """Each endpoint answers 200 with JSON (a wrong path would be measured as a fast 404)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target.paths[0]}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        body = reply.read()
    if reply.status != 200:
        raise SystemExit(f"{target.paths[0]}: HTTP {reply.status}")
    if target.p99_ms is not None:
        document = json.loads(body)
        hits = document.get("complaints")
        print(f"  checked {target.paths[0]}: 200"
              + (f", {len(hits)} complaint(s)" if isinstance(hits, list) else ""),
              file=sys.stderr, flush=True)


@contextmanager
def writing(url: str, per_second: float) -> Iterator[None]:
    """While inside, `per_second` small transactions a second committed on the record's
    database (a row each in a table of the benchmark's own): a live record's writes, each of
    which gives the next statement a new snapshot, so what the readers keep of a list
    (reporting/workqueue.py `_read_known`) is read again after each."""
    if per_second <= 0:
        yield
        return
    import threading

    from sqlalchemy import create_engine, text

    engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    stop = threading.Event()
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_backlog_writes "
                                "(at timestamptz NOT NULL DEFAULT now())"))

    def write() -> None:
        with engine.connect() as connection:
            while not stop.wait(1 / per_second):
                connection.execute(text("INSERT INTO bench_backlog_writes DEFAULT VALUES"))

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with engine.connect() as connection:
            connection.execute(text("DROP TABLE IF EXISTS bench_backlog_writes"))
        engine.dispose()


def http_phase(state: OpsState, chosen: list[Target],
               args: argparse.Namespace, url: str = "") -> list[dict[str, Any]]:
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
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
            for target in chosen:
                check(port, target)
            results = []
            for n, target in enumerate(chosen):
                # A short warm-up of each (plans, the page cache), then the measured run.
                warm = argparse.Namespace(**{**vars(args), "duration": 2})
                with writing(url, args.writes_per_second if target.p99_ms else 0):
                    run_wrk(port, target, warm, Path(folder), args.seed + n)
                    results.append(run_wrk(port, target, args, Path(folder), args.seed + n))
                print(f"  {target.name}: p99 {results[-1]['p99_ms']} ms", file=sys.stderr,
                      flush=True)
            return results
    finally:
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)


# --------------------------------------------------------------------------- main


@contextmanager
def kept_schema(name: str) -> Iterator[str]:
    """A URL whose search_path is the schema `name`, created if absent and kept afterwards
    (`--schema`: a record loaded once, measured again after a change)."""
    from sqlalchemy import create_engine, text

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"--schema {name!r}: lower-case letters, digits and _ only")
    admin = create_engine(normalise_url(POSTGRES_URL))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
    finally:
        admin.dispose()
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"


def loaded_before(app: App, total: int, seed: int) -> bool:
    """Whether the schema already holds this record (a kept schema's earlier load)."""
    from sqlalchemy import text

    with app.engine.begin() as connection:
        # bench_backlog_loaded_2: the (complaints, seed) of a kept schema's record (_2: since
        # remedies carry their decision; a schema loaded before is refused, not reused)
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_backlog_loaded_2 "
                                "(complaints integer, seed integer)"))
        row = connection.execute(text("SELECT complaints, seed FROM bench_backlog_loaded_2")
                                 ).first()
        if row is not None and tuple(row) == (total, seed):
            return True
        if row is not None or connection.execute(
                text("SELECT EXISTS (SELECT 1 FROM complaints)")).scalar():
            raise SystemExit("the schema holds another record: drop it or choose another")
    return False


def mark_loaded(app: App, total: int, seed: int) -> None:
    from sqlalchemy import text

    with app.engine.begin() as connection:
        connection.execute(text("INSERT INTO bench_backlog_loaded_2 VALUES (:n, :s)"),
                           {"n": total, "s": seed})


def count_deadlines(app: App) -> int:
    from sqlalchemy import text

    with app.engine.begin() as connection:
        return int(connection.execute(text("SELECT count(*) FROM deadlines")).scalar() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per endpoint")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sql-repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--schema", help="keep the record in this schema of the test database "
                        "(loaded once, reused by later runs with the same --complaints and "
                        "--seed) instead of a scratch schema dropped afterwards")
    parser.add_argument("--writes-per-second", type=float, default=0.0,
                        help="commit this many small transactions a second on the record's "
                        "database while each endpoint is measured (a live record's writes)")
    parser.add_argument("--only", help="measure only the endpoints whose name contains one "
                        "of these comma-separated words (the static file always)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian's wrk, the C "
                         "load generator this benchmark drives)")

    bootstrapped = bootstrap("sqlite://", "kilowatt-connect")
    calendar = bootstrapped.procedure.calendar
    schema = (kept_schema(args.schema) if args.schema
              else scratch_schema(prefix="bench_backlog"))
    with schema as url:
        app = bootstrap(url, "kilowatt-connect")
        try:
            started = time.perf_counter()
            if args.schema and loaded_before(app, args.complaints, args.seed):
                rows, deadline_rows = args.complaints, count_deadlines(app)
                print(f"postgresql: schema {args.schema} already holds the record",
                      file=sys.stderr, flush=True)
            else:
                rows, deadline_rows = load(app, args.complaints, args.seed)
                if args.schema:
                    mark_loaded(app, args.complaints, args.seed)
                print(f"postgresql: loaded {rows:,} complaints and {deadline_rows:,} deadlines"
                      f" (and their receipts, history, letters) in "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            sql_times, database_backlog = time_sql(app, args.sql_repeat)
            aggregator = Aggregator(Rules(calendar), store={})
            started = time.perf_counter()
            aggregator.view.rebuild(record_of(c) for c in complaints(args.complaints,
                                                                     args.seed, calendar))
            built = time.perf_counter() - started
            live = aggregator.view.backlog(AS_OF, calendar)
            if live != database_backlog:
                print(json.dumps({"database": database_backlog, "aggregator": live}, indent=1))
                raise SystemExit("the live view's backlog differs from the database's")
            print(f"live view: built from {args.complaints:,} records in {built:.0f} s; its "
                  f"backlog equals the database's", file=sys.stderr, flush=True)
            compute = time_compute(aggregator, calendar)
            state = OpsState(calendar, aggregator, status="running")
            aggregator.ready = True
            state.risk = risk_board(list(complaints(args.complaints, args.seed, calendar)))
            state.record = app
            app.engine.dispose()  # the child opens its own connections after the fork
            chosen = targets(args.complaints, state.risk, args.seed)
            if args.only:
                words = [w.strip() for w in args.only.split(",") if w.strip()]
                chosen = [t for n, t in enumerate(chosen)
                          if n == 0 or any(w in t.name for w in words)]
            http = http_phase(state, chosen, args, url)
        finally:
            app.engine.dispose()
    bootstrapped.engine.dispose()
    result: dict[str, Any] = {
        "complaints": rows, "deadline_rows": deadline_rows,
        "at_risk_rows": len(state.risk.rows),
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency",
        "writes_per_second": args.writes_per_second,
        "sql_group_by_ms": {"p50": round(percentile(sql_times, 0.5), 2),
                            "p99": round(percentile(sql_times, 0.99), 2),
                            "runs": len(sql_times)},
        "view_compute_us": compute, "http": http,
        "targets_met": all(h["met"] for h in http if h["met"] is not None),
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    sql = result["sql_group_by_ms"]
    print(f"\nops API over {rows:,} complaints ({deadline_rows:,} deadline rows, "
          f"{result['at_risk_rows']:,} at risk), {result['wrk']} each")
    print(f"  SQL backlog (workflow.queries.backlog), one connection, {sql['runs']} runs: "
          f"p50 {sql['p50']:.1f} ms, p99 {sql['p99']:.1f} ms; the live view's, in process: "
          f"p50 {compute['p50']:.0f} us, p99 {compute['p99']:.0f} us")
    base = http[0]
    print(f"  {'endpoint':34} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'static p99':>10} {'target':>8}  met")
    for h in http:
        target = "-" if h["target_p99_ms"] is None else f"< {h['target_p99_ms']:.0f}"
        met = "" if h["met"] is None else ("yes" if h["met"] else "NO")
        print(f"  {h['name']:34} {h.get('requests_per_second', 0):>7,} {h['p50_ms']:>8.2f} "
              f"{h['p99_ms']:>8.2f} {base['p99_ms']:>10.2f} {target:>8}  {met}"
              + (f"  ({h['errors']} non-2xx)" if h["errors"] else ""))
    print(f"targets: {'all met' if result['targets_met'] else 'NOT all met'}")


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


if __name__ == "__main__":
    main()
