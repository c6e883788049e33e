"""The letter service against the real embedded broker, on SQLite and PostgreSQL.

Letters the workflow issues reach `complaints.letters` through the relay and end as files
`<letter_id>.<ext>` whose bytes are `render(context, fmt)` of the stored context; a
redelivered message writes nothing; a message for an unknown letter, one that is not JSON and
a letter whose context does not render are counted as failed (the log naming ids only) while
the messages after them are written; a service stopped mid-way without committing its offsets
is followed by one that writes exactly the missing files.

Every test uses its own topic prefix and consumer groups on the session's broker.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from pypdf import PdfReader
from sqlalchemy import select

from consumers.broker import FAST_GROUP_CONSUMER_CONFIG, EmbeddedBroker
from consumers.cli import main
from consumers.file_ingest import tick
from consumers.letter_service import LetterService, write_atomically
from consumers.offsets import ForgetRevoked, NotAssigned
from consumers.outbox_relay import OutboxRelay
from consumers.settings import Settings, Topics, letter_formats
from consumers.timer_service import TimerService
from letters.render import FORMATS, LetterFormat, render
from tests.builders import CUSTOMER, received, simple
from tests.integration.test_kafka_service import (
    fast_consumer,
    producer_for,
    read_topic,
    running,
    service_settings,
    wait_until,
)
from workflow import queries
from workflow.bootstrap import App, bootstrap
from workflow.letter_context import letter_id_for
from workflow.schema import Letter

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

# Monday 9 March 2026, noon: the clock of every component. Kilowatt Connect's acknowledgement
# deadline for a complaint received on Monday 2 March is the end of Tuesday 3 March (past);
# its progress update (Thursday 12 March) and eight weeks (27 April) are not due yet.
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
RECEIVED = "2026-03-02T12:00:00+00:00"


class _Fixed:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def letter_service(app: App, settings: Any, directory: Path,
                   cls: type[LetterService] = LetterService, **kwargs: Any) -> LetterService:
    return cls(app, settings, directory=directory, config=dict(FAST_GROUP_CONSUMER_CONFIG),
               poll_timeout_ms=200, **kwargs)


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def expected_names(letter_ids: set[str], formats: tuple[LetterFormat, ...] = FORMATS
                   ) -> set[str]:
    return {f"{letter_id}.{fmt}" for letter_id in letter_ids for fmt in formats}


def assert_files_are_the_renders(app: App, directory: Path, letter_ids: set[str]) -> None:
    """Every file holds exactly what rendering the letter's stored context gives."""
    with app.sessions() as session:
        contexts = {lid: queries.letter_context(session, lid) for lid in letter_ids}
    for letter_id, context in contexts.items():
        assert context is not None, letter_id
        for fmt in FORMATS:
            path = directory / f"{letter_id}.{fmt}"
            assert path.read_bytes() == render(context, fmt), path.name
        pdf = PdfReader(directory / f"{letter_id}.pdf")
        assert len(pdf.pages) >= 1
        assert context["reference"] in "".join(page.extract_text() for page in pdf.pages)


def letters_topic_messages(broker: EmbeddedBroker, topic: str, expected: int
                           ) -> dict[str, Any]:
    return {json.loads(r.value)["letter_id"]: r for r in read_topic(broker, topic, expected)}


# -- the workflow's letters become files --------------------------------------------------------


def test_issued_letters_become_files_equal_to_their_renders(
    kafka_broker: EmbeddedBroker, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = service_settings(kafka_broker)
    app = bootstrap(db_url, "kilowatt-connect")
    directory = tmp_path / "letters"
    # Worked by hand: received a week ago and left: one acknowledgement each.
    # B-1 was acknowledged on the phone (no letter then); C-1 arrived this morning (its
    # acknowledgement is due tomorrow). Nothing else is due.
    events = [
        received("a-1", "A-1", RECEIVED),
        received("a-2", "A-2", RECEIVED, channel="email"),
        received("b-1", "B-1", RECEIVED),
        simple("complaint.acknowledged", "b-2", "B-1", "2026-03-02T14:00:00+00:00"),
        received("c-1", "C-1", "2026-03-09T11:00:00+00:00"),
    ]
    a1, a2 = (letter_id_for(f"{cid}/acknowledgement/1") for cid in ("A-1", "A-2"))
    producer = producer_for(kafka_broker)
    for e in events:
        producer.send(settings.topics.events, key=e["complaint_id"].encode(),
                      value=json.dumps(e).encode())
    producer.flush()

    clock = _Fixed(NOW)
    consumer = fast_consumer(app, settings, clock=clock)
    timer = TimerService(app, settings, clock=clock, interval=0.2)
    relay = OutboxRelay(app, settings, clock=clock, interval=0.05)
    letters = letter_service(app, settings, directory)
    with running(consumer, timer, relay, letters):
        wait_until(lambda: letters.stats.rendered == 2, timeout=30, what="both letters")
        assert files_in(directory) == expected_names({a1, a2})
        with app.sessions() as session:
            assert {(x.letter_id, x.complaint_id, x.kind)
                    for x in session.scalars(select(Letter))} == {
                (a1, "A-1", "acknowledgement"), (a2, "A-2", "acknowledgement")}
        assert letters.stats.files == 6
        written = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}

        # A redelivery (the relay re-publishing after a crash): nothing is rendered again.
        messages = letters_topic_messages(kafka_broker, settings.topics.letters, 2)
        assert set(messages) == {a1, a2}
        again = messages[a1]
        producer.send(settings.topics.letters, key=again.key, value=again.value,
                      headers=again.headers)
        producer.flush()
        wait_until(lambda: letters.stats.skipped == 1, timeout=15, what="the redelivery")
        assert letters.stats.files == 6
        assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == written

        # On one partition (one key), in order: an unknown letter, a message that is not JSON,
        # a letter whose stored context does not render (its date quotes personal data), then
        # A-2's message again after its text file was lost: only that file is written again.
        with app.sessions() as session:
            stored = session.get(Letter, a2)
            assert stored is not None
            broken = dict(stored.context, letter_id="L-BROKEN",
                          date=f"{CUSTOMER['name']}, {CUSTOMER['postcode']}")
            session.add(Letter(letter_id="L-BROKEN", dedupe_key="A-2/broken/1",
                               complaint_id="A-2", kind="acknowledgement", cycle=1,
                               issued_at=stored.issued_at, cause="test", context=broken))
            session.commit()
        (directory / f"{a2}.txt").unlink()
        key = messages[a2].key
        for value in (json.dumps({"letter_id": "L-00000000000000000000", "complaint_id": "A-2",
                                  "formats": list(FORMATS)}).encode(),
                      b"not json",
                      json.dumps({"letter_id": "L-BROKEN", "complaint_id": "A-2",
                                  "formats": list(FORMATS)}).encode(),
                      messages[a2].value):
            producer.send(settings.topics.letters, key=key, value=value)
        producer.flush()
        wait_until(lambda: letters.stats.rendered == 3, timeout=15, what="A-2 after failures")
        assert letters.stats.failed == 3
        assert letters.stats.files == 7
    producer.close()

    assert files_in(directory) == expected_names({a1, a2}), "no temporary or broken files"
    assert_files_are_the_renders(app, directory, {a1, a2})
    assert (directory / f"{a1}.pdf").stat().st_mode & 0o777 == 0o640
    log = caplog.text
    assert "unknown letter" in log and "L-00000000000000000000" in log
    assert "L-BROKEN" in log and "does not render as" in log
    assert CUSTOMER["name"] not in log and CUSTOMER["postcode"] not in log, "personal data"
    app.engine.dispose()


# -- a restart after a stop without committed offsets -------------------------------------------


class _DiesMidway(LetterService):
    """Stops itself after writing `after` letters and never commits an offset: what a process
    killed just before its commit leaves behind."""

    def __init__(self, *args: Any, after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after = after
        self._stop: Any = None

    def run(self, stop: Any) -> None:
        self._stop = stop
        super().run(stop)

    def handle(self, record: Any) -> str:
        outcome = super().handle(record)
        if self.stats.rendered >= self.after:
            self._stop.set()
        return outcome

    def _commit(self, consumer: KafkaConsumer,
                offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        pass


def test_a_restart_after_an_uncommitted_stop_writes_every_file_exactly_once(
    kafka_broker: EmbeddedBroker, sqlite_url: str, tmp_path: Path
) -> None:
    settings = service_settings(kafka_broker)
    app = bootstrap(sqlite_url, "kilowatt-connect")
    complaints = [f"R-{n}" for n in range(6)]
    uow = app.unit_of_work()
    processor = app.processor(_Fixed(NOW), uow)
    for n, cid in enumerate(complaints):
        processor.process(json.dumps(received(f"r-{n}", cid, RECEIVED)).encode(), "test", str(n))
    uow.commit()
    uow.close()
    assert tick(app, NOW) == 6  # the six acknowledgements
    letter_ids = {letter_id_for(f"{cid}/acknowledgement/1") for cid in complaints}
    relay = OutboxRelay(app, settings, clock=_Fixed(NOW))
    relay.run_once()
    relay.close()

    directory = tmp_path / "letters"
    directory.mkdir()
    leftover = directory / f".{min(letter_ids)}.pdf.x1y2z3.tmp"  # a crash mid-write, long ago
    leftover.write_bytes(b"%PDF-1.7 half")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))

    first = letter_service(app, settings, directory, _DiesMidway, after=2)
    with running(first):
        wait_until(lambda: first.stats.rendered == 2, timeout=20, what="two letters")
    assert first.stats.rendered == 2 and first.stats.files == 6

    second = letter_service(app, settings, directory)
    with running(second):
        wait_until(lambda: second.stats.rendered + second.stats.skipped == 6, timeout=20,
                   what="every letter handled again")
        time.sleep(0.5)  # anything more would show now
    assert (second.stats.skipped, second.stats.rendered, second.stats.failed) == (2, 4, 0)
    assert first.stats.files + second.stats.files == 18, "each file written once"
    assert files_in(directory) == expected_names(letter_ids), "none missing, no leftovers"
    assert_files_are_the_renders(app, directory, letter_ids)

    # The second service committed every message it handled: the group is at the end.
    ends: dict[TopicPartition, int] = {}
    for record in read_topic(kafka_broker, settings.topics.letters, 6):
        tp = TopicPartition(record.topic, record.partition)
        ends[tp] = max(ends.get(tp, 0), record.offset + 1)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        committed = admin.list_group_offsets({second.group_id: None})[second.group_id]
    finally:
        admin.close()
    assert {tp: om.offset for tp, om in committed.items()} == ends
    app.engine.dispose()


class _Deaf(ForgetRevoked):
    """Never hears of its assignment: what a member whose join never completes looks like."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class _NeverAssigned(LetterService):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener = _Deaf(self._offsets)

    def poll_once(self, consumer: Any, stop: Any = None) -> int:
        consumer.poll(timeout_ms=self.poll_timeout_ms)  # what it fetched is never done
        return 0


def test_a_member_never_assigned_leaves_and_a_new_one_writes_the_letters(
    kafka_broker: EmbeddedBroker, sqlite_url: str, tmp_path: Path
) -> None:
    settings = replace(service_settings(kafka_broker), assignment_timeout_s=4.0)
    app = bootstrap(sqlite_url, "kilowatt-connect")
    uow = app.unit_of_work()
    processor = app.processor(_Fixed(NOW), uow)
    processor.process(json.dumps(received("n-1", "N-1", RECEIVED)).encode(), "test", "0")
    uow.commit()
    uow.close()
    assert tick(app, NOW) == 1  # its acknowledgement
    relay = OutboxRelay(app, settings, clock=_Fixed(NOW))
    relay.run_once()
    relay.close()
    directory = tmp_path / "letters"

    stuck = letter_service(app, settings, directory, _NeverAssigned)
    started = time.monotonic()
    with pytest.raises(NotAssigned, match="letter consumer not assigned partitions after"):
        stuck.run(threading.Event())  # returns only by raising: its supervisor makes it again
    assert 4.0 < time.monotonic() - started < 4.0 + 10, "raised soon after its bound"
    assert stuck.stats.files == 0

    fresh = letter_service(app, settings, directory)
    with running(fresh):
        wait_until(lambda: fresh.stats.rendered == 1, timeout=30, what="the letter")
    assert files_in(directory) == expected_names({letter_id_for("N-1/acknowledgement/1")})
    app.engine.dispose()


# -- settings and files ---------------------------------------------------------------------------


def test_letter_formats_are_validated_and_a_bad_value_is_bad_usage(tmp_path: Path) -> None:
    assert Settings.from_env({}).letter_formats == ("pdf", "html", "txt")
    assert Settings.from_env({}).letters_dir == "letters-out"
    assert letter_formats(" HTML, txt,html ") == ("html", "txt")
    for bad in ("docx", "pdf;html", " , "):
        with pytest.raises(ValueError, match="COMPLAINTS_LETTER_FORMATS"):
            letter_formats(bad)
    result = CliRunner().invoke(main, ["up", "--db", f"sqlite:///{tmp_path / 'x.db'}"],
                                env={"COMPLAINTS_LETTER_FORMATS": "pdf,docx"})
    assert result.exit_code == 2
    assert "'docx' is not a letter format" in result.output
    assert not (tmp_path / "x.db").exists(), "refused before anything started"


def test_a_write_that_fails_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "L-1.txt"
    write_atomically(target, b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o640

    def full_disk(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        write_atomically(target, b"second")
    assert target.read_bytes() == b"first"
    assert files_in(tmp_path) == {"L-1.txt"}, "no temporary file left"


class _Message:
    """A `complaints.letters` record as the consumer hands it over."""

    def __init__(self, letter_id: str) -> None:
        self.topic, self.partition, self.offset = "complaints.letters", 0, 0
        self.value = json.dumps({"letter_id": letter_id, "formats": ["txt"]}).encode()


def test_a_fault_of_the_service_is_raised_not_counted_against_the_letter(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing library or font is the service's fault: skipping the letter (committing its
    # offset) would lose it for good, so the error stops the component, which is restarted
    # after a back-off. A context that does not render is the letter's: counted as failed.
    import consumers.letter_service as module

    app = bootstrap(sqlite_url, "kilowatt-connect")
    uow = app.unit_of_work()
    app.processor(_Fixed(NOW), uow).process(
        json.dumps(received("r-1", "R-1", RECEIVED)).encode(), "test", "1")
    uow.commit()
    uow.close()
    assert tick(app, NOW) == 1  # the acknowledgement
    letter_id = letter_id_for("R-1/acknowledgement/1")
    settings = Settings(bootstrap_servers="127.0.0.1:9", topics=Topics(), group_id="t")
    directory = tmp_path / "letters"
    directory.mkdir()
    service = LetterService(app, settings, directory=directory, formats=("txt",))

    def no_fonts(*_args: Any) -> bytes:
        raise OSError("cannot load fonts")

    monkeypatch.setattr(module, "render", no_fonts)
    with pytest.raises(OSError):
        service.handle(_Message(letter_id))  # type: ignore[arg-type]
    assert service.stats.failed == 0 and files_in(directory) == set()

    def bad_context(*_args: Any) -> bytes:
        raise jinja2.UndefinedError("'handler' is undefined")

    monkeypatch.setattr(module, "render", bad_context)
    assert service.handle(_Message(letter_id)) == "failed"  # type: ignore[arg-type]
    assert service.stats.failed == 1 and files_in(directory) == set()

    monkeypatch.undo()
    assert service.handle(_Message(letter_id)) == "rendered"  # type: ignore[arg-type]
    assert files_in(directory) == {f"{letter_id}.txt"}
    app.engine.dispose()
