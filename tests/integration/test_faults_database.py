"""Database crash: a PostgreSQL cluster of the test's own stopped with `pg_ctl -m immediate`
mid-stream and started again, twice, then SIGTERM to the service while it is down (exits
within the bound); and SQLite with the process SIGKILLed in the middle of a commit, three
times. Each ends in the stream's hand-derived end state (tests/faults.py): every event
applied once, no deadline lost, one letter per acknowledgement written once, every bad
message rejected.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from consumers.settings import TOPICS, Topics
from tests.faults import (
    FaultStream,
    ServiceProcess,
    applied,
    check_end_state,
    publish,
    service_env,
    settled,
    wait_for,
)
from tests.pgcluster import PostgresCluster
from workflow.bootstrap import bootstrap

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

COMPONENTS = ("consumer", "timer", "relay", "letters")
STOP_BOUND_S = 15.0


def _topics(broker: EmbeddedBroker, tag: str) -> Topics:
    topics = Topics(f"{tag}{uuid.uuid4().hex[:6]}.")
    for logical, spec in TOPICS.items():
        broker.create_topics([topics.name(logical)], partitions=spec.partitions)
    return topics


def test_postgres_crashed_twice_mid_stream_then_sigterm_while_down(
        kafka_broker: EmbeddedBroker, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    rng = random.Random(1602)
    stream = FaultStream(old=300, new=2100, bad=24)
    lines = stream.lines()
    chunks = [lines[i::3] for i in range(3)]
    db = pg_cluster.create_database("complaints")
    app = bootstrap(db, "kilowatt-connect")
    topics = _topics(kafka_broker, "db")
    letters = tmp_path / "letters"
    env = service_env(kafka_broker.bootstrap_servers, db, topics.prefix, letters,
                      COMPLAINTS_STOP_TIMEOUT_S=str(STOP_BOUND_S))
    service = ServiceProcess(COMPONENTS, env, tmp_path)
    service.start()

    figures = []
    published: set[str] = set()
    for crash in range(2):
        before = applied(app, stream)
        published |= stream.event_ids(chunks[crash])
        publish(kafka_broker.bootstrap_servers, topics.events, chunks[crash])
        wait_for(lambda b=before: applied(app, stream) > b, 60,  # type: ignore[misc]
                 f"progress before crash {crash + 1}; logs in {tmp_path}")
        at_crash = applied(app, stream)
        pg_cluster.stop(mode="immediate")  # no checkpoint: WAL replay at the start
        app.engine.dispose()  # the test's own pooled connections died with it
        time.sleep(rng.uniform(0.5, 2.0))
        pg_cluster.start()
        restarted = time.monotonic()
        expected = len(published)
        wait_for(lambda n=expected: applied(app, stream) >= n, 90,  # type: ignore[misc]
                 f"the events in flight after database restart {crash + 1}; logs in {tmp_path}")
        figures.append({"in_flight": len(published) - at_crash,
                        "recovery_s": round(time.monotonic() - restarted, 1)})
        assert service.alive(), f"the service died; log {service.log_path}"

    # SIGTERM while the database is down, with work in flight.
    before = applied(app, stream)
    publish(kafka_broker.bootstrap_servers, topics.events, chunks[2])
    wait_for(lambda: applied(app, stream) > before, 60, "work")
    pg_cluster.stop(mode="immediate")
    app.engine.dispose()
    time.sleep(0.5)
    code, seconds = service.terminate(timeout=STOP_BOUND_S + 30)
    assert seconds < STOP_BOUND_S, f"took {seconds:.1f} s; log {service.log_path}"
    assert code == 0, f"exit {code}; log {service.log_path}"
    pg_cluster.start()
    service.start()
    wait_for(lambda: settled(app, stream, letters), 120, f"the end state; logs in {tmp_path}")
    time.sleep(2)
    assert service.terminate()[0] == 0
    end = check_end_state(app, stream, letters)
    print("\n[faults] postgres " + json.dumps({"crashes": 3, "rounds": figures,
                                               "sigterm_database_down_s": round(seconds, 1),
                                               **end}))
    app.engine.dispose()


def test_sqlite_killed_mid_commit_three_times(kafka_broker: EmbeddedBroker,
                                              tmp_path: Path) -> None:
    rng = random.Random(1603)
    stream = FaultStream(old=200, new=1000, bad=12)
    db = f"sqlite:///{tmp_path / 'faults.db'}"
    app = bootstrap(db, "kilowatt-connect")
    topics = _topics(kafka_broker, "sq")
    letters = tmp_path / "letters"
    lines = stream.lines()
    env = service_env(kafka_broker.bootstrap_servers, db, topics.prefix, letters)
    only = [arg for c in COMPONENTS for arg in ("--only", c)]
    kills = []
    for kill in range(3):
        # Each run has work to do: a third of the stream, then killed in its first commits.
        publish(kafka_broker.bootstrap_servers, topics.events, lines[kill::3])
        at_commit = rng.randint(2, 8)
        killer = ServiceProcess(
            COMPONENTS, {**env, "KILL_AT_COMMIT": str(at_commit)}, tmp_path, name=f"kill{kill}",
            command=[sys.executable, "-m", "tests.kill_mid_commit", "up", *only, "--no-migrate"])
        before = applied(app, stream)
        killer.start()
        assert killer.process is not None
        code = killer.process.wait(timeout=60)
        assert code == -9, f"not killed (exit {code}); log {killer.log_path}"
        kills.append({"commit": at_commit, "applied_before": before,
                      "applied_after": applied(app, stream)})
    assert kills[-1]["applied_after"] > 0, "the kills landed while work was under way"
    service = ServiceProcess(COMPONENTS, env, tmp_path)
    service.start()
    wait_for(lambda: settled(app, stream, letters), 120, f"the end state; logs in {tmp_path}")
    time.sleep(2)
    assert service.terminate()[0] == 0
    end = check_end_state(app, stream, letters)
    print("\n[faults] sqlite " + json.dumps({"kills": kills, **end}))
    app.engine.dispose()
