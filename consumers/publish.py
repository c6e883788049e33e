"""`complaints publish FILE.jsonl`: a file of events onto `complaints.events`, keyed correctly.

The key decides the partition, and so the order in which one complaint's events are applied:
`complaint_id`, else `contact_id`, else `event_id` (account snapshots). A line that is not a
JSON object is sent as it is, without a key, so that the consumer rejects it with a reason
like any other bad message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from consumers.producer import producer_config
from consumers.settings import Settings
from workflow.limits import TRANSPORT_MAX_BYTES


@dataclass
class PublishReport:
    published: int = 0
    unkeyed: int = 0  # lines sent without a key (not a JSON object, or no id field)

    def as_json(self) -> dict[str, int]:
        return {"published": self.published, "unkeyed": self.unkeyed}


def key_for(raw: bytes) -> bytes | None:
    try:
        document: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    for name in ("complaint_id", "contact_id", "event_id"):
        value = document.get(name)
        if isinstance(value, str) and value:
            return value.encode("utf-8")
    return None


def read_messages(path: Path) -> list[bytes]:
    """The file's non-blank lines (raises OSError when it cannot be read)."""
    return [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n") if line.strip()]


def publish(messages: Iterable[bytes], topic: str, producer: KafkaProducer) -> PublishReport:
    report = PublishReport()
    futures = []
    for raw in messages:
        key = key_for(raw)
        report.unkeyed += key is None
        futures.append(producer.send(topic, key=key, value=raw))
    producer.flush()
    for future in futures:
        future.get(timeout=30)
        report.published += 1
    return report


def publish_file(path: Path, settings: Settings) -> PublishReport:
    producer = KafkaProducer(**producer_config(
        settings, linger_ms=20, max_request_size=TRANSPORT_MAX_BYTES))
    try:
        return publish(read_messages(path), settings.topics.events, producer)
    finally:
        producer.close(timeout=10)
