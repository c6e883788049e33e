"""`complaints simulate`'s bad usage found before any replay: a report path that cannot be
written (its folder missing)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from consumers.cli import main
from tests.builders import received, write_jsonl


def _stream(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "stream.jsonl", [received("r1", "C-1", "2026-01-05T09:00:00Z")])


def test_a_report_in_a_missing_folder_is_bad_usage_before_the_replays(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "report.html"
    result = CliRunner().invoke(main, ["simulate", str(_stream(tmp_path)), "--html", str(target),
                                       "--format", "json"])
    assert result.exit_code == 2
    assert f"cannot write {target}: no folder {target.parent}" in result.stderr
    assert result.stdout == ""  # nothing replayed, nothing printed


def test_a_report_that_can_be_written_is(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["simulate", str(_stream(tmp_path)), "--html", str(target),
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    assert target.read_text("utf-8").startswith("<!DOCTYPE html>")
