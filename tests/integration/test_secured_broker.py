"""A secured broker: TLS through Debian's stunnel4 in front of Tansu (Tansu advertising the
stunnel port), a CA and a broker certificate made here with trustme.

- The service runs end to end with KAFKA_SECURITY_PROTOCOL=SSL and KAFKA_SSL_CAFILE: the
  stream's hand-derived end state (tests/faults.py) is reached through TLS only.
- A CA that did not sign the broker's certificate fails `complaints up` at start, within
  seconds, with a message naming KAFKA_SSL_CAFILE (kafka-python alone would retry for ever).
- SASL settings that cannot work fail at start (exit 2) naming the variable to fix, and the
  password appears nowhere in the output. (The Tansu shipped here holds no SASL users, so
  SASL end to end cannot be shown: RELIABILITY.md.)
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from consumers.settings import TOPICS, Topics
from tests.faults import (
    COMPLAINTS,
    FaultStream,
    ServiceProcess,
    StoredTansu,
    check_end_state,
    free_port,
    publish,
    service_env,
    settled,
    wait_for,
)
from workflow.bootstrap import bootstrap

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
SECRET = "pw-7f3a9c-never-in-a-log"


class TLSBroker:
    def __init__(self, tls_port: int, ca_file: Path, tansu: StoredTansu,
                 stunnel: subprocess.Popen[bytes]) -> None:
        self.bootstrap = f"127.0.0.1:{tls_port}"
        self.ca_file, self.tansu, self.stunnel = ca_file, tansu, stunnel

    def client(self) -> dict[str, str]:
        return {"security_protocol": "SSL", "ssl_cafile": str(self.ca_file)}


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TLSBroker]:
    if STUNNEL is None:
        pytest.fail("stunnel4 is not installed (the Makefile installs it: make test)")
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, server_pem = tmp_path / "ca.pem", tmp_path / "broker.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    tls_port, plain_port = free_port(), free_port()
    conf = tmp_path / "stunnel.conf"
    conf.write_text(f"foreground = yes\npid =\ndebug = notice\n[kafka]\n"
                    f"accept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{plain_port}\n"
                    f"cert = {server_pem}\n")
    log = (tmp_path / "stunnel.log").open("wb")
    stunnel = subprocess.Popen([STUNNEL, str(conf)], stdout=log, stderr=subprocess.STDOUT)
    tansu = StoredTansu(None, tmp_path / "tansu.log", port=plain_port,
                        advertised=f"tcp://127.0.0.1:{tls_port}", ready_check=False)
    try:
        tansu.start()
        wait_for(lambda: _tls_answers(tls_port), 20, "stunnel")
        yield TLSBroker(tls_port, ca_file, tansu, stunnel)
    finally:
        tansu.stop()
        stunnel.terminate()
        stunnel.wait(10)
        log.close()


def _tls_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _create_topics(broker: TLSBroker) -> Topics:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    topics = Topics(f"tls{uuid.uuid4().hex[:6]}.")
    deadline = time.monotonic() + 30
    while True:  # Tansu may still be starting behind the proxy
        try:
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, **broker.client(),
                                     request_timeout_ms=5000)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        admin.create_topics([NewTopic(topics.name(logical), spec.partitions, 1)
                             for logical, spec in TOPICS.items()])
        admin.wait_for_topics([topics.name(logical) for logical in TOPICS], timeout_ms=20000)
    finally:
        admin.close()
    return topics


def test_the_service_end_to_end_over_tls(tls_broker: TLSBroker, tmp_path: Path) -> None:
    topics = _create_topics(tls_broker)
    stream = FaultStream(old=40, new=160, bad=6)
    db = f"sqlite:///{tmp_path / 'tls.db'}"
    app = bootstrap(db, "kilowatt-connect")
    letters = tmp_path / "letters"
    env = service_env(tls_broker.bootstrap, db, topics.prefix, letters,
                      KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(tls_broker.ca_file))
    service = ServiceProcess(("consumer", "timer", "relay", "letters"), env, tmp_path)
    service.start()
    publish(tls_broker.bootstrap, topics.events, stream.lines(), **tls_broker.client())
    wait_for(lambda: settled(app, stream, letters), 120, f"the end state; log {service.log_path}")
    time.sleep(1)
    assert service.terminate()[0] == 0
    check_end_state(app, stream, letters)
    app.engine.dispose()


def test_an_untrusted_broker_certificate_fails_at_start(tls_broker: TLSBroker,
                                                        tmp_path: Path) -> None:
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    env = service_env(tls_broker.bootstrap, f"sqlite:///{tmp_path / 'x.db'}", "untrusted.",
                      tmp_path / "letters", KAFKA_SECURITY_PROTOCOL="SSL",
                      KAFKA_SSL_CAFILE=str(other_ca))
    started = time.monotonic()
    result = subprocess.run([str(COMPLAINTS), "up", "--only", "consumer"], env=env,
                            capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-2000:]
    assert seconds < 15, f"took {seconds:.1f} s"
    assert (f"TLS to broker {tls_broker.bootstrap}: its certificate is not trusted "
            "(unable to get local issuer certificate)") in result.stderr
    assert f"KAFKA_SSL_CAFILE={other_ca}" in result.stderr


@pytest.mark.parametrize(("settings", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
      "KAFKA_SASL_USERNAME": "svc"},
     "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD to be set"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "svc",
      "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM to be set"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-1",
      "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SASL_MECHANISM: 'SCRAM-SHA-1' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ({"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "svc",
      "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SASL_MECHANISM and KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD set, but "
     "KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_TLS", "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SECURITY_PROTOCOL: 'SASL_TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
     "SASL_SSL"),
])
def test_sasl_misconfiguration_fails_at_start_without_the_secret(
        settings: dict[str, str], message: str, tmp_path: Path) -> None:
    env = {**service_env("127.0.0.1:9", f"sqlite:///{tmp_path / 'x.db'}", "sasl.",
                         tmp_path / "letters"), **settings}
    started = time.monotonic()
    result = subprocess.run([str(COMPLAINTS), "up", "--only", "consumer"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 15
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "x.db").exists(), "refused before touching anything"


def test_sasl_refused_by_the_broker_fails_at_start_without_the_secret(
        kafka_broker: EmbeddedBroker, tmp_path: Path) -> None:
    # The embedded Tansu offers no SASL mechanism at all: the handshake is refused.
    env = {**service_env(kafka_broker.bootstrap_servers, f"sqlite:///{tmp_path / 'x.db'}",
                         "sasl.", tmp_path / "letters"),
           "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": SECRET}
    started = time.monotonic()
    result = subprocess.run([str(COMPLAINTS), "up", "--only", "consumer"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.stderr[-2000:]
    assert ("error: SASL (SCRAM-SHA-512) refused by the broker: UnsupportedSaslMechanismError; "
            "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM"
            ) in result.stderr
    assert SECRET not in result.stdout + result.stderr
