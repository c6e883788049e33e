"""Offline ingest: a JSONL file through the same handlers the Kafka consumer uses, in event time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workflow.bootstrap import App
from workflow.service import Message

# Lines per database transaction: a crash repeats at most one batch (applying nothing twice),
# and a batch that fails is re-run message by message. 2,000 against 500: 2,242 against
# 2,071-2,100 events/s over 100,000 events (BENCHMARKS.md).
BATCH_LINES = 2_000


@dataclass
class IngestReport:
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {"applied": self.applied, "duplicates": self.duplicates, "rejected": self.rejected}


class UnreadableFile(Exception):
    """The file cannot be read or is not UTF-8 (exit status 2)."""


def read_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{path} is not UTF-8 (invalid byte at offset {exc.start})") from None
    # A byte order mark (editors on Windows write one) is not part of the first line's JSON.
    return data.removeprefix(b"\xef\xbb\xbf").split(b"\n")


def ingest_file(
    app: App, path: Path, on_rejection: Callable[[int, str], None] | None = None
) -> IngestReport:
    lines = read_lines(path)
    report = IngestReport()
    counts: Counter[str] = Counter()
    uow = app.unit_of_work()
    processor = app.event_time_processor(uow)
    source = str(path)
    numbered = [(n, line.rstrip(b"\r")) for n, line in enumerate(lines, start=1) if line.strip()]
    try:
        for start in range(0, len(numbered), BATCH_LINES):
            batch = numbered[start:start + BATCH_LINES]
            outcomes = processor.run_batch(
                [Message(line, source, f"line {number}") for number, line in batch])
            for (number, _), outcome in zip(batch, outcomes, strict=True):
                counts[outcome.status] += 1
                if outcome.status == "rejected":
                    reason = outcome.reason or "rejected"
                    report.rejections.append((number, reason))
                    if on_rejection is not None:
                        on_rejection(number, reason)
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()
    report.applied, report.duplicates, report.rejected = (
        counts["applied"], counts["duplicate"], counts["rejected"]
    )
    return report


def tick(app: App, until: datetime) -> int:
    """Fire every deadline due at or before `until` (event time = `until`)."""
    uow = app.unit_of_work()
    try:
        return app.event_time_processor(uow).run_clock_to(until)
    finally:
        uow.close()
