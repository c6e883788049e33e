"""Crash test: 20,000 events, the consumer and the relay killed (SIGKILL) at random moments.

`complaints up --only consumer` and `complaints up --only relay` run as separate processes
against the embedded broker and a SQLite file. They are killed with SIGKILL at least ten
times at random moments (and stopped with SIGTERM twice, which must exit cleanly) and
restarted each time. At the end:

* every complaint's state, and its history of events, equal an offline `complaints ingest`
  of the same events;
* no event was applied twice, no rejection stored twice;
* every outbox row is published and on its topic (re-publishes allowed, losses not), and
  each is the same output event the offline ingest wrote;
* no letter is duplicated.

The stream is bench/generate.py's, its timeline compressed 50-fold so that no deadline
changes a complaint's state within it: online, deadlines fire on the wall clock (no timer
runs here), offline on event time, and the two must not differ for the comparison to hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from bench.generate import START, generate
from consumers.broker import EmbeddedBroker
from consumers.file_ingest import ingest_file
from consumers.publish import key_for
from consumers.settings import TOPICS, Topics
from tests.integration.test_kafka_service import header, read_topic
from workflow.bootstrap import App, bootstrap
from workflow.schema import (
    Complaint,
    HistoryEntry,
    Letter,
    OutboxMessage,
    ProcessedEvent,
    Rejection,
)

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

EVENTS = 20_000
KILLS = 12  # SIGKILLs; plus two SIGTERMs
COMPRESSION = 50
NEW_START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
COMPLAINTS = Path(sys.executable).with_name("complaints")


def compressed_stream(total: int) -> list[bytes]:
    """bench/generate.py's events with their timeline squeezed (same order, same ids).

    A deadlock is reached right after every `complaint.dissatisfied`, so that deadlock
    letters are issued, referrals accepted and Ombudsman outcome letters written too; one
    line in a thousand is a bad message.
    """
    bodies = []
    for body in generate(total):
        at = NEW_START + (datetime.fromisoformat(body["occurred_at"]) - START) / COMPRESSION
        bodies.append((at, {**body, "occurred_at": at.isoformat()}))
        if body["type"] == "complaint.dissatisfied":
            later = at + timedelta(minutes=1)
            bodies.append((later, {"event_id": f"{body['event_id']}-deadlock",
                                   "type": "complaint.deadlock_reached",
                                   "occurred_at": later.isoformat(),
                                   "complaint_id": body["complaint_id"],
                                   "position": "We maintain our position.",
                                   "offer_open": False}))
    bodies.sort(key=lambda pair: pair[0])  # stable: equal instants keep their order
    lines = [json.dumps(body).encode() for _, body in bodies[:total - total // 1000]]
    for n in range(total // 1000):  # and now and then a bad message
        bad = (b"not JSON %d" % n if n % 2 else json.dumps(
            {"event_id": f"bad-{n}", "type": "accounts.snapshot", "occurred_at": "soon"}).encode())
        lines.insert(n * 1000 + 500, bad)
    return lines


class Service:
    """One `complaints up --only NAME` process, restartable, with its log kept."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.env, self.log_dir = name, env, log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"{self.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [str(COMPLAINTS), "up", "--only", self.name, "--no-migrate"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=40)


def test_kill_the_consumer_and_the_relay_at_random_and_lose_nothing(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    lines = compressed_stream(EVENTS)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    prefix = f"crash{uuid.uuid4().hex[:6]}."
    topics = Topics(prefix)
    for logical, spec in TOPICS.items():
        kafka_broker.create_topics([topics.name(logical)], partitions=spec.partitions)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=20,
                             batch_size=256 * 1024)
    for raw in lines:
        producer.send(topics.events, key=key_for(raw), value=raw)
    producer.flush()
    producer.close()

    db = f"sqlite:///{tmp_path / 'online.db'}"
    online = bootstrap(db, "kilowatt-connect")  # migrated once, before any process starts
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "COMPLAINTS_TOPIC_PREFIX": prefix, "COMPLAINTS_CONSUMER_GROUP": f"{prefix}workflow",
           "COMPLAINTS_DATABASE_URL": db, "COMPLAINTS_LOG_LEVEL": "INFO",
           # A killed member holds its partitions for about twice this on the embedded broker.
           "COMPLAINTS_KAFKA_SESSION_TIMEOUT_MS": "3000"}
    services = {name: Service(name, env, tmp_path) for name in ("consumer", "relay")}
    for service in services.values():
        service.start()

    # Kill at random moments while the work is under way: a consumer once it has applied
    # something since its start, a relay at any time. Stop cleanly (SIGTERM) twice in between.
    kills: Counter[str] = Counter()
    progress_at_kill: list[int] = []
    for round_ in range(1, KILLS + 3):
        name = "relay" if round_ % 3 == 0 else "consumer"
        before = _count(online, ProcessedEvent)
        if name == "consumer":
            # Killed after a random amount of work rather than time, so that a faster consumer
            # still has work left for every round: at most 1,000 events (two batches) a round,
            # and 10 rounds of 20,000 events.
            target = before + rng.randint(1, 1_000)
            _wait_for(lambda t=target: _count(online, ProcessedEvent) >= t,  # type: ignore[misc]
                      60, f"progress after restart {services[name].starts}; logs in {tmp_path}")
            time.sleep(rng.uniform(0.0, 0.1))
        else:  # while it has rows to publish, so that some kills land between send and mark
            _wait_for(lambda: _count(online, OutboxMessage,
                                     OutboxMessage.published_at.is_(None)) > 0, 60, "output")
            time.sleep(rng.uniform(0.0, 0.3))
        if round_ in (4, 8):
            assert services[name].terminate() == 0, f"{name} did not stop cleanly on SIGTERM"
        else:
            services[name].kill()
            kills[name] += 1
            progress_at_kill.append(_count(online, ProcessedEvent))
        services[name].start()
    assert sum(kills.values()) == KILLS >= 10

    offline = bootstrap(f"sqlite:///{tmp_path / 'offline.db'}", "kilowatt-connect")
    report = ingest_file(offline, path)  # meanwhile, the restarted processes catch up
    assert report.applied + report.duplicates + report.rejected == EVENTS

    deadline = time.monotonic() + 180
    while not (_count(online, ProcessedEvent) == report.applied
               and _count(online, Rejection) >= report.rejected
               and _count(online, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0):
        assert time.monotonic() < deadline, (
            f"not caught up: {_count(online, ProcessedEvent)} of {report.applied} applied; "
            f"logs in {tmp_path}")
        for service in services.values():
            assert service.process is not None and service.process.poll() is None, (
                f"{service.name} exited; logs in {tmp_path}")
        time.sleep(0.5)
    for service in services.values():
        assert service.terminate() == 0
    print(f"\n[crash] kills {dict(kills)} at applied counts {progress_at_kill}; "
          f"{report.applied} applied, {report.rejected} rejected")
    assert len(set(progress_at_kill)) > KILLS // 2, "kills land while work is under way"

    # Same record as the offline ingest (events only: no deadline fired online).
    assert _states(online) == _states(offline)
    assert _event_history(online) == _event_history(offline)
    assert _count(online, Rejection) == report.rejected, "a rejection stored twice"
    with online.sessions() as s, offline.sessions() as o:
        applied = set(s.scalars(select(ProcessedEvent.event_id)))
        assert applied == set(o.scalars(select(ProcessedEvent.event_id)))
        letters = [(x.letter_id, x.dedupe_key, x.kind, x.issued_at)
                   for x in s.scalars(select(Letter))]
        assert len(letters) == len({x[1] for x in letters}), "a letter duplicated"
        expected_letters = {(x.letter_id, x.dedupe_key, x.kind, x.issued_at)
                            for x in o.scalars(select(Letter).where(Letter.cause.in_(applied)))}
        assert set(letters) == expected_letters
        outbox = {row.event_id: (row.topic, row.key, row.payload)
                  for row in s.scalars(select(OutboxMessage))}
        offline_outbox = {row.event_id: (row.topic, row.key, row.payload)
                          for row in o.scalars(select(OutboxMessage))}
    for event_id, row in outbox.items():
        if row[0] != "rejected":
            assert offline_outbox.get(event_id) == row, event_id

    # Nothing lost on the way out: every outbox row is on its topic (re-sends allowed).
    for logical in ("lifecycle", "letters", "rejected"):
        wanted = {eid for eid, row in outbox.items() if row[0] == logical}
        # Re-sends after a crash are duplicates: wait for every distinct id, not a count.
        records = read_topic(
            kafka_broker, topics.name(logical), len(wanted), timeout=60,
            done=lambda got, wanted=wanted: wanted <= {header(r, "event_id") for r in got})
        published = Counter(header(r, "event_id") for r in records)
        missing = wanted - set(published)
        assert not missing, f"{len(missing)} {logical} events never published"
        assert wanted, f"the stream produces {logical} events"
        print(f"[crash] {logical}: {len(wanted)} events, "
              f"{sum(published.values()) - len(wanted)} re-published after a crash")
    online.engine.dispose()
    offline.engine.dispose()


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _count(app: App, model: Any, *where: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _states(app: App) -> dict[str, tuple[str, int, str]]:
    with app.sessions() as session:
        return {c.complaint_id: (c.state, c.cycle, c.category)
                for c in session.scalars(select(Complaint))}


def _event_history(app: App) -> dict[str, list[tuple[Any, ...]]]:
    history: dict[str, list[tuple[Any, ...]]] = {}
    with app.sessions() as session:
        for h in session.scalars(select(HistoryEntry)
                                 .where(HistoryEntry.event_id.not_like("deadline:%"))
                                 .order_by(HistoryEntry.id)):
            history.setdefault(h.complaint_id, []).append(
                (h.at, h.event_id, h.type, h.from_state, h.to_state, h.cycle, h.detail))
    return history


def test_compressed_stream_keeps_order_and_spans_under_five_working_days() -> None:
    lines = compressed_stream(EVENTS)
    instants = [datetime.fromisoformat(json.loads(line)["occurred_at"]) for line in lines
                if line.startswith(b'{"event_id": "C-')]
    assert instants == sorted(instants)
    assert instants[-1] - instants[0] < timedelta(days=5)
