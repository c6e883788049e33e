"""`complaints up` as a newcomer runs it: no Kafka configured, an embedded broker, SQLite.

`--demo --duration` runs the whole service with the simulated contact centre and stops by
itself with a summary; SIGTERM stops it cleanly; the log carries ids and counts only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("tansu_binary")]

COMPLAINTS = Path(sys.executable).with_name("complaints")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAFKA_", "COMPLAINTS_"))}
    env["COMPLAINTS_HEALTH_FILE"] = str(tmp_path / "alive")
    env["COMPLAINTS_WEB_PORT"] = "0"  # any free port: 8080 may be taken on a shared machine
    env["COMPLAINTS_LETTERS_DIR"] = str(tmp_path / "letters")  # not the working directory
    env["COMPLAINTS_PRINT_DIR"] = str(tmp_path / "print")
    env["COMPLAINTS_DEMO_MAIL_DIR"] = str(tmp_path / "mail")
    return env


def test_up_demo_runs_the_whole_flow_and_stops_after_its_duration(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COMPLAINTS), "up", "--demo", "--demo-rate", "5", "--duration", "20",
         "--format", "json", "--db", f"sqlite:///{tmp_path / 'demo.db'}"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    parts = summary["components"]
    assert set(parts) == {"consumer", "timer", "relay", "letters", "delivery", "aggregator",
                          "retention", "demo"}
    # The daily retention run ran once at start: the demo's complaints are all recent.
    assert (parts["retention"]["runs"], parts["retention"]["failures"],
            parts["retention"]["erased"]) == (1, 0, 0)
    assert parts["demo"]["published"] > 50
    assert parts["consumer"]["applied"] > 50
    # The demo's backlog of old complaints has deadlines due at once: fired, letters out.
    assert parts["timer"]["published"] > 0
    assert parts["relay"]["published"] > parts["consumer"]["applied"]
    assert parts["aggregator"]["applied"] > parts["consumer"]["applied"]
    assert parts["aggregator"]["malformed"] == 0
    # Those letters become files (PDF, HTML and text by default).
    assert parts["letters"]["rendered"] > 0 and parts["letters"]["failed"] == 0
    written = sorted((tmp_path / "letters").iterdir())
    assert len(written) == parts["letters"]["files"] == 3 * parts["letters"]["rendered"]
    assert {p.suffix for p in written} == {".pdf", ".html", ".txt"}
    # (v2) Delivered despite the bundled procedure's placeholders (the demo says so): email
    # customers' letters as .eml files from the local SMTP sink, the rest in print runs.
    delivery = parts["delivery"]
    assert delivery["paused"] == 0 and delivery["emailed"] > 0 and delivery["posted"] > 0
    assert len(list((tmp_path / "mail").glob("*.eml"))) == delivery["emailed"]
    printed = list((tmp_path / "print").glob("run-*/L-*.pdf"))
    assert len(printed) == delivery["posted"]
    assert "demo: delivering although the procedure marks [complaints_manager]" in result.stderr
    assert summary["record"]["outbox_unpublished"] == 0, "the relay stops last and drains"
    assert sum(summary["record"]["by_state"].values()) > 20
    assert (tmp_path / "alive").exists()
    log = result.stderr
    assert "embedded broker" in log and "--duration 20 s reached" in log
    assert "Demo Customer" not in log and "High Street" not in log, "personal data in the log"
    # No COMPLAINTS_OPS_TOKEN: one is generated and shown once, with the dashboard link.
    assert log.count("ops dashboard: http://localhost:") == 1
    assert "ops dashboard: http://localhost:0/" not in log, "the bound port, not 0"
    assert "ops web server on http://127.0.0.1:" in log


def test_up_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    health = tmp_path / "alive"
    process = subprocess.Popen(
        [str(COMPLAINTS), "up", "--db", f"sqlite:///{tmp_path / 'up.db'}"],
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not health.exists():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "never became healthy"
            time.sleep(0.2)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert time.monotonic() - started < 30
    assert "SIGTERM: stopping" in err and "workflow consumer closed" in err
    assert "backlog as of" in out
