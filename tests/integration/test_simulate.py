"""`complaints simulate`, with its result worked by hand (Kilowatt Connect, ENG, Q1 2026).

C-1 received Mon 5 Jan 09:00Z, resolved Thu 19 Feb 09:00Z: 45 days.
C-2 received Tue 6 Jan 10:00Z, resolved Wed 25 Feb 10:00Z: 50 days.
C-3 received Wed 7 Jan 10:00Z, resolved the same day 15:00Z: 5 hours (C12).
C-4 received Mon 5 Jan 11:00Z, resolved Sat 10 Jan 11:00Z (5 days); reopened Thu 5 Mar
    10:00Z, after its eight weeks under either procedure, so its new eight-week deadline is
    the reopen's D+1 (end of Fri 6 Mar); resolved again Fri 6 Mar 10:00Z: 59 days 23 hours
    from the original receipt (C14).

Base (eight weeks = 56 days): the eight-week deadlines (2 Mar 09:00, 3 Mar 10:00, ...) find
every complaint resolved: no 8-week letter. Counted resolutions in Q1: C-1, C-2, C-3, C-4 twice:
C11 = 5, C12 = 1 (C-3), C13 = 4 (all but C-4's second, which is later than 56 x 24 h),
C14 = 1, D16 = 0; C12_pct 20.00, C13_pct 80.00, C14_pct 20.00; C15 = median of 0.21, 5, 45,
50, 59.96 days = 45.00.

Variant (eight_weeks_days = 42): C-1's eight weeks end Mon 16 Feb 09:00 and C-2's Tue 17 Feb
10:00, both before their resolutions: an 8-week letter each (D16 = 2), and their resolutions,
coming after an 8-week letter, are not counted (Ofgem 5.10). C-3 and C-4 are resolved before
day 42. C11 = 3, C12 = 1, C13 = 2 (C13's boundary is still Ofgem's 56 x 24 h, docs/rules.md
s.7: C-4's second resolution stays in C14), C14 = 1; C12_pct 33.33, C13_pct 66.67, C14_pct 33.33;
C15 = median of 0.21, 5, 59.96 = 5.00. Every complaint ends resolved on both sides; only C-1
and C-2 differ, by their 8-week letter.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from consumers.cli import main
from consumers.file_ingest import ingest_file, tick
from consumers.simulate import BadSetting, changed_items, replay, with_settings
from tests.builders import received, reopened, resolved, write_jsonl
from tests.record_snapshot import record
from workflow.bootstrap import bootstrap
from workflow.procedure import load_procedure
from workflow.schema import Letter

UNTIL = "2026-03-06T10:00:00+00:00"


def _stream(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "stream.jsonl", [
        received("r1", "C-1", "2026-01-05T09:00:00Z"),
        received("r4", "C-4", "2026-01-05T11:00:00Z"),
        received("r2", "C-2", "2026-01-06T10:00:00Z"),
        received("r3", "C-3", "2026-01-07T10:00:00Z"),
        resolved("s3", "C-3", "2026-01-07T15:00:00Z"),
        resolved("s4", "C-4", "2026-01-10T11:00:00Z"),
        resolved("s1", "C-1", "2026-02-19T09:00:00Z"),
        resolved("s2", "C-2", "2026-02-25T10:00:00Z"),
        reopened("o4", "C-4", "2026-03-05T10:00:00Z"),
        resolved("t4", "C-4", "2026-03-06T10:00:00Z"),
        "this line is not JSON",
    ])


def _simulate(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, ["simulate", *args, "--format", "json"])
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def test_eight_weeks_of_42_days_worked_by_hand(tmp_path: Path) -> None:
    db = tmp_path / "untouched.db"
    html = tmp_path / "report.html"
    code, d, _ = _simulate(str(_stream(tmp_path)), "--set", "eight_weeks_days=42",
                           "--db", f"sqlite:///{db}", "--html", str(html))
    assert code == 0
    assert not db.exists()  # a file is simulated without opening the record
    assert d["until"] == UNTIL  # the last event's instant
    assert d["base"]["eight_weeks_days"] == 56 and d["variant"]["eight_weeks_days"] == 42
    assert {k for k in d["base"] if d["base"][k] != d["variant"][k]} == {"eight_weeks_days"}

    q1 = d["returns"]["quarterly"]["2026-Q1"]
    assert q1["C11"] == {"base": 5, "variant": 3}
    assert q1["C12"] == {"base": 1, "variant": 1}
    assert q1["C13"] == {"base": 4, "variant": 2}
    assert q1["C14"] == {"base": 1, "variant": 1}
    assert q1["D16"] == {"base": 0, "variant": 2}
    assert q1["D17"] == {"base": 0, "variant": 0}
    assert q1["C12_pct"] == {"base": 20.0, "variant": 33.33}
    assert q1["C13_pct"] == {"base": 80.0, "variant": 66.67}
    assert q1["C14_pct"] == {"base": 20.0, "variant": 33.33}
    assert q1["C15"] == {"base": 45.0, "variant": 5.0}
    assert q1["B6"] == {"base": 5, "variant": 5}  # four receipts and a reopen
    # Nothing else differs, in any month or quarter; every period from January to March.
    assert sorted((c["period"], c["item"]) for c in changed_items(d)) == sorted(
        ("2026-Q1", item) for item in
        ("C11", "C13", "D16", "C12_pct", "C13_pct", "C14_pct", "C15"))
    assert list(d["returns"]["monthly"]) == ["2026-01", "2026-02", "2026-03"]
    assert list(d["returns"]["quarterly"]) == ["2026-Q1"]
    assert d["returns"]["monthly"]["2026-01"]["A1"] == {"base": 4, "variant": 4}

    assert d["letters"]["eight_week"] == {"base": 0, "variant": 2}
    # Progress updates every 10 days while open (docs/rules.md s.5, v2): C-1 at days 10-40 on both
    # sides (4); C-2 at days 10-50 in the base (5: the day-50 one, Wed 25 Feb 10:00Z, fires
    # before the resolution of the same instant), but in the variant its day-42 8-week letter
    # ends the chain after day 40 (4). C-3 and C-4 are resolved within 10 days, and C-4's
    # reopen's first update (15 Mar) is after `until`. Base 9, variant 8.
    assert d["letters"]["progress_update"] == {"base": 9, "variant": 8}
    for kind, counts in d["letters"].items():
        if kind not in ("eight_week", "progress_update"):
            assert counts["base"] == counts["variant"], kind
    assert d["states"]["resolved"] == {"base": 4, "variant": 4}
    assert sum(s["base"] for s in d["states"].values()) == 4
    assert [c["complaint_id"] for c in d["complaints"]] == ["C-1", "C-2"]
    for c in d["complaints"]:
        assert c["base_state"] == c["variant_state"] == "resolved"
        assert "eight_week" not in c["base_letters"]
        variant = list(c["variant_letters"])
        # The 8-week letter comes before the resolution letter, which both sides issue.
        assert variant[-2:] == ["eight_week", "resolution"]
        variant.remove("eight_week")
        base = list(c["base_letters"])
        if c["complaint_id"] == "C-2":
            # The day-50 update the variant never reaches: the last progress update, issued
            # at the resolution's instant (letters of one instant are listed by letter id).
            del base[len(base) - 1 - base[::-1].index("progress_update")]
        assert variant == base

    # The report for people: two matplotlib charts (letters per month, changed items) and
    # the changed items, in a table, beside their description.
    page = html.read_text("utf-8")
    assert page.count("<svg") == 2 and "Letters per month" in page
    assert "Matplotlib" in page  # the SVG's generator, not a hand-drawn chart
    row = page[page.index("<td>D16</td>"):]
    row = row[:row.index("</tr>")]
    assert 'class="n">0</td>' in row and 'class="n">2</td>' in row
    assert "eight_weeks_days" in page and "C-1" in page and "C-2" in page


def test_simulated_base_equals_ingesting_the_file(tmp_path: Path) -> None:
    """The base replay is an ingest into an empty database: the same record, letter for
    letter, as `complaints ingest` + `complaints tick --until`."""
    stream = _stream(tmp_path)
    procedure = load_procedure("kilowatt-connect")
    app = bootstrap(f"sqlite:///{tmp_path / 'ingested.db'}", procedure)
    ingest_file(app, stream)
    tick(app, datetime.fromisoformat(UNTIL))
    months, quarters = ["2026-01", "2026-02", "2026-03"], ["2026-Q1"]
    store = tmp_path / "scratch.db"
    outcome = replay(str(stream), procedure.model_dump(mode="json"), UNTIL, months, quarters,
                     str(store))
    replayed = bootstrap(f"sqlite:///{store}", procedure)

    def letters(a: Any) -> list[tuple[Any, ...]]:
        with a.sessions() as session:
            return [tuple(row) for row in session.execute(
                select(Letter.letter_id, Letter.complaint_id, Letter.kind, Letter.issued_at,
                       Letter.context).order_by(Letter.letter_id))]

    assert letters(replayed) == letters(app)
    # Acknowledgements: C-1, C-2, C-4 (C-3 was resolved before its D+1; C-4's second one is
    # due after until). Resolution letters: C-1, C-2, C-4's first (its second and C-3's came
    # by their D+1). Progress updates: C-1 (15 Jan) and C-2 (16 Jan), at least; a procedure
    # repeating them adds more while those two are open, on both sides alike.
    kinds = [kind for _, _, kind, _, _ in letters(app)]
    assert (kinds.count("acknowledgement"), kinds.count("resolution")) == (3, 3)
    assert kinds.count("progress_update") >= 2 and len(kinds) == 6 + kinds.count(
        "progress_update")
    until = datetime.fromisoformat(UNTIL)
    assert record(replayed, until) == record(app, until)
    # And what simulate prints for the base is what the ingested record holds.
    code, d, _ = _simulate(str(stream), "--set", "eight_weeks_days=42")
    assert code == 0
    by_kind: dict[str, int] = {}
    for _, _, kind, _, _ in letters(app):
        by_kind[kind] = by_kind.get(kind, 0) + 1
    assert {k: v["base"] for k, v in d["letters"].items() if v["base"]} == by_kind
    assert outcome["ingest"] == {"applied": 10, "duplicates": 0, "rejected": 1}


def test_recorded_events_are_simulated_and_the_record_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "record.db"
    app = bootstrap(f"sqlite:///{path}", "kilowatt-connect")
    ingest_file(app, _stream(tmp_path))
    app.engine.dispose()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("record.db"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    code, d, _ = _simulate("--set", "eight_weeks_days=42", "--db", f"sqlite:///{path}")
    assert code == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("record.db")) == files
    q1 = d["returns"]["quarterly"]["2026-Q1"]
    assert (q1["C11"], q1["D16"]) == ({"base": 5, "variant": 3}, {"base": 0, "variant": 2})


def test_until_cuts_the_replay(tmp_path: Path) -> None:
    """Up to 20 Feb: C-2 is unresolved; under 42 days its 8-week letter (17 Feb) is issued,
    under 56 not yet (3 Mar); February is the last month."""
    code, d, _ = _simulate(str(_stream(tmp_path)), "--set", "eight_weeks_days=42",
                           "--until", "2026-02-20T00:00:00Z")
    assert code == 0
    assert d["until"] == "2026-02-20T00:00:00+00:00"
    assert list(d["returns"]["monthly"]) == ["2026-01", "2026-02"]
    assert d["letters"]["eight_week"] == {"base": 0, "variant": 2}
    c2 = next(c for c in d["complaints"] if c["complaint_id"] == "C-2")
    assert (c2["base_state"], c2["variant_state"]) == ("received", "eight_week")
    assert d["returns"]["quarterly"]["2026-Q1"]["C11"] == {"base": 3, "variant": 2}


def test_settings() -> None:
    base = load_procedure("kilowatt-connect")
    variant = with_settings(base, ["resolution_target_days=none", "region=SCT",
                                   "supplier.phone=0800 000 0000", "eight_weeks_days=42"])
    assert variant.resolution_target_days is None and variant.region == "SCT"
    assert variant.supplier.phone == "0800 000 0000" and variant.eight_weeks_days == 42
    assert variant.supplier.name == base.supplier.name
    for bad in ["eight_week_days=42", "supplier.fax=1", "eight_weeks_days=soon",
                "region=XX", "eight_weeks_days", "eight_weeks_days.x=1"]:
        with pytest.raises(BadSetting):
            with_settings(base, [bad])


@pytest.mark.parametrize("setting", ["no_such_key=1", "supplier.no_such=1"])
def test_unknown_key_is_bad_usage(tmp_path: Path, setting: str) -> None:
    code, _, stderr = _simulate(str(_stream(tmp_path)), "--set", setting)
    assert code == 2
    assert "is not a key of" in stderr
