"""The shipped contract (consumers/contract/) is what the code generates and what it uses.

The AsyncAPI document and the per-type JSON Schemas are generated from the event models and
the topic table; these tests fail when the shipped files are stale (regenerate them with
`python -m consumers.contract`), when a topic the code uses is missing from the document or
one it names is unused, or when a reference in the document points nowhere.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from consumers.contract import ASYNCAPI_PATH, SCHEMAS_DIR
from consumers.contract.generate import build_document, expected_files
from consumers.outbox_relay import OutboxRelay
from consumers.settings import OUTBOX_TOPICS, TOPICS, Settings, Topics
from consumers.timer_service import TimerService
from consumers.workflow_consumer import WorkflowConsumer
from workflow.codes import CATEGORIES, CHANNELS
from workflow.events import EVENT_TYPES

DOCUMENT: dict[str, Any] = json.loads(ASYNCAPI_PATH.read_text(encoding="utf-8"))


def test_shipped_files_equal_a_fresh_generation() -> None:
    expected = expected_files()
    shipped = {ASYNCAPI_PATH, *SCHEMAS_DIR.glob("*.json")}
    assert shipped == set(expected), "run: python -m consumers.contract"
    for path, content in expected.items():
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.name} is stale: run python -m consumers.contract")


def test_every_event_type_has_a_message_and_a_schema() -> None:
    events = DOCUMENT["channels"]["events"]["messages"]
    assert set(events) == set(EVENT_TYPES)
    for event_type, model in EVENT_TYPES.items():
        message = DOCUMENT["components"]["messages"][f"events.{event_type}"]
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert message["name"] == event_type
        schema = json.loads((SCHEMAS_DIR / f"{event_type}.json").read_text())
        assert schema["properties"]["type"]["const"] == event_type
        assert {"event_id", "type", "occurred_at"} <= set(schema["required"])


def test_codes_the_models_enforce_are_enums_in_the_schemas() -> None:
    received = DOCUMENT["components"]["schemas"]["ComplaintReceived"]["properties"]
    assert received["category"]["enum"] == list(CATEGORIES)
    assert received["channel"]["enum"] == list(CHANNELS)
    assert received["fuel"]["enum"] == ["electricity", "gas", "dual"]


def _fake_app(dialect: str) -> Any:
    return SimpleNamespace(engine=SimpleNamespace(dialect=SimpleNamespace(name=dialect)))


@pytest.mark.parametrize("prefix", ["", "acme."])
def test_the_document_names_exactly_the_topics_the_code_uses(prefix: str) -> None:
    settings = Settings(bootstrap_servers="kafka:9092", topics=Topics(prefix), group_id="g")
    consumer = WorkflowConsumer(_fake_app("sqlite"), settings)
    timer = TimerService(_fake_app("sqlite"), settings)
    relay = OutboxRelay(_fake_app("sqlite"), settings)
    received = set(consumer.topics)
    sent = {timer.topic, *relay.topics.values(), settings.topics.events}  # + publish, demo

    def addresses(action: str) -> set[str]:
        return {DOCUMENT["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]
                .replace("{prefix}", prefix)
                for op in DOCUMENT["operations"].values() if op["action"] == action}

    assert addresses("receive") == received
    assert addresses("send") == sent - {settings.topics.events}
    all_channels = {c["address"].replace("{prefix}", prefix)
                    for c in DOCUMENT["channels"].values()}
    assert all_channels == received | sent == set(settings.topics.all().values())
    assert set(relay.topics) == set(OUTBOX_TOPICS)
    for logical, spec in TOPICS.items():
        assert DOCUMENT["channels"][logical]["bindings"]["kafka"]["partitions"] == spec.partitions


def test_every_reference_resolves() -> None:
    def resolve(pointer: str) -> Any:
        node: Any = DOCUMENT
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                resolve(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    assert DOCUMENT["asyncapi"] == "3.0.0"
    in_channels = sum(len(c["messages"]) for c in DOCUMENT["channels"].values())
    assert len(DOCUMENT["components"]["messages"]) == in_channels, "a message name collides"
    walk(DOCUMENT)
    assert build_document() == DOCUMENT
