"""The streaming aggregator: a faust-streaming app folding `complaints.lifecycle` and
`complaints.letters` into a table of complaint records, with the ops web server beside it.

One faust table, `complaints` (complaint id -> record, reporting/ops/records.py), is the only
state; the live counts are derived from it in memory (reporting/ops/view.py) and rebuilt after
every recovery. Both topics are keyed by complaint id and have the same partition count, so a
complaint's lifecycle events and letters land in the same partition number, and the table
partition that holds its record (faust writes a table change to the changelog partition of the
event being processed) is the same whichever topic the event came from.

Faust settings, and why (checked against Tansu, the embedded broker, and valid on Kafka):

- `processing_guarantee="at_least_once"`: Tansu has no transactions. Offsets are committed only
  after faust flushed the table's changelog writes, so a crash re-delivers events whose effect
  may already be in the changelog; each record keeps the digests of the events applied to it,
  so those are recognised and skipped (exactly once in effect).
- `store="memory://"`: the table is rebuilt from its changelog topic on start (no RocksDB to
  install or keep on disk).
- `topic_disable_leader=True`: no `__assignor-__leader` topic; one app, nothing to elect.
- The producer's buffer is `ChangelogBuffer`: faust's own flush can return with table writes
  still queued, and the offsets of their events are then committed anyway (its doc).
- `producer_max_batch_size=1` (`single_record_batches`, on with the embedded broker): Tansu
  0.6.0 reports a partition's high watermark as the base offset of its last record batch + 1,
  ignoring the other records of that batch, and faust reads a changelog only up to the high
  watermark when it recovers, so a last batch of several records would be partly skipped. One
  record per batch makes the reported watermark true. Kafka needs no such thing.
- Changelog compaction: faust creates `<group>-complaints-changelog` with
  `cleanup.policy=compact`. Tansu accepts the topic but its memory engine never compacts, so on
  the embedded broker recovery replays every update; it is also gone when the broker stops
  (memory only), and the aggregator then starts from the beginning of the (equally new) topics.
  On Kafka the changelog is compacted to one record per complaint.
- `broker_commit_interval=1.0`: at most about a second of events to re-read after a crash.
- `consumer_auto_offset_reset="earliest"`: a new group reads the topics from their start.

Run one aggregator per group: the view of an instance holds only its assigned partitions, and
`/health` shows how many that is.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import faust
from faust.exceptions import ProducerSendError
from faust.transport.producer import ProducerBuffer

from consumers.settings import Settings
from reporting.ops.records import Rules, Source
from reporting.ops.view import Aggregator, AggregatorStats
from reporting.web import (
    OpsState,
    bound_port,
    create_app,
    ensure_ops_token,
    serve,
    token_notice,
    web_address,
)
from workflow.procedure import Procedure, load_procedure

log = logging.getLogger(__name__)

TABLE: Final = "complaints"
NOISY_LOGGERS: Final = ("faust", "mode", "aiokafka", "kafka")
POLL_S: Final = 0.2
STOP_TIMEOUT_S: Final = 10.0  # faust's own stop; within COMPLAINTS_STOP_TIMEOUT_S
FLUSH_CHECK_S: Final = 1.0  # how often a waiting flush looks whether the producer stopped


class AggregatorError(RuntimeError):
    """The aggregator cannot run with this configuration (topics missing or mismatched)."""


@dataclass(frozen=True)
class AggregatorConfig:
    group: str = "complaints-aggregator"  # faust app id = consumer group; the prefix is added
    session_timeout_s: float = 10.0
    heartbeat_s: float = 3.0
    commit_interval_s: float = 1.0
    single_record_batches: bool = False  # the Tansu high-watermark workaround (module doc)
    changelog_replication: int = 1
    restart_backoff_s: float = 1.0

    def app_id(self, settings: Settings) -> str:
        return settings.topics.prefix + self.group


# --------------------------------------------------------------------------- Kafka plumbing
class ChangelogBuffer(ProducerBuffer):
    """Faust's producer buffer (where the table's changelog writes wait to be sent), with a
    flush that waits until each of them is acknowledged.

    Faust commits offsets right after `producer.flush()`, which starts with this flush. Faust's
    own (0.15) gives up as soon as one write takes more than 0.1 s to hand to the client, as on
    a loaded machine or with one record per batch, and the commit then covers events whose
    changelog writes are still queued: a crash before they are sent loses those events (their
    offsets are committed, their effect is in no changelog). A write the broker refused is only
    logged by faust, and its event's offset committed as well.

    This flush returns once every write queued before it was acknowledged, and raises if one
    failed, then and at every later flush, so that no commit is made from then on: faust
    crashes the app on the commit's error, `run_async` starts a new one, and that re-reads the
    events from the last good commit. Writes queued after the flush started belong to events
    that commit does not cover.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unsettled: set[asyncio.Future[Any]] = set()
        self.failed: list[BaseException] = []

    def put(self, fut: Any) -> None:
        self.unsettled.add(fut)
        fut.add_done_callback(self._settled)
        super().put(fut)

    def _settled(self, fut: asyncio.Future[Any]) -> None:
        self.unsettled.discard(fut)
        failure = asyncio.CancelledError() if fut.cancelled() else fut.exception()
        if failure is not None:
            self.failed.append(failure)

    async def flush(self) -> None:
        waiting = set(self.unsettled)
        while waiting:
            if self.state != "running":
                raise RuntimeError("Cannot flush: the producer is not running")
            _, waiting = await asyncio.wait(waiting, timeout=FLUSH_CHECK_S)
        if self.failed:  # kept: a later commit would cover the failed write's event too
            failure, count = self.failed[0], len(self.failed)
            raise ProducerSendError(f"{count} changelog write(s) failed "
                                    f"({type(failure).__name__})") from failure

    async def on_stop(self) -> None:
        # Stopping: faust's flush, which gives what is queued a last chance to go and does not
        # wait on a broker that may be gone (the stop is bounded, `_run_faust`).
        await super().flush()


def _use_changelog_buffer(app: faust.App) -> None:
    producer = app.producer
    buffer = ChangelogBuffer(loop=producer.loop, beacon=producer.beacon)
    buffer.app = app
    producer.buffer = buffer  # the producer starts it with itself (a runtime dependency)


def _credentials(security: Mapping[str, str]) -> Any:
    protocol = security.get("security_protocol", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=security.get("ssl_cafile"))
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=security.get("sasl_plain_username"),
        password=security.get("sasl_plain_password"),
        mechanism=security.get("sasl_mechanism", "PLAIN"),
        ssl_context=context,
    )


def source_partitions(settings: Settings) -> int:
    """The partition count shared by the lifecycle and letters topics.

    The table is co-partitioned with both (module doc), so they must agree; a mismatch is a
    deployment error worth stopping for, not something to paper over.
    """
    from kafka import KafkaConsumer  # deferred: only needed at start

    # Bounded (the broker may be gone): a stop waits for this call.
    probe = KafkaConsumer(**settings.client_config(), client_id="complaints-aggregator-probe",
                          enable_auto_commit=False, bootstrap_timeout_ms=5000,
                          request_timeout_ms=5000)
    try:
        found: dict[str, int] = {}
        for topic in (settings.topics.lifecycle, settings.topics.letters):
            partitions = probe.partitions_for_topic(topic)
            if not partitions:
                raise AggregatorError(f"topic {topic} does not exist (create it with "
                                      "`complaints up --init`)")
            found[topic] = len(partitions)
    finally:
        probe.close()
    if len(set(found.values())) != 1:
        raise AggregatorError(
            "complaints.lifecycle and complaints.letters must have the same number of "
            f"partitions (found {found})")
    return next(iter(found.values()))


def build_app(settings: Settings, rules: Rules, config: AggregatorConfig,
              partitions: int, state: OpsState) -> tuple[faust.App, Aggregator]:
    """The faust app with its table and agent, and the aggregator folding into that table."""
    servers = settings.client_config()["bootstrap_servers"]
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in servers],
        "store": "memory://",
        "web_enabled": False,  # reporting.web serves HTTP
        "autodiscover": False,
        "topic_disable_leader": True,
        "processing_guarantee": "at_least_once",
        "topic_partitions": partitions,
        "topic_replication_factor": config.changelog_replication,
        "table_standby_replicas": 0,
        "broker_session_timeout": config.session_timeout_s,
        "broker_heartbeat_interval": config.heartbeat_s,
        "broker_commit_interval": config.commit_interval_s,
        "consumer_auto_offset_reset": "earliest",
    }
    credentials = _credentials(settings.kafka_security)
    if credentials is not None:
        options["broker_credentials"] = credentials
    if config.single_record_batches:
        options["producer_max_batch_size"] = 1
    app = faust.App(config.app_id(settings), **options)
    _use_changelog_buffer(app)
    table = app.Table(TABLE, default=None, partitions=partitions, key_type=str,
                      help="Complaint records folded from the lifecycle and letters topics")
    aggregator = Aggregator(rules, store=table)
    sources: dict[str, Source] = {settings.topics.lifecycle: "lifecycle",
                                  settings.topics.letters: "letters"}
    channel = app.topic(*sources, key_serializer="raw", value_serializer="raw")

    @app.agent(channel, name="fold")
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            aggregator.handle(sources[message.topic], event.value,
                              f"{message.topic}[{message.partition}]@{message.offset}")

    @table.on_recover
    async def recovered() -> None:
        # Runs after every (re)assignment's recovery, before the agent resumes: the view is
        # derived afresh from exactly the records this instance now holds.
        started = time.monotonic()
        total = aggregator.rebuild()
        # A million records are tens of millions of tracked containers; a full collection over
        # them would stall every request for a second or more. They hold no cycles, so the
        # collector is told to leave what exists now alone (freed objects still go by refcount).
        gc.freeze()
        assigned = app.assignor.assigned_actives()
        state.partitions_assigned = len({tp.partition for tp in assigned
                                         if tp.topic in sources})
        state.status = "running"
        log.info("aggregator recovered %d complaint record(s) from %s in %.1f s; %d of %d "
                 "partition(s) assigned", total, table.changelog_topic.get_topic_name(),
                 time.monotonic() - started, state.partitions_assigned, partitions)

    return app, aggregator


# --------------------------------------------------------------------------- running
async def _run_faust(app: faust.App, stop: threading.Event) -> None:
    """Run the app until `stop` (returns) or until it crashes (raises)."""
    starting = asyncio.ensure_future(app.start())
    try:
        while not stop.is_set():
            if app.crashed:
                raise AggregatorError(f"faust app crashed: {app.crash_reason!r}")
            if starting.done() and starting.exception() is not None:
                raise starting.exception()  # type: ignore[misc]
            await asyncio.sleep(POLL_S)
    finally:
        if not starting.done():
            starting.cancel()
        # Bounded: with the broker already gone, faust's final commit and flush would wait
        # for it forever, and its stop does not always give in to a cancel (so no wait_for,
        # which waits for the cancelled task to finish).
        stopping = asyncio.ensure_future(app.stop())
        done, _ = await asyncio.wait({stopping}, timeout=STOP_TIMEOUT_S)
        if not done:
            stopping.cancel()
            log.warning("faust app did not stop within %.0f s (broker gone?); leaving it",
                        STOP_TIMEOUT_S)
        elif stopping.exception() is not None:
            log.warning("faust app did not stop cleanly: %s",
                        type(stopping.exception()).__name__)


async def run_async(settings: Settings, procedure: Procedure, stop: threading.Event, *,
                    token: str, host: str, port: int,
                    config: AggregatorConfig | None = None,
                    state: OpsState | None = None,
                    on_listening: Callable[[int], None] | None = None) -> None:
    """The aggregator and the web server in the running loop, until `stop` is set.

    `on_listening(port)` is called once the server is bound (port 0 picks a free one).

    The web server stays up while the faust app restarts after a failure (with back-off), so
    `/health` can say what is happening.
    """
    config = config or AggregatorConfig()
    rules = Rules(procedure.calendar, procedure.eight_weeks_days)
    state = state or OpsState(procedure.calendar, Aggregator(rules, store={}),
                              delivery_paused=procedure.placeholders)
    state.aggregator.ready = False
    runner = await serve(create_app(state, token), host, port)
    state.web_port = bound_port(runner)
    log.info("ops web server on http://%s:%d/ (dashboard at /)", host, state.web_port)
    if on_listening is not None:
        on_listening(state.web_port)
    backoff = config.restart_backoff_s
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            try:
                partitions = await loop.run_in_executor(None, source_partitions, settings)
                state.partitions_total = partitions
                app, aggregator = build_app(settings, rules, config, partitions, state)
                # The counters run for the life of the process (status lines, the exit summary),
                # not from the last restart; the records are rebuilt from the changelog.
                aggregator.stats = state.aggregator.stats
                state.aggregator = aggregator
                state.status = "recovering"
                state.error = None
                await _run_faust(app, stop)
            except Exception as exc:  # noqa: BLE001 - restart, keep serving /health
                state.status = "restarting"
                state.restarts += 1
                # Type and first line only: a message could quote data.
                first_line = str(exc).splitlines()[0] if str(exc) else ""
                state.error = f"{type(exc).__name__}: {first_line}"
                log.error("aggregator failed (%s); restarting in %.0f s", state.error, backoff)
                deadline = time.monotonic() + backoff
                while not stop.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(POLL_S)
                backoff = min(30.0, backoff * 2)
            else:
                backoff = config.restart_backoff_s
    finally:
        state.status = "stopped"
        await runner.cleanup()


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Faust and aiokafka log every rebalance step at INFO; keep them to warnings."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
    # "producer buffer full" is faust applying back-pressure while the changelog catches up
    # (constant with one record per batch on the embedded broker): flow control, not a fault.
    buffer = logging.getLogger("faust.transport.producer")
    if buffer.level == logging.NOTSET:
        buffer.setLevel(logging.ERROR)


def run_aggregator(settings: Settings, stop: threading.Event, *,
                   procedure: Procedure | None = None, token: str | None = None,
                   host: str | None = None, port: int | None = None,
                   config: AggregatorConfig | None = None,
                   state: OpsState | None = None,
                   on_listening: Callable[[int], None] | None = None) -> None:
    """Blocking entry point: run the aggregator and the ops web server until `stop` is set.

    Runs its own event loop, so it can be the target of a thread. `token` defaults to
    COMPLAINTS_OPS_TOKEN (required then); host/port to COMPLAINTS_WEB_HOST/_PORT.
    """
    if token is None:
        token, generated = ensure_ops_token()
        if generated:
            raise AggregatorError("COMPLAINTS_OPS_TOKEN is not set (use "
                                  "reporting.web.ensure_ops_token to make one)")
    default_host, default_port = web_address()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # as asyncio.run does: faust and mode look it up
    try:
        loop.run_until_complete(run_async(
            settings, procedure or load_procedure(None), stop, token=token,
            host=host or default_host, port=default_port if port is None else port,
            config=config, state=state, on_listening=on_listening))
    finally:
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop, timeout_s: float = 3.0) -> None:
    """asyncio.run's clean-up, bounded: it waits for every task it cancels, and a faust or
    aiokafka task blocked on a dead broker may never finish (a stop must end in time)."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=timeout_s))
    left = sum(1 for task in pending if not task.done())
    if left:
        log.warning("%d aggregator task(s) still waiting on the broker at exit: left", left)
    asyncio.set_event_loop(None)
    loop.close()


class OpsService:
    """The aggregator and ops web server as a `complaints up` component (consumers.runtime).

    `run(stop)` blocks until `stop` is set; `stats` holds integer counters for the status line.
    With `announce_token` (a token generated for this run) the dashboard link and the token
    are printed on stderr once, when the server is bound: it exists nowhere else.
    """

    def __init__(self, settings: Settings, procedure: Procedure, *, token: str,
                 host: str | None = None, port: int | None = None,
                 config: AggregatorConfig | None = None, announce_token: bool = False,
                 delivery_paused: tuple[str, ...] | None = None,
                 record: Any = None, retention: Any = None) -> None:
        self.settings = settings
        self.procedure = procedure
        self.token = token
        self.host = host
        self.port = port
        self.config = config or AggregatorConfig()
        self._announce = announce_token
        rules = Rules(procedure.calendar, procedure.eight_weeks_days)
        # (v2) Placeholders stop delivery, except in the demo (the runtime says which).
        paused = procedure.placeholders if delivery_paused is None else delivery_paused
        self.state = OpsState(procedure.calendar, Aggregator(rules, store={}),
                              delivery_paused=paused)
        self.state.record = record  # the database, for the case file endpoint
        self.state.retention = retention  # the daily retention run's figures, for /metrics

    @property
    def stats(self) -> AggregatorStats:
        return self.state.aggregator.stats

    def run(self, stop: threading.Event) -> None:
        quiet_libraries()
        run_aggregator(self.settings, stop, procedure=self.procedure, token=self.token,
                       host=self.host, port=self.port, config=self.config, state=self.state,
                       on_listening=self._listening)

    def _listening(self, port: int) -> None:
        if self._announce:  # once, not again after a restart
            self._announce = False
            host = self.host or web_address()[0]
            print(token_notice(host, port, self.token), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """`python -m consumers.aggregator`: the aggregator and web server on their own (deploy/,
    tests). Reads the same environment as `complaints up`; needs KAFKA_BOOTSTRAP_SERVERS."""
    parser = argparse.ArgumentParser(prog="python -m consumers.aggregator",
                                     description=main.__doc__)
    parser.add_argument("--config", default=None, help="procedure [env COMPLAINTS_CONFIG]")
    parser.add_argument("--host", default=None, help="[env COMPLAINTS_WEB_HOST, 127.0.0.1]")
    parser.add_argument("--port", type=int, default=None, help="[env COMPLAINTS_WEB_PORT, 8080]")
    parser.add_argument("--group", default=AggregatorConfig.group)
    parser.add_argument("--session-timeout", type=float, default=AggregatorConfig.session_timeout_s)
    parser.add_argument("--heartbeat", type=float, default=AggregatorConfig.heartbeat_s)
    parser.add_argument("--embedded-broker", action="store_true",
                        help="the broker is Tansu: one record per batch (see module doc)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    quiet_libraries()
    if not settings.bootstrap_servers:
        print("error: set KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    token, generated = ensure_ops_token()
    host, port = web_address()
    host, port = args.host or host, port if args.port is None else args.port
    if generated:
        print(token_notice(host, port, token), file=sys.stderr, flush=True)
    config = replace(AggregatorConfig(), group=args.group, session_timeout_s=args.session_timeout,
                     heartbeat_s=args.heartbeat, single_record_batches=args.embedded_broker)
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    procedure = load_procedure(args.config or os.environ.get("COMPLAINTS_CONFIG") or None)
    run_aggregator(settings, stop, procedure=procedure, token=token, host=host, port=port,
                   config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
