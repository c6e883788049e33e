"""(v2) `complaints report ... --submit` and `complaints submissions ...` through the command
line, on SQLite (the PostgreSQL path is tests/integration/test_submissions.py).

The data is the hand-worked scenario of tests/integration/test_report_returns.py (figures
worked out there): January 2026 has 8 receipts and its 31 Jan snapshot; Q1's accounts come
from the 31 Mar snapshot; February has no snapshot, so its check fails.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumers.cli import main
from tests.builders import simple, write_jsonl
from tests.integration.test_report_returns import AS_OF, SCENARIO


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'complaints.db'}"
    events = write_jsonl(tmp_path / "events.jsonl", SCENARIO)
    assert CliRunner().invoke(main, ["ingest", str(events), "--db", url]).exit_code == 0
    assert CliRunner().invoke(main, ["tick", "--until", AS_OF, "--db", url]).exit_code == 0
    return url


def invoke(db: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(main, [*args, "--db", db, "--format", "json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result


def test_submit_export_list_diff(db: str, tmp_path: Path) -> None:
    csv_path, xlsx_path = tmp_path / "jan.csv", tmp_path / "jan.xlsx"
    document = invoke(db, "report", "monthly", "2026-01", "--submit", "--by", "Priya Shah",
                      "--as-of", AS_OF, "--csv", str(csv_path), "--xlsx", str(xlsx_path))
    receipt = document.pop("submission")
    assert (receipt["id"], receipt["by"]) == ("2026-01-S1", "Priya Shah")
    assert document["items"]["A1"] == 8
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert receipt["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    # The files written at submission are the stored bytes, and export writes them again.
    for written, suffix in ((csv_path, "csv"), (xlsx_path, "xlsx")):
        again = tmp_path / f"again.{suffix}"
        exported = invoke(db, "submissions", "export", "2026-01-S1", "--to", str(again))
        assert exported["bytes"] == len(written.read_bytes())
        assert again.read_bytes() == written.read_bytes()
    listed = invoke(db, "submissions", "list")
    assert [(s["id"], s["kind"], s["period"], s["as_of"], s["by"], s["sha256"])
            for s in listed] == [("2026-01-S1", "monthly", "2026-01", "2026-06-30T00:00:00+00:00",
                                  "Priya Shah", receipt["sha256"])]
    assert set(listed[0]) >= {"id", "kind", "period", "as_of", "submitted_at", "by", "sha256"}
    same = invoke(db, "submissions", "diff", "2026-01-S1", "--as-of", AS_OF)
    assert (same["resubmission_needed"], same["changed"]) == (False, {})
    # C8 (B9 since 3 Feb) recategorised to B22 after the submission.
    late = write_jsonl(tmp_path / "late.jsonl", [simple(
        "complaint.recategorised", "c8-9", "C8", "2026-07-01T10:00:00+00:00", category="B22",
        other_explanation="Installer left rubbish")])
    assert CliRunner().invoke(main, ["ingest", str(late), "--db", db]).exit_code == 0
    moved = invoke(db, "submissions", "diff", "2026-01-S1")
    assert moved["resubmission_needed"] is True
    assert {code: (e["submitted"], e["now"]) for code, e in moved["changed"].items()} == {
        "B9": (1, 0), "B22": (1, 2),
        "b22_explanations": ([{"explanation": "Noise from the meter cupboard", "count": 1}],
                             [{"explanation": "Installer left rubbish", "count": 1},
                              {"explanation": "Noise from the meter cupboard", "count": 1}])}
    assert moved["changed"]["B22"]["reasons"][0]["complaint_id"] == "C8"


def test_refusals_and_usage(db: str, tmp_path: Path) -> None:
    refused = invoke(db, "report", "monthly", "2026-02", "--submit", "--as-of", AS_OF, code=1)
    assert "accounts at period end" in refused.stderr and "--force --reason" in refused.stderr
    assert invoke(db, "report", "monthly", "2026-02", "--submit", "--force", code=2)
    assert invoke(db, "report", "monthly", "2026-02", "--by", "x", code=2)
    forced = invoke(db, "report", "monthly", "2026-02", "--submit", "--force", "--reason",
                    "No February snapshot", "--as-of", AS_OF)
    assert forced["submission"]["by"] == getpass.getuser()  # the OS user by default
    assert "2099-01 has not ended" in invoke(db, "report", "monthly", "2099-01", "--submit",
                                             code=1).stderr
    assert invoke(db, "submissions", "export", "nope", "--to", str(tmp_path / "x.csv"), code=1)
    assert invoke(db, "submissions", "export", "2026-02-S1", "--to", str(tmp_path / "x.pdf"),
                  code=2)


def test_due_and_publish(db: str) -> None:
    invoke(db, "report", "quarterly", "2026-Q1", "--submit", "--as-of", AS_OF)
    # As of now (the wall clock: the quarter was just submitted).
    due = invoke(db, "submissions", "due", "--from", "2026-01")
    assert [(e["kind"], e["period"], e["due"], e["status"]) for e in due][:5] == [
        ("monthly", "2026-01", "2026-03-02", "overdue"),
        ("monthly", "2026-02", "2026-03-30", "overdue"),
        ("monthly", "2026-03", "2026-04-28", "overdue"),
        ("quarterly", "2026-Q1", "2026-04-28", "submitted"),
        ("monthly", "2026-04", "2026-05-28", "overdue"),
    ]
    assert all(set(e) >= {"kind", "period", "due", "submitted_at", "status"} for e in due)
    # As of 1 Jul 2026 that submission had not been made.
    earlier = invoke(db, "submissions", "due", "--as-of", "2026-07-01T00:00:00Z", "--from",
                     "2026-01")
    assert [e["status"] for e in earlier if e["kind"] == "quarterly"] == ["overdue", "due"]
    # Default --from: the first receipt's month (CR, 3 Nov 2025).
    assert invoke(db, "submissions", "due", "--as-of", "2026-07-01T00:00:00Z")[0]["period"] \
        == "2025-11"
    published = invoke(db, "submissions", "publish", "2026-Q1", "--url", "https://e.org/q1")
    assert published["publication"]["url"] == "https://e.org/q1"
    assert published["complaints_received"] == 11
    kinds = [s["kind"] for s in invoke(db, "submissions", "list")]
    assert kinds == ["quarterly", "publication"]
