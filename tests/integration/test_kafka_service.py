"""The Kafka runtime against the real embedded broker, on SQLite and PostgreSQL.

Events published to `complaints.events` end in the same record as the same events through
`complaints ingest`; the relay puts every outbox row on its topic; the timer service turns
due deadlines into messages the consumer fires; bad messages (not JSON, binary, 2 MiB, wrong
types), sent compressed and with headers, are rejected onto `complaints.rejected` while every
good one is applied; a database failure mid-batch is retried and a record that keeps failing
is quarantined, never stopping the loop.

Every test uses its own topic prefix and consumer group on the session's broker.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from consumers.broker import FAST_GROUP_CONSUMER_CONFIG, EmbeddedBroker
from consumers.cli import main
from consumers.contract.models import (
    LIFECYCLE_MESSAGES,
    DeadlineDue,
    LetterIssued,
    MessageRejected,
)
from consumers.file_ingest import ingest_file
from consumers.outbox_relay import OutboxRelay
from consumers.publish import publish
from consumers.settings import TOPICS, Settings, Topics
from consumers.timer_service import TimerService
from consumers.workflow_consumer import WorkflowConsumer
from tests.builders import assigned, event, received, reopened, resolved, simple, write_jsonl
from workflow.bootstrap import App, bootstrap
from workflow.schema import (
    Complaint,
    Deadline,
    HistoryEntry,
    Letter,
    OutboxMessage,
    ProcessedEvent,
    Rejection,
)
from workflow.service import Message, Outcome
from workflow.uow import UnitOfWork

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

Record = Any


# -- helpers --------------------------------------------------------------------------------


def service_settings(broker: EmbeddedBroker, partitions: int = 3) -> Settings:
    """Settings with a fresh topic prefix and group; the topics are created."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    topics = Topics(prefix)
    for logical, spec in TOPICS.items():
        broker.create_topics([topics.name(logical)], partitions=min(partitions, spec.partitions))
    return Settings(bootstrap_servers=broker.bootstrap_servers, topics=topics,
                    group_id=f"{prefix}group")


def fast_consumer(app: App, settings: Settings, **kwargs: Any) -> WorkflowConsumer:
    return WorkflowConsumer(app, settings, config=dict(FAST_GROUP_CONSUMER_CONFIG), **kwargs)


@contextmanager
def running(*components: Any) -> Iterator[None]:
    """Run components in threads; stop them in the order given (the relay last)."""
    stops = [threading.Event() for _ in components]
    errors: list[BaseException] = []

    def target(component: Any, stop: threading.Event) -> None:
        try:
            component.run(stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(c, s), daemon=True)
               for c, s in zip(components, stops, strict=True)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for stop, thread in zip(stops, threads, strict=True):
            stop.set()
            thread.join(timeout=30)
    assert not errors, errors


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.2)


def count(app: App, model: Any, *where: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def producer_for(broker: EmbeddedBroker, **config: Any) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5,
                         max_request_size=4 * 1024 * 1024, **config)


def read_topic(broker: EmbeddedBroker, topic: str, expected: int,
               timeout: float = 30.0, *,
               done: Callable[[list[Record]], bool] | None = None) -> list[Record]:
    """Every record of `topic` from the beginning, once `expected` have arrived (or, with
    `done`, once it says so: re-sent duplicates must not count towards what is awaited)."""
    finished = done or (lambda got: len(got) >= expected)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not finished(records) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=300).values():  # anything beyond `expected`
            records.extend(batch)
    finally:
        consumer.close()
    return records


def header(record: Record, name: str) -> str | None:
    values = [v for k, v in record.headers or [] if k == name]
    return values[0].decode() if values else None


def iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


def scenario(now: datetime) -> list[dict[str, Any] | str]:
    """Every event type, each complaint's events within the last hour: no deadline is due by
    the wall clock or by event time, so online and offline processing must agree exactly."""
    t = [iso(now - timedelta(minutes=60 - m)) for m in range(60)]
    return [
        received("e1", "K-1", t[0], channel="telephone"),
        assigned("e2", "K-1", t[1]),
        simple("complaint.acknowledged", "e3", "K-1", t[2]),
        simple("complaint.contact_logged", "e4", "K-1", t[3]),
        simple("complaint.escalation_requested", "e5", "K-1", t[4]),
        simple("complaint.senior_manager_response", "e6", "K-1", t[5]),
        simple("complaint.dissatisfied", "e7", "K-1", t[6]),
        simple("complaint.deadlock_reached", "e8", "K-1", t[7]),
        simple("complaint.referred_to_ombudsman", "e9", "K-1", t[8]),
        simple("complaint.ombudsman_decision", "e10", "K-1", t[9]),
        simple("complaint.remedy_implemented", "e11", "K-1", t[10]),
        received("e20", "K-2", t[0], channel="email", handler={"id": "h-2", "name": "Ali"}),
        resolved("e21", "K-2", t[5]),
        reopened("e22", "K-2", t[12]),
        simple("complaint.recategorised", "e23", "K-2", t[13]),
        resolved("e24", "K-2", t[20]),
        received("e30", "K-3", t[1], channel="webchat", category="B22",
                 other_explanation="Smart meter app"),
        simple("complaint.withdrawn", "e31", "K-3", t[15]),
        received("e40", "K-4", t[2], source="citizens_advice", duplicate_of="K-1"),
        received("e50", "K-5", t[3], channel="letter"),
        assigned("e2", "K-1", t[1]),  # a duplicate delivery
        resolved("e51", "K-404", t[4]),  # unknown complaint: rejected
        event("contact.received", "e60", t[5], contact_id="call-1", channel="telephone",
              kind="enquiry"),
        event("accounts.snapshot", "e61", t[6], as_of="2026-10-31",
              electricity_accounts=81000, gas_accounts=62000),
    ]


def record_of(app: App) -> dict[str, Any]:
    """The record, without what depends on processing time or row order across complaints."""
    with app.sessions() as s:
        complaints = {c.complaint_id: {k: v for k, v in vars(c).items()
                                       if not k.startswith("_")}
                      for c in s.scalars(select(Complaint))}
        history: dict[str, list[tuple[Any, ...]]] = {}
        for h in s.scalars(select(HistoryEntry).order_by(HistoryEntry.id)):
            history.setdefault(h.complaint_id, []).append(
                (h.at, h.event_id, h.type, h.from_state, h.to_state, h.cycle, h.detail))
        outbox = {o.event_id: (o.topic, o.key, o.payload) for o in s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic != "rejected"))}
        deadlines = {(d.deadline_key, d.kind, d.cycle, d.due_at, d.cause, d.fired_at)
                     for d in s.scalars(select(Deadline))}
        letters = {(x.letter_id, x.dedupe_key, x.kind, x.cycle, x.issued_at, x.cause)
                   for x in s.scalars(select(Letter))}
        processed = set(s.scalars(select(ProcessedEvent.event_id)))
        reasons = Counter(s.scalars(select(Rejection.reason)))
    return {"complaints": complaints, "history": history, "outbox": outbox,
            "deadlines": deadlines, "letters": letters, "processed": processed,
            "rejection_reasons": reasons}


# -- events published = events ingested ------------------------------------------------------


def test_published_events_give_the_record_of_an_offline_ingest(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path
) -> None:
    documents = scenario(datetime.now(UTC))
    path = write_jsonl(tmp_path / "events.jsonl", documents)
    offline = bootstrap(f"sqlite:///{tmp_path / 'offline.db'}", "kilowatt-connect")
    report = ingest_file(offline, path)
    assert (report.applied, report.duplicates, report.rejected) == (22, 1, 1)

    settings = service_settings(kafka_broker)
    app = bootstrap(db_url, "kilowatt-connect")
    lines = path.read_bytes().splitlines()
    # K-4 is a duplicate_of K-1, on another partition: it is sent once K-1 is applied, as a
    # contact centre sees the original before recording a duplicate of it.
    later = [line for line in lines if b'"K-4"' in line]
    producer = producer_for(kafka_broker)
    publish([line for line in lines if line not in later], settings.topics.events, producer)
    consumer = fast_consumer(app, settings)
    relay = OutboxRelay(app, settings, interval=0.05)
    timer = TimerService(app, settings, interval=0.2)
    with running(consumer, timer, relay):
        wait_until(lambda: count(app, Complaint, Complaint.complaint_id == "K-1") == 1)
        publish(later, settings.topics.events, producer)
        producer.close()
        wait_until(lambda: consumer.stats.records == len(documents), what="all records")
        wait_until(lambda: count(app, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0,
                   what="the outbox relayed")
    assert (consumer.stats.applied, consumer.stats.duplicates, consumer.stats.rejected) == (
        22, 1, 1)
    assert timer.stats.published == 0, "nothing is due yet"

    online, expected = record_of(app), record_of(offline)
    for part in ("complaints", "history", "outbox", "deadlines", "letters", "processed",
                 "rejection_reasons"):
        assert online[part] == expected[part], part
    assert {cid: c["state"] for cid, c in online["complaints"].items()} == {
        "K-1": "resolved", "K-2": "resolved", "K-3": "closed", "K-4": "duplicate",
        "K-5": "received"}
    assert len(expected["letters"]) >= 2, "the scenario issues letters (deadlock, outcome)"

    # Every outbox row reached its topic, with its event_id, keyed by complaint id.
    outbox = expected["outbox"]
    for logical in ("lifecycle", "letters"):
        rows = {eid: row for eid, row in outbox.items() if row[0] == logical}
        records = read_topic(kafka_broker, settings.topics.name(logical), len(rows))
        by_id = {header(r, "event_id"): r for r in records}
        assert set(by_id) == set(rows), logical
        for event_id, (_, key, payload) in rows.items():
            assert by_id[event_id].key == key.encode()
            assert json.loads(by_id[event_id].value) == payload
            _check_contract(logical, payload)
    rejected = read_topic(kafka_broker, settings.topics.rejected, 1)
    assert len(rejected) == 1
    message = MessageRejected.model_validate(json.loads(rejected[0].value))
    assert message.reason == "unknown complaint K-404"
    assert message.key.data == "K-404" and rejected[0].key == b"K-404"
    app.engine.dispose()
    offline.engine.dispose()


def _check_contract(logical: str, payload: dict[str, Any]) -> None:
    """Each published payload is described by the contract's model for it."""
    if logical == "letters":
        LetterIssued.model_validate(payload)
        return
    models = {m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
              for m in LIFECYCLE_MESSAGES}
    assert payload["type"] in models, f"{payload['type']} is missing from the contract"
    models[payload["type"]].model_validate(payload)


# -- bad messages --------------------------------------------------------------------------


def test_bad_messages_are_rejected_onto_the_topic_and_good_ones_applied(
    kafka_broker: EmbeddedBroker, db_url: str
) -> None:
    now = datetime.now(UTC)
    # (not K-4: a duplicate_of names another complaint, whose partition may be behind)
    good = [json.dumps(d).encode() for d in scenario(now)[:20] if d["complaint_id"] != "K-4"]
    huge = json.dumps({"event_id": "big", "type": "complaint.withdrawn",
                       "occurred_at": iso(now), "complaint_id": "K-3",
                       "summary": "x" * (2 * 1024 * 1024)}).encode()
    bad: list[tuple[bytes | None, str]] = [
        (b"not json at all", "not JSON"),
        (bytes(range(256)) * 4, "not UTF-8"),
        (huge, "over the 1 MiB limit"),
        (json.dumps(event("accounts.snapshot", "bad-types", iso(now), as_of="2026-10-31",
                          electricity_accounts="many", gas_accounts=1.5)).encode(),
         "electricity_accounts"),
        (json.dumps(event("complaint.teleported", "bad-type", iso(now), "K-1")).encode(),
         "unknown event type"),
        (json.dumps(received("bad-cat", "K-9", iso(now), category="B99")).encode(), "B99"),
        (b'["a", "list"]', "not a JSON object"),
        (None, "not JSON"),  # a tombstone: no value at all
    ]
    settings = service_settings(kafka_broker)
    codecs = [None, "gzip", "snappy", "lz4", "zstd"]
    producers = {c: producer_for(kafka_broker, compression_type=c) for c in codecs}
    interleaved: list[bytes | None] = []
    for n, raw in enumerate(good):
        interleaved.append(raw)
        if n < len(bad):
            interleaved.append(bad[n][0])
    for n, raw in enumerate(interleaved):
        key = b"K-3" if raw is huge else b"bad" if raw is None or raw[:1] != b"{" else (
            (json.loads(raw).get("complaint_id") or json.loads(raw)["event_id"]).encode())
        # One producer per key keeps each complaint's events in order; keys spread the codecs.
        producers[codecs[sum(key) % len(codecs)]].send(
            settings.topics.events, key=key, value=raw,
            headers=[("source-system", b"crm"), ("trace", bytes([n, 255]))])
    for producer in producers.values():
        producer.flush()
        producer.close()

    app = bootstrap(db_url, "kilowatt-connect")
    consumer = fast_consumer(app, settings)
    relay = OutboxRelay(app, settings, interval=0.05)
    with running(consumer, relay):
        wait_until(lambda: consumer.stats.records == len(interleaved), what="all records")
        wait_until(lambda: count(app, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0)
    assert consumer.stats.applied == len(good)
    assert consumer.stats.rejected == len(bad)
    assert count(app, Rejection) == len(bad)

    records = read_topic(kafka_broker, settings.topics.rejected, len(bad))
    assert len(records) == len(bad)
    messages = [MessageRejected.model_validate(json.loads(r.value)) for r in records]
    for _, expected_reason in bad:
        matches = [m for m in messages if expected_reason in m.reason]
        assert matches, f"no rejection mentions {expected_reason!r}: {[m.reason for m in messages]}"
    by_reason = {m.reason: m for m in messages}
    binary = next(m for r, m in by_reason.items() if "UTF-8" in r)
    assert binary.raw.encoding == "base64" and binary.raw_size == 1024
    big = next(m for r, m in by_reason.items() if "1 MiB" in r)
    assert big.raw_truncated and big.raw_size == len(huge)
    assert all(m.headers[0].key == "source-system" and m.headers[1].encoding == "base64"
               for m in messages)
    positions = {(m.partition, m.offset) for m in messages}
    assert len(positions) == len(bad)
    with app.sessions() as session:
        stored = {(r.source, r.position) for r in session.scalars(select(Rejection))}
    assert stored == {(settings.topics.events, f"{p}/{o}") for p, o in positions}
    app.engine.dispose()


# -- timers ------------------------------------------------------------------------------------


def test_due_deadlines_are_published_fired_once_and_their_letters_relayed(
    kafka_broker: EmbeddedBroker, db_url: str
) -> None:
    now = datetime.now(UTC)
    settings = service_settings(kafka_broker)
    app = bootstrap(db_url, "kilowatt-connect")
    # Received 20 days ago and never touched: acknowledgement and progress update are due;
    # (v2) the progress update, fired, creates the next, 10 x 24 h after its own due instant:
    # 20 days after the receipt, so due now too (the third, at 30 days, is not).
    events = [received(f"old-{n}", f"OLD-{n}", iso(now - timedelta(days=20, minutes=n)))
              for n in range(5)]
    events.append(received("new-0", "NEW-0", iso(now)))
    producer = producer_for(kafka_broker)
    publish([json.dumps(e).encode() for e in events], settings.topics.events, producer)
    producer.close()

    consumer = fast_consumer(app, settings)
    timer = TimerService(app, settings, interval=0.2)
    relay = OutboxRelay(app, settings, interval=0.05)
    due = Deadline.fired_at.is_(None), Deadline.due_at <= now
    with running(consumer, timer, relay):
        wait_until(lambda: consumer.stats.applied == len(events), what="the receipts")
        wait_until(lambda: count(app, Deadline, *due) == 0, what="due deadlines fired")
        wait_until(lambda: count(app, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0)
        # A second round finds nothing: fired rows are never claimed again.
        assert timer.run_once() == 0
    # (ack + 2 progress updates) x 5
    assert count(app, Deadline, Deadline.fired_at.is_not(None)) == 15
    assert timer.stats.published == 15
    assert count(app, Deadline, Deadline.complaint_id == "NEW-0",
                 Deadline.fired_at.is_(None)) == 3, "the new complaint's deadlines wait"
    with app.sessions() as session:
        kinds = Counter(session.scalars(select(Letter.kind)))
    assert kinds == {"acknowledgement": 5, "progress_update": 10}
    letters = read_topic(kafka_broker, settings.topics.letters, 15)
    assert Counter(json.loads(r.value)["kind"] for r in letters) == kinds
    deadline_messages = read_topic(kafka_broker, settings.topics.deadlines, 15)
    assert len(deadline_messages) == 15
    for record in deadline_messages:
        message = DeadlineDue.model_validate(json.loads(record.value))
        assert record.key == message.complaint_id.encode()
        assert header(record, "event_id") == message.event_id == f"deadline:{message.deadline_key}"
    app.engine.dispose()


def test_timer_republishes_a_deadline_left_unfired_and_the_fire_stays_single(
    kafka_broker: EmbeddedBroker, sqlite_url: str
) -> None:
    # Fixed instants (both clocks are injected), so the due set does not depend on the day the
    # test runs: received Monday 2 March 2026 12:00; Kilowatt Connect's acknowledgement (3
    # working days) is due by Thursday 5 March; the progress update (10 working days, 16
    # March) and the eight weeks are not due on Monday 9 March.
    now = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    settings = service_settings(kafka_broker)
    app = bootstrap(sqlite_url, "kilowatt-connect")
    uow = app.unit_of_work()
    app.processor(_Fixed(now), uow).process(
        json.dumps(received("r-1", "R-1", iso(now - timedelta(days=7)))).encode(), "test", "1")
    uow.commit()
    uow.close()

    class Later:
        def __init__(self) -> None:
            self.at = now

        def now(self) -> datetime:
            return self.at

    clock = Later()
    timer = TimerService(app, settings, clock=clock, republish_after=timedelta(minutes=10))
    assert timer.run_once() == 1  # the acknowledgement (due since 5 March)
    assert timer.run_once() == 0, "published and not yet stale"
    clock.at = now + timedelta(minutes=11)  # no consumer ran: the message may be lost
    assert timer.run_once() == 1 and timer.stats.republished == 1
    timer.close()

    consumer = fast_consumer(app, settings)
    with running(consumer):
        wait_until(lambda: consumer.stats.records == 2, what="both copies")
    assert (consumer.stats.applied, consumer.stats.duplicates) == (1, 1)
    assert count(app, Letter) == 1
    app.engine.dispose()


class _Fixed:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


# -- failures ------------------------------------------------------------------------------


class _Flaky:
    """Wraps the real processor: a batch holding a given event fails as a database outage or
    a bug outside the workflow's own guard would."""

    def __init__(self, inner: Any, script: dict[str, Callable[[], None]]) -> None:
        self.inner, self.script = inner, script

    def run_batch(self, messages: list[Message]) -> list[Outcome]:
        for event_id, action in self.script.items():
            if any(f'"{event_id}"'.encode() in m.raw for m in messages):
                action()
        return self.inner.run_batch(messages)


def test_a_failed_batch_is_retried_and_a_poison_record_quarantined(
    kafka_broker: EmbeddedBroker, sqlite_url: str
) -> None:
    now = datetime.now(UTC)
    settings = service_settings(kafka_broker, partitions=1)
    app = bootstrap(sqlite_url, "kilowatt-connect")
    events = [received(f"f-{n}", f"F-{n}", iso(now)) for n in range(30)]
    producer = producer_for(kafka_broker)
    publish([json.dumps(e).encode() for e in events], settings.topics.events, producer)
    producer.close()

    outage = {"left": 2}

    def database_outage() -> None:
        if outage["left"]:
            outage["left"] -= 1
            raise OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    def bug() -> None:
        raise KeyError("a bug that follows this one message")

    def factory(uow: UnitOfWork) -> Any:
        return _Flaky(app.processor(_Fixed(now), uow), {"f-10": database_outage, "f-20": bug})

    consumer = fast_consumer(app, settings, processor_factory=factory)
    with running(consumer):
        wait_until(lambda: count(app, ProcessedEvent) == 29 and count(app, Rejection) == 1,
                   timeout=90, what="all but the poison applied, the poison quarantined")
    assert consumer.stats.quarantined == 1 and consumer.stats.retries >= 2
    with app.sessions() as session:
        rejection = session.scalars(select(Rejection)).one()
        applied = set(session.scalars(select(ProcessedEvent.event_id)))
    assert rejection.reason == ("internal error while processing: KeyError: "
                                "'a bug that follows this one message'")
    assert applied == {f"f-{n}" for n in range(30)} - {"f-20"}
    assert count(app, OutboxMessage, OutboxMessage.topic == "rejected") == 1
    app.engine.dispose()


# -- the command line ------------------------------------------------------------------------


def test_publish_command_keys_each_line_and_up_init_creates_the_topics(
    kafka_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = f"p{uuid.uuid4().hex[:8]}."
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "COMPLAINTS_TOPIC_PREFIX": prefix}
    runner = CliRunner()
    init = runner.invoke(main, ["up", "--init", "--db", f"sqlite:///{tmp_path / 'i.db'}"],
                         env=env)
    assert init.exit_code == 0, init.output
    created = json.loads(init.stdout)["topics_created"]
    assert sorted(created) == sorted(Topics(prefix).all().values())
    assert set(Topics(prefix).all().values()) <= kafka_broker.list_topics()

    now = iso(datetime.now(UTC))
    path = write_jsonl(tmp_path / "in.jsonl", [
        received("p1", "P-1", now), "",
        event("contact.received", "p2", now, contact_id="call-9", channel="email",
              kind="enquiry"),
        event("accounts.snapshot", "p3", now, as_of="2026-10-31", electricity_accounts=1,
              gas_accounts=2),
        "not json",
    ])
    result = runner.invoke(main, ["publish", str(path), "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"published": 4, "unkeyed": 1,
                                         "topic": f"{prefix}complaints.events"}
    records = read_topic(kafka_broker, f"{prefix}complaints.events", 4)
    assert sorted((r.key or b"") for r in records) == [b"", b"P-1", b"call-9", b"p3"]

    missing = runner.invoke(main, ["publish", str(tmp_path / "nope.jsonl")], env=env)
    assert missing.exit_code == 2
    no_broker = runner.invoke(main, ["publish", str(path)], env={"KAFKA_BOOTSTRAP_SERVERS": ""})
    assert no_broker.exit_code == 2


def test_a_relay_dying_between_publish_and_mark_republishes_the_same_event_ids(
    kafka_broker: EmbeddedBroker, sqlite_url: str
) -> None:
    now = datetime.now(UTC)
    settings = service_settings(kafka_broker)
    app = bootstrap(sqlite_url, "kilowatt-connect")
    uow = app.unit_of_work()
    app.processor(_Fixed(now), uow).run_batch(
        [Message(json.dumps(received("o-1", "O-1", iso(now))).encode(), "test", "1")])
    uow.close()
    rows = count(app, OutboxMessage)
    assert rows >= 3

    class DiesBeforeMarking:
        def now(self) -> datetime:  # asked for the published_at, after the broker's ack
            raise SystemExit("killed")

    relay = OutboxRelay(app, settings, clock=DiesBeforeMarking())  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        relay.run_once()
    relay.close()
    assert count(app, OutboxMessage, OutboxMessage.published_at.is_(None)) == rows
    again = OutboxRelay(app, settings)
    assert again.run_once() == rows
    again.close()
    assert count(app, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0
    records = read_topic(kafka_broker, settings.topics.lifecycle, 2 * rows)
    ids = Counter(header(r, "event_id") for r in records)
    assert len(ids) == rows and set(ids.values()) == {2}, "each sent twice, same event_id"
    app.engine.dispose()


def test_two_consumers_rebalancing_mid_stream_apply_every_event_once(
    kafka_broker: EmbeddedBroker, postgres_url: str
) -> None:
    """A second member joins mid-stream, then the first leaves: partitions move twice while
    both write to one PostgreSQL record, and nothing is lost or applied twice."""
    now = datetime.now(UTC)
    settings = dataclasses.replace(service_settings(kafka_broker, partitions=6),
                                   session_timeout_ms=3000)
    app = bootstrap(postgres_url, "kilowatt-connect")
    events: list[dict[str, Any]] = []
    for n in range(600):
        events += [received(f"rb-{n}-1", f"RB-{n}", iso(now - timedelta(minutes=5))),
                   assigned(f"rb-{n}-2", f"RB-{n}", iso(now - timedelta(minutes=4))),
                   resolved(f"rb-{n}-3", f"RB-{n}", iso(now - timedelta(minutes=3)))]
    producer = producer_for(kafka_broker)
    publish([json.dumps(e).encode() for e in events[:900]], settings.topics.events, producer)
    first, second = WorkflowConsumer(app, settings), WorkflowConsumer(app, settings)
    stop_first, stop_second = threading.Event(), threading.Event()
    threads = [threading.Thread(target=c.run, args=(s,), daemon=True)
               for c, s in ((first, stop_first), (second, stop_second))]
    threads[0].start()
    wait_until(lambda: first.stats.records > 0, what="the first member's first batch")
    threads[1].start()
    # The rest is published once the group has rebalanced, so the second member has records
    # to apply however fast the first is.
    wait_until(lambda: second.stats.rebalances > 0 and first.stats.rebalances > 1, timeout=90,
               what="the rebalance")
    publish([json.dumps(e).encode() for e in events[900:]], settings.topics.events, producer)
    wait_until(lambda: second.stats.records > 0, timeout=90, what="the second member's records")
    stop_first.set()  # leaves the group: its partitions move to the second member
    threads[0].join(30)
    wait_until(lambda: count(app, ProcessedEvent) == len(events), timeout=90,
               what="every event applied")
    stop_second.set()
    threads[1].join(30)
    producer.close()
    assert count(app, Rejection) == 0
    assert count(app, Complaint, Complaint.state == "resolved") == 600
    assert first.stats.applied + second.stats.applied == len(events)
    with app.sessions() as session:
        per_event = Counter(session.scalars(select(HistoryEntry.event_id)))
    assert set(per_event.values()) == {1}, "an event's history written twice"
    app.engine.dispose()
