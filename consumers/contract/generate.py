"""Builds the AsyncAPI 3.0 document and the per-type JSON Schemas from the code.

Sources: `workflow.events.EVENT_TYPES` (events in), `consumers.contract.models` (events out),
`consumers.settings.TOPICS` (channels, keys, partitions). Nothing is written by hand twice.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from consumers.contract import ASYNCAPI_PATH, SCHEMAS_DIR
from consumers.contract.models import (
    LIFECYCLE_MESSAGES,
    DeadlineDue,
    LetterDispatched,
    LetterIssued,
    MessageRejected,
)
from consumers.settings import TOPICS, Logical
from workflow.events import EVENT_TYPES
from workflow.limits import MAX_MESSAGE_BYTES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING = "0.5.0"
# The contract's own version: minor for an added field or message, major for a removal.
CONTRACT_VERSION = "1.1.0"


class _WithCodes(GenerateJsonSchema):
    """Adds `enum` for fields checked against a list of codes (categories, channels, ...).

    The event models check codes with an after-validator holding the allowed values, which a
    JSON Schema cannot see by itself; the values are read from that validator so the list in
    the schema is the one the code enforces.
    """

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        result = super().function_after_schema(schema)
        function = schema["function"].get("function")
        try:
            allowed = inspect.getclosurevars(function).nonlocals.get("allowed")  # type: ignore[arg-type]
        except TypeError:
            allowed = None
        if isinstance(allowed, tuple) and all(isinstance(v, str) for v in allowed):
            result = {**result, "enum": list(allowed)}
        return result


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    _, top = models_json_schema([(m, "validation") for m in models],
                                ref_template="#/components/schemas/{model}",
                                schema_generator=_WithCodes)
    return dict(sorted(top.get("$defs", {}).items()))


def event_schema(event_type: str) -> dict[str, Any]:
    """A standalone JSON Schema for one event type (consumers/contract/schemas/)."""
    model = EVENT_TYPES[event_type]
    schema = model.model_json_schema(schema_generator=_WithCodes)
    return {"$schema": SCHEMA_DIALECT, "$id": f"{event_type}.json", **schema,
            "title": event_type}


def _message(name: str, schema: str, summary: str, key: str,
             headers: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{schema}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key},
                               "bindingVersion": KAFKA_BINDING}},
    }
    if headers:
        message["headers"] = {"$ref": "#/components/schemas/OutputHeaders"}
    return message


def _summary(model: type[BaseModel]) -> str:
    return (inspect.getdoc(model) or model.__name__).splitlines()[0]


def _messages() -> dict[Logical, dict[str, dict[str, Any]]]:
    """Per logical topic: message name -> AsyncAPI message object."""
    events_key = TOPICS["events"].key
    out: dict[Logical, dict[str, dict[str, Any]]] = {
        "events": {t: _message(t, m.__name__, _summary(m), events_key, headers=False)
                   for t, m in EVENT_TYPES.items()},
        "deadlines": {"deadline.due": _message("deadline.due", "DeadlineDue",
                                               _summary(DeadlineDue), "complaint_id")},
        "lifecycle": {m.model_fields["type"].annotation.__args__[0]:  # type: ignore[union-attr]
                      _message(m.model_fields["type"].annotation.__args__[0],  # type: ignore[union-attr]
                               m.__name__, _summary(m), "complaint_id")
                      for m in LIFECYCLE_MESSAGES},
        "letters": {"letter.issued": _message("letter.issued", "LetterIssued",
                                              _summary(LetterIssued), "complaint_id"),
                    "letter.dispatched": _message("letter.dispatched", "LetterDispatched",
                                                  _summary(LetterDispatched), "complaint_id")},
        "rejected": {"message.rejected": _message(
            "message.rejected", "MessageRejected", _summary(MessageRejected),
            TOPICS["rejected"].key)},
    }
    assert set(out) == set(TOPICS)
    return out


def _components(messages: dict[Logical, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    models: list[type[BaseModel]] = [*EVENT_TYPES.values(), *LIFECYCLE_MESSAGES, LetterIssued,
                                     LetterDispatched, DeadlineDue, MessageRejected]
    schemas = _schemas(models)
    schemas["OutputHeaders"] = {
        "type": "object",
        "properties": {
            "event_id": {"type": "string", "description": "The payload's event_id (dedupe "
                                                          "without parsing the value)."},
            "type": {"type": "string", "description": "The payload's type, when it has one."},
        },
    }
    return {
        "schemas": schemas,
        # Keyed by channel too: "complaint.recategorised" is both an input event and an
        # output lifecycle event, with different payloads.
        "messages": {f"{logical}.{name}": message for logical, by_name in messages.items()
                     for name, message in by_name.items()},
        "parameters": {"prefix": {
            "description": "The deployment's COMPLAINTS_TOPIC_PREFIX (default empty).",
            "default": "", "examples": ["", "acme."]}},
    }


# Who sends and who receives each topic, from the service's point of view.
OPERATIONS: dict[str, tuple[str, Logical, str]] = {
    "receiveEvents": ("receive", "events",
                      "The workflow consumer applies each event once (duplicates by event_id "
                      "are ignored) or rejects it with a reason."),
    "sendDeadlines": ("send", "deadlines", "The timer service publishes due deadlines."),
    "receiveDeadlines": ("receive", "deadlines",
                         "The workflow consumer fires each deadline once, re-checking the "
                         "complaint."),
    "sendLifecycle": ("send", "lifecycle", "The outbox relay publishes every applied change."),
    "sendLetters": ("send", "letters", "The outbox relay publishes every letter issued."),
    "sendRejected": ("send", "rejected",
                     "The outbox relay publishes every rejected input with its reason."),
}

DESCRIPTION = f"""\
Contact-centre systems publish events to `complaints.events`; the service applies each one \
exactly once in effect and publishes what changed.

* One JSON object per message, UTF-8, at most {MAX_MESSAGE_BYTES // (1024 * 1024)} MiB. Key: \
`complaint_id` for `complaint.*` events, else `contact_id`, else `event_id`: one complaint's \
events must share a partition to be applied in order.
* `event_id` is unique: a second message with the same id is a duplicate delivery and is \
ignored.
* A message that cannot be applied is stored and published to `complaints.rejected` with a \
reason a person can act on; it never stops the consumer.
* Output events carry a unique `event_id` derived from their cause (also in the `event_id` \
header): after a crash the same event may be published again and is recognisable.
* Topic names take the deployment's prefix (`{{prefix}}`, COMPLAINTS_TOPIC_PREFIX).
"""


def build_document() -> dict[str, Any]:
    messages = _messages()
    channels = {
        logical: {
            "address": "{prefix}" + spec.name,
            "title": spec.name,
            "description": f"{spec.summary} Key: {spec.key}.",
            "parameters": {"prefix": {"$ref": "#/components/parameters/prefix"}},
            "messages": {name: {"$ref": f"#/components/messages/{logical}.{name}"}
                         for name in messages[logical]},
            "bindings": {"kafka": {
                "partitions": spec.partitions,
                **({"topicConfiguration": {k: int(v) for k, v in spec.configs.items()}}
                   if spec.configs else {}),
                "bindingVersion": KAFKA_BINDING}},
        }
        for logical, spec in TOPICS.items()
    }
    operations = {
        name: {
            "action": action,
            "channel": {"$ref": f"#/channels/{logical}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{logical}/messages/{m}"}
                         for m in messages[logical]],
        }
        for name, (action, logical, summary) in OPERATIONS.items()
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Complaints workflow service", "version": CONTRACT_VERSION,
                 "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": _components(messages),
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    """Every shipped contract file and the content a fresh generation gives it."""
    files = {ASYNCAPI_PATH: render(build_document())}
    for event_type in EVENT_TYPES:
        files[SCHEMAS_DIR / f"{event_type}.json"] = render(event_schema(event_type))
    return files


def write_all() -> list[Path]:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    files = expected_files()
    for stale in SCHEMAS_DIR.glob("*.json"):
        if stale not in files:
            stale.unlink()
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return list(files)
