"""The health server's two endpoints and the Kafka security checks at start (no I/O beyond
loopback HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from sqlalchemy import create_engine

from consumers.health import HealthServer, Readiness
from consumers.settings import Settings


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_only_when_every_check_passes_and_alive_apart_from_readiness() -> None:
    assigned: list[int | None] = [None]
    readiness = Readiness(create_engine("sqlite://"), None, {"consumer": lambda: assigned[0]})
    alive = {"ok": True}
    server = HealthServer("127.0.0.1", 0, readiness,
                          lambda: (alive["ok"], {"components": {"consumer": "running"}}),
                          every_s=0.05).start()
    try:
        readiness.probe()
        assert get(server.port, "/ready") == (503, {"status": "not ready", "checks": {
            "database": "ok", "consumer_partitions": "not assigned"}})
        assert get(server.port, "/health") == (200, {"status": "alive",
                                                     "components": {"consumer": "running"}})
        assigned[0] = 0  # joined with no partition (a standby): ready
        readiness.probe()
        assert get(server.port, "/ready") == (200, {"status": "ready", "checks": {
            "database": "ok", "consumer_partitions": "ok: 0 assigned"}})
        alive["ok"] = False
        assert get(server.port, "/health")[0] == 503
        assert get(server.port, "/metrics") == (404, {"error": "not found"})
    finally:
        server.stop()


def test_an_unreachable_database_is_named_by_its_error_type_only() -> None:
    engine = create_engine("sqlite:////nonexistent-dir/x.db")
    readiness = Readiness(engine, None, {})
    assert readiness.probe() == {"database": "unreachable: OperationalError"}
    assert not readiness.ready


@pytest.mark.parametrize(("environ", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_PASSWORD": "s3cret"},
     "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_MECHANISM and "
     "KAFKA_SASL_USERNAME to be set"),
    ({"KAFKA_SSL_CAFILE": "/etc/hostname"},
     "KAFKA_SSL_CAFILE set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no TLS"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
     "KAFKA_SSL_CAFILE: /nonexistent/ca.pem is not a readable file"),
])
def test_security_settings_that_cannot_work_are_refused(environ: dict[str, str],
                                                        message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env(environ)
    assert message in str(refused.value) and "s3cret" not in str(refused.value)


def test_security_settings_that_work_are_normalised() -> None:
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                                  "KAFKA_SASL_MECHANISM": "scram-sha-512",
                                  "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "pw"})
    assert settings.kafka_security == {"security_protocol": "SASL_SSL",
                                       "sasl_mechanism": "SCRAM-SHA-512",
                                       "sasl_plain_username": "svc",
                                       "sasl_plain_password": "pw"}
    assert Settings.from_env({}).kafka_security == {"security_protocol": "PLAINTEXT"}
