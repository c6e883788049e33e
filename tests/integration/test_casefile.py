"""The Ombudsman case file: its text read back from the PDF (pypdf) holds the reference,
every event's summary and every letter; the ZIP holds every letter's PDF."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pypdf
from click.testing import CliRunner

from consumers.cli import main
from consumers.file_ingest import ingest_file, tick
from reporting.casefile import casefile_bytes
from tests.builders import CUSTOMER, received, simple, write_jsonl
from workflow.bootstrap import App, bootstrap
from workflow.casefile import uk_time

CUSTOMER_C1 = {**CUSTOMER, "account_id": "ACC-CF", "name": "Grace Hopper",
               "address": ["7 Harbour Row", "Plymouth"], "postcode": "PL1 2AB"}
SUMMARIES = {
    "received": "Direct debit taken twice in December",
    "contact": "Customer rang to say the refund has not arrived",
    "escalation": "Customer asked for the manager to look again",
    "response": "Manager reviewed the account and stands by the refund date",
    "dissatisfied": "Customer still unhappy with the refund date",
    "position": "We will refund on the next billing run and not sooner",
}
EVENTS = [
    received("cf-1", "C-CF", "2026-01-05T09:30:00+00:00", customer=CUSTOMER_C1,
             summary=SUMMARIES["received"], channel="letter"),
    simple("complaint.contact_logged", "cf-2", "C-CF", "2026-01-07T10:00:00+00:00",
           summary=SUMMARIES["contact"]),
    simple("complaint.escalation_requested", "cf-3", "C-CF", "2026-01-08T10:00:00+00:00",
           summary=SUMMARIES["escalation"]),
    simple("complaint.senior_manager_response", "cf-4", "C-CF", "2026-01-09T10:00:00+00:00",
           summary=SUMMARIES["response"]),
    simple("complaint.dissatisfied", "cf-5", "C-CF", "2026-01-12T10:00:00+00:00",
           summary=SUMMARIES["dissatisfied"]),
    simple("complaint.deadlock_reached", "cf-6", "C-CF", "2026-01-13T10:00:00+00:00",
           position=SUMMARIES["position"], offer_open=False),
    simple("complaint.referred_to_ombudsman", "cf-7", "C-CF", "2026-02-02T10:00:00+00:00",
           ombudsman_ref="EO-CF-77"),
]


def _load(tmp_path: Path) -> App:
    app = bootstrap(f"sqlite:///{tmp_path / 'cf.db'}", "kilowatt-connect")
    report = ingest_file(app, write_jsonl(tmp_path / "cf.jsonl", EVENTS))
    assert report.rejected == 0 and report.applied == len(EVENTS)
    tick(app, datetime(2026, 2, 3, tzinfo=UTC))
    return app


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_case_file_pdf_holds_every_event_summary_the_reference_and_every_letter(
        tmp_path: Path) -> None:
    app = _load(tmp_path)
    from workflow import queries

    with app.sessions() as session:
        shown = queries.show_complaint(session, "C-CF")
    assert shown is not None
    letters = shown["letters"]
    # The acknowledgement (D+1 of 5 Jan) and the deadlock letter (13 Jan): worked out by hand.
    assert [x["kind"] for x in letters] == ["acknowledgement", "deadlock"]
    data = casefile_bytes(app, "C-CF", "pdf", datetime(2026, 2, 10, 12, tzinfo=UTC))
    assert data is not None and data.startswith(b"%PDF")
    text = _squash(_pdf_text(data))
    assert _squash(shown["reference"]) in text
    for summary in SUMMARIES.values():
        assert _squash(summary) in text, summary
    for letter in letters:
        assert letter["letter_id"] in text
    assert _squash("Deadlock letter") in text and _squash("Acknowledgement") in text
    # The cover: customer, account, Ombudsman reference and the dates that matter, UK time.
    for value in ("Grace Hopper", "ACC-CF", "EO-CF-77", "5 Jan 2026 09:30:00 GMT",
                  "2 Feb 2026 10:00:00 GMT", "13 Jan 2026 10:00:00 GMT"):
        assert _squash(value) in text, value
    # Deadlines with what firing did: the acknowledgement's letter.
    assert _squash("acknowledgement letter") in text
    app.engine.dispose()


def test_uk_time_names_summer_time() -> None:
    assert uk_time(datetime(2026, 7, 1, 8, 0, tzinfo=UTC)) == "1 Jul 2026 09:00:00 BST"
    assert uk_time(datetime(2026, 1, 1, 8, 0, tzinfo=UTC)) == "1 Jan 2026 08:00:00 GMT"


def test_casefile_command_writes_a_zip_with_every_letter(tmp_path: Path) -> None:
    app = _load(tmp_path)
    app.engine.dispose()
    target = tmp_path / "case.zip"
    result = CliRunner().invoke(main, ["casefile", "C-CF", "--to", str(target), "--db",
                                       f"sqlite:///{tmp_path / 'cf.db'}"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        assert names[0].startswith("casefile-KC-") and names[0].endswith(".pdf")
        letters = [n for n in names if n.startswith("letters/")]
        assert len(letters) == 2 and "acknowledgement" in letters[0] and "deadlock" in letters[1]
        for name in names:
            assert archive.read(name).startswith(b"%PDF")
    unknown = CliRunner().invoke(main, ["casefile", "C-NONE", "--to", str(tmp_path / "x.pdf"),
                                        "--db", f"sqlite:///{tmp_path / 'cf.db'}"])
    assert unknown.exit_code == 1
    bad = CliRunner().invoke(main, ["casefile", "C-CF", "--to", str(tmp_path / "x.doc"),
                                    "--db", f"sqlite:///{tmp_path / 'cf.db'}"])
    assert bad.exit_code == 2
