"""Offline ingest: a JSONL file through the same handlers the Kafka consumer uses, in event time.

(v2) The lines are applied in `occurred_at` order, ties in file order (docs/rules.md s.5).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workflow.bootstrap import Application
from workflow.events import occurred_at_of
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


def numbered_lines(lines: list[bytes]) -> list[tuple[int, bytes]]:
    """The non-blank lines with their 1-based line numbers in the file."""
    return [(n, line.rstrip(b"\r")) for n, line in enumerate(lines, start=1) if line.strip()]


def time_ordered(numbered: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """(v2) A file's lines in `occurred_at` order, equal instants in file order (docs/rules.md s.5).

    A file exported complaint by complaint would otherwise fire the deadlines of its first
    complaints before the events that stopped them. A line whose `occurred_at` cannot be read
    stays in place: it keeps its position after the line before it in the file (or goes
    first), and is rejected there, moving no clock. Line numbers are the file's own. Every
    replay of a file (ingest, and anything else that reads a file as events) goes through
    this, so they all apply the same lines in the same order.
    """
    leading: list[tuple[int, bytes]] = []
    groups: list[tuple[datetime, int, list[tuple[int, bytes]]]] = []
    for index, (number, line) in enumerate(numbered):
        instant = occurred_at_of(line)
        if instant is not None:
            groups.append((instant, index, [(number, line)]))
        elif groups:
            groups[-1][2].append((number, line))  # rides with the line before it
        else:
            leading.append((number, line))
    # The index breaks ties, so instants (aware datetimes, any offset) are compared exactly
    # and equal ones keep file order; the lists are never compared.
    groups.sort(key=lambda group: (group[0], group[1]))
    return [*leading, *(item for _, _, members in groups for item in members)]


def ingest_file(
    app: Application, path: Path, on_rejection: Callable[[int, str], None] | None = None
) -> IngestReport:
    numbered = time_ordered(numbered_lines(read_lines(path)))
    report = IngestReport()
    try:
        apply_batches(app, (numbered[start:start + BATCH_LINES]
                            for start in range(0, len(numbered), BATCH_LINES)),
                      str(path), report)
    finally:
        # Applied in time order, reported in file order (each rejection is also stored);
        # on a failure, those of the batches already committed.
        report.rejections.sort()
        if on_rejection is not None:
            for number, reason in report.rejections:
                on_rejection(number, reason)
    return report


def apply_batches(app: Application, batches: Iterable[list[tuple[int, bytes]]], source: str,
                  report: IngestReport) -> None:
    """Apply (line number, line) batches in order, one transaction each, through the
    event-time processor, counting into `report` (its rejections in applied order). The
    one loop of `ingest_file` and of a replay reading its file as it goes
    (consumers/simulate.py `ingest_ordered`)."""
    counts: Counter[str] = Counter()
    uow = app.unit_of_work()
    processor = app.event_time_processor(uow)
    try:
        for batch in batches:
            outcomes = processor.run_batch(
                [Message(line, source, f"line {number}") for number, line in batch])
            for (number, _), outcome in zip(batch, outcomes, strict=True):
                counts[outcome.status] += 1
                if outcome.status == "rejected":
                    report.rejections.append((number, outcome.reason or "rejected"))
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()
        report.applied, report.duplicates, report.rejected = (
            counts["applied"], counts["duplicate"], counts["rejected"])


def tick(app: Application, until: datetime) -> int:
    """Fire every deadline due at or before `until` (event time = `until`)."""
    uow = app.unit_of_work()
    try:
        return app.event_time_processor(uow).run_clock_to(until)
    finally:
        uow.close()
