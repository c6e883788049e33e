"""Every `complaints` command runs with the collector set for a worker holding many objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumers.cli import main
from consumers.gc_tuning import GC_THRESHOLDS


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_collector")
def test_a_command_sets_the_thresholds_and_freezes_what_is_loaded(tmp_path: Path) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    gc.unfreeze()
    result = CliRunner().invoke(main, ["backlog", "--db", f"sqlite:///{tmp_path / 'c.db'}"])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == GC_THRESHOLDS == (50_000, 10, 10)
    assert gc.get_freeze_count() > 0
