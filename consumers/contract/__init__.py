"""The published contract: an AsyncAPI 3.0 document and a JSON Schema per event type.

Everything here is generated (`python -m consumers.contract`) from the event models in
workflow/events.py, the output message models in `consumers.contract.models` and the topic
table in consumers/settings.py; tests/unit/test_contract.py fails when the shipped files and
a fresh generation differ.
"""

from __future__ import annotations

from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent
ASYNCAPI_PATH = CONTRACT_DIR / "asyncapi.json"
SCHEMAS_DIR = CONTRACT_DIR / "schemas"
