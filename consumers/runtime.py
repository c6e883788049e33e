"""`complaints up`: the service's processes in one process, one thread each.

Components: the workflow consumer, the timer service, the outbox relay, the letter service
and the aggregator with the ops web server (and the demo contact centre with `--demo`). Each
thread has its own database sessions and Kafka clients; they share only the stop event. A
component that fails is restarted after a back-off, so a database or broker outage pauses the
service instead of ending it. `--only` runs a subset, which is how deploy/ scales them
independently.

Without KAFKA_BOOTSTRAP_SERVERS the embedded broker (Tansu, memory only) is started on a
free loopback port and the topics are created; it stops, and its data is gone, on exit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from sqlalchemy import func, select

from consumers.broker import EmbeddedBroker
from consumers.delivery import DeliveryService
from consumers.demo import ContactCentre
from consumers.health import HealthServer, Readiness
from consumers.letter_service import LetterService
from consumers.logtext import short
from consumers.outbox_relay import OutboxRelay
from consumers.retention import RetentionService
from consumers.settings import TOPICS, Settings
from consumers.stopping import StopWatchdog, where_threads_wait
from consumers.timer_service import TimerService
from consumers.workflow_consumer import WorkflowConsumer
from workflow import queries
from workflow.bootstrap import App
from workflow.delivery import placeholder_pause
from workflow.schema import Deadline, OutboxMessage, Rejection

log = logging.getLogger(__name__)

COMPONENTS: Final = ("consumer", "timer", "relay", "letters", "delivery", "aggregator",
                     "retention")
# Stopped in this order: input first, then the relay so that it publishes the final batch, and
# the aggregator last so that it can still count that batch. The letter service stops after
# the relay; what it has not rendered by then stays uncommitted, for its next start. Delivery
# stops before the relay (its letter.dispatched events are outbox rows the relay drains);
# what it has not delivered waits in the database for its next start.
DEMO_RISK_REFIT_S: Final = 15.0  # `up --demo`'s at-risk refits (COMPLAINTS_RISK_REFIT_SECONDS)
STOP_ORDER: Final = ("demo", "consumer", "timer", "delivery", "relay", "letters", "aggregator",
                     "retention")
STATUS_EVERY_S: Final = 15.0
HEALTH_EVERY_S: Final = 5.0
_TOPIC_ALREADY_EXISTS: Final = 36


class Component(Protocol):
    @property
    def stats(self) -> Any: ...  # a dataclass of counters, for the status line and summary

    def run(self, stop: threading.Event) -> None: ...


@dataclass
class RunOptions:
    only: tuple[str, ...] = COMPONENTS
    demo: bool = False
    demo_rate: float = 2.0
    duration: float | None = None
    ops_token: str | None = None  # required with the aggregator (see reporting.web)
    ops_token_generated: bool = False  # then printed once, with the dashboard link


def configure_logging(level: str) -> None:
    # Ids and counts only reach the log: never a customer's name, address or summary.
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(threadName)-9s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)  # chatty at INFO
    # WeasyPrint logs each step of every PDF at INFO; fontTools (font subsetting) likewise.
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # aiosmtpd (the demo's mail sink) logs each envelope's addresses at INFO: personal data.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def create_topics(bootstrap: dict[str, Any], settings: Settings, *,
                  timeout_s: float = 30.0) -> list[str]:
    """Create the service's topics that do not exist yet (idempotent); returns those created."""
    admin = KafkaAdminClient(**bootstrap, client_id="complaints-init")
    try:
        specs = {
            settings.topics.name(logical): {
                "num_partitions": spec.partitions, "replication_factor": -1,  # broker default
                "configs": dict(spec.configs),
            }
            for logical, spec in TOPICS.items()
        }
        response = admin.create_topics(specs, timeout_ms=int(timeout_s * 1000),
                                       raise_errors=False)
        created, failed = [], []
        for result in response["topics"]:
            if result["error_code"] == 0:
                created.append(result["name"])
            elif result["error_code"] != _TOPIC_ALREADY_EXISTS:
                failed.append(f"{result['name']}: error {result['error_code']} "
                              f"{result.get('error_message') or ''}")
        if failed:
            raise RuntimeError("could not create topics: " + "; ".join(failed))
        admin.wait_for_topics(list(specs), timeout_ms=int(timeout_s * 1000))
        return created
    finally:
        admin.close()


def start_embedded_broker(settings: Settings) -> tuple[EmbeddedBroker, Settings]:
    broker = EmbeddedBroker().start()
    try:
        for logical, spec in TOPICS.items():
            broker.create_topics([settings.topics.name(logical)], partitions=spec.partitions,
                                 configs=spec.configs)
    except BaseException:
        broker.stop()
        raise
    log.warning("no KAFKA_BOOTSTRAP_SERVERS: started the embedded broker (Tansu) at %s; it "
                "keeps messages in memory only, they are gone when this process stops",
                broker.bootstrap_servers)
    return broker, dataclasses.replace(settings, bootstrap_servers=broker.bootstrap_servers)


class Runtime:
    def __init__(self, app: App, settings: Settings, options: RunOptions,
                 stop: threading.Event | None = None) -> None:
        unknown = set(options.only) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown component(s) {sorted(unknown)}; choose from {COMPONENTS}")
        self.app = app
        self.settings = settings
        self.options = options
        self.stop = stop or threading.Event()
        self.components: dict[str, Component] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stops: dict[str, threading.Event] = {}
        self._broker: EmbeddedBroker | None = None
        self._mail_sink: Any = None  # consumers.mail_sink.MailSink, with --demo
        self.watchdog: StopWatchdog | None = None  # armed when the stop begins

    def build(self) -> None:
        factories: dict[str, Callable[[], Component]] = {
            "consumer": lambda: WorkflowConsumer(self.app, self.settings),
            "timer": lambda: TimerService(self.app, self.settings),
            "relay": lambda: OutboxRelay(self.app, self.settings),
            "letters": lambda: LetterService(self.app, self.settings),
            "delivery": self._delivery_service,
            "aggregator": self._ops_service,
            # The daily retention run (erasure of complaints past retention_years).
            "retention": lambda: RetentionService(self.app, letters_dir=self.settings.letters_dir),
        }
        for name in self.options.only:
            self.components[name] = factories[name]()
        retention, ops = self.components.get("retention"), self.components.get("aggregator")
        if retention is not None and ops is not None:
            # /metrics; the ops service may be wrapped (the risk refits)
            service: Any = getattr(ops, "service", ops)
            service.state.retention = retention.stats
        if self.options.demo:
            self.components["demo"] = ContactCentre(self.settings, rate=self.options.demo_rate)

    def _delivery_service(self) -> Component:
        """(v2) Outside the demo: COMPLAINTS_SMTP_URL. The demo never emails a real server:
        its customers' letters go to a local SMTP sink that keeps them in a folder."""
        if not self.options.demo:
            return DeliveryService(self.app, self.settings)
        from consumers.mail_sink import MailSink
        from consumers.settings import env

        self._mail_sink = MailSink(env("COMPLAINTS_DEMO_MAIL_DIR") or "demo-mail")
        smtp = self._mail_sink.start()
        log.warning("demo: email letters go to a local SMTP sink at %s:%d, kept as .eml files "
                    "in %s/ (nothing is sent on)", smtp.host, smtp.port,
                    self._mail_sink.directory)
        return DeliveryService(self.app, self.settings, smtp=smtp, demo=True)

    def _ops_service(self) -> Component:
        from consumers.aggregator import AggregatorConfig, OpsService  # deferred: faust

        if not self.options.ops_token:
            raise ValueError("the aggregator needs an ops token (RunOptions.ops_token)")
        # Tansu reports a wrong high watermark for multi-record batches (see the module doc
        # of consumers.aggregator): one record per changelog batch on the embedded broker.
        config = AggregatorConfig(single_record_batches=self._broker is not None)
        paused = placeholder_pause(self.app.procedure.placeholders, self.options.demo)
        service = OpsService(self.settings, self.app.procedure, token=self.options.ops_token,
                             config=config, announce_token=self.options.ops_token_generated,
                             delivery_paused=paused, record=self.app)
        # (v2) The dashboard's and /metrics' submissions calendar reads this database.
        from reporting.risk import WithRiskRefits
        from reporting.submissions import ObligationsSource

        service.state.obligations = ObligationsSource(self.app)
        # The at-risk list (`/risk`) refitted from the database on a schedule; the demo's
        # record starts empty and fills in seconds, so it refits often unless told otherwise
        # (its first fit, at the start, has nothing to list).
        interval = self.settings.risk_refit_seconds
        if self.options.demo and not os.environ.get("COMPLAINTS_RISK_REFIT_SECONDS"):
            interval = DEMO_RISK_REFIT_S
        log.info("the at-risk list is refitted every %.0f s", interval)
        return WithRiskRefits(service, self.app, interval)

    def run(self) -> dict[str, Any]:
        """Run until the stop event (signal) or `duration`; returns the exit summary."""
        started = time.monotonic()
        if not self.settings.bootstrap_servers:
            self._broker, self.settings = start_embedded_broker(self.settings)
        try:
            self.build()
            for name, component in self.components.items():
                self._stops[name] = threading.Event()
                thread = threading.Thread(target=self._supervise, args=(name, component),
                                          name=name, daemon=True)
                self._threads[name] = thread
                thread.start()
            log.info("running %s (group %s, topics %scomplaints.*)", ", ".join(self.components),
                     self.settings.group_id, self.settings.topics.prefix)
            health = self._health_server()
            try:
                self._watch(started)
                self._stop_components()
            finally:
                if health is not None:
                    health.stop()
            return self.summary(time.monotonic() - started)
        finally:
            if self._mail_sink is not None:
                self._mail_sink.stop()
                self._mail_sink = None
            if self._broker is not None:
                self._broker.stop()
                self._broker = None

    def _stop_components(self) -> None:
        """Stop in STOP_ORDER, all within COMPLAINTS_STOP_TIMEOUT_S: each component's own
        waits are bounded (consumers.stopping); the watchdog is the last resort for a wait
        that is not (it logs what is left and exits with status 1)."""
        self.stop.set()
        timeout = self.settings.stop_timeout_s
        self.watchdog = StopWatchdog(timeout, self._left).arm()
        deadline = time.monotonic() + timeout
        order = sorted(self._threads, key=STOP_ORDER.index)
        # What writes the outbox (demo input, consumer, timer, delivery) is told to stop first,
        # all at once so that their bounded waits (a broker or database gone) run side by side,
        # and gets up to half the bound, together, to end: the relay's last round then
        # publishes their last rows (a delivery round still rendering a PDF takes seconds).
        # The rest stop in order while each stops promptly (the usual case: under a second
        # each); one that is slow gets a stage of the bound, then the next is stopped beside it.
        writers = [name for name in order if name in STOP_ORDER[:STOP_ORDER.index("relay")]]
        writers_deadline = min(deadline, time.monotonic() + timeout / 2)
        for name in writers:
            self._stops[name].set()
        for name in writers:
            self._threads[name].join(timeout=max(0.0, writers_deadline - time.monotonic()))
        stage = timeout / (2 * max(1, len(order)))
        for name in order:
            if name in writers:
                continue
            self._stops[name].set()
            self._threads[name].join(timeout=max(0.0, min(stage, deadline - time.monotonic())))
        for name in order:
            self._threads[name].join(timeout=max(0.0, deadline - time.monotonic()))
            if self._threads[name].is_alive():
                log.error("%s did not stop within %g s", name, timeout)
                self.watchdog.expire()  # exits (status 1), having logged what is left
                return
        # The summary reads the database and, on Kafka, the group's offsets: bounded too.

    def _health_server(self) -> HealthServer | None:
        """GET /health and /ready on COMPLAINTS_HEALTH_PORT, when it is set."""
        if self.settings.health_port is None:
            return None
        from reporting.web import web_address  # the host the ops server listens on too

        uses_database = set(self.components) & {"consumer", "timer", "relay", "letters",
                                                  "delivery", "retention"}
        partitions = {name: component.assigned_partitions
                      for name, component in self.components.items()
                      if hasattr(component, "assigned_partitions")}
        readiness = Readiness(self.app.engine if uses_database else None,
                              self.settings.client_config(), partitions)
        return HealthServer(web_address()[0], self.settings.health_port, readiness,
                            self._alive).start()

    def _alive(self) -> tuple[bool, dict[str, Any]]:
        threads = {name: "running" if thread.is_alive() else "ended"
                   for name, thread in self._threads.items()}
        stopping = self.stop.is_set()
        return (not stopping and all(v == "running" for v in threads.values()),
                {"stopping": stopping, "components": threads})

    def _left(self) -> list[str]:
        others = [t for t in threading.enumerate()
                  if not t.daemon and t is not threading.main_thread()]
        return where_threads_wait([*self._threads.values(), *others])

    def _watch(self, started: float) -> None:
        """The main thread: status lines, the health file, the duration limit."""
        last_status = time.monotonic()
        last: dict[str, dict[str, int]] = {}
        while not self.stop.is_set():
            now = time.monotonic()
            if self.options.duration is not None and now - started >= self.options.duration:
                log.info("--duration %.0f s reached; stopping", self.options.duration)
                return
            self._touch_health()
            if now - last_status >= STATUS_EVERY_S:
                last = self._log_status(last)
                last_status = now
            wait = HEALTH_EVERY_S
            if self.options.duration is not None:
                wait = min(wait, max(0.0, started + self.options.duration - now))
            self.stop.wait(wait)
        log.info("stopping: finishing the current batches")

    def _supervise(self, name: str, component: Component) -> None:
        backoff = 1.0
        stop = self._stops[name]
        while not stop.is_set():
            try:
                component.run(stop)
                return
            except Exception as exc:  # noqa: BLE001 - a component restarts, the process stays
                if stop.is_set():  # gave up a bounded wait to stop: nothing to restart
                    log.warning("%s stopped with %s: %s (what it had not finished is done on "
                                "the next start)", name, type(exc).__name__, short(exc))
                    return
                # The exception text can quote SQL parameters (personal data): first line and
                # the stack frames only.
                log.error("%s failed: %s: %s; restarting in %.0f s\n%s", name,
                          type(exc).__name__, short(exc), backoff,
                          "".join(traceback.format_tb(exc.__traceback__)).rstrip())
                stop.wait(backoff)
                backoff = min(30.0, backoff * 2)

    def _touch_health(self) -> None:
        path = self.settings.health_file
        if path and all(t.is_alive() for t in self._threads.values()):
            Path(path).touch()

    def _log_status(self, last: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        current = {name: {k: v for k, v in vars(c.stats).items() if isinstance(v, int)}
                   for name, c in self.components.items()}
        parts = []
        for name, figures in current.items():
            before = last.get(name, {})
            moved = {k: v - before.get(k, 0) for k, v in figures.items()}
            parts.append(f"{name} " + (" ".join(f"{k}+{v}" for k, v in moved.items() if v)
                                        or "idle"))
        log.info("last %.0f s: %s", STATUS_EVERY_S, "; ".join(parts))
        return current

    # -- the exit summary -----------------------------------------------------------------
    def summary(self, seconds: float) -> dict[str, Any]:
        document: dict[str, Any] = {
            "seconds": round(seconds, 1),
            "components": {name: dataclasses.asdict(c.stats)
                           for name, c in self.components.items()},
        }
        try:
            document["record"] = record_summary(self.app)
        except Exception as exc:  # noqa: BLE001 - the summary must not hide the exit
            document["record"] = {"error": short(exc)}
        # Tansu answers "latest offset" with the last batch's base offset + 1, so a lag
        # figure is only given on a real Kafka cluster.
        if "consumer" in self.components and self._broker is None:
            document["consumer_lag"] = consumer_lag(self.settings)
        return document


def record_summary(app: App, now: datetime | None = None) -> dict[str, Any]:
    """The backlog (docs/contract.md `complaints backlog`) and what is still to leave the record."""
    now = now or datetime.now(UTC)
    with app.sessions() as session:
        backlog = queries.backlog(session, now, app.procedure.calendar)
        unpublished = session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.published_at.is_(None)))
        due = session.scalar(select(func.count()).select_from(Deadline).where(
            Deadline.fired_at.is_(None), Deadline.due_at <= now))
        rejections = session.scalar(select(func.count()).select_from(Rejection))
    return {"as_of": backlog["as_of"],
            "by_state": {k: v for k, v in backlog["by_state"].items() if v},
            "overdue": {k: v for k, v in backlog["overdue"].items() if v},
            "outbox_unpublished": unpublished, "deadlines_due_unfired": due,
            "rejections": rejections, "undelivered_letters": backlog["undelivered_letters"]}


def _any_broker_answers(settings: Settings, timeout_s: float = 0.5) -> bool:
    """Whether a TCP connection to one of the bootstrap servers opens."""
    for server in (settings.bootstrap_servers or "").split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def consumer_lag(settings: Settings) -> dict[str, int] | None:
    """Records on the input topics not yet committed by the group, per topic."""
    if not _any_broker_answers(settings):
        # The stop is bounded: with the broker gone, the two clients below would spend
        # seconds each failing to bootstrap.
        log.debug("consumer lag unavailable: no broker answers")
        return None
    try:
        # Bounded: this runs during the stop, perhaps with the broker gone.
        client = {**settings.client_config(), "request_timeout_ms": 2000,
                  "bootstrap_timeout_ms": 2000}
        admin = KafkaAdminClient(**client, client_id="complaints-summary")
        try:
            committed = admin.list_group_offsets({settings.group_id: None})[settings.group_id]
        finally:
            admin.close()
        probe = KafkaConsumer(**client, client_id="complaints-summary", enable_auto_commit=False)
        try:
            topics = (settings.topics.events, settings.topics.deadlines)
            partitions = [TopicPartition(t, p) for t in topics
                          for p in (probe.partitions_for_topic(t) or ())]
            ends = probe.end_offsets(partitions)
        finally:
            probe.close()
    except Exception as exc:  # noqa: BLE001 - a figure for the summary only
        log.debug("consumer lag unavailable: %s", short(exc))
        return None
    lag: dict[str, int] = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - (done.offset if done else 0))
    return lag


def human_summary(document: dict[str, Any]) -> str:
    lines = [f"ran {document['seconds']} s"]
    for name, figures in document["components"].items():
        lines.append(f"  {name}: " + ", ".join(f"{k} {_figure(k, v)}"
                                               for k, v in figures.items()))
    record = document.get("record", {})
    if "by_state" in record:
        states = ", ".join(f"{k} {v}" for k, v in record["by_state"].items()) or "none"
        overdue = ", ".join(f"{k} {v}" for k, v in record["overdue"].items()) or "none"
        lines += [f"backlog as of {record['as_of']}", f"  complaints by state: {states}",
                  f"  overdue deadlines: {overdue}",
                  f"  deadlines due, not yet fired: {record['deadlines_due_unfired']}",
                  f"  outbox rows not yet published: {record['outbox_unpublished']}",
                  f"  rejections stored: {record['rejections']}",
                  f"  letters not yet delivered: {record.get('undelivered_letters', 0)}"]
    if document.get("consumer_lag") is not None:
        lag = ", ".join(f"{k} {v}" for k, v in document["consumer_lag"].items())
        lines.append(f"  consumer lag: {lag}")
    return "\n".join(lines)


def _figure(name: str, value: Any) -> str:
    """A counter as it is; an instant (`..._at`, seconds since the epoch) as UTC ISO-8601."""
    if name.endswith("_at") and isinstance(value, float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    return str(value)
