"""Real components for the fault tests: an S3 store, a restartable Tansu, the service as a
process, and a stream whose end state is derived by hand from docs/rules.md.

The stream (`FaultStream`): `old` complaints received 8 days ago and `new` ones received a
minute ago, every third with a handler; every tenth receipt sent twice; `bad` messages of
three kinds. From docs/rules.md, online (the clock is the wall clock):

- s.4: a receipt naming a handler is `immediate`, else `received`; nothing else happens to
  them, so those are the end states; a re-sent event_id is a duplicate (s.3), applied once.
- s.5: each receipt schedules an `acknowledgement` (D+1: the end of the next working day),
  a `progress_update` (10 x 24 h, Kilowatt Connect) and an `eight_week` (56 x 24 h)
  deadline. For the old complaints the acknowledgement is due (D+1 is at most 6 days after
  any receipt, bank holidays included) and fires; the progress update (2 days ahead) and the
  eight weeks are not due. For the new ones nothing is due.
- s.6: a fired acknowledgement of an open complaint not acknowledged issues one
  `acknowledgement` letter: one per old complaint, none for the new ones; the letter service
  writes it once (txt here).
- every bad message is rejected, with its reason stored, once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import func, select, update

from consumers.broker import EmbeddedBroker
from consumers.publish import key_for
from tests.builders import HANDLER, received
from workflow.bootstrap import App
from workflow.schema import (
    Complaint,
    Deadline,
    Letter,
    OutboxMessage,
    ProcessedEvent,
    Rejection,
)

ROOT = Path(__file__).parents[1]
COMPLAINTS = Path(sys.executable).with_name("complaints")
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    """Wait until `predicate()`; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


# -- an S3 store and Tansu on it ---------------------------------------------------------------
class MotoS3:
    """A moto S3 server on a free loopback port, with one bucket."""

    def __init__(self, log_dir: Path, bucket: str = "tansu") -> None:
        self.port = free_port()
        self.bucket = bucket
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = (log_dir / "moto.log").open("wb")
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **AWS_TEST_ENV})
        import boto3  # moto's own dependency

        client = boto3.client("s3", endpoint_url=self.endpoint, **{
            "aws_access_key_id": "test", "aws_secret_access_key": "test",
            "region_name": "us-east-1"})
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class StoredTansu(EmbeddedBroker):
    """Tansu keeping its log and committed offsets in S3 (`s3://BUCKET/`), on a fixed port, so
    that it can be SIGKILLed and started again where clients expect it. `advertised` lets a
    TLS proxy in front of it be the address clients use."""

    def __init__(self, store: MotoS3 | None, log_path: Path, *, port: int | None = None,
                 advertised: str | None = None, ready_check: bool = True) -> None:
        env = {"AWS_ENDPOINT": store.endpoint, "AWS_ALLOW_HTTP": "true", **AWS_TEST_ENV} \
            if store else {}
        super().__init__(port=port or free_port(), log_path=log_path, env=env, stop_timeout=1)
        self.storage = f"s3://{store.bucket}/" if store else "memory://tansu/"
        self.advertised = advertised
        self.ready_check = ready_check
        self.kills = 0

    def command(self, port: int) -> list[str]:
        command = super().command(port)
        command[command.index("--storage-engine") + 1] = self.storage
        if self.advertised:
            command[command.index("--advertised-listener-url") + 1] = self.advertised
        return command

    def _wait_ready(self) -> None:
        if self.ready_check:
            super()._wait_ready()
            return
        # Advertising another address (a TLS proxy): the plain probe would be sent there.
        wait_for(lambda: _connects(self.host, self.port), 20, "Tansu's port")

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)
        self.kills += 1
        self.stop()  # reaps the state; the port stays this instance's


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- the service as a process ------------------------------------------------------------------
class ServiceProcess:
    """`complaints up --only ...` as a process, restartable, each run's log kept."""

    def __init__(self, components: tuple[str, ...], env: dict[str, str], log_dir: Path,
                 name: str = "service", command: list[str] | None = None) -> None:
        self.components, self.env, self.log_dir, self.name = components, env, log_dir, name
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        only = [arg for c in self.components for arg in ("--only", c)]
        command = self.command or [str(COMPLAINTS), "up", *only, "--no-migrate"]
        with self.log_path.open("wb") as log:
            # In the run's own directory: the aggregator keeps its table data in the cwd.
            self.process = subprocess.Popen(command, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.log_dir)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Killed if still running (a test's clean-up after a failure): SIGKILL, as a crash."""
        if self.alive():
            self.kill()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 60) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} still running {timeout:.0f} s after SIGTERM; "
                                 f"log {self.log_path}") from None
        return code, time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def service_env(bootstrap: str, db: str, prefix: str, letters_dir: Path,
                **extra: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "COMPLAINTS_DATABASE_URL": db,
            "COMPLAINTS_TOPIC_PREFIX": prefix, "COMPLAINTS_CONSUMER_GROUP": f"{prefix}workflow",
            "COMPLAINTS_LOG_LEVEL": "INFO", "COMPLAINTS_KAFKA_SESSION_TIMEOUT_MS": "3000",
            # A member the broker never assigns (seen once in a full run: the letters group
            # after a restart) joins again well within the end state's wait.
            "COMPLAINTS_KAFKA_ASSIGNMENT_TIMEOUT_S": "45",
            "COMPLAINTS_LETTERS_DIR": str(letters_dir), "COMPLAINTS_LETTER_FORMATS": "txt",
            # Tansu's S3 engine can lose an acknowledged batch in flight at a SIGKILL
            # (RELIABILITY.md): the timer's re-publish of unfired deadlines, within the run.
            "COMPLAINTS_DEADLINE_REPUBLISH_S": "20", "PYTHONPATH": str(ROOT), **extra}


# -- the stream and its expected end state ----------------------------------------------------
@dataclass
class FaultStream:
    old: int
    new: int
    bad: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def complaint_ids(self) -> list[str]:
        return [f"C-{self.tag}-{n:05d}" for n in range(self.old + self.new)]

    def is_old(self, n: int) -> bool:
        return n < self.old

    def lines(self) -> list[bytes]:
        """Receipts in order (old first), every tenth sent again, a bad one every so often."""
        out: list[bytes] = []
        bad = self._bad_messages()
        every = max(1, (self.old + self.new) // max(1, self.bad))
        for n, complaint_id in enumerate(self.complaint_ids()):
            at = (self.now - timedelta(days=8) if self.is_old(n)
                  else self.now - timedelta(minutes=1)) + timedelta(seconds=n % 600)
            fields: dict[str, Any] = {"handler": dict(HANDLER)} if n % 3 == 0 else {}
            body = json.dumps(received(f"E-{complaint_id}", complaint_id,
                                       at.isoformat(), **fields)).encode()
            out.append(body)
            if n % 10 == 5:
                out.append(body)  # re-sent: a duplicate
            if n % every == every - 1 and bad:
                out.append(bad.pop())
        out.extend(bad)
        return out

    def _bad_messages(self) -> list[bytes]:
        kinds = [
            lambda i: b"not JSON %d" % i,
            lambda i: json.dumps({"event_id": f"bad-{self.tag}-{i}", "type": "complaint.teleported",
                                  "occurred_at": self.now.isoformat()}).encode(),
            lambda i: json.dumps({"event_id": f"bad-{self.tag}-{i}", "type": "complaint.received",
                                  "occurred_at": self.now.isoformat(),
                                  "complaint_id": f"C-{self.tag}-bad{i}"}).encode(),
        ]
        return [kinds[i % 3](i) for i in range(self.bad)]

    def expected_states(self) -> dict[str, str]:
        return {cid: "immediate" if n % 3 == 0 else "received"
                for n, cid in enumerate(self.complaint_ids())}

    @staticmethod
    def event_ids(lines: list[bytes]) -> set[str]:
        """The distinct valid events among `lines` (what applying them adds)."""
        return {json.loads(line)["event_id"] for line in lines
                if line.startswith(b'{"event_id": "E-')}


def publish(bootstrap: str, topic: str, lines: list[bytes], **config: Any) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all",
                             enable_idempotence=True, **config)
    try:
        for raw in lines:
            producer.send(topic, key=key_for(raw), value=raw)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)


def log_of(bootstrap: str, topic: str, timeout: float = 60) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every record a topic's log holds now, as (value, headers), read from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # Tansu answers "latest offset" with its last batch's base offset + 1 (below the
        # true end when that batch holds several records): past it, read until three polls
        # in a row bring nothing.
        end = consumer.end_offsets(partitions)
        records: list[tuple[bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout:.0f} s")
            polled = consumer.poll(timeout_ms=500)
            for batch in polled.values():
                records += [(r.value, dict(r.headers or ())) for r in batch]
            past_end = all(consumer.position(tp) >= end[tp] for tp in partitions)
            quiet = quiet + 1 if not polled and past_end else 0
        return records
    finally:
        consumer.close()


def repair_broker_losses(app: App, bootstrap: str, events_topic: str, letters_topic: str,
                         lines: list[bytes]) -> dict[str, int]:
    """Undo what the broker lost of what it had acknowledged (Tansu's S3 engine can, at a
    SIGKILL: RELIABILITY.md), as an operator would, so that the end state measures the
    service alone:

    - input lines the producer had acknowledged that are not in the events log: published
      again (the contact centre's re-send; the consumer applies each event once);
    - `letter.issued` messages marked published in the outbox that are not in the letters
      log: their rows marked unpublished, so the relay sends them again (a file that exists
      is never written twice).

    What is still in flight at the service (unpublished outbox rows) is not the broker's to
    lose. Returns how many of each were repaired: the run's figures report them."""
    in_log = Counter(value for value, _ in log_of(bootstrap, events_topic))
    lost_lines = []
    for raw in lines:  # a line sent twice must be in the log twice
        if in_log[raw] > 0:
            in_log[raw] -= 1
        else:
            lost_lines.append(raw)
    if lost_lines:
        publish(bootstrap, events_topic, lost_lines)
    # Marked published before the log is read: acknowledged, so in the log unless lost.
    with app.sessions() as session:
        published = session.scalars(select(OutboxMessage.event_id).where(
            OutboxMessage.topic == "letters", OutboxMessage.published_at.is_not(None))).all()
    logged = {headers.get("event_id", b"").decode()
              for _, headers in log_of(bootstrap, letters_topic)}
    lost_letters = [event_id for event_id in published if event_id not in logged]
    with app.sessions() as session, session.begin():
        if lost_letters:
            session.execute(update(OutboxMessage).where(
                OutboxMessage.event_id.in_(lost_letters)).values(published_at=None))
    return {"lost_input_lines": len(lost_lines), "lost_letter_messages": len(lost_letters)}


def count(app: App, model: Any, *where: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def applied(app: App, stream: FaultStream) -> int:
    """Input events of this stream applied so far (deadline firings are not counted)."""
    return count(app, ProcessedEvent, ProcessedEvent.event_id.like(f"E-C-{stream.tag}-%"))


def settled(app: App, stream: FaultStream, letters_dir: Path) -> bool:
    """Everything the stream leads to is done: receipts, rejections, fired deadlines, files."""
    old_acks = count(app, Deadline, Deadline.kind == "acknowledgement",
                     Deadline.fired_at.is_not(None))
    files = len(list(letters_dir.glob("[!.]*.txt"))) if letters_dir.exists() else 0
    return (applied(app, stream) >= stream.old + stream.new
            and count(app, Rejection) >= stream.bad
            and old_acks >= stream.old and files >= stream.old)


def progress(app: App, stream: FaultStream, letters_dir: Path) -> str:
    """What `settled` waits for, as far as it has got: the message of a timed-out wait."""
    acks = count(app, Deadline, Deadline.kind == "acknowledgement", Deadline.fired_at.is_not(None))
    files = len(list(letters_dir.glob("[!.]*.txt"))) if letters_dir.exists() else 0
    unpublished = count(app, OutboxMessage, OutboxMessage.published_at.is_(None))
    return (f"applied {applied(app, stream)}/{stream.old + stream.new}, rejections "
            f"{count(app, Rejection)}/{stream.bad}, acknowledgements fired {acks}/{stream.old}, "
            f"letter files {files}/{stream.old}, letters {count(app, Letter)}, "
            f"outbox unpublished {unpublished}")


def wait_settled(app: App, stream: FaultStream, letters_dir: Path, timeout: float,
                 logs: Path) -> float:
    try:
        return wait_for(lambda: settled(app, stream, letters_dir), timeout, "the end state")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}: {progress(app, stream, letters_dir)}; "
                             f"logs in {logs}") from None


def run_to_end_state(app: App, service: ServiceProcess, stream: FaultStream,
                     letters_dir: Path, logs: Path) -> dict[str, int]:
    """The service (started) left to finish the stream, stopped, and the end state checked."""
    wait_settled(app, stream, letters_dir, 120 + (stream.old + stream.new) / 50, logs)
    time.sleep(2)  # anything that would be applied twice has had its chance
    code, _ = service.terminate()
    assert code == 0, f"exit {code}; log {service.log_path}"
    return check_end_state(app, stream, letters_dir)


def check_end_state(app: App, stream: FaultStream, letters_dir: Path) -> dict[str, int]:
    """The end state against the hand-derived expectations (module docstring)."""
    ids = stream.complaint_ids()
    old_ids = set(ids[:stream.old])
    with app.sessions() as session:
        states = {c.complaint_id: c.state for c in session.scalars(select(Complaint))}
        assert states == stream.expected_states()
        processed = list(session.scalars(
            select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.like("E-%"))))
        assert sorted(processed) == sorted(f"E-{cid}" for cid in ids), "every event once"
        # Deadlines: three per complaint, none lost; the old ones' acknowledgements fired.
        deadlines = session.execute(select(Deadline.complaint_id, Deadline.kind,
                                           Deadline.fired_at)).all()
        kinds = Counter((d.complaint_id, d.kind) for d in deadlines)
        assert set(kinds) == {(cid, kind) for cid in ids
                              for kind in ("acknowledgement", "progress_update", "eight_week")}
        assert set(kinds.values()) == {1}
        fired = {(d.complaint_id, d.kind) for d in deadlines if d.fired_at is not None}
        assert fired == {(cid, "acknowledgement") for cid in old_ids}, "deadlines fired"
        # Letters: one acknowledgement per old complaint, none twice, each written once.
        letters = session.execute(select(Letter.letter_id, Letter.complaint_id, Letter.kind,
                                         Letter.dedupe_key)).all()
        assert sorted((x.complaint_id, x.kind) for x in letters) == sorted(
            (cid, "acknowledgement") for cid in old_ids)
        assert len({x.dedupe_key for x in letters}) == len(letters)
        rejections = session.execute(select(Rejection.reason, Rejection.raw)).all()
    assert len(rejections) == stream.bad, "every bad message rejected, once"
    assert all(r.reason for r in rejections)
    names = [p.name for p in letters_dir.iterdir()]
    files = sorted(n for n in names if not n.startswith("."))
    assert files == sorted(f"{x.letter_id}.txt" for x in letters), "each letter's file, once"
    # A process killed while writing a letter leaves its temporary file (removed after an
    # hour by the next start), never a partial file under the letter's name.
    leftovers = [n for n in names if n.startswith(".")]
    assert all(n.endswith(".tmp") and n[1:].split(".txt.")[0] + ".txt" in files
               for n in leftovers), leftovers
    return {"complaints": len(states), "letters": len(letters), "rejections": len(rejections),
            "deadlines": len(deadlines)}


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """GET a health endpoint: (status, body); (0, {}) when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}
