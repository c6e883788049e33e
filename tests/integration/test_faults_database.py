"""Database crash: a PostgreSQL cluster of the test's own stopped with `pg_ctl -m immediate`
mid-stream and started again, twice, then SIGTERM to the service while it is down (exits
within the bound); and SQLite with the process SIGKILLed in the middle of a commit, three
times. Each ends in the stream's hand-derived end state (tests/faults.py): every event
applied once, no deadline lost, one letter per acknowledgement written once, every bad
message rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from tests.fault_runs import postgres_crash, sqlite_kills
from tests.pgcluster import PostgresCluster

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

STOP_BOUND_S = 15.0


def test_postgres_crashed_twice_mid_stream_then_sigterm_while_down(
        kafka_broker: EmbeddedBroker, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    figures = postgres_crash(tmp_path, kafka_broker, pg_cluster, crashes=2,
                             stop_bound_s=STOP_BOUND_S)
    print("\n[faults] " + json.dumps(figures))
    assert figures["injected"] == 2
    assert any(r["in_flight"] > 0 for r in figures["rounds"]), "crashed mid-stream"


def test_sqlite_killed_mid_commit_three_times(kafka_broker: EmbeddedBroker,
                                              tmp_path: Path) -> None:
    figures = sqlite_kills(tmp_path, kafka_broker, kills=3)
    print("\n[faults] " + json.dumps(figures))
    assert figures["injected"] == 3
