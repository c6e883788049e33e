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
from tests.unit.test_letters import pdf_font_sizes
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
    # Clear print, read back from the PDF: nothing under 10 pt; the body (cover, the record's
    # tables) 12 pt; only the running footer and the appendix's payloads are 10 pt.
    runs = pdf_font_sizes(data)
    assert min(size for size, _ in runs) >= 10
    body = [size for size, t in runs if "regulation 4" in t or "Grace Hopper" in t
            or "Received" in t or any(word in t for word in ("Direct debit", "refund"))]
    assert body and max(body) >= 12
    table = [size for size, t in runs if "Manager reviewed" in t or "Deadlock letter" in t]
    assert table and max(table) >= 12
    small = {size for size, _ in runs if size < 12}
    assert small <= {10.0}, small
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


def test_ops_api_serves_the_case_file_with_the_token_and_records_each_read(
        tmp_path: Path) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import select

    from reporting.casefile import token_identity
    from reporting.ops.records import Rules
    from reporting.ops.view import Aggregator
    from reporting.web import OpsState, create_app
    from workflow.schema import PersonalDataRead

    app = _load(tmp_path)
    state = OpsState(app.procedure.calendar, Aggregator(Rules(app.procedure.calendar)),
                     status="running", record=app)
    token = "casefile-test-token"

    async def go() -> list[tuple[int, bytes, str]]:
        async with TestClient(TestServer(create_app(state, token))) as client:
            results = []
            for path, headers in (
                    ("/complaints/C-CF/casefile", {}),
                    ("/complaints/C-CF/casefile", {"Authorization": "Bearer wrong"}),
                    ("/complaints/C-CF/casefile", {"Authorization": f"Bearer {token}"}),
                    ("/complaints/C-CF/casefile?format=zip",
                     {"Authorization": f"Bearer {token}"}),
                    ("/complaints/C-NONE/casefile", {"Authorization": f"Bearer {token}"})):
                response = await client.get(path, headers=headers)
                results.append((response.status, await response.read(),
                                response.headers.get("Content-Type", "")))
            return results

    results = asyncio.run(go())
    assert [r[0] for r in results] == [401, 401, 200, 200, 404]
    assert results[2][1].startswith(b"%PDF") and results[2][2] == "application/pdf"
    assert results[3][1].startswith(b"PK") and results[3][2] == "application/zip"
    assert "Grace Hopper" in _pdf_text(results[2][1])
    with app.sessions() as session:
        reads = list(session.scalars(select(PersonalDataRead).order_by(PersonalDataRead.id)))
    # Two reads of personal data (the refused and the unknown ones read nothing).
    assert [(r.complaint_id, r.what) for r in reads] == [("C-CF", "casefile.pdf"),
                                                         ("C-CF", "casefile.zip")]
    assert all(r.reader == token_identity(token) for r in reads)
    assert token not in reads[0].reader and reads[0].reader.startswith("token:sha256:")
    app.engine.dispose()
