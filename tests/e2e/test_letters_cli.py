"""Letters issued by the workflow, listed and rendered through the command line."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from pypdf import PdfReader

from consumers.cli import main
from letters.render import LETTER_KINDS as TEMPLATE_KINDS
from tests.builders import received, write_jsonl
from workflow.letter_context import LETTER_KINDS

SAMPLE = Path(__file__).parents[2] / "workflow" / "samples" / "sample-events.jsonl"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_letter_kind_has_templates() -> None:
    assert TEMPLATE_KINDS == LETTER_KINDS


def test_sample_letters_by_kind_and_rendering(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    invoke("ingest", str(SAMPLE), "--db", db)
    issued = json.loads(invoke("letters", "list", "--db", db, "--format", "json"))
    # Worked out in tests/e2e/test_sample_scenario.py: C-100 (cycle 2), C-102, C-103 and
    # C-105 were acknowledged and updated by letter; C-100 and C-101 got resolution letters;
    # C-102 a deadlock letter; C-103 an 8-week letter. (v2) Progress updates repeat while
    # open: one each for C-100 and C-102, five each for C-103 and C-105.
    assert Counter(x["kind"] for x in issued) == {
        "acknowledgement": 4, "progress_update": 12, "resolution": 2, "deadlock": 1,
        "eight_week": 1}
    assert issued == sorted(issued, key=lambda x: (x["issued_at"], x["letter_id"]))
    only = json.loads(invoke("letters", "list", "--db", db, "--complaint", "C-102",
                             "--kind", "deadlock", "--format", "json"))
    assert [x["complaint_id"] for x in only] == ["C-102"]
    deadlock = only[0]["letter_id"]

    pdf = tmp_path / "deadlock.pdf"
    invoke("letters", "render", deadlock, "--to", str(pdf), "--db", db)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert "DEADLOCK LETTER" in text.upper()  # the heading is set in capitals
    assert "Energy Ombudsman" in text and "Cat Nguyen" in text
    first = pdf.read_bytes()
    invoke("letters", "render", deadlock, "--to", str(pdf), "--db", db)
    assert pdf.read_bytes() == first, "a letter is reproducible byte for byte"

    for letter in issued:
        for suffix in (".html", ".txt"):
            out = tmp_path / f"{letter['letter_id']}{suffix}"
            invoke("letters", "render", letter["letter_id"], "--to", str(out), "--db", db)
            assert "KC-" in out.read_text(encoding="utf-8")


def test_markup_in_a_customer_name_is_escaped(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    customer = {"account_id": "A", "name": "<script>alert(1)</script> & Co",
                "address": ["1 Road"], "postcode": "EX1 1AA", "preferred_contact": "letter"}
    events = write_jsonl(tmp_path / "e.jsonl", [
        received("e1", "C1", "2026-01-05T09:00:00+00:00", customer=customer),
        received("e2", "C2", "2026-01-08T09:00:00+00:00"),  # moves the clock past D+1
    ])
    invoke("ingest", str(events), "--db", db)
    [ack] = json.loads(invoke("letters", "list", "--db", db, "--complaint", "C1",
                              "--format", "json"))
    out = tmp_path / "ack.html"
    invoke("letters", "render", ack["letter_id"], "--to", str(out), "--db", db)
    html = out.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html


def test_unknown_letter_and_bad_suffix(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'y.db'}"
    runner = CliRunner()
    unknown = runner.invoke(main, ["letters", "render", "L-NOPE", "--to",
                                   str(tmp_path / "a.pdf"), "--db", db])
    assert unknown.exit_code == 1
    bad = runner.invoke(main, ["letters", "render", "L-NOPE", "--to",
                               str(tmp_path / "a.docx"), "--db", db])
    assert bad.exit_code == 2
