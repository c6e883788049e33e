"""The letter service: every letter on `complaints.letters` becomes files in a directory.

Its own consumer group (`<prefix>complaints-letters`) reads `complaints.letters`; for each
message the letter's stored context is loaded from the database (the message names the
letter, the record holds what it says) and rendered, in each format of
COMPLAINTS_LETTER_FORMATS that the message lists, to `<letter_id>.<ext>` in
COMPLAINTS_LETTERS_DIR.

Exactly once in effect: a file is written to a temporary name beside it, synced, and renamed
into place (`os.replace`), so a file under its final name is always complete, and one that
exists is never rendered again: a redelivered message does nothing but count as skipped.
Offsets are committed only after the batch's files are written and the directory synced, so
a crash repeats at most the uncommitted messages, whose finished files are then skipped.

Failures: a message that names no letter, a letter unknown to the database or a context that
does not render is logged (ids and the error's type only: never what the letter says) and
counted as failed, and the loop goes on. A database or file-system error is not the message's
fault: the component stops with it (offsets of the letters written so far committed) and the
runtime restarts it after a back-off, so nothing is skipped.

Files are created mode 0640: letters carry names and addresses; a mail or print system that
collects them should share the service's group. Renders are byte-for-byte reproducible from
the context, so two replicas writing the same file (a rebalance hand-over) write the same
bytes. Scaling out needs a directory every replica sees (a ReadWriteMany volume).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jinja2
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from consumers.logtext import short
from consumers.offsets import AssignmentWatch, DoneOffsets, ForgetRevoked, next_offsets
from consumers.settings import Settings
from consumers.stopping import close_consumer
from consumers.workflow_consumer import consumer_config
from letters.render import KINDS, LetterFormat, render
from workflow import queries
from workflow.bootstrap import App

log = logging.getLogger(__name__)

Record = Any  # kafka.consumer.fetcher.ConsumerRecord

GROUP: Final = "complaints-letters"  # the topic prefix is put in front
# Letter ids are "L-" and hex (workflow.letter_context.letter_id_for); anything that could
# leave the directory or hide a file is refused before it reaches a path.
LETTER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
TEMP_SUFFIX: Final = ".tmp"
STALE_TEMP_S: Final = 3600.0  # temporary files older than this are a crash's leftovers
FILE_MODE: Final = 0o640
# Few records per poll: a PDF takes a fraction of a second, and a stop waits for the letter
# in hand only, but the group's poll interval must still be met with room to spare.
MAX_POLL_RECORDS: Final = 20
# Errors of the service's environment, not of a letter's context: the component stops with
# them (offsets of the letters already written committed) and is restarted after a back-off,
# so the letter is rendered once the fault is fixed instead of being skipped for good.
ENVIRONMENT_FAULTS: Final = (ImportError, OSError, MemoryError, jinja2.TemplateNotFound)


@dataclass
class LetterStats:
    """Running totals, read by `complaints up` for its log lines and exit summary."""

    rendered: int = 0  # letters with at least one file written
    skipped: int = 0  # letters whose files were all there already (a redelivery)
    failed: int = 0  # no letter id, a letter the database does not know, or no render
    files: int = 0  # files written


class NotALetter(Exception):
    """(v2) A `letter.dispatched` message on the topic: nothing to render, nothing counted."""


class LetterFailed(Exception):
    """This message cannot become files. The text is logged: ids and error types only."""


def letter_path(directory: Path, letter_id: str, fmt: LetterFormat) -> Path:
    return directory / f"{letter_id}.{fmt}"


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds `data` completely, or is left as it was (never a partial file)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def sync_directory(directory: Path) -> None:
    """Make the renames in `directory` durable (POSIX; a no-op where directories can't be
    opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LetterService:
    """One member of the letters group. `run(stop)` until `stop` is set: the letter in hand is
    finished, the offsets of those written are committed, and the consumer closes."""

    def __init__(self, app: App, settings: Settings, *, directory: str | Path | None = None,
                 formats: tuple[LetterFormat, ...] | None = None, group_id: str | None = None,
                 config: Mapping[str, Any] | None = None, poll_timeout_ms: int = 500) -> None:
        self.app = app
        self.topic = settings.topics.letters
        self.directory = Path(directory if directory is not None else settings.letters_dir)
        self.formats: tuple[LetterFormat, ...] = formats or settings.letter_formats
        self.group_id = group_id or settings.topics.prefix + GROUP
        self.config = consumer_config(
            settings, group_id=self.group_id,
            client_id=f"complaints-letters-{socket.gethostname()}-{os.getpid()}",
            max_poll_records=MAX_POLL_RECORDS, **(config or {}))
        self.poll_timeout_ms = poll_timeout_ms
        self.assignment_timeout_s = settings.assignment_timeout_s
        self.stats = LetterStats()
        self._offsets = DoneOffsets("letter")
        self._unsynced = False  # files renamed into place since the directory was last synced
        self._listener = ForgetRevoked(self._offsets)

    def assigned_partitions(self) -> int | None:
        """Partitions owned now; None before the group assigned any (consumers.health)."""
        assigned = self._listener.assigned
        return None if assigned is None else len(assigned)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temporaries()
        consumer = KafkaConsumer(**self.config)
        self._listener.assigned = None  # a new member: not joined yet
        consumer.subscribe([self.topic], listener=self._listener)
        log.info("letter service in group %s on %s: %s into %s", self.group_id, self.topic,
                 ",".join(self.formats), self.directory)
        watch = AssignmentWatch(self._listener, consumer, self.assignment_timeout_s)
        try:
            while not stop.is_set():
                self.poll_once(consumer, stop)
                watch.check()
        finally:
            self._commit(consumer, {})
            close_consumer(consumer)
            log.info("letter service closed")

    def poll_once(self, consumer: KafkaConsumer, stop: threading.Event | None = None) -> int:
        """Poll one batch and write its letters; returns the number of messages handled."""
        polled = consumer.poll(timeout_ms=self.poll_timeout_ms)
        records = [r for batch in polled.values() for r in batch]
        if not records:
            self._commit(consumer, {})  # retries a commit that failed earlier
            return 0
        started = time.monotonic()
        done: list[Record] = []
        try:
            for record in records:
                if stop is not None and stop.is_set():
                    break  # the rest stays uncommitted: read again on the next start
                self.handle(record)
                done.append(record)
        finally:
            # Also when a letter raised (database, disk): what was written before it counts.
            # Within a partition `done` is a prefix, so its offsets cover exactly those.
            if done:
                self._sync()
                self._commit(consumer, next_offsets(done))
        log.debug("%d letter message(s) in %.0f ms", len(done),
                  (time.monotonic() - started) * 1000)
        return len(done)

    # -- one message ---------------------------------------------------------------------------
    def handle(self, record: Record) -> str:
        """Write the letter's missing files; returns "rendered", "skipped" or "failed" (or
        "ignored" for a delivery message)."""
        letter_id: str | None = None
        try:
            letter_id, wanted = self._parse(record)
            missing = [f for f in wanted
                       if not letter_path(self.directory, letter_id, f).exists()]
            if not missing:
                self.stats.skipped += 1
                return "skipped"
            files = self._render(letter_id, missing)
        except NotALetter:
            return "ignored"
        except LetterFailed as exc:
            self.stats.failed += 1
            log.error("letter %s (%s %d/%d) not written: %s", letter_id or "-", record.topic,
                      record.partition, record.offset, exc)
            return "failed"
        for fmt, data in files.items():
            write_atomically(letter_path(self.directory, letter_id, fmt), data)
            self._unsynced = True
            self.stats.files += 1
        self.stats.rendered += 1
        log.debug("letter %s written as %s", letter_id, ", ".join(files))
        return "rendered"

    def _parse(self, record: Record) -> tuple[str, list[LetterFormat]]:
        try:
            message = json.loads(record.value) if record.value is not None else None
        except ValueError:  # not JSON, or not UTF-8
            message = None
        if not isinstance(message, dict):
            raise LetterFailed("the message is not a JSON object")
        if message.get("type") == "letter.dispatched":  # (v2) a delivery, not a new letter
            raise NotALetter
        letter_id = message.get("letter_id")
        if not isinstance(letter_id, str) or not LETTER_ID.fullmatch(letter_id):
            raise LetterFailed("the message has no valid letter_id")
        offered = message.get("formats")
        if offered is None:
            return letter_id, list(self.formats)
        if not isinstance(offered, list):
            raise LetterFailed("formats is not a list")
        # Formats this service does not make (a newer kind) are left to whoever does.
        return letter_id, [f for f in self.formats if f in offered]

    def _render(self, letter_id: str, formats: list[LetterFormat]) -> dict[LetterFormat, bytes]:
        """Every missing format in memory first: a context that fails leaves no file."""
        with self.app.sessions() as session:
            context = queries.letter_context(session, letter_id)
        if context is None:
            raise LetterFailed("unknown letter: not in the database")
        if context.get("kind") not in KINDS:
            # Issued by a newer workflow than this service (a rolling deploy): not the letter's
            # fault. Stop, and retry after a back-off, until this service knows the kind.
            raise RuntimeError(f"letter {letter_id} is of a kind this letter service does not "
                               "know; deploy the version that issued it")
        files: dict[LetterFormat, bytes] = {}
        for fmt in formats:
            try:
                files[fmt] = render(context, fmt)
            except ENVIRONMENT_FAULTS:
                raise  # the service's own (fonts, libraries, memory): retried, never skipped
            except Exception as exc:  # noqa: BLE001 - this letter's context, not the service
                # An undefined-key error names keys only; other errors can quote a value of
                # the context (personal data): their type only.
                detail = (f": {short(exc)}" if isinstance(exc, jinja2.UndefinedError)
                          else "")
                raise LetterFailed(f"its context does not render as {fmt}: "
                                   f"{type(exc).__name__}{detail}") from None
        return files

    # -- files -----------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self._unsynced:
            sync_directory(self.directory)
            self._unsynced = False

    def remove_stale_temporaries(self, older_than_s: float = STALE_TEMP_S) -> int:
        """Temporary files a crash left behind (a live writer's are younger; leave those)."""
        removed = 0
        cutoff = time.time() - older_than_s
        for path in self.directory.glob(f".*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        if removed:
            log.info("removed %d unfinished temporary letter file(s)", removed)
        return removed

    # -- Kafka offsets ---------------------------------------------------------------------
    def _commit(self, consumer: KafkaConsumer,
                offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit offsets of messages whose files are written (and earlier leftovers)."""
        self._offsets.commit(consumer, offsets)
