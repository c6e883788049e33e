"""Runtime settings: the topic table and the environment the service reads, in one place.

`TOPICS` and `ENVIRONMENT` are the tables of truth: the command line's help, the AsyncAPI
document, the embedded broker's topic creation and the deploy/ manifests (checked by a test)
all derive from them, so a topic or a variable cannot be renamed in one place only.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from consumers.stopping import stop_timeout_s
from letters.render import FORMATS, LetterFormat
from workflow.limits import TRANSPORT_MAX_BYTES

Logical = Literal["events", "deadlines", "lifecycle", "letters", "rejected"]


@dataclass(frozen=True)
class TopicSpec:
    name: str  # before the prefix
    partitions: int  # for topics the service creates (embedded broker, `up --init`)
    key: str
    summary: str
    # Kafka topic configs set on creation: the events topic must accept messages over the
    # contract's 1 MiB limit so that they reach the consumer and are rejected with a reason.
    configs: Mapping[str, str] = field(default_factory=dict)


LARGE_MESSAGES: Final = {"max.message.bytes": str(TRANSPORT_MAX_BYTES)}

TOPICS: Final[dict[Logical, TopicSpec]] = {
    "events": TopicSpec(
        "complaints.events", 6, "complaint_id, else contact_id, else event_id",
        "Events in from contact-centre systems (docs/contract.md 'Events in').", LARGE_MESSAGES),
    "deadlines": TopicSpec(
        "complaints.deadlines", 6, "complaint_id",
        "Due deadlines, from the timer service to the workflow consumer."),
    "lifecycle": TopicSpec(
        "complaints.lifecycle", 6, "complaint_id",
        "Every applied change: state changes, registrations, deadlines scheduled and fired."),
    "letters": TopicSpec(
        "complaints.letters", 6, "complaint_id",
        "One message per letter issued."),
    "rejected": TopicSpec(
        "complaints.rejected", 3, "the rejected message's key, as received",
        "Rejected input: the raw message, the reason and where it came from.", LARGE_MESSAGES),
}

#: Outbox rows name a logical topic; the relay publishes each to its physical topic.
OUTBOX_TOPICS: Final[tuple[Logical, ...]] = ("lifecycle", "letters", "rejected")


@dataclass(frozen=True)
class EnvVar:
    name: str
    help: str
    default: str | None = None
    secret: bool = False


ENVIRONMENT: Final[tuple[EnvVar, ...]] = (
    EnvVar("KAFKA_BOOTSTRAP_SERVERS",
           "Kafka brokers, host:port[,host:port]. Unset: `up` starts an embedded broker "
           "(in memory, loopback only)."),
    EnvVar("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
           "PLAINTEXT"),
    EnvVar("KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL_*)."),
    EnvVar("KAFKA_SASL_USERNAME", "SASL user name."),
    EnvVar("KAFKA_SASL_PASSWORD", "SASL password.", secret=True),
    EnvVar("KAFKA_SSL_CAFILE", "CA bundle to verify the brokers' certificates (with *SSL)."),
    EnvVar("COMPLAINTS_DATABASE_URL", "Database URL (as --db).", "sqlite:///complaints.db",
           secret=True),
    EnvVar("COMPLAINTS_CONFIG", "Procedure: kilowatt-connect, lastmile or a TOML path "
                                "(as --config).", "kilowatt-connect"),
    EnvVar("COMPLAINTS_TOPIC_PREFIX", "Prefix for every topic name, e.g. 'acme.' gives "
                                      "'acme.complaints.events'.", ""),
    EnvVar("COMPLAINTS_CONSUMER_GROUP", "Kafka consumer group of the workflow consumers.",
           "complaints-workflow"),
    EnvVar("COMPLAINTS_KAFKA_SESSION_TIMEOUT_MS",
           "Consumer group session timeout: how long a dead consumer holds its partitions "
           "(a restart rejoins in about twice this on the embedded broker).", "10000"),
    EnvVar("COMPLAINTS_KAFKA_ASSIGNMENT_TIMEOUT_S",
           "How long a consumer may wait for its group to assign it partitions before it "
           "leaves and joins again as a new member (0: wait for ever). Above the rebalance "
           "timeout (kafka-python's max_poll_interval_ms, 300 s).", "330"),
    EnvVar("COMPLAINTS_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR.", "INFO"),
    EnvVar("COMPLAINTS_HEALTH_FILE", "File touched every few seconds while every component "
                                     "runs (for liveness probes)."),
    EnvVar("COMPLAINTS_WEB_HOST", "Address the ops web server (API and dashboard) listens on.",
           "127.0.0.1"),
    EnvVar("COMPLAINTS_WEB_PORT", "Port of the ops web server (0: any free port).", "8080"),
    EnvVar("COMPLAINTS_OPS_TOKEN", "Bearer token for the ops API and dashboard. Unset: `up` "
                                   "generates one and prints it once.", secret=True),
    EnvVar("COMPLAINTS_LETTERS_DIR", "Directory the letter service writes each issued letter "
                                     "to, as <letter_id>.<ext> (relative: to the working "
                                     "directory).", "letters-out"),
    EnvVar("COMPLAINTS_LETTER_FORMATS", "Formats the letter service renders, comma-separated: "
                                        "pdf, html, txt (PDF is the slow one).", "pdf,html,txt"),
    EnvVar("COMPLAINTS_RISK_REFIT_SECONDS", "How often the ops service refits the breach-risk "
                                            "model from the database and refreshes `/risk` "
                                            "(`up --demo` without it: every 15 s).",
           "300"),
    EnvVar("COMPLAINTS_STOP_TIMEOUT_S", "Seconds a stop (SIGTERM, Ctrl-C) may take; then what is "
                                        "left is logged and the process exits with status 1.",
           "30"),
    EnvVar("COMPLAINTS_HEALTH_PORT", "Port of the health server (GET /health: alive, GET /ready:"
                                     " broker and database reachable, partitions assigned; no "
                                     "token), on COMPLAINTS_WEB_HOST. Unset: none."),
    EnvVar("COMPLAINTS_DEADLINE_REPUBLISH_S", "Seconds after which the timer service publishes "
                                              "again a due deadline it published that has not "
                                              "fired (its message lost by the broker).", "600"),
    EnvVar("COMPLAINTS_OPS_URL", "Where `complaints reconcile` asks the aggregator [default: "
                                 "http://COMPLAINTS_WEB_HOST:COMPLAINTS_WEB_PORT]."),
    # (v2) Delivery (consumers/delivery.py)
    EnvVar("COMPLAINTS_SMTP_URL", "Mail server for email letters: smtp://host[:port] "
                                  "(STARTTLS, port 587) or smtps://host[:port] (TLS, 465); no "
                                  "credentials in it. Unset: email letters wait, then go by "
                                  "post after email_give_up_hours."),
    EnvVar("COMPLAINTS_SMTP_STARTTLS", "required: refuse a smtp:// server that does not offer "
                                       "STARTTLS; off: plain SMTP (a trusted local relay "
                                       "only).", "required"),
    EnvVar("COMPLAINTS_SMTP_USERNAME", "SMTP user name (AUTH after STARTTLS)."),
    EnvVar("COMPLAINTS_SMTP_PASSWORD", "SMTP password.", secret=True),
    EnvVar("COMPLAINTS_SMTP_FROM", "From address of email letters [default: the procedure's "
                                   "supplier email]."),
    EnvVar("COMPLAINTS_PRINT_DIR", "Print queue: one folder per print run with the posted "
                                   "letters' PDFs and a manifest (relative: to the working "
                                   "directory).", "print-queue"),
    EnvVar("COMPLAINTS_DEMO_MAIL_DIR", "With `up --demo`: the folder where the demo's local "
                                       "SMTP sink keeps each email letter as an .eml file.",
           "demo-mail"),
)
ENV_NAMES: Final = frozenset(v.name for v in ENVIRONMENT)

# Consumer tuning. A 10 s session timeout (the default of COMPLAINTS_KAFKA_SESSION_TIMEOUT_MS)
# makes a group form in a few seconds on the embedded broker (kafka-python's 45 s default
# costs ~20 s there) and still tolerates GC pauses; heartbeats go at a third of it.


def letter_formats(value: str) -> tuple[LetterFormat, ...]:
    """`pdf,html` -> ("pdf", "html"): known formats only, at least one, each once, in order."""
    chosen: list[LetterFormat] = []
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in FORMATS:
            raise ValueError(f"COMPLAINTS_LETTER_FORMATS: {part.strip()!r} is not a letter "
                             f"format; choose from {', '.join(FORMATS)}")
        if name not in chosen:
            chosen.append(cast(LetterFormat, name))
    if not chosen:
        raise ValueError("COMPLAINTS_LETTER_FORMATS names no format; choose from "
                         + ", ".join(FORMATS))
    return tuple(chosen)


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable from the table: its value, else its default (empty counts as unset)."""
    assert name in ENV_NAMES, f"{name} is not in settings.ENVIRONMENT"
    value = (os.environ if environ is None else environ).get(name)
    if value:
        return value
    return next(v.default for v in ENVIRONMENT if v.name == name)


@dataclass(frozen=True)
class Topics:
    """Physical topic names for a prefix."""

    prefix: str = ""

    def name(self, logical: Logical) -> str:
        return self.prefix + TOPICS[logical].name

    @property
    def events(self) -> str:
        return self.name("events")

    @property
    def deadlines(self) -> str:
        return self.name("deadlines")

    @property
    def lifecycle(self) -> str:
        return self.name("lifecycle")

    @property
    def letters(self) -> str:
        return self.name("letters")

    @property
    def rejected(self) -> str:
        return self.name("rejected")

    def all(self) -> dict[Logical, str]:
        return {logical: self.name(logical) for logical in TOPICS}


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str | None
    topics: Topics
    group_id: str
    kafka_security: Mapping[str, str] = field(default_factory=dict)
    health_file: str | None = None
    log_level: str = "INFO"
    session_timeout_ms: int = 10_000
    assignment_timeout_s: float = 330.0
    letters_dir: str = "letters-out"
    letter_formats: tuple[LetterFormat, ...] = ("pdf", "html", "txt")
    risk_refit_seconds: float = 300.0
    stop_timeout_s: float = 30.0
    deadline_republish_s: float = 600.0
    health_port: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        security = {
            "security_protocol": env("KAFKA_SECURITY_PROTOCOL", environ),
            "sasl_mechanism": env("KAFKA_SASL_MECHANISM", environ),
            "sasl_plain_username": env("KAFKA_SASL_USERNAME", environ),
            "sasl_plain_password": env("KAFKA_SASL_PASSWORD", environ),
            "ssl_cafile": env("KAFKA_SSL_CAFILE", environ),
        }
        check_security(security)
        values: dict[str, Any] = {
            "bootstrap_servers": env("KAFKA_BOOTSTRAP_SERVERS", environ),
            "topics": Topics(env("COMPLAINTS_TOPIC_PREFIX", environ) or ""),
            "group_id": env("COMPLAINTS_CONSUMER_GROUP", environ) or "complaints-workflow",
            "kafka_security": {k: v for k, v in security.items() if v},
            "health_file": env("COMPLAINTS_HEALTH_FILE", environ),
            "log_level": (env("COMPLAINTS_LOG_LEVEL", environ) or "INFO").upper(),
            "session_timeout_ms": int(env("COMPLAINTS_KAFKA_SESSION_TIMEOUT_MS", environ)
                                      or 10_000),
            "assignment_timeout_s": float(env("COMPLAINTS_KAFKA_ASSIGNMENT_TIMEOUT_S", environ)
                                          or 330),
            "letters_dir": env("COMPLAINTS_LETTERS_DIR", environ) or "letters-out",
            "letter_formats": letter_formats(env("COMPLAINTS_LETTER_FORMATS", environ)
                                             or "pdf,html,txt"),
            "risk_refit_seconds": float(env("COMPLAINTS_RISK_REFIT_SECONDS", environ) or 300),
            "stop_timeout_s": stop_timeout_s(env("COMPLAINTS_STOP_TIMEOUT_S", environ)),
            "deadline_republish_s": float(env("COMPLAINTS_DEADLINE_REPUBLISH_S", environ)
                                          or 600),
            "health_port": _port("COMPLAINTS_HEALTH_PORT", env("COMPLAINTS_HEALTH_PORT",
                                                               environ)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def client_config(self) -> dict[str, Any]:
        """What every Kafka client of the service shares: brokers and security."""
        if not self.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS) are set")
        return {"bootstrap_servers": self.bootstrap_servers.split(","), **self.kafka_security}


PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def check_security(security: dict[str, str | None]) -> None:
    """Refuse a Kafka security setting that cannot work, before any connection, with the
    variable to fix. Never quotes the password (nor says anything about its value)."""
    protocol = (security.get("security_protocol") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL: {protocol!r} is not one of "
                         f"{', '.join(PROTOCOLS)}")
    security["security_protocol"] = protocol
    sasl = {"KAFKA_SASL_MECHANISM": security.get("sasl_mechanism"),
            "KAFKA_SASL_USERNAME": security.get("sasl_plain_username"),
            "KAFKA_SASL_PASSWORD": security.get("sasl_plain_password")}
    if protocol.startswith("SASL_"):
        missing = [name for name, value in sasl.items() if not value]
        if missing:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}"
                             " to be set")
        mechanism = str(sasl["KAFKA_SASL_MECHANISM"]).upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"KAFKA_SASL_MECHANISM: {mechanism!r} is not one of "
                             f"{', '.join(SASL_MECHANISMS)}")
        security["sasl_mechanism"] = mechanism
    else:
        stray = [name for name, value in sasl.items() if value]
        if stray:  # silently sending no credentials would be a surprise at the broker
            raise ValueError(f"{' and '.join(stray)} set, but KAFKA_SECURITY_PROTOCOL={protocol}"
                             " uses no SASL: set SASL_SSL (or SASL_PLAINTEXT), or unset them")
    cafile = security.get("ssl_cafile")
    if cafile:
        if not protocol.endswith("SSL"):
            raise ValueError(f"KAFKA_SSL_CAFILE set, but KAFKA_SECURITY_PROTOCOL={protocol} uses "
                             "no TLS: set SSL (or SASL_SSL), or unset it")
        if not os.path.isfile(cafile) or not os.access(cafile, os.R_OK):
            raise ValueError(f"KAFKA_SSL_CAFILE: {cafile} is not a readable file")


def _port(name: str, value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ValueError(f"{name}: {value!r} is not a port number (0-65535)")
    return int(value)


def environment_help() -> str:
    """The ENVIRONMENT table as text for `--help` (click keeps \\b paragraphs verbatim)."""
    lines = ["\b", "Environment:"]
    for var in ENVIRONMENT:
        default = f" [default: {var.default}]" if var.default not in (None, "") else ""
        lines.append(f"  {var.name}")
        lines += textwrap.wrap(var.help + default, 74, initial_indent="      ",
                               subsequent_indent="      ")
    return "\n".join(lines)
