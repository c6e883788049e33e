"""The streaming aggregator through the real (embedded Tansu) broker.

The scenario is recorded by the real handlers into SQLite (test_aggregator_model.py); its outbox
rows are published to the lifecycle and letters topics as the relay would (keyed by complaint
id), with re-deliveries and malformed messages mixed in. The aggregator's HTTP figures must then
equal the database's: the backlog at several instants and every return item it counts, for
every period. A second aggregator, a separate process, is killed (SIGKILL) mid-stream and
restarted: it recovers its table from the changelog, resumes from its committed offsets, and
the figures are equal again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaProducer

from consumers.aggregator import AggregatorConfig, run_aggregator
from consumers.broker import EmbeddedBroker
from consumers.cli import main
from consumers.file_ingest import ingest_file
from consumers.settings import Settings, Topics
from reporting.reconcile import AggregatorClient, compare
from reporting.web import OpsState
from tests.integration.test_aggregator_model import AS_OF, Scenario, build_scenario
from workflow.bootstrap import bootstrap

pytestmark = pytest.mark.kafka

TOKEN = "test-ops-token"
ROOT = Path(__file__).parents[2]
PARTITIONS = 6
# Tansu forms a group in about session_timeout / 2 (consumers/broker.py).
FAST = {"session_timeout_s": 6.0, "heartbeat_s": 2.0}
Message = tuple[str, str, dict[str, Any]]


def publish(broker: EmbeddedBroker, topics: Topics, messages: list[Message],
            extra: Sequence[tuple[str, bytes]] = ()) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
    try:
        for topic, key, payload in messages:
            producer.send(topics.name(topic), key=key.encode(),  # type: ignore[arg-type]
                          value=json.dumps(payload).encode())
        for topic, raw in extra:
            producer.send(topics.name(topic), key=b"C-broken", value=raw)  # type: ignore[arg-type]
        producer.flush()
    finally:
        producer.close()


def get(url: str, token: str | None = TOKEN, scheme: str = "Bearer") -> tuple[int, Any, Any]:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, response.headers, json.loads(body) if "json" in kind else body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, {}, None


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def differences(scenario: Scenario, url: str) -> list[dict[str, Any]] | None:
    """Every figure the aggregator serves against the record, at each test instant."""
    client = AggregatorClient(url, TOKEN)
    found: list[dict[str, Any]] = []
    try:
        for text in AS_OF:
            result = compare(scenario.app, client, datetime.fromisoformat(text))
            # backlog 24 figures, 23 per month, 15 per quarter: nothing compared vacuously
            assert result.compared >= 24 + 4 * 23 + 2 * 15
            found += result.differences
    except Exception:  # noqa: BLE001 - not ready yet: keep waiting
        return None
    return found


def wait_equal(scenario: Scenario, url: str, timeout: float = 90.0) -> None:
    last: list[dict[str, Any]] | None = None

    def equal() -> bool:
        nonlocal last
        last = differences(scenario, url)
        return last == []

    try:
        wait_for(equal, timeout, "the aggregator's figures to equal the database's")
    except AssertionError:
        raise AssertionError(f"still different: {(last or [])[:10]}") from None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    built = build_scenario(tmp_path_factory.mktemp("aggregator-broker"))
    yield built
    built.app.engine.dispose()


@dataclass
class Live:
    url: str
    state: OpsState
    topics: Topics
    published: int


@pytest.fixture(scope="module")
def live(kafka_broker: EmbeddedBroker, scenario: Scenario) -> Iterator[Live]:
    """An in-process aggregator (thread) fed half before it starts and half while it runs."""
    topics = Topics(f"agg-{uuid.uuid4().hex[:8]}.")
    kafka_broker.create_topics([topics.lifecycle, topics.letters], partitions=PARTITIONS)
    half = len(scenario.messages) // 2
    publish(kafka_broker, topics, scenario.messages[:half])
    settings = Settings(bootstrap_servers=kafka_broker.bootstrap_servers, topics=topics,
                        group_id="unused")
    state = OpsState(scenario.app.procedure.calendar, _idle_aggregator(scenario))
    stop = threading.Event()
    thread = threading.Thread(target=run_aggregator, args=(settings, stop), kwargs={
        "procedure": scenario.app.procedure, "token": TOKEN, "host": "127.0.0.1", "port": 0,
        "config": AggregatorConfig(single_record_batches=True, **FAST), "state": state},
        name="aggregator", daemon=True)
    thread.start()
    try:
        wait_for(lambda: state.web_port, 10, "the web server")
        url = f"http://127.0.0.1:{state.web_port}"
        # Re-deliveries (a relay re-publishing after a crash) and two unreadable messages.
        redelivered = scenario.messages[100:400]
        publish(kafka_broker, topics, scenario.messages[half:] + redelivered,
                extra=[("lifecycle", b"{not json"), ("letters", b'{"event_id": "x"}')])
        yield Live(url, state, topics, len(scenario.messages) + len(redelivered) + 2)
    finally:
        stop.set()
        thread.join(30)


def _idle_aggregator(scenario: Scenario) -> Any:
    from reporting.ops.records import Rules
    from reporting.ops.view import Aggregator

    return Aggregator(Rules(scenario.app.procedure.calendar), store={})


def test_figures_through_the_broker_equal_the_database(live: Live, scenario: Scenario) -> None:
    wait_equal(scenario, live.url)
    status, _, health = get(f"{live.url}/ready", token=None)
    assert status == 200 and health["ready"]
    assert get(f"{live.url}/health", token=None)[0] == 200
    events = health["events"]
    assert events["applied"] + events["duplicates"] + events["malformed"] == live.published
    assert events["duplicates"] >= 300 and events["malformed"] == 2
    assert health["partitions"] == {"assigned": PARTITIONS, "total": PARTITIONS}


def test_requests_without_the_token_are_refused(live: Live) -> None:
    wait_for(lambda: get(f"{live.url}/ready", None)[0] == 200, 60, "ready")
    for path in ("/backlog", "/returns/current", "/metrics", "/backlog?as_of=2026-01-01"):
        for token, scheme in ((None, "Bearer"), ("wrong", "Bearer"), (TOKEN, "Basic"),
                              ("", "Bearer"), (TOKEN + "x", "Bearer")):
            status, headers, body = get(f"{live.url}{path}", token, scheme)
            assert status == 401, (path, token, scheme)
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert body == {"error": "missing or invalid bearer token"}
    # Open: health, readiness, and the dashboard page (which holds no figures).
    assert get(f"{live.url}/health", None)[0] == 200
    assert get(f"{live.url}/ready", None)[0] == 200
    status, headers, page = get(f"{live.url}/", None)
    assert status == 200 and b"<title>Complaints operations</title>" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]


def test_endpoints_with_the_token(live: Live, scenario: Scenario) -> None:
    wait_for(lambda: get(f"{live.url}/ready", None)[0] == 200, 60, "ready")
    status, _, backlog = get(f"{live.url}/backlog")
    assert status == 200
    assert set(backlog) == {"as_of", "by_state", "overdue", "due_within_5_working_days",
                            "late_referrals", "undelivered_letters"}  # (v2)
    assert len(backlog["by_state"]) == 10 and len(backlog["overdue"]) == 7
    status, _, returns = get(f"{live.url}/returns/current?month=2026-01&quarter=2026-Q1")
    assert status == 200 and returns["month"]["period"] == "2026-01"
    assert returns["month"]["items"]["A1"] == returns["month"]["items"]["B23"] > 0
    assert returns["quarter"]["items"]["C11"] == (returns["quarter"]["items"]["C13"]
                                                  + returns["quarter"]["items"]["C14"])
    status, headers, metrics = get(f"{live.url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = metrics.decode()
    assert 'complaints_backlog{state="resolved"}' in text
    assert 'complaints_deadlines_overdue{kind="remedy"}' in text
    assert "complaints_late_referrals " in text
    assert "complaints_aggregator_ready 1.0" in text
    for bad in ("/backlog?as_of=yesterday", "/backlog?as_of=2026-01-01T00:00:00",
                "/returns/current?month=2026-13", "/returns/current?quarter=2026-Q5"):
        status, _, body = get(f"{live.url}{bad}")
        assert status == 400 and "error" in body, bad


def test_reconcile_command(live: Live, scenario: Scenario, tmp_path: Path) -> None:
    wait_equal(scenario, live.url)
    runner = CliRunner()
    db = str(scenario.app.engine.url)
    args = ["reconcile", "--db", db, "--url", live.url, "--token", TOKEN, "--format", "json",
            "--settle", "0"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["differences"] == [] and document["compared"] > 100
    # A change the aggregator never saw (recorded, not published) is a difference.
    copy = tmp_path / "changed.db"
    shutil.copy(scenario.app.engine.url.database or "", copy)
    changed = bootstrap(f"sqlite:///{copy}", "kilowatt-connect")
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({
        "event_id": "unpublished-1", "type": "complaint.received", "complaint_id": "U-1",
        "occurred_at": "2026-04-29T09:00:00+01:00", "channel": "webchat", "category": "B12",
        "fuel": "gas", "summary": "s", "customer": {
            "account_id": "A", "name": "N", "address": ["1 Road"], "postcode": "EX1 1AA",
            "preferred_contact": "email"}}) + "\n")
    assert ingest_file(changed, extra).applied == 1
    changed.engine.dispose()
    result = runner.invoke(main, [*args[:2], f"sqlite:///{copy}", *args[3:],
                                  "--month", "2026-04", "--quarter", "2026-Q2"])
    assert result.exit_code == 1, result.output
    figures = {d["figure"]: (d["aggregator"], d["database"])
               for d in json.loads(result.stdout)["differences"]}
    received = figures["backlog.by_state.received"]
    assert received[1] == received[0] + 1
    assert figures["monthly 2026-04 B12"][1] == figures["monthly 2026-04 B12"][0] + 1
    assert "quarterly 2026-Q2 B10" in figures  # webchat
    # A refused token is a failure to compare, not a clean bill of health.
    result = runner.invoke(main, [*args[:5], "--token", "nope", "--settle", "0"])
    assert result.exit_code == 1 and "token was refused" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(broker: EmbeddedBroker, topics: Topics, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "COMPLAINTS_TOPIC_PREFIX": topics.prefix, "COMPLAINTS_OPS_TOKEN": TOKEN,
           "COMPLAINTS_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "consumers.aggregator", "--port", str(port), "--embedded-broker",
         "--session-timeout", str(FAST["session_timeout_s"]), "--heartbeat",
         str(FAST["heartbeat_s"])],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _committed(broker: EmbeddedBroker, group: str) -> int:
    """Sum of the group's committed offsets (0 before its first commit)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group) or {}
        return sum(max(0, meta.offset) for meta in offsets.values())
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return 0
    finally:
        admin.close()


def test_killed_mid_stream_then_restarted_recovers_from_the_changelog(
        kafka_broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path) -> None:
    topics = Topics(f"restart-{uuid.uuid4().hex[:8]}.")
    kafka_broker.create_topics([topics.lifecycle, topics.letters], partitions=PARTITIONS)
    group = topics.prefix + AggregatorConfig.group
    log = tmp_path / "aggregator.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    messages = scenario.messages
    split = len(messages) // 2
    publish(kafka_broker, topics, messages[:split])
    first = _start(kafka_broker, topics, port, log)
    # More keeps arriving while it runs, so that the kill lands mid-stream.
    trickle_stop = threading.Event()
    sent = [split]

    def trickle() -> None:
        while sent[0] < len(messages) and not trickle_stop.is_set():
            publish(kafka_broker, topics, messages[sent[0]:sent[0] + 50])
            sent[0] += 50
            time.sleep(0.1)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        # Killed once it has committed offsets (so a restart has something to resume from).
        wait_for(lambda: _committed(kafka_broker, group) > 0, 90, f"a commit ({log})")
    finally:
        first.send_signal(signal.SIGKILL)  # no leave-group, no final commit, no flush
        first.wait(10)
        trickle_stop.set()
        trickler.join(30)
    _, _, health = get(f"{url}/health", None)
    assert health is None  # really gone
    # The rest arrives while it is down, with a relay's re-deliveries.
    publish(kafka_broker, topics, messages[sent[0]:] + messages[:200])
    published = len(messages) + 200  # one offset each, over both topics
    second = _start(kafka_broker, topics, port, log)
    try:
        # Equal figures do not mean it has read everything: if the first instance had folded
        # the whole stream before the kill, the recovered table is complete and the figures are
        # equal before one message is re-read. Faust commits an offset only after processing
        # its message, so the counters are final once the commits cover every message published
        # (counted here: Tansu's end offsets are wrong for multi-record batches). Only the
        # second instance can commit the re-deliveries, published after the kill.
        wait_for(lambda: _committed(kafka_broker, group) >= published, 120,
                 f"the group's commits to cover the {published} messages published ({log})")
        wait_equal(scenario, url, timeout=120)
        _, _, health = get(f"{url}/health", None)
        # The table came back from the changelog, and consumption resumed from the committed
        # offsets: fewer messages read than were published in all.
        assert health["recovered_complaints"] > 0
        events = health["events"]
        assert events["applied"] + events["duplicates"] < published
        assert events["duplicates"] >= 200
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            second.kill()
    assert "aggregator recovered" in log.read_text()
