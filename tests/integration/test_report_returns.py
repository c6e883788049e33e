"""Ofgem returns (docs/rules.md s.7) from a hand-worked scenario, on SQLite and PostgreSQL.

Kilowatt Connect procedure (ENG bank holidays; eight weeks = 56 x 24 h). 2026 facts used:
Thu 1 Jan, Fri 3 Apr (Good Friday) and Mon 6 Apr (Easter Monday) are bank holidays; BST runs
from Sun 29 Mar 01:00 UTC, so in April local time is UTC+1 and a local date ends at
22:59:59.999999 UTC. Every instant below is the event's `occurred_at`.

CR  received Mon 3 Nov 2025 10:00 (telephone, B15); resolved Tue 4 Nov 09:00 (within D+1).
    Its eight weeks (Mon 29 Dec 10:00) find it resolved: no letter.
    Reopened Mon 12 Jan 10:00 by letter (a repeat complaint: Jan A1 and A4). The original
    eight weeks have passed, so a new eight-week deadline is set at the reopen's D+1 (end Tue
    13 Jan); resolved Tue 13 Jan 15:00 first, so no letter, and the reopen counts in Jan A2.
    Counted resolution in Q1, timed from the ORIGINAL receipt: 71 d 5 h, beyond eight weeks
    (29 Dec 2025) -> C14, not C12/C13.
C3  received Wed 31 Dec 2025 22:00 (email, B9): a December receipt. D+1: Thu 1 Jan is a bank
    holiday -> end of Fri 2 Jan. Resolved Fri 2 Jan 12:00 -> Dec A2; in Q1 it is a counted
    resolution (resolved in the quarter, whenever received) within D+1 -> C12. 1 d 14 h.
C1  received Fri 2 Jan 10:00 (telephone, B13, contact "call-1"); D+1 = end Mon 5 Jan (weekend).
    Resolved Mon 5 Jan 16:00 -> A2, C12. 3 d 6 h = 3.25 d.
C2  received Fri 2 Jan 10:05 in the same call "call-1" (telephone, B11): a second complaint
    from one contact -> two receipts, ONE contact. Resolved Tue 6 Jan 09:00, after D+1 -> A3;
    C13 not C12. 3 d 22 h 55 min.
C4  received Sat 10 Jan 11:00 (letter, B13); D+1 = end Mon 12 Jan. Resolved Mon 12 Jan 17:00
    -> A2, C12. 2 d 6 h = 2.25 d.
C5  received Mon 12 Jan 09:00 (email, B13); resolved 15:00 the same day -> A2, C12, 0.25 d.
    Reopened Mon 2 Feb 10:00 by webchat (Feb A1, A4); D+1 of the reopen = end Tue 3 Feb;
    resolved Tue 3 Feb 11:00 -> Feb A2. That second resolution is counted again in Q1, timed
    from the original receipt (12 Jan 09:00): 22 d 2 h -> C13 (original D+1 long gone).
C6  received Tue 13 Jan 09:00 (telephone, B5). C6D: the same complaint referred by Citizens
    Advice on Wed 14 Jan (duplicate_of C6): counted nowhere. C6 is not resolved by D+1 -> A3.
    Eight weeks = Tue 10 Mar 09:00 -> 8-week letter (D16 in Q1). Resolved Fri 20 Mar: NOT a
    counted resolution (an 8-week letter preceded it; Ofgem 5.10).
C7  received Thu 15 Jan 10:00 (webform, B22 with an explanation) -> A3. Deadlock reached Wed
    21 Jan 12:00 -> deadlock letter (D17). Resolved Thu 5 Feb: not counted (deadlock letter).
C8  received Fri 30 Jan 17:00 (social media, B12); D+1 = end Mon 2 Feb -> A3. Recategorised to
    B9 on Tue 3 Feb: a January return as of after that counts it as B9, as of before as B12.
    Resolved Fri 6 Feb 10:00 -> C13. 6 d 17 h.
C9  received Fri 27 Feb 16:00 (telephone, B5); D+1 = end Mon 2 Mar; resolved Mon 2 Mar
    10:14:24 -> Feb A2, C12. Exactly 2 d 18 h 14 min 24 s = 2.76 d.
C10 received Sat 28 Mar 12:00 UTC (telephone, B13); D+1 = end of Mon 30 Mar, which is BST:
    22:59:59.999999 UTC. Resolved 30 Mar 23:30 UTC = 00:30 BST on Tue 31 Mar -> too late:
    Mar A3, and C13 not C12 (reading the deadline in UTC would wrongly give C12). 2 d 11.5 h.
C11 received 31 Mar 23:30 UTC = 00:30 BST Wed 1 Apr (telephone, B13): an APRIL receipt (Q2).
    Never resolved; eight weeks = 26 May 23:30 UTC (27 May BST) -> 8-week letter in Q2, fired
    by `tick`.
C12 received Thu 2 Apr 10:00 BST (telephone, B13). D+1: Good Friday, weekend, Easter Monday ->
    end Tue 7 Apr. Resolved Tue 7 Apr 20:00 BST -> Apr A2, Q2 C12. 5 d 10 h.
Contacts besides receipts: off-supply report by telephone Sat 17 Jan (A2); customer contact
logged by email on C6 Wed 21 Jan (A4); representative contact logged by telephone on C6 Fri
20 Feb (A2); enquiry by letter Tue 10 Feb (A3); contacts logged by the Ombudsman and Citizens
Advice (not contacts: Ofgem 5.5 counts interactions with the consumer); an enquiry by webchat
at 31 Mar 23:15 UTC = 1 Apr BST (Q2 A5).
Accounts snapshots: 31 Jan (41,250 + 30,875) sent 2 Feb, corrected (41,300 + 30,900) on 3 Feb;
one dated 15 Jan sent later still (4 Feb) - an earlier date, so never the January figure;
none dated in February; 31 Mar (60,000 + 45,000); 1 Apr (60,100 + 45,050).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from consumers.file_ingest import ingest_file, tick
from reporting.items import ANNUAL, MONTHLY, PUBLICATION, QUARTERLY
from reporting.model import ReturnSpec
from reporting.periods import Period, parse_month, parse_quarter, twelve_months_ending
from reporting.report import default_as_of, run_report, to_json
from tests.builders import event, received, reopened, resolved, simple, write_jsonl
from workflow.bootstrap import App
from workflow.schema import CategoryChange

AS_OF = "2026-06-30T00:00:00+00:00"  # after everything in the scenario


def contact(event_id: str, at: str, contact_id: str, channel: str, kind: str) -> dict[str, Any]:
    return event("contact.received", event_id, at, contact_id=contact_id, channel=channel,
                 kind=kind)


def snapshot(event_id: str, at: str, as_of: str, electricity: int, gas: int) -> dict[str, Any]:
    return event("accounts.snapshot", event_id, at, as_of=as_of,
                 electricity_accounts=electricity, gas_accounts=gas)


def logged(event_id: str, complaint_id: str, at: str, channel: str,
           party: str) -> dict[str, Any]:
    return simple("complaint.contact_logged", event_id, complaint_id, at, channel=channel,
                  party=party)


SCENARIO: list[dict[str, Any]] = [
    received("cr-1", "CR", "2025-11-03T10:00:00+00:00", channel="telephone", category="B15"),
    resolved("cr-2", "CR", "2025-11-04T09:00:00+00:00"),
    received("c3-1", "C3", "2025-12-31T22:00:00+00:00", channel="email", category="B9"),
    resolved("c3-2", "C3", "2026-01-02T12:00:00+00:00"),
    received("c1-1", "C1", "2026-01-02T10:00:00+00:00", category="B13", contact_id="call-1"),
    received("c2-1", "C2", "2026-01-02T10:05:00+00:00", category="B11", contact_id="call-1"),
    resolved("c1-2", "C1", "2026-01-05T16:00:00+00:00"),
    resolved("c2-2", "C2", "2026-01-06T09:00:00+00:00"),
    received("c4-1", "C4", "2026-01-10T11:00:00+00:00", channel="letter", category="B13"),
    received("c5-1", "C5", "2026-01-12T09:00:00+00:00", channel="email", category="B13"),
    reopened("cr-3", "CR", "2026-01-12T10:00:00+00:00", channel="letter"),
    resolved("c5-2", "C5", "2026-01-12T15:00:00+00:00"),
    resolved("c4-2", "C4", "2026-01-12T17:00:00+00:00"),
    received("c6-1", "C6", "2026-01-13T09:00:00+00:00", category="B5"),
    resolved("cr-4", "CR", "2026-01-13T15:00:00+00:00"),
    received("c6d-1", "C6D", "2026-01-14T09:30:00+00:00", channel="email", category="B5",
             source="citizens_advice", duplicate_of="C6"),
    received("c7-1", "C7", "2026-01-15T10:00:00+00:00", channel="webform", category="B22",
             other_explanation="Noise from the meter cupboard"),
    contact("os-1", "2026-01-17T20:00:00+00:00", "os-1", "telephone", "off_supply_report"),
    logged("c6-2", "C6", "2026-01-21T11:00:00+00:00", "email", "customer"),
    simple("complaint.deadlock_reached", "c7-2", "C7", "2026-01-21T12:00:00+00:00"),
    received("c8-1", "C8", "2026-01-30T17:00:00+00:00", channel="social_media", category="B12"),
    reopened("c5-3", "C5", "2026-02-02T10:00:00+00:00", channel="webchat"),
    snapshot("s-1", "2026-02-02T09:00:00+00:00", "2026-01-31", 41_250, 30_875),
    snapshot("s-2", "2026-02-03T09:00:00+00:00", "2026-01-31", 41_300, 30_900),
    simple("complaint.recategorised", "c8-2", "C8", "2026-02-03T10:00:00+00:00",
           category="B9"),
    resolved("c5-4", "C5", "2026-02-03T11:00:00+00:00"),
    snapshot("s-3", "2026-02-04T09:00:00+00:00", "2026-01-15", 50_000, 50_000),
    resolved("c7-3", "C7", "2026-02-05T10:00:00+00:00"),
    resolved("c8-3", "C8", "2026-02-06T10:00:00+00:00"),
    logged("c7-4", "C7", "2026-02-09T10:00:00+00:00", "letter", "ombudsman"),
    contact("enq-1", "2026-02-10T10:00:00+00:00", "enq-1", "letter", "enquiry"),
    logged("c6-3", "C6", "2026-02-20T14:00:00+00:00", "telephone", "representative"),
    logged("c6-4", "C6", "2026-02-20T15:00:00+00:00", "email", "citizens_advice"),
    received("c9-1", "C9", "2026-02-27T16:00:00+00:00", category="B5"),
    resolved("c9-2", "C9", "2026-03-02T10:14:24+00:00"),
    resolved("c6-5", "C6", "2026-03-20T10:00:00+00:00"),  # clock passes 10 Mar: 8-week letter
    received("c10-1", "C10", "2026-03-28T12:00:00+00:00", category="B13"),
    resolved("c10-2", "C10", "2026-03-30T23:30:00+00:00"),
    contact("enq-2", "2026-03-31T23:15:00+00:00", "enq-2", "webchat", "enquiry"),
    received("c11-1", "C11", "2026-03-31T23:30:00+00:00", category="B13"),
    snapshot("s-4", "2026-04-01T09:00:00+01:00", "2026-03-31", 60_000, 45_000),
    received("c12-1", "C12", "2026-04-02T10:00:00+01:00", category="B13"),
    resolved("c12-2", "C12", "2026-04-07T20:00:00+01:00"),
    snapshot("s-5", "2026-04-08T09:00:00+01:00", "2026-04-01", 60_100, 45_050),
]


def build_scenario(app: App, tmp_path: Path, until: str | None = AS_OF) -> App:
    """Ingest the scenario (event time), then fire what is due up to `until`."""
    outcome = ingest_file(app, write_jsonl(tmp_path / "scenario.jsonl", SCENARIO))
    assert outcome.rejected == 0, outcome.rejections
    if until is not None:
        tick(app, datetime.fromisoformat(until))
    return app


def report(app: App, spec: ReturnSpec, period: Period, as_of: str = AS_OF) -> dict[str, Any]:
    return to_json(run_report(app, spec, period, datetime.fromisoformat(as_of)))


def monthly(app: App, month: str, as_of: str = AS_OF) -> dict[str, Any]:
    return report(app, MONTHLY, parse_month(month), as_of)


def quarterly(app: App, quarter: str, as_of: str = AS_OF) -> dict[str, Any]:
    return report(app, QUARTERLY, parse_quarter(quarter), as_of)


def all_ok(document: dict[str, Any]) -> bool:
    return all(check["ok"] for check in document["checks"])


def failed(document: dict[str, Any]) -> dict[str, str]:
    """The checks that failed, by name, with their detail."""
    return {check["name"]: check["detail"] for check in document["checks"] if not check["ok"]}


ZERO_CATEGORIES = {f"B{n}": 0 for n in range(5, 23)}


@pytest.fixture
def scenario(app: App, tmp_path: Path) -> App:
    return build_scenario(app, tmp_path)


def test_monthly_january(scenario: App) -> None:
    document = monthly(scenario, "2026-01")
    assert document["period"] == "2026-01"
    # Receipts dated in January: C1, C2, C4, C5, the CR reopen, C6, C7, C8 (C3 is 31 Dec; the
    # duplicate C6D is no receipt). By their own D+1: C1, C4, C5, CR reopen.
    assert document["items"] == {
        "A1": 8, "A2": 4, "A3": 4, "A4": 1,
        **ZERO_CATEGORIES,
        # Categories as they stand at the as-of instant: C8 was recategorised B12 -> B9.
        "B5": 1, "B9": 1, "B11": 1, "B13": 3, "B15": 1, "B22": 1,
        "B23": 8,
        # 31 Jan snapshot, as corrected on 3 Feb; the 15 Jan one has an earlier date.
        "C24": 41_300, "C25": 30_900, "C26": 72_200,
        "C27": 11.08,  # 8 x 100,000 / 72,200 = 11.0803
        "C28": 1.11,  # 8 x 10,000 / 72,200 = 1.10803: the headline below 100,000 accounts
    }
    assert [c["name"] for c in document["checks"]] == ["A1 = A2 + A3", "B23 = A1",
                                                       "B22 explained", "accounts at period end"]
    assert all_ok(document)  # the 31 Jan snapshot: the month's last day


def test_monthly_january_as_it_stood_before_the_correction(scenario: App) -> None:
    # As of 2 Feb 12:00: only the first 31 Jan snapshot had arrived, and C8 was still B12.
    document = monthly(scenario, "2026-01", as_of="2026-02-02T12:00:00+00:00")
    items = document["items"]
    assert (items["A1"], items["A2"], items["A3"], items["A4"]) == (8, 4, 4, 1)
    assert (items["B12"], items["B9"]) == (1, 0)
    assert (items["C24"], items["C25"], items["C26"]) == (41_250, 30_875, 72_125)
    assert items["C27"] == 11.09  # 800,000 / 72,125 = 11.0918
    assert items["C28"] == 1.11


def test_monthly_january_part_way_through(scenario: App) -> None:
    # As of Mon 12 Jan 16:00: received so far C1, C2, C4, C5, CR reopen. Resolved by their
    # D+1 *by then*: C1 (5 Jan), C5 (15:00 today). C4 (17:00) and CR (13 Jan) not yet.
    items = monthly(scenario, "2026-01", as_of="2026-01-12T16:00:00+00:00")["items"]
    assert (items["A1"], items["A2"], items["A3"], items["A4"]) == (5, 2, 3, 1)
    assert items["C24"] is None  # no snapshot had been sent
    assert items["C27"] is None and items["C28"] is None


def test_monthly_february_without_a_snapshot(scenario: App) -> None:
    # C5 reopen (resolved by its own D+1, end Tue 3 Feb) and C9 (by end Mon 2 Mar).
    document = monthly(scenario, "2026-02")
    assert document["items"] == {
        "A1": 2, "A2": 2, "A3": 0, "A4": 1,
        **ZERO_CATEGORIES, "B5": 1, "B13": 1, "B23": 2,
        "C24": None, "C25": None, "C26": None, "C27": None, "C28": None,
    }
    # (v2) No snapshot dated in February: the accounts at period end are missing.
    assert failed(document) == {"accounts at period end": "no accounts snapshot dated in the "
                                "period: missing (needs one dated 2026-02-28)"}


def test_monthly_march_bst_deadline(scenario: App) -> None:
    # C10 resolved 00:30 BST on 31 Mar, after its D+1 (end of 30 Mar BST) -> A3. C11 arrived
    # at 00:30 BST on 1 Apr: April. Accounts from the 31 Mar snapshot (105,000).
    items = monthly(scenario, "2026-03")["items"]
    assert (items["A1"], items["A2"], items["A3"], items["A4"]) == (1, 0, 1, 0)
    assert (items["B13"], items["B23"]) == (1, 1)
    assert (items["C24"], items["C25"], items["C26"]) == (60_000, 45_000, 105_000)
    assert items["C27"] == 0.95  # 100,000 / 105,000 = 0.952
    assert items["C28"] == 0.1  # 10,000 / 105,000 = 0.0952


def test_monthly_bank_holidays(scenario: App) -> None:
    # December: C3 received 31 Dec, D+1 skips New Year's Day -> end Fri 2 Jan; resolved then.
    december = monthly(scenario, "2025-12")["items"]
    assert (december["A1"], december["A2"], december["A3"]) == (1, 1, 0)
    # April: C12's D+1 skips Good Friday, the weekend and Easter Monday; C11 still open.
    april = monthly(scenario, "2026-04")["items"]
    assert (april["A1"], april["A2"], april["A3"], april["A4"]) == (2, 1, 1, 0)
    assert (april["C24"], april["C25"]) == (60_100, 45_050)


def test_quarterly_q1(scenario: App) -> None:
    document = quarterly(scenario, "2026-Q1")
    assert document["period"] == "2026-Q1"
    assert document["items"] == {
        # Contacts: call-1 (C1+C2 once), C6, C9, C10, the off-supply report and the
        # representative's call (telephone: 6); C4, CR reopen, enquiry (letter: 3); C5, C7,
        # the customer's email on C6 (3); C8, C5 reopen (webchat/social: 2). The Ombudsman's
        # and Citizens Advice's contacts, and the 1 Apr (BST) enquiry, are not counted.
        "A1": 14, "A2": 6, "A3": 3, "A4": 3, "A5": 2,
        # Receipts 8 (Jan) + 2 (Feb) + 1 (Mar): telephone C1, C2, C6, C9, C10; letter C4, CR
        # reopen; email/webform C5, C7; webchat/social C8, C5 reopen.
        "B6": 11, "B7": 5, "B8": 2, "B9": 2, "B10": 2,
        # Counted resolutions in Q1: C3, C1, C2, C4, C5, CR, C5 again, C8, C9, C10 (C6 and C7
        # had signposting letters first). By original D+1: C3, C1, C4, C5 (1st), C9. Beyond
        # eight weeks of the original receipt: CR.
        "C11": 10, "C12": 5, "C12_pct": 50.0, "C13": 9, "C13_pct": 90.0,
        "C14": 1, "C14_pct": 10.0,
        # Durations sorted: 0.25, 1.58, 2.25, 2.48, 2.76, 3.25, 3.95, 6.71, 22.08, 71.21;
        # median = (2.76 + 3.25) / 2 = 3.005 exactly -> 3.01 rounding half up.
        "C15": 3.01,
        "D16": 1, "D17": 1,  # C6's 8-week letter (10 Mar), C7's deadlock letter (21 Jan)
        "E18": 60_000, "E19": 45_000, "E20": 105_000,
        "E21": 10.48,  # 11 x 100,000 / 105,000 = 10.476
        "E22": 1.05,  # 11 x 10,000 / 105,000 = 1.0476
    }
    assert [c["name"] for c in document["checks"]] == [
        "B6 = sum of monthly A1", "C11 = C13 + C14", "C12 <= C13", "accounts at period end"]
    assert all_ok(document)  # the 31 Mar snapshot
    assert "8 (2026-01) + 2 (2026-02) + 1 (2026-03) = 11" in document["checks"][0]["detail"]


def test_quarterly_q2_eight_week_letter_from_tick(scenario: App) -> None:
    document = quarterly(scenario, "2026-Q2")
    assert document["items"] == {
        "A1": 3, "A2": 2, "A3": 0, "A4": 0, "A5": 1,  # C11, C12; the 1 Apr webchat enquiry
        "B6": 2, "B7": 2, "B8": 0, "B9": 0, "B10": 0,
        "C11": 1, "C12": 1, "C12_pct": 100.0, "C13": 1, "C13_pct": 100.0,
        "C14": 0, "C14_pct": 0.0,
        "C15": 5.42,  # C12: 5 d 10 h = 5.4167 days
        "D16": 1, "D17": 0,  # C11's 8-week letter at 26 May 23:30 UTC = 27 May BST
        "E18": 60_100, "E19": 45_050, "E20": 105_150,
        "E21": 1.9,  # 200,000 / 105,150 = 1.902
        "E22": 0.19,  # 20,000 / 105,150 = 0.1902
    }
    # (v2) E18/E19 come from the 1 Apr snapshot, not one dated 30 Jun.
    assert failed(document) == {"accounts at period end": "accounts from the snapshot dated "
                                "2026-04-01, not the period's last day (2026-06-30)"}
    # Before the letter's instant it was not yet issued.
    assert quarterly(scenario, "2026-Q2", as_of="2026-05-26T23:00:00+00:00")["items"]["D16"] == 0


def test_quarterly_q2_before_tick(app: App, tmp_path: Path) -> None:
    # Without `tick`, the clock stopped at the last event (8 Apr): no 8-week letter yet.
    build_scenario(app, tmp_path, until=None)
    assert quarterly(app, "2026-Q2")["items"]["D16"] == 0


def test_quarter_with_no_complaints(app: App) -> None:
    # Nothing recorded: every key present, counts 0, rates, percentages and C15 null.
    document = quarterly(app, "2025-Q1")
    items = document["items"]
    assert set(items) == {item.code for item in QUARTERLY.items}
    assert items["C11"] == 0 and items["C15"] is None
    assert items["C12_pct"] is None and items["E20"] is None and items["E21"] is None
    assert list(failed(document)) == ["accounts at period end"]


def test_publication_q1(scenario: App) -> None:
    assert report(scenario, PUBLICATION, parse_quarter("2026-Q1")) == {
        "period": "2026-Q1",
        "complaints_received": 11,
        "received_per_100k": 10.48,
        "received_per_10k": 1.05,
        "complaints_resolved": 10,
        "resolved_per_100k": 9.52,  # 10 x 100,000 / 105,000 = 9.5238
        "resolved_per_10k": 0.95,  # 100,000 / 105,000 = 0.952
        "pct_resolved_next_working_day": 50.0,
        "pct_resolved_within_8_weeks": 90.0,
    }


def test_annual_report(scenario: App) -> None:
    # Apr 2025 - Mar 2026: monthly A3 is 0 (Nov: CR resolved by D+1), 0 (Dec: C3), 4 (Jan),
    # 0 (Feb), 1 (Mar: C10).
    document = report(scenario, ANNUAL, twelve_months_ending("2026-03"))
    assert document["period_start"] == "2025-04-01"
    assert document["period_end"] == "2026-03-31"
    assert document["not_resolved_by_next_working_day"] == 5
    assert len(document["statements"]) == 4
    assert "complaints handling procedure" in document["statements"][0]
    assert "legislation.gov.uk" in document["statements"][3]
    # May 2025 - Apr 2026 adds April's C11.
    later = report(scenario, ANNUAL, twelve_months_ending("2026-04"))
    assert later["not_resolved_by_next_working_day"] == 6


def test_b22_without_explanation_fails_its_check(scenario: App) -> None:
    # Events cannot carry B22 without an explanation; migrated records can. Recategorise C2
    # to B22 without one, directly in the record, effective 20 Jan.
    with scenario.engine.begin() as conn:
        conn.execute(insert(CategoryChange).values(
            complaint_id="C2", event_id="legacy-1", category="B22", other_explanation=None,
            effective_at=datetime.fromisoformat("2026-01-20T00:00:00+00:00")))
    document = monthly(scenario, "2026-01")
    assert (document["items"]["B22"], document["items"]["B11"]) == (2, 0)
    check = next(c for c in document["checks"] if c["name"] == "B22 explained")
    assert check["ok"] is False
    assert "1 of 2" in check["detail"] and "C2" in check["detail"]
    # As of before that change C2 was B11 and every B22 was explained.
    earlier = monthly(scenario, "2026-01", as_of="2026-01-19T00:00:00+00:00")
    # (Before 2 Feb no January snapshot had been sent: only that check fails.)
    assert list(failed(earlier)) == ["accounts at period end"] and earlier["items"]["B11"] == 1


def test_contacts_shared_by_complaints(app: App, tmp_path: Path) -> None:
    # M1 and M2 were raised in one contact "mix-1" on Thu 15 Jan, recorded first by letter
    # then by telephone: one contact, under the channel of the earliest receipt (letter, A3),
    # while each complaint counts under its own channel in B (B8, B7).
    # L1 and L2 share "late-call" across the quarter end: L1 at 22:50 UTC on 31 Mar (23:50
    # BST, Q1), L2 at 23:10 UTC (00:10 BST on 1 Apr, Q2). The contact counts once, in Q1, by
    # L1's telephone; Q2 has L2's complaint (email, B9) but no contact for it.
    events = [
        received("m1", "M1", "2026-01-15T10:00:00+00:00", channel="letter", contact_id="mix-1"),
        received("m2", "M2", "2026-01-15T10:01:00+00:00", channel="telephone",
                 contact_id="mix-1"),
        received("l1", "L1", "2026-03-31T22:50:00+00:00", channel="telephone",
                 contact_id="late-call"),
        received("l2", "L2", "2026-03-31T23:10:00+00:00", channel="email",
                 contact_id="late-call"),
    ]
    outcome = ingest_file(app, write_jsonl(tmp_path / "contacts.jsonl", events))
    assert outcome.rejected == 0, outcome.rejections
    first = quarterly(app, "2026-Q1")["items"]
    assert (first["A1"], first["A2"], first["A3"], first["A4"], first["A5"]) == (2, 1, 1, 0, 0)
    assert (first["B6"], first["B7"], first["B8"], first["B9"]) == (3, 2, 1, 0)
    second = quarterly(app, "2026-Q2")["items"]
    assert (second["A1"], second["B6"], second["B9"]) == (0, 1, 1)


def test_default_as_of_is_now_but_never_before_the_record(scenario: App) -> None:
    # docs/rules.md s.7: a return is taken as of now by default; offline, now is event time (s.5).
    # `tick` took the record's clock to 30 Jun 00:00 UTC, firing C11's 8-week deadline (due
    # 56 x 24 h after 31 Mar 23:30 UTC = 26 May 23:30 UTC, its letter issued then) at that
    # clock: later than the last event (the 8 Apr snapshot) and than the letter.
    ticked = datetime.fromisoformat(AS_OF)
    assert default_as_of(scenario, now=datetime.fromisoformat(
        "2026-05-01T00:00:00+00:00")) == ticked
    later = datetime.fromisoformat("2026-07-01T00:00:00+00:00")
    assert default_as_of(scenario, now=later) == later
    # So a Q2 return "as of now" on 1 May of the wall clock still has that letter (D16 = 1).
    assert report(scenario, QUARTERLY, parse_quarter("2026-Q2"), as_of=default_as_of(
        scenario, now=datetime.fromisoformat("2026-05-01T00:00:00+00:00")).isoformat(),
    )["items"]["D16"] == 1
