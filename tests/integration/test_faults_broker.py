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
import time
import uuid
from pathlib import Path

import pytest

from consumers.runtime import create_topics
from consumers.settings import Settings, Topics
from tests.fault_runs import broker_crash
from tests.faults import (
    COMPLAINTS,
    FaultStream,
    ServiceProcess,
    StoredTansu,
    applied,
    free_port,
    probe,
    publish,
    service_env,
    wait_for,
)
from workflow.bootstrap import bootstrap

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

KILLS = 3
STOP_BOUND_S = 15.0  # COMPLAINTS_STOP_TIMEOUT_S of the run; a SIGTERM ends it sooner, with 0
COMPONENTS = ("consumer", "timer", "relay", "letters")


def test_broker_killed_three_times_mid_stream_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    figures = broker_crash(tmp_path, kills=KILLS, stop_bound_s=STOP_BOUND_S)
    print("\n[faults] " + json.dumps(figures))
    assert figures["injected"] == KILLS
    assert any(r["in_flight"] > 0 for r in figures["rounds"]), "killed mid-stream"


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
