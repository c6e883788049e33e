"""(v2) The monthly return's `b22_explanations` and `subsidiary_types`, and the
`accounts at period end` check (docs/rules.md s.7), worked by hand, on SQLite and PostgreSQL.

May 2026 receipts (Europe/London dates; BST):
K6  30 Apr, B22 "Old": April, counted nowhere below.
K1  4 May, B22 "Smart meter display blank  " (trailing spaces), subsidiary B14, B9.
K2  5 May, B22 "Smart meter display blank", subsidiary B14.
K3  6 May, B13, subsidiary B12; recategorised 20 May to B22 "Agent was rude".
K4  7 May, B22 "Agent was rude"; resolved 8 May, reopened 12 May (a second B22 receipt; a
    reopen adds nothing to subsidiary_types).
K5  8 May, B9, subsidiary B22; recategorised 2 Jun to B22 "Website down" (after May: the
    return as of 30 Jun counts it under B22, as of 1 Jun under B9).
K7  11 May, B22 "website down" (lower case: a different text; "W" U+0057 sorts before "w").
As of 30 Jun, B22 in May = K1, K2, K3, K4, K4's reopen, K5, K7 = 7:
  "Agent was rude" 3 (K3, K4 twice), "Smart meter display blank" 2 (trimmed, K1 and K2),
  then the two with 1 in code-point order: "Website down", "website down".
subsidiary_types (first receipts only): B14 2 (K1, K2), B9 1 (K1), B12 1 (K3), B22 1 (K5).

Snapshots: dated 30 Apr, 31 May (sent 1 Jun): Q2's latest is from its second month, so E18/E19
come from 31 May and "accounts at period end" fails for Q2, holds for May; a 30 Jun snapshot
(sent 1 Jul) mends Q2.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from consumers.file_ingest import ingest_file
from reporting.export import write_xlsx
from reporting.items import MONTHLY, QUARTERLY
from reporting.periods import parse_month, parse_quarter
from reporting.report import run_report, to_json
from tests.builders import event, received, reopened, resolved, simple, write_jsonl
from workflow.bootstrap import App
from workflow.codes import CATEGORIES

AS_OF = "2026-06-30T12:00:00+00:00"


def snapshot(event_id: str, at: str, as_of: str, electricity: int, gas: int) -> dict[str, Any]:
    return event("accounts.snapshot", event_id, at, as_of=as_of,
                 electricity_accounts=electricity, gas_accounts=gas)


EVENTS: list[dict[str, Any]] = [
    received("k6", "K6", "2026-04-30T10:00:00+01:00", category="B22", other_explanation="Old"),
    received("k1", "K1", "2026-05-04T10:00:00+01:00", category="B22",
             other_explanation="Smart meter display blank  ",
             subsidiary_categories=["B14", "B9"]),
    received("k2", "K2", "2026-05-05T10:00:00+01:00", category="B22",
             other_explanation="Smart meter display blank", subsidiary_categories=["B14"]),
    received("k3", "K3", "2026-05-06T10:00:00+01:00", category="B13",
             subsidiary_categories=["B12"]),
    received("k4", "K4", "2026-05-07T10:00:00+01:00", category="B22",
             other_explanation="Agent was rude"),
    resolved("k4r", "K4", "2026-05-08T10:00:00+01:00"),
    received("k5", "K5", "2026-05-08T11:00:00+01:00", category="B9",
             subsidiary_categories=["B22"]),
    received("k7", "K7", "2026-05-11T10:00:00+01:00", category="B22",
             other_explanation="website down"),
    reopened("k4o", "K4", "2026-05-12T10:00:00+01:00"),
    simple("complaint.recategorised", "k3c", "K3", "2026-05-20T10:00:00+01:00",
           category="B22", other_explanation="Agent was rude"),
    snapshot("s-apr", "2026-05-01T09:00:00+01:00", "2026-04-30", 1_000, 800),
    snapshot("s-may", "2026-06-01T09:00:00+01:00", "2026-05-31", 1_010, 805),
    simple("complaint.recategorised", "k5c", "K5", "2026-06-02T10:00:00+01:00",
           category="B22", other_explanation="Website down"),
]


@pytest.fixture
def recorded(app: App, tmp_path: Path) -> App:
    outcome = ingest_file(app, write_jsonl(tmp_path / "annexes.jsonl", EVENTS))
    assert outcome.rejected == 0, outcome.rejections
    return app


def may(app: App, as_of: str = AS_OF) -> dict[str, Any]:
    return to_json(run_report(app, MONTHLY, parse_month("2026-05"),
                              datetime.fromisoformat(as_of)))


def test_b22_explanations_after_recategorisations(recorded: App) -> None:
    document = may(recorded)
    assert document["items"]["B22"] == 7
    assert document["b22_explanations"] == [
        {"explanation": "Agent was rude", "count": 3},
        {"explanation": "Smart meter display blank", "count": 2},
        {"explanation": "Website down", "count": 1},
        {"explanation": "website down", "count": 1},
    ]
    assert sum(e["count"] for e in document["b22_explanations"]) == document["items"]["B22"]
    # As of 1 Jun, K5 was still B9: six B22 receipts, no "Website down".
    earlier = may(recorded, "2026-06-01T12:00:00+00:00")
    assert (earlier["items"]["B22"], earlier["items"]["B9"]) == (6, 1)
    assert [e["explanation"] for e in earlier["b22_explanations"]] == [
        "Agent was rude", "Smart meter display blank", "website down"]


def test_subsidiary_types_count_first_receipts_for_every_code(recorded: App) -> None:
    types = may(recorded)["subsidiary_types"]
    assert list(types) == list(CATEGORIES)  # B5 ... B22, zeros included
    assert {code: n for code, n in types.items() if n} == {"B9": 1, "B12": 1, "B14": 2,
                                                          "B22": 1}


def test_accounts_at_period_end(recorded: App, tmp_path: Path) -> None:
    check = {c["name"]: c for c in may(recorded)["checks"]}["accounts at period end"]
    assert check == {"name": "accounts at period end", "ok": True,
                     "detail": "accounts from the snapshot dated 2026-05-31, the period's last day"}

    def q2(as_of: str = AS_OF) -> dict[str, Any]:
        return to_json(run_report(recorded, QUARTERLY, parse_quarter("2026-Q2"),
                                  datetime.fromisoformat(as_of)))

    document = q2()
    assert (document["items"]["E18"], document["items"]["E19"]) == (1_010, 805)
    check = {c["name"]: c for c in document["checks"]}["accounts at period end"]
    assert check == {"name": "accounts at period end", "ok": False,
                     "detail": "accounts from the snapshot dated 2026-05-31, not the period's "
                               "last day (2026-06-30)"}
    outcome = ingest_file(recorded, write_jsonl(tmp_path / "june.jsonl", [
        snapshot("s-jun", "2026-07-01T09:00:00+01:00", "2026-06-30", 1_020, 810)]))
    assert outcome.applied == 1
    later = q2("2026-07-02T00:00:00+00:00")
    assert (later["items"]["E18"], later["items"]["E19"]) == (1_020, 810)
    assert all(c["ok"] for c in later["checks"])


def test_workbook_has_a_sheet_per_annex(recorded: App, tmp_path: Path) -> None:
    path = tmp_path / "may.xlsx"
    report = run_report(recorded, MONTHLY, parse_month("2026-05"),
                        datetime.fromisoformat(AS_OF))
    write_xlsx(report, path, "Kilowatt Connect", "LN-123")
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["Monthly", "Checks", "B22 explanations",
                                   "Subsidiary types"]
    assert workbook["Monthly"]["A3"].value == "Licence number"
    assert workbook["Monthly"]["B3"].value == "LN-123"
    explanations = [tuple(c.value for c in row) for row in workbook["B22 explanations"].rows]
    assert explanations == [("Explanation", "Count"), ("Agent was rude", 3),
                            ("Smart meter display blank", 2), ("Website down", 1),
                            ("website down", 1)]
    types = [tuple(c.value for c in row) for row in workbook["Subsidiary types"].rows]
    assert types[0] == ("Item", "Description", "Count") and len(types) == 19
    assert types[10] == ("B14", CATEGORIES["B14"], 2)
