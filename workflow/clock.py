"""Injected time. Tests move a fake clock; offline ingest uses event time; the service the wall."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class EventClock:
    """Event time for offline processing: moves forward to each event, never back."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, instant: datetime) -> bool:
        """Move to `instant` if it is later; True when the clock moved."""
        if instant > self._now:
            self._now = instant.astimezone(UTC)
            return True
        return False

    def rewind_to(self, instant: datetime) -> None:
        """Only for retrying a rolled-back batch from where it started."""
        self._now = instant
