"""End-to-end throughput: events published -> applied and committed in the database.

Publishes a realistic stream (bench/generate.py) to a fresh topic, then in the same run and
from the same broker:

* raw: a plain kafka-python consumer reading every message (the ceiling);
* end to end: the workflow consumer (group, decode, validate, apply, database commit, offset
  commit) on SQLite and on PostgreSQL, timed from its first record to its last commit.

Prints events/s, the ratio to the raw consume, and where the consumer's time went.

    .venv/bin/python -m bench.throughput --events 20000
    KAFKA_BOOTSTRAP_SERVERS=host:9092 .venv/bin/python -m bench.throughput  # a real cluster
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.generate import generate
from bench.pgschema import NoServer, scratch_schema
from consumers.broker import FAST_GROUP_CONSUMER_CONFIG, EmbeddedBroker
from consumers.gc_tuning import tune_garbage_collector
from consumers.publish import key_for
from consumers.settings import TOPICS, Settings, Topics
from consumers.workflow_consumer import WorkflowConsumer
from workflow.bootstrap import bootstrap


@contextmanager
def broker_servers() -> Iterator[tuple[str, EmbeddedBroker | None]]:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        yield servers, None
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers, broker


def publish(servers: str, topic: str, messages: list[bytes]) -> float:
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20, batch_size=256 * 1024)
    started = time.monotonic()
    for raw in messages:
        producer.send(topic, key=key_for(raw), value=raw)
    producer.flush()
    seconds = time.monotonic() - started
    producer.close()
    return seconds


def raw_consume(servers: str, topic: str, total: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, p)
                     for p in consumer.partitions_for_topic(topic) or ()])
    seen = 0
    started = time.monotonic()
    while seen < total:
        seen += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
    seconds = time.monotonic() - started
    consumer.close()
    return seconds


def end_to_end(servers: str, settings: Settings, db_url: str, total: int) -> dict[str, Any]:
    app = bootstrap(db_url, "kilowatt-connect")
    consumer = WorkflowConsumer(app, settings, config=dict(FAST_GROUP_CONSUMER_CONFIG))
    batch_s = [0.0]
    first: list[float] = []
    original = consumer._apply

    def apply(records: list[Any]) -> dict[str, int]:  # times the database part of a batch
        if not first:
            first.append(time.monotonic())
        started = time.perf_counter()
        try:
            return original(records)
        finally:
            batch_s[0] += time.perf_counter() - started

    consumer._apply = apply  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    while consumer.stats.records < total:
        time.sleep(0.02)
    done = time.monotonic()
    stop.set()
    thread.join(30)
    app.engine.dispose()
    seconds = done - first[0]
    return {"seconds": seconds, "with_join": done - started, "rate": total / seconds,
            "database_s": batch_s[0], "kafka_s": seconds - batch_s[0], "stats": consumer.stats}


@contextmanager
def database(name: str, scratch: str, label: str = "bench") -> Iterator[str]:
    """A fresh SQLite file in `scratch`, or a PostgreSQL schema dropped afterwards."""
    if name == "sqlite":
        yield f"sqlite:///{scratch}/{label}.db"
    else:
        with scratch_schema() as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=TOPICS["events"].partitions)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    tune_garbage_collector()  # as `complaints up` runs (consumers/gc_tuning.py)
    messages = [json.dumps(body).encode() for body in generate(args.events)]
    total = len(messages)
    with broker_servers() as (servers, broker), tempfile.TemporaryDirectory() as tmp:
        topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
        if broker is not None:
            for logical in TOPICS:
                broker.create_topics([topics.name(logical)], partitions=args.partitions)
        produce_s = publish(servers, topics.events, messages)
        raw_s = raw_consume(servers, topics.events, total)
        print(f"{total} events ({sum(map(len, messages)) / total:.0f} B average), "
              f"{args.partitions} partitions, broker: {'embedded Tansu' if broker else servers}")
        print(f"  produce            {total / produce_s:>9,.0f} events/s")
        print(f"  raw consume        {total / raw_s:>9,.0f} events/s   (kafka-python, no group)")
        for name in args.databases.split(","):
            settings = Settings(bootstrap_servers=servers, topics=topics,
                                group_id=f"bench-{uuid.uuid4().hex[:6]}")
            try:
                with database(name, tmp) as url:
                    result = end_to_end(servers, settings, url, total)
            except NoServer as exc:
                print(f"  end to end, {name}: skipped ({exc})")
                continue
            s = result["stats"]
            print(f"  end to end, {name:<10}{result['rate']:>9,.0f} events/s   "
                  f"= {result['rate'] * raw_s / total:.3f} x raw consume; "
                  f"{result['seconds']:.1f} s ({result['with_join']:.1f} s with the group join)")
            print(f"      applied {s.applied}, duplicates {s.duplicates}, rejected {s.rejected}, "
                  f"{s.batches} batches; time: decode+apply+commit "
                  f"{result['database_s']:.1f} s, poll+offset commits "
                  f"{result['kafka_s']:.1f} s")


if __name__ == "__main__":
    main()
