"""The `complaints.rejected` message of a rejected input (docs/contract.md "Rejections").

A rejection is stored in the `rejections` table and published on `complaints.rejected`, with
the raw bytes (the first 1 MiB), the reason and where the input came from. A Kafka record's
message is made by the consumer (consumers/workflow_consumer.py: its key, headers, partition
and offset); a file line's here, in the transaction that stores the rejection, so offline
ingest publishes its rejections too once the relay runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from workflow.limits import MAX_MESSAGE_BYTES


def bytes_field(data: bytes | None) -> dict[str, Any]:
    """Raw bytes for a JSON document: as text when they are UTF-8, else base64."""
    if data is None:
        return {"encoding": None, "data": None}
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii")}


def line_key(raw: bytes) -> str:
    """The key the line would have had on the events topic (complaint_id, else contact_id),
    when it can be read; else none."""
    try:
        document = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    for field in ("complaint_id", "contact_id"):
        value = document.get(field)
        if isinstance(value, str) and 0 < len(value) <= 64:
            return value
    return ""


def file_rejection(raw: bytes, source: str, position: str, reason: str,
                   original_event_id: str | None, rejected_at: datetime) -> dict[str, Any]:
    """The outbox row's values (`OutboxMessage`) for a rejected file line. Its event id is
    derived from the rejection itself (where, when, what), so each stored rejection has one
    message, and the same bad line ingested again is rejected, and published, again."""
    digest = hashlib.sha256("\x1f".join(
        (source, position, rejected_at.isoformat())).encode("utf-8") + b"\x1f" + raw)
    event_id = f"rejected:file:{digest.hexdigest()[:40]}"
    kept = raw[:MAX_MESSAGE_BYTES]
    key = line_key(kept)
    payload = {
        "event_id": event_id,
        "type": "message.rejected",
        "reason": reason,
        "rejected_at": rejected_at.isoformat(),
        "source": source,
        "position": position,
        "original_event_id": original_event_id,
        "key": bytes_field(key.encode("utf-8") if key else None),
        "raw": bytes_field(kept),
        "raw_size": len(raw),
        "raw_truncated": len(raw) > MAX_MESSAGE_BYTES,
    }
    return {"event_id": event_id, "topic": "rejected", "key": key, "payload": payload,
            "created_at": rejected_at}
