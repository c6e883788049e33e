"""A component's producer closes within its bound when the broker died with batches in
flight (consumers/producer.py), against a real Tansu killed under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from consumers.producer import OwnedProducer, producer_config
from consumers.settings import Settings, Topics
from consumers.stopping import KAFKA_CALL_TIMEOUT_S
from tests.faults import StoredTansu

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]


def test_close_with_the_broker_gone_is_bounded_and_really_closes(tmp_path: Path) -> None:
    broker = StoredTansu(None, tmp_path / "tansu.log")
    broker.start()
    try:
        topic = "close-test"
        broker.create_topics([topic], partitions=12)
        settings = Settings.from_env({}, bootstrap_servers=broker.bootstrap_servers,
                                     topics=Topics(""))
        producer = KafkaProducer(**producer_config(settings))
        for partition in range(12):  # metadata known, every partition's leader found
            producer.send(topic, value=b"warm", partition=partition)
        producer.flush(timeout=30)
        broker.kill()
        # Twelve partitions' batches that can never be acknowledged.
        futures = [producer.send(topic, value=b"x" * 100, partition=i % 12) for i in range(240)]
        owned = OwnedProducer(settings)
        owned._producer = producer  # as `get` would have made it: owned, so closed here
        started = time.monotonic()
        owned.close()
        took = time.monotonic() - started
        print(f"\nclose with 12 partitions' batches unacknowledged: {took:.2f} s")
        # No flush asked for, and the abandon's join (3 s at most), never a wait per batch:
        # before, kafka-python's close(timeout=3) waited up to 3 s for each of the 12 batches.
        assert took < KAFKA_CALL_TIMEOUT_S + 1.0, f"close took {took:.1f} s"
        assert all(f.is_done and f.failed() for f in futures), "unsent batches failed, not left"
        assert producer._closed  # noqa: SLF001 - closed: its __del__ will not wait again
    finally:
        broker.stop()
