"""Broker crash: Tansu with its log in S3 (a moto server), SIGKILLed mid-stream and started
again on the same port three times in one run; then SIGTERM to the service while the broker
is down, which must exit within the bound, and a restart that finishes the work.

The service (`complaints up --only consumer --only timer --only relay --only letters`) runs as
one process on a SQLite file; the end state is checked against the stream's hand-derived
expectations (tests/faults.py): every event applied once, no deadline lost, one letter per
acknowledgement written once, every bad message rejected.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import pytest

from consumers.runtime import create_topics
from consumers.settings import Settings, Topics
from tests.faults import (
    COMPLAINTS,
    FaultStream,
    MotoS3,
    ServiceProcess,
    StoredTansu,
    applied,
    check_end_state,
    free_port,
    probe,
    publish,
    service_env,
    settled,
    wait_for,
)
from workflow.bootstrap import bootstrap

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

KILLS = 3
STOP_BOUND_S = 15.0  # COMPLAINTS_STOP_TIMEOUT_S of the run; a SIGTERM ends it sooner, with 0
COMPONENTS = ("consumer", "timer", "relay", "letters")


def test_broker_killed_three_times_mid_stream_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    rng = random.Random(16)
    stream = FaultStream(old=300, new=2700, bad=30)
    lines = stream.lines()
    chunks = [lines[i::KILLS + 1] for i in range(KILLS + 1)]  # each chunk keeps its order
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
                          COMPLAINTS_STOP_TIMEOUT_S=str(STOP_BOUND_S),
                          COMPLAINTS_HEALTH_PORT=str(health))
        service = ServiceProcess(COMPONENTS, env, tmp_path)
        service.start()
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
        published: set[str] = set()
        for kill in range(KILLS):
            before = applied(app, stream)
            published |= stream.event_ids(chunks[kill])
            expected = len(published)
            publish(broker.bootstrap_servers, settings.topics.events, chunks[kill])
            # Mid-stream: killed as soon as the first batch of this chunk is in.
            wait_for(lambda b=before: applied(app, stream) > b, 60,  # type: ignore[misc]
                     f"progress before kill {kill + 1}; logs in {tmp_path}")
            at_kill = applied(app, stream)
            broker.kill()
            if kill == 0:  # not ready without a broker, but alive: a restart would not help
                wait_for(lambda: probe(health, "/ready")[0] == 503, 10, "not ready")
                assert probe(health, "/ready")[1]["checks"]["broker"].startswith("unreachable")
                assert probe(health, "/health")[0] == 200
            time.sleep(rng.uniform(0.5, 2.0))
            broker.start()
            restarted = time.monotonic()
            # Recovered: everything published so far is applied once the broker is back.
            wait_for(lambda n=expected: applied(app, stream) >= n, 90,  # type: ignore[misc]
                     f"the events in flight after broker restart {kill + 1}; logs in {tmp_path}")
            figures.append({"in_flight": expected - at_kill,
                            "recovery_s": round(time.monotonic() - restarted, 1)})
            assert service.alive(), f"the service died; log {service.log_path}"
        wait_for(lambda: probe(health, "/ready")[0] == 200, 30, "ready again")

        publish(broker.bootstrap_servers, settings.topics.events, chunks[KILLS])
        # SIGTERM while the broker is down, with work in flight: exits within the bound.
        wait_for(lambda: applied(app, stream) > 0, 30, "work")
        broker.kill()
        code, seconds = service.terminate(timeout=STOP_BOUND_S + 30)
        assert seconds < STOP_BOUND_S, f"took {seconds:.1f} s; log {service.log_path}"
        assert code == 0, f"exit {code}; log {service.log_path}"
        broker.start()
        service.start()
        wait_for(lambda: settled(app, stream, letters), 120,
                 f"the end state; logs in {tmp_path}")
        time.sleep(2)  # anything that would be applied twice has had its chance
        code, _ = service.terminate()
        assert code == 0
        end = check_end_state(app, stream, letters)
        print("\n[faults] broker " + json.dumps({"kills": broker.kills, "rounds": figures,
                                                  "sigterm_broker_down_s": round(seconds, 1),
                                                  **end}))
        app.engine.dispose()
    finally:
        broker.stop()
        store.stop()


def test_sigterm_to_all_five_components_while_the_broker_is_down(tmp_path: Path) -> None:
    """`complaints up` with every component, the aggregator and ops server included: the
    broker dies under it, and SIGTERM still ends it within COMPLAINTS_STOP_TIMEOUT_S (30)."""
    broker = StoredTansu(None, tmp_path / "tansu.log")
    try:
        broker.start()
        prefix = f"all{uuid.uuid4().hex[:6]}."
        settings = Settings.from_env({}, bootstrap_servers=broker.bootstrap_servers,
                                     topics=Topics(prefix))
        create_topics(settings.client_config(), settings)
        db = f"sqlite:///{tmp_path / 'all.db'}"
        app = bootstrap(db, "kilowatt-connect")
        web, health = free_port(), free_port()
        env = service_env(broker.bootstrap_servers, db, prefix, tmp_path / "letters",
                          COMPLAINTS_WEB_PORT=str(web), COMPLAINTS_OPS_TOKEN="t0ken",
                          COMPLAINTS_HEALTH_PORT=str(health))
        service = ServiceProcess((), env, tmp_path, command=[
            str(COMPLAINTS), "up", "--no-migrate"])
        service.start()
        stream = FaultStream(old=50, new=250, bad=3)
        publish(broker.bootstrap_servers, settings.topics.events, stream.lines())
        wait_for(lambda: probe(web, "/ready")[0] == 200 and probe(health, "/ready")[0] == 200,
                 90, f"ready; log {service.log_path}")
        wait_for(lambda: applied(app, stream) > 0, 30, "work")
        broker.kill()
        time.sleep(1)
        code, seconds = service.terminate(timeout=60)
        assert seconds < 30, f"took {seconds:.1f} s; log {service.log_path}"
        assert code == 0, f"exit {code}; log {service.log_path}"
        print(f"\n[faults] all five, SIGTERM with the broker down: exit {code} in {seconds:.1f} s")
        app.engine.dispose()
    finally:
        broker.stop()
