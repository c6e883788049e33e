"""Checks at start that fail fast on a broker security setting that cannot work.

kafka-python, given a CA that does not sign the broker's certificate, or credentials the
broker refuses, logs and retries for ever: the service would look up and do nothing. So
`complaints up` (and `--init`) first:

- with TLS (SSL, SASL_SSL): makes a TLS handshake with each bootstrap server, verifying the
  certificate and host name against KAFKA_SSL_CAFILE (else the system's CAs), as the Kafka
  clients will;
- with SASL: bootstraps one Kafka client, which authenticates.

A refused certificate or refused credentials is a `BrokerSecurityError`: a message naming the
variable to fix, and exit status 1. A broker that does not answer at all is not: it may be
starting, and the components wait for it (not ready) as they would for an outage. Messages
never contain the password.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Final

from consumers.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 5.0


class BrokerSecurityError(RuntimeError):
    """The broker refused this service's TLS or SASL settings (the message says which)."""


def check_broker_security(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    security = settings.kafka_security
    protocol = security.get("security_protocol", "PLAINTEXT")
    if not settings.bootstrap_servers or protocol == "PLAINTEXT":
        return
    if protocol.endswith("SSL"):
        for server in settings.bootstrap_servers.split(","):
            _check_tls(server.strip(), security.get("ssl_cafile"), timeout_s)
    if protocol.startswith("SASL_"):
        _check_sasl(settings, timeout_s)


def _check_tls(server: str, cafile: str | None, timeout_s: float) -> None:
    host, _, port = server.rpartition(":")
    host = host.strip("[]")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerSecurityError(f"KAFKA_SSL_CAFILE {cafile}: not a CA bundle ({exc})") from None
    source = f"KAFKA_SSL_CAFILE={cafile}" if cafile else "the system's CA certificates"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise BrokerSecurityError(
            f"TLS to broker {server}: its certificate is not trusted ({exc.verify_message}); "
            f"checked against {source}: set KAFKA_SSL_CAFILE to the CA that signed the "
            "broker's certificate") from None
    except ssl.SSLError as exc:
        raise BrokerSecurityError(
            f"TLS to broker {server} failed ({exc.reason or exc}): is "
            "KAFKA_SECURITY_PROTOCOL right for this listener?") from None
    except OSError as exc:  # not answering (yet): the components wait for it
        log.warning("broker %s did not answer a TLS connection at start (%s); waiting for it",
                    server, type(exc).__name__)


class _SaslRefusals(logging.Handler):
    """The names of SASL errors kafka-python logs (never a credential: it logs none)."""

    NAMES: Final = ("UnsupportedSaslMechanismError", "SaslAuthenticationFailedError",
                    "IllegalSaslStateError")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.errors += [name for name in self.NAMES if name in message]


def _check_sasl(settings: Settings, timeout_s: float) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import (
        IllegalSaslStateError,
        KafkaError,
        KafkaTimeoutError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
    )

    refused = (SaslAuthenticationFailedError, IllegalSaslStateError,
               UnsupportedSaslMechanismError)
    mechanism = settings.kafka_security.get("sasl_mechanism")
    advice = "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM"
    # kafka-python retries a refused handshake until its bootstrap times out, and says why
    # only in its log: listen to that log for the length of the check.
    seen = _SaslRefusals()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(seen)
    try:
        admin = KafkaAdminClient(**settings.client_config(), client_id="complaints-preflight",
                                 bootstrap_timeout_ms=int(timeout_s * 1000),
                                 request_timeout_ms=int(timeout_s * 1000))
        admin.close()
    except refused as exc:
        raise BrokerSecurityError(f"SASL ({mechanism}) refused by the broker: "
                                  f"{type(exc).__name__}; {advice}") from None
    except KafkaTimeoutError:  # bootstrap found no broker answering, or none let us in
        if seen.errors:
            raise BrokerSecurityError(f"SASL ({mechanism}) refused by the broker: "
                                      f"{seen.errors[-1]}; {advice}") from None
        log.warning("no broker answered at start; waiting for it")
    except KafkaError as exc:
        log.warning("broker check at start failed (%s); going on", type(exc).__name__)
    finally:
        kafka_log.removeHandler(seen)
