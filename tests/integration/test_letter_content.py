"""What the (v2) letters say, from the record (docs/rules.md s.6), with hand-worked scenarios: the
owner named and signing each letter, the deadlock letter's communications and offer, the
8-week letter's case update, the withdrawal letter inside and after the referral window, and
the advice body of the customer's nation.

The stored context is what a letter renders from, so the tests read it back; the wording it
gives is tested in tests/unit/test_letters.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.file_ingest import ingest_file, tick
from reporting.items import QUARTERLY
from reporting.periods import parse_quarter
from reporting.report import run_report, to_json
from tests.builders import (
    CUSTOMER,
    HANDLER,
    assigned,
    received,
    reopened,
    resolved,
    simple,
    write_jsonl,
)
from tests.stores import stored_letters
from workflow.bootstrap import Application, bootstrap

BUNDLED = Path(__file__).parents[2] / "workflow" / "procedures"
COMPLAINTS_MANAGER = {"id": None, "name": "Helen Marsh", "role": "Complaints Manager"}


def procedure_file(tmp_path: Path, name: str) -> str:
    """A bundled procedure with its complaints manager named (the bundled one is a
    placeholder)."""
    text = (BUNDLED / f"{name}.toml").read_text("utf-8")
    assert "name = \"[Complaints manager's name]\"" in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace("[Complaints manager's name]", "Helen Marsh"), "utf-8")
    return str(path)


def run(backend: str | Callable[[str], Application], tmp_path: Path, procedure: str,
        events: list[Any], until: str | None = None) -> Any:
    """On a database URL, or on the store of the `backend` fixture."""
    path = procedure_file(tmp_path, procedure)
    app = backend(path) if callable(backend) else bootstrap(backend, path)
    report = ingest_file(app, write_jsonl(tmp_path / "events.jsonl", events))
    assert report.rejected == 0, report.rejections
    if until:
        tick(app, datetime.fromisoformat(until))
    return app


def contexts(app: Application, complaint_id: str) -> dict[str, list[dict[str, Any]]]:
    """The stored context of each letter of the complaint, by kind, in issue order."""
    shown = app.show_complaint(complaint_id)
    assert shown is not None
    stored = {x.letter_id: dict(x.context) for x in stored_letters(app, complaint_id)}
    found: dict[str, list[dict[str, Any]]] = {}
    for letter in shown["letters"]:
        context = stored.get(letter["letter_id"])
        assert context is not None
        found.setdefault(letter["kind"], []).append(context)
    return found


def test_owner_per_letter_and_a_deadlock_reached_by_its_deadline(
    backend: Callable[[str], Application], tmp_path: Path
) -> None:
    # Lastmile (no progress updates). Received Mon 5 Jan 2026 10:00 GMT, no handler.
    #  acknowledgement: D+1 = end of Tue 6 Jan: nobody owns it yet -> the complaints manager.
    #  escalation Fri 16 Jan: review due 5 working days after = end of Fri 23 Jan.
    #  assigned Mon 19 Jan during the review: Priya Shah owns it, as the senior manager.
    #  senior manager update, end of 23 Jan: Priya Shah names and signs it.
    #  responses Mon 26 Jan (Jo Reyes, with an offer) and Tue 27 Jan (Kim Lee, none).
    #  dissatisfied Wed 28 Jan: deadlock letter due 5 working days after = end of Wed 4 Feb.
    #  deadlock letter: owner Kim Lee (the latest response); the offer of the latest response
    #  that carried one (Jo Reyes's), not kept open (reached by its deadline); the position
    #  is the latest response's summary.
    manager = {"id": "m-2", "name": "Priya Shah"}
    offer = {"description": "A credit to your account", "amount_pence": 2500}
    app = run(backend, tmp_path, "lastmile", [
        received("e1", "C1", "2026-01-05T10:00:00+00:00"),
        simple("complaint.contact_logged", "e2", "C1", "2026-01-12T11:00:00+00:00",
               channel="email", summary="Sent meter photo"),
        simple("complaint.escalation_requested", "e3", "C1", "2026-01-16T09:00:00+00:00",
               summary="Wants a manager to look"),
        assigned("e4", "C1", "2026-01-19T09:00:00+00:00", handler=manager),
        simple("complaint.senior_manager_response", "e5", "C1", "2026-01-26T10:00:00+00:00",
               offer=offer),
        simple("complaint.senior_manager_response", "e6", "C1", "2026-01-27T10:00:00+00:00",
               manager={"id": "m-3", "name": "Kim Lee"}, summary="Final review: no change."),
        simple("complaint.dissatisfied", "e7", "C1", "2026-01-28T10:00:00+00:00"),
    ], until="2026-02-06T00:00:00+00:00")
    letters = contexts(app, "C1")
    assert list(letters) == ["acknowledgement", "senior_manager_update", "deadlock"]
    assert letters["acknowledgement"][0]["owner"] == COMPLAINTS_MANAGER
    update = letters["senior_manager_update"][0]
    assert update["issued_at"] == "2026-01-23T23:59:59.999999+00:00"
    assert update["owner"] == {**manager, "role": "Senior manager"}
    deadlock = letters["deadlock"][0]
    assert deadlock["issued_at"] == "2026-02-04T23:59:59.999999+00:00"
    assert deadlock["owner"] == {"id": "m-3", "name": "Kim Lee", "role": "Senior manager"}
    assert deadlock["position"] == "Final review: no change."
    assert deadlock["offer"] == offer
    assert deadlock["offer_open"] is False
    assert deadlock["communications"] == [
        {"date": "2026-01-05", "kind": "receipt", "channel": "telephone", "who": None,
         "summary": "Bill is estimated although readings were given"},
        {"date": "2026-01-06", "kind": "letter", "channel": None, "who": None,
         "summary": None, "letter_kind": "acknowledgement"},
        {"date": "2026-01-12", "kind": "contact", "channel": "email", "who": "customer",
         "summary": "Sent meter photo"},
        {"date": "2026-01-16", "kind": "escalation", "channel": None, "who": None,
         "summary": "Wants a manager to look"},
        {"date": "2026-01-23", "kind": "letter", "channel": None, "who": None,
         "summary": None, "letter_kind": "senior_manager_update"},
        {"date": "2026-01-26", "kind": "senior_manager_response", "channel": None,
         "who": "Jo Reyes", "summary": "We stand by the bill."},
        {"date": "2026-01-27", "kind": "senior_manager_response", "channel": None,
         "who": "Kim Lee", "summary": "Final review: no change."},
        {"date": "2026-01-28", "kind": "dissatisfied", "channel": None, "who": None,
         "summary": "Not satisfied with the review"},
    ]
    # Lastmile's region is England: the Citizens Advice consumer service, with its Welsh line.
    assert deadlock["advice"]["name"] == "Citizens Advice consumer service"
    assert deadlock["advice"]["welsh_phone"] == "0808 223 1144"
    assert deadlock["template_version"] == 2


@pytest.mark.parametrize(("region", "advice"), [
    ("SCT", "Advice Direct Scotland"),
    (None, "Citizens Advice consumer service"),
])
@pytest.mark.databases_only  # ends with the quarterly report, read through SQL
def test_deadlock_event_offer_then_withdrawal_inside_the_window(
    backend: Callable[[str], Application], tmp_path: Path, region: str | None, advice: str
) -> None:
    # Kilowatt Connect (region ENG). Received Mon 5 Jan 2026 10:00 GMT by Sam Patel.
    #  acknowledgement: end of Tue 6 Jan, owner Sam Patel.
    #  deadlock reached Thu 8 Jan with an offer kept open: the event's offer, as sent.
    #  referral window: to the end of 8 Jan 2027. Withdrawn Sun 1 Feb 2026, inside it: the
    #  withdrawal letter signposts to 8 January 2027.
    customer = {**CUSTOMER, "accessible_format": "large_print"}
    if region:
        customer["region"] = region
    offer = {"description": "Goodwill credit", "amount_pence": 4000}
    app = run(backend, tmp_path, "kilowatt-connect", [
        received("e1", "C2", "2026-01-05T10:00:00+00:00", handler=dict(HANDLER),
                 customer=customer),
        simple("complaint.deadlock_reached", "e2", "C2", "2026-01-08T10:00:00+00:00",
               offer=offer),
        simple("complaint.withdrawn", "e3", "C2", "2026-02-01T10:00:00+00:00"),
    ], until="2026-02-02T00:00:00+00:00")
    letters = contexts(app, "C2")
    assert list(letters) == ["acknowledgement", "deadlock", "withdrawal"]
    sam = {**HANDLER, "role": "Complaint handler"}
    for kind, (context,) in letters.items():
        assert context["owner"] == sam, kind
        assert context["advice"]["name"] == advice, kind
        assert context["customer"]["accessible_format"] == "large_print"
    deadlock = letters["deadlock"][0]
    assert (deadlock["offer"], deadlock["offer_open"]) == (offer, True)
    assert deadlock["communications"] == [
        {"date": "2026-01-05", "kind": "receipt", "channel": "telephone", "who": None,
         "summary": "Bill is estimated although readings were given"},
        {"date": "2026-01-06", "kind": "letter", "channel": None, "who": None,
         "summary": None, "letter_kind": "acknowledgement"},
    ]
    withdrawal = letters["withdrawal"][0]
    assert withdrawal["withdrawn_on"] == "2026-02-01"
    assert withdrawal["referral_deadline"] == "2027-01-08"
    # The withdrawal letter is no deadlock or 8-week letter: D17 counts the deadlock letter
    # alone, D16 nothing (docs/rules.md s.6, s.7).
    items = to_json(run_report(app, QUARTERLY, parse_quarter("2026-Q1"),
                               datetime.fromisoformat("2026-04-30T00:00:00+00:00")))["items"]
    assert (items["D16"], items["D17"]) == (0, 1)


def test_deadlock_event_without_an_offer_keeps_nothing_open(
        backend: Callable[[str], Application], tmp_path: Path) -> None:
    app = run(backend, tmp_path, "kilowatt-connect", [
        received("e1", "C5", "2026-01-05T10:00:00+00:00"),
        # offer_open true (the builder's default) but no offer: there is nothing to keep open.
        simple("complaint.deadlock_reached", "e2", "C5", "2026-01-08T10:00:00+00:00"),
    ])
    (deadlock,) = contexts(app, "C5")["deadlock"]
    assert (deadlock["offer"], deadlock["offer_open"]) == (None, False)
    assert deadlock["position"] == "We will not re-bill."
    assert deadlock["owner"] == COMPLAINTS_MANAGER  # nobody was ever assigned


@pytest.mark.parametrize(("reopened_at", "withdrawn_at", "referral_deadline"), [
    # The 8-week letter of Mon 2 Mar 2026 opens a window to the end of 2 Mar 2027.
    ("2027-02-01T10:00:00+00:00", "2027-02-10T10:00:00+00:00", "2027-03-02"),  # inside
    ("2027-03-05T10:00:00+00:00", "2027-03-08T10:00:00+00:00", None),  # after its end
])
def test_withdrawal_after_an_eight_week_letter(
    backend: Callable[[str], Application], tmp_path: Path, reopened_at: str, withdrawn_at: str,
    referral_deadline: str | None
) -> None:
    # Lastmile. Received Mon 5 Jan 2026 10:00 GMT; eight weeks = 5 Jan + 56 days = Mon 2 Mar
    # 10:00 (26 days to 31 Jan, 28 in February, 2). Resolved 10 Mar, reopened and withdrawn
    # inside or after the 8-week letter's referral window.
    app = run(backend, tmp_path, "lastmile", [
        received("e1", "C3", "2026-01-05T10:00:00+00:00"),
        simple("complaint.contact_logged", "e2", "C3", "2026-02-10T11:00:00+00:00",
               summary="Engineer visit booked"),
        resolved("e3", "C3", "2026-03-10T10:00:00+00:00"),
        reopened("e4", "C3", reopened_at),
        simple("complaint.withdrawn", "e5", "C3", withdrawn_at),
    ])
    letters = contexts(app, "C3")
    (eight_week,) = letters["eight_week"]
    assert eight_week["issued_at"] == "2026-03-02T10:00:00+00:00"
    # Where it stands: still at `received` (nobody assigned); no senior manager response, so
    # the latest contact logged.
    assert eight_week["stage"] == "received"
    assert eight_week["latest_response"] == {
        "kind": "contact", "date": "2026-02-10", "who": None, "summary": "Engineer visit booked"}
    (withdrawal,) = letters["withdrawal"]
    assert withdrawal["withdrawn_on"] == withdrawn_at[:10]
    assert withdrawal["referral_deadline"] == referral_deadline


def test_eight_week_letter_with_a_senior_manager_response(
        backend: Callable[[str], Application], tmp_path: Path) -> None:
    # Received Mon 5 Jan 2026 10:00 GMT (Lastmile); escalated 12 Jan and answered 14 Jan by Jo
    # Reyes, with a contact logged later (15 Jan): the response, not the contact, is quoted.
    # The stage is `senior_manager` (a response does not leave it); eight weeks: 2 Mar 10:00.
    app = run(backend, tmp_path, "lastmile", [
        received("e1", "C4", "2026-01-05T10:00:00+00:00", handler=dict(HANDLER)),
        simple("complaint.escalation_requested", "e2", "C4", "2026-01-12T10:00:00+00:00"),
        simple("complaint.senior_manager_response", "e3", "C4", "2026-01-14T10:00:00+00:00"),
        simple("complaint.contact_logged", "e4", "C4", "2026-01-15T10:00:00+00:00"),
    ], until="2026-03-03T00:00:00+00:00")
    (eight_week,) = contexts(app, "C4")["eight_week"]
    assert eight_week["stage"] == "senior_manager"
    assert eight_week["latest_response"] == {
        "kind": "senior_manager_response", "date": "2026-01-14", "who": "Jo Reyes",
        "summary": "We stand by the bill."}
    assert eight_week["owner"] == {"id": "m-1", "name": "Jo Reyes", "role": "Senior manager"}


def test_migration_0005_fills_the_owner_from_history(db_url: str, tmp_path: Path) -> None:
    # Records written before the owner column: downgrading to 0004 drops it, upgrading again
    # must fill it from each complaint's history as the handlers set it.
    from alembic import command
    from sqlalchemy import select

    from workflow.database import alembic_config
    from workflow.schema import Complaint

    app = run(db_url, tmp_path, "lastmile", [
        received("e1", "A", "2026-01-05T10:00:00+00:00", handler=dict(HANDLER)),  # handler
        received("e2", "B", "2026-01-05T10:00:00+00:00"),  # nobody
        received("e3", "C", "2026-01-05T10:00:00+00:00", handler=dict(HANDLER)),
        simple("complaint.escalation_requested", "e4", "C", "2026-01-06T10:00:00+00:00"),
        assigned("e5", "C", "2026-01-07T10:00:00+00:00",
                 handler={"id": "m-2", "name": "Priya Shah"}),  # assigned in the review
        received("e6", "D", "2026-01-05T10:00:00+00:00"),
        simple("complaint.escalation_requested", "e7", "D", "2026-01-06T10:00:00+00:00"),
        simple("complaint.senior_manager_response", "e8", "D", "2026-01-07T10:00:00+00:00"),
        simple("complaint.resolved", "e9", "D", "2026-01-08T10:00:00+00:00",
               resolution={"apology": True, "explanation": "Fixed"}),
        reopened("e10", "D", "2026-01-09T10:00:00+00:00"),
        assigned("e11", "D", "2026-01-10T10:00:00+00:00"),  # after the response: Sam again
    ])

    def owners() -> dict[str, Any]:
        with app.sessions() as session:
            return dict(session.execute(select(Complaint.complaint_id, Complaint.owner)).all())

    live = owners()
    assert live == {
        "A": {**HANDLER, "role": "Complaint handler"},
        "B": None,
        "C": {"id": "m-2", "name": "Priya Shah", "role": "Senior manager"},
        "D": {**HANDLER, "role": "Complaint handler"},
    }
    config = alembic_config(app.engine)
    command.downgrade(config, "0004")
    command.upgrade(config, "head")
    assert owners() == live


def test_the_careful_rerun_summarises_the_same_record(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unforeseen fault on another complaint's event makes the batch re-run message by
    # message, rows going through the session (not the buffer): the deadlock letter must still
    # see the receipt and the acknowledgement of the same batch.
    from workflow.uow import UnitOfWork

    real = UnitOfWork.mark_processed

    def faulty(uow: UnitOfWork, event_id: str, now: datetime) -> None:
        if event_id == "x1":
            raise RuntimeError("unforeseen fault")
        real(uow, event_id, now)

    monkeypatch.setattr(UnitOfWork, "mark_processed", faulty)
    app = bootstrap(db_url, procedure_file(tmp_path, "kilowatt-connect"))
    report = ingest_file(app, write_jsonl(tmp_path / "events.jsonl", [
        received("e1", "C6", "2026-01-05T10:00:00+00:00"),
        received("x1", "X", "2026-01-05T11:00:00+00:00"),
        simple("complaint.deadlock_reached", "e2", "C6", "2026-01-08T10:00:00+00:00"),
    ]))
    assert report.as_json() == {"applied": 2, "duplicates": 0, "rejected": 1}
    (deadlock,) = contexts(app, "C6")["deadlock"]
    assert [(item["date"], item["kind"]) for item in deadlock["communications"]] == [
        ("2026-01-05", "receipt"), ("2026-01-06", "letter")]
