"""Quarterly A2-A5 for receipts sharing a contact id (docs/rules.md s.7): one contact, in the
period and by the channel of its earliest receipt, ties going to the one applied first; on
both backends (the shared-contact query is two anti-joins since migration 0011)."""

from __future__ import annotations

from pathlib import Path

from consumers.file_ingest import ingest_file
from tests.builders import received, write_jsonl
from tests.integration.test_report_returns import quarterly
from workflow.bootstrap import App


def test_earliest_receipt_decides_and_a_tie_goes_to_the_first_applied(app: App,
                                                                      tmp_path: Path) -> None:
    # "three": R1 by letter at 10:00, R2 by telephone at 10:01, R3 by email at 10:02 (Tue 5
    # May); the file lists R3 before R2: the earliest is still R1, so the contact is A3.
    # "tie": T1 by webchat and T2 by telephone at the same instant, T1 applied first: A5.
    # A lone telephone receipt (no contact id) is a contact of its own: A2.
    events = [
        received("r1", "R1", "2026-05-05T10:00:00+00:00", channel="letter", contact_id="three"),
        received("r3", "R3", "2026-05-05T10:02:00+00:00", channel="email", contact_id="three"),
        received("r2", "R2", "2026-05-05T10:01:00+00:00", channel="telephone",
                 contact_id="three"),
        received("t1", "T1", "2026-05-06T11:00:00+00:00", channel="webchat", contact_id="tie"),
        received("t2", "T2", "2026-05-06T11:00:00+00:00", channel="telephone", contact_id="tie"),
        received("n1", "N1", "2026-05-07T12:00:00+00:00", channel="telephone"),
    ]
    outcome = ingest_file(app, write_jsonl(tmp_path / "shared.jsonl", events))
    assert outcome.rejected == 0, outcome.rejections
    items = quarterly(app, "2026-Q2")["items"]
    assert (items["A1"], items["A2"], items["A3"], items["A4"], items["A5"]) == (3, 1, 1, 0, 1)
    # Every complaint still counts in B under its own channel: telephone R2, T2, N1; letter R1;
    # email R3; webchat T1.
    assert (items["B6"], items["B7"], items["B8"], items["B9"], items["B10"]) == (6, 3, 1, 1, 1)
