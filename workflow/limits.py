"""The two message-size limits, side by side, because each is set by the other.

- `MAX_MESSAGE_BYTES` (1 MiB) is the contract's: a larger message is rejected with a reason
  ("over the 1 MiB limit"), and a rejection keeps the first `MAX_MESSAGE_BYTES` of its raw
  bytes (docs/contract.md "Events in", "Rejections").
- `TRANSPORT_MAX_BYTES` (4 MiB) is the transport's ceiling: the topics' `max.message.bytes`,
  the producers' `max_request_size` and the consumer's `max_partition_fetch_bytes`. It is
  larger on purpose: a message over the contract's limit must still be accepted by the broker
  and fetched by the consumer, or it could not be rejected (and stored); and a rejection's
  message carries up to 1 MiB of raw input as base64 (a third more) besides its reason.

Plain numbers, no transport code: the domain validates against the first, the consumers
configure Kafka with the second.
"""

from __future__ import annotations

from typing import Final

MAX_MESSAGE_BYTES: Final = 1024 * 1024
TRANSPORT_MAX_BYTES: Final = 4 * 1024 * 1024

assert TRANSPORT_MAX_BYTES > MAX_MESSAGE_BYTES * 4 // 3, "a rejection must fit the transport"
