"""Timer service cost: claiming and publishing due deadlines must not grow with what is pending.

With 1,000 due deadlines among 1,000,000 pending (not yet due), time one round of the timer
service (claim the due rows, publish them to the broker, wait for the acks, mark them
published), and an idle round (nothing due) after it; then the same with 1,000 pending.
SQLite and PostgreSQL, against the embedded broker (or KAFKA_BOOTSTRAP_SERVERS).

    .venv/bin/python -m bench.timers [--pending 1000000] [--due 1000]
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from bench.pgschema import NoServer
from bench.throughput import broker_servers, database
from consumers.settings import TOPICS, Settings, Topics
from consumers.timer_service import TimerService
from workflow.bootstrap import bootstrap
from workflow.schema import Deadline

KINDS = ("acknowledgement", "progress_update", "eight_week", "referral_window")


def rows(count: int, due: bool, now: datetime, rng: random.Random, tag: str) -> Any:
    for n in range(count):
        offset = -rng.uniform(60, 3600) if due else rng.uniform(3600, 365 * 86400)
        cid = f"{tag}-{n:07d}"
        kind = rng.choice(KINDS)
        yield {"deadline_key": f"{cid}/{kind}/{tag}", "complaint_id": cid, "kind": kind,
               "cycle": 1, "due_at": (now + timedelta(seconds=offset)), "cause": tag,
               "created_at": now}


def load(engine: Engine, count: int, due: bool, now: datetime, tag: str) -> float:
    started = time.monotonic()
    rng = random.Random(count)
    if engine.dialect.name == "postgresql":
        columns = "deadline_key, complaint_id, kind, cycle, due_at, cause, created_at"
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(f"COPY deadlines ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                buffer = io.StringIO()
                for r in rows(count, due, now, rng, tag):
                    naive = r["due_at"].astimezone(UTC).replace(tzinfo=None).isoformat()
                    created = now.astimezone(UTC).replace(tzinfo=None).isoformat()
                    buffer.write(f"{r['deadline_key']}\t{r['complaint_id']}\t{r['kind']}\t1\t"
                                 f"{naive}\t{r['cause']}\t{created}\n")
                copy.write(buffer.getvalue())
            raw.commit()
        finally:
            raw.close()
        with engine.begin() as connection:
            connection.execute(text("ANALYZE deadlines"))
    else:
        batch: list[dict[str, Any]] = []
        with engine.begin() as connection:
            for r in rows(count, due, now, rng, tag):
                batch.append(r)
                if len(batch) == 50_000:
                    connection.execute(insert(Deadline), batch)
                    batch = []
            if batch:
                connection.execute(insert(Deadline), batch)
            connection.execute(text("ANALYZE"))
    return time.monotonic() - started


def measure(db_url: str, servers: str, topics: Topics, pending: int, due: int) -> dict[str, Any]:
    app = bootstrap(db_url, "kilowatt-connect")
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    load_s = load(app.engine, pending, False, now, f"p{tag}")
    load_s += load(app.engine, due, True, now, f"d{tag}")
    settings = Settings(bootstrap_servers=servers, topics=topics, group_id="bench")
    timer = TimerService(app, settings, batch=max(1000, due))
    timer.run_once()  # nothing? no: warms the producer's connection with the first round
    # The warm-up published the due rows; put them back to "not published" and time again.
    with app.engine.begin() as connection:
        connection.execute(text("UPDATE deadlines SET published_at = NULL WHERE cause = :c"),
                           {"c": f"d{tag}"})
    started = time.perf_counter()
    published = timer.run_once()
    round_s = time.perf_counter() - started
    started = time.perf_counter()
    idle = timer.run_once()
    idle_s = time.perf_counter() - started
    started = time.perf_counter()
    with app.sessions() as session:
        claimable = len(session.execute(timer.claim_query(now)).all())
    query_s = time.perf_counter() - started
    plan = explain(app.engine, now)
    timer.close()
    app.engine.dispose()
    assert published == due and idle == 0, (published, idle)
    assert claimable == 0
    return {"load_s": load_s, "round_s": round_s, "idle_s": idle_s, "query_s": query_s,
            "plan": plan}


_CLAIM = ("SELECT id FROM deadlines WHERE fired_at IS NULL AND due_at <= :now AND "
          "(published_at IS NULL OR published_at < :stale) ORDER BY due_at, id LIMIT 1000")
EXPLAIN_POSTGRES = "EXPLAIN " + _CLAIM + " FOR UPDATE SKIP LOCKED"
EXPLAIN_SQLITE = "EXPLAIN QUERY PLAN " + _CLAIM


def explain(engine: Engine, now: datetime) -> str:
    """The claim's query plan (the same query as TimerService.claim_query, in SQL)."""
    postgres = engine.dialect.name == "postgresql"
    naive = now.astimezone(UTC).replace(tzinfo=None)
    with engine.connect() as connection:
        rows = connection.execute(
            text(EXPLAIN_POSTGRES if postgres else EXPLAIN_SQLITE),
            {"now": naive, "stale": naive - timedelta(minutes=10)}).all()
    return "\n".join(str(r[0] if postgres else r[-1]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    with broker_servers() as (servers, broker), tempfile.TemporaryDirectory() as tmp:
        topics = Topics(f"timers{uuid.uuid4().hex[:6]}.")
        if broker is not None:
            broker.create_topics([topics.deadlines], partitions=TOPICS["deadlines"].partitions)
        print(f"{args.due} due deadlines: one timer round (claim, publish, broker acks, mark) "
              f"and an idle round after it")
        for name in args.databases.split(","):
            for pending in (args.due, args.pending):
                try:
                    with database(name, tmp, f"timers-{pending}") as url:
                        r = measure(url, servers, topics, pending, args.due)
                except NoServer as exc:
                    print(f"  {name}: skipped ({exc})")
                    break
                print(f"  {name:<10} {pending:>9,} pending: round {r['round_s'] * 1000:7.1f} ms"
                      f" ({args.due / r['round_s']:,.0f} deadlines/s); idle round "
                      f"{r['idle_s'] * 1000:5.1f} ms, claim query alone "
                      f"{r['query_s'] * 1000:5.1f} ms   [loaded in {r['load_s']:.0f} s]")
                if r["plan"] and pending == args.pending:
                    print("    plan: " + r["plan"].replace("\n", "\n          "))


if __name__ == "__main__":
    main()
