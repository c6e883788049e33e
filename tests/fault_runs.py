"""The fault scenarios, run by the tests (tests/integration/test_faults_*.py, at a scale that
fits the suite) and by the soak bench (bench/faults.py, longer): each injects its fault into
real components started here and returns its figures after checking the end state against
the stream's hand-derived expectations (tests/faults.py)."""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from consumers.broker import EmbeddedBroker
from consumers.runtime import create_topics
from consumers.settings import TOPICS, Settings, Topics
from tests.faults import (
    FaultStream,
    MotoS3,
    ServiceProcess,
    StoredTansu,
    applied,
    free_port,
    probe,
    publish,
    repair_broker_losses,
    run_to_end_state,
    service_env,
    wait_for,
)
from tests.pgcluster import PostgresCluster
from workflow.bootstrap import App, bootstrap

COMPONENTS = ("consumer", "timer", "relay", "letters")


def topics_on(broker: EmbeddedBroker, tag: str) -> Topics:
    topics = Topics(f"{tag}{uuid.uuid4().hex[:6]}.")
    for logical, spec in TOPICS.items():
        broker.create_topics([topics.name(logical)], partitions=spec.partitions)
    return topics


def broker_crash(tmp_path: Path, *, kills: int = 3, old: int = 300, new: int = 2700,
                 bad: int = 30, seed: int = 16, stop_bound_s: float = 15.0) -> dict[str, Any]:
    """Tansu (log in S3 on moto) SIGKILLed mid-stream `kills` times and restarted on its port;
    then SIGTERM to the service with the broker down, restart, and the end state."""
    rng = random.Random(seed)
    stream = FaultStream(old=old, new=new, bad=bad)
    lines = stream.lines()
    chunks = [lines[i::kills + 1] for i in range(kills + 1)]  # each chunk keeps its order
    store = MotoS3(tmp_path)
    broker = StoredTansu(store, tmp_path / "tansu.log")
    try:
        broker.start()
        prefix = f"bk{uuid.uuid4().hex[:6]}."
        settings = Settings.from_env({}, bootstrap_servers=broker.bootstrap_servers,
                                     topics=Topics(prefix))
        create_topics(settings.client_config(), settings)
        db = f"sqlite:///{tmp_path / 'faults.db'}"
        app = bootstrap(db, "kilowatt-connect")
        letters = tmp_path / "letters"
        health = free_port()
        env = service_env(broker.bootstrap_servers, db, prefix, letters,
                          COMPLAINTS_STOP_TIMEOUT_S=str(stop_bound_s),
                          COMPLAINTS_HEALTH_PORT=str(health))
        service = ServiceProcess(COMPONENTS, env, tmp_path)
        service.start()
        try:
            return _broker_rounds(broker, service, app, settings, stream, chunks, rng,
                                  kills=kills, health=health, letters=letters,
                                  stop_bound_s=stop_bound_s, logs=tmp_path)
        finally:
            service.stop()  # whatever happened: never a service left running past its test
            app.engine.dispose()
    finally:
        broker.stop()
        store.stop()


def _broker_rounds(broker: StoredTansu, service: ServiceProcess, app: App, settings: Settings,
                   stream: FaultStream, chunks: list[list[bytes]], rng: random.Random, *,
                   kills: int, health: int, letters: Path, stop_bound_s: float,
                   logs: Path) -> dict[str, Any]:
    # Ready once the database and broker answer and both groups assigned partitions.
    wait_for(lambda: probe(health, "/ready")[0] == 200, 60, f"ready; log {service.log_path}")
    checks = probe(health, "/ready")[1]["checks"]
    assert checks == {"database": "ok", "broker": "ok",
                      "consumer_partitions": "ok: 12 assigned",
                      "letters_partitions": "ok: 6 assigned"}
    assert probe(health, "/health") == (200, {
        "status": "alive", "stopping": False,
        "components": dict.fromkeys(COMPONENTS, "running")})

    figures = []
    published: list[bytes] = []
    repaired: Counter[str] = Counter()
    for kill in range(kills):
        before = applied(app, stream)
        published += chunks[kill]
        expected = len(stream.event_ids(published))
        publish(broker.bootstrap_servers, settings.topics.events, chunks[kill])
        # Mid-stream: killed as soon as the first batch of this chunk is in.
        wait_for(lambda b=before: applied(app, stream) > b, 60,  # type: ignore[misc]
                 f"progress before kill {kill + 1}; logs in {logs}")
        at_kill = applied(app, stream)
        broker.kill()
        if kill == 0:  # not ready without a broker, but alive: a restart would not help
            wait_for(lambda: probe(health, "/ready")[0] == 503, 10, "not ready")
            assert probe(health, "/ready")[1]["checks"]["broker"].startswith("unreachable")
            assert probe(health, "/health")[0] == 200
        time.sleep(rng.uniform(0.5, 2.0))
        broker.start()
        restarted = time.monotonic()
        repaired.update(repair_broker_losses(app, broker.bootstrap_servers, settings.topics.events,
                                             settings.topics.letters, published))
        # Recovered: everything published so far is applied once the broker is back.
        wait_for(lambda n=expected: applied(app, stream) >= n, 90,  # type: ignore[misc]
                 f"the events in flight after broker restart {kill + 1}; logs in {logs}")
        figures.append({"in_flight": expected - at_kill,
                        "recovery_s": round(time.monotonic() - restarted, 1)})
        assert service.alive(), f"the service died; log {service.log_path}"
    wait_for(lambda: probe(health, "/ready")[0] == 200, 30, "ready again")

    # SIGTERM while the broker is down, with work of the last chunk in flight.
    before = applied(app, stream)
    published += chunks[kills]
    publish(broker.bootstrap_servers, settings.topics.events, chunks[kills])
    wait_for(lambda: applied(app, stream) > before, 30, f"work; logs in {logs}")
    broker.kill()
    code, seconds = service.terminate(timeout=stop_bound_s + 30)
    assert seconds < stop_bound_s, f"took {seconds:.1f} s; log {service.log_path}"
    assert code == 0, f"exit {code}; log {service.log_path}"
    broker.start()
    repaired.update(repair_broker_losses(app, broker.bootstrap_servers, settings.topics.events,
                                         settings.topics.letters, published))
    service.start()
    end = run_to_end_state(app, service, stream, letters, logs)
    return {"fault": "broker SIGKILL", "injected": broker.kills - 1, "rounds": figures,
            "sigterm_broker_down_s": round(seconds, 1), "events": stream.old + stream.new,
            "repaired_broker_losses": dict(repaired), **end}


def postgres_crash(tmp_path: Path, kafka_broker: EmbeddedBroker, pg_cluster: PostgresCluster,
                   *, crashes: int = 2, old: int = 300, new: int = 2100, bad: int = 24,
                   seed: int = 1602, stop_bound_s: float = 15.0) -> dict[str, Any]:
    """The test's own PostgreSQL stopped `-m immediate` mid-stream `crashes` times, then
    SIGTERM to the service while it is down, restart, and the end state."""
    rng = random.Random(seed)
    stream = FaultStream(old=old, new=new, bad=bad)
    lines = stream.lines()
    chunks = [lines[i::crashes + 1] for i in range(crashes + 1)]
    db = pg_cluster.create_database("complaints")
    app = bootstrap(db, "kilowatt-connect")
    topics = topics_on(kafka_broker, "db")
    letters = tmp_path / "letters"
    env = service_env(kafka_broker.bootstrap_servers, db, topics.prefix, letters,
                      COMPLAINTS_STOP_TIMEOUT_S=str(stop_bound_s))
    service = ServiceProcess(COMPONENTS, env, tmp_path)
    with service:
        service.start()

        figures = []
        published: set[str] = set()
        for crash in range(crashes):
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
        publish(kafka_broker.bootstrap_servers, topics.events, chunks[crashes])
        wait_for(lambda: applied(app, stream) > before, 60, "work")
        pg_cluster.stop(mode="immediate")
        app.engine.dispose()
        time.sleep(0.5)
        code, seconds = service.terminate(timeout=stop_bound_s + 30)
        assert seconds < stop_bound_s, f"took {seconds:.1f} s; log {service.log_path}"
        assert code == 0, f"exit {code}; log {service.log_path}"
        pg_cluster.start()
        service.start()
        end = run_to_end_state(app, service, stream, letters, tmp_path)
        app.engine.dispose()
    return {"fault": "PostgreSQL immediate stop", "injected": crashes, "rounds": figures,
            "sigterm_database_down_s": round(seconds, 1), "events": old + new, **end}


def sqlite_kills(tmp_path: Path, kafka_broker: EmbeddedBroker, *, kills: int = 3,
                 old: int = 200, new: int = 1000, bad: int = 12,
                 seed: int = 1603) -> dict[str, Any]:
    """The service on SQLite SIGKILLed in the middle of a commit `kills` times (each run given
    a share of the stream), then run to the end state."""
    rng = random.Random(seed)
    stream = FaultStream(old=old, new=new, bad=bad)
    db = f"sqlite:///{tmp_path / 'faults.db'}"
    app = bootstrap(db, "kilowatt-connect")
    topics = topics_on(kafka_broker, "sq")
    letters = tmp_path / "letters"
    lines = stream.lines()
    env = service_env(kafka_broker.bootstrap_servers, db, topics.prefix, letters)
    only = [arg for c in COMPONENTS for arg in ("--only", c)]
    killed = []
    for kill in range(kills):
        # Each run has work to do: a third of the stream, then killed in its first commits.
        publish(kafka_broker.bootstrap_servers, topics.events, lines[kill::kills])
        at_commit = rng.randint(2, 8)
        killer = ServiceProcess(
            COMPONENTS, {**env, "KILL_AT_COMMIT": str(at_commit)}, tmp_path, name=f"kill{kill}",
            command=[sys.executable, "-m", "tests.kill_mid_commit", "up", *only, "--no-migrate"])
        before = applied(app, stream)
        killer.start()
        assert killer.process is not None
        with killer:  # killed by the test if it outlives its wait
            code = killer.process.wait(timeout=60)
        assert code == -9, f"not killed (exit {code}); log {killer.log_path}"
        killed.append({"commit": at_commit, "applied_before": before,
                      "applied_after": applied(app, stream)})
    assert killed[-1]["applied_after"] > 0, "the kills landed while work was under way"
    service = ServiceProcess(COMPONENTS, env, tmp_path)
    with service:
        service.start()
        end = run_to_end_state(app, service, stream, letters, tmp_path)
        app.engine.dispose()
    return {"fault": "SQLite process SIGKILL mid-commit", "injected": len(killed),
            "rounds": killed, "events": old + new, **end}
