"""Erasure cost on PostgreSQL: erase 10,000 accounts' complaints from a large record, beside a
plain UPDATE of the same rows.

The record is loaded by SQL (`generate_series`), shaped like the workflow's own rows: per
complaint, the complaint (customer JSON, summary), two history entries (the received event as
recorded, with the customer, and its resolution), an acknowledgement letter (its full
context), a receipt, two raw events, three outbox rows (two lifecycle, one letter) and, for one
in a thousand, a rejected message quoting the customer. Two complaints per account; every
complaint resolved (no legal hold).

Timed, on the same 10,000 accounts:

- baseline: a plain `UPDATE ... SET customer = ..., summary = ...` (and the history, letters,
  raw events and letter outbox rows of those complaints) in one transaction, then rolled back
  so the erasure finds the rows as they were; and the same UPDATEs one account at a time, each
  committed, on 10,000 other accounts of the same shape (the erasure commits per account);
- erasure: `consumers.erasure.erase_account` once per account, as `complaints erase` does
  (legal-hold check, every row rewritten through the scrubber, the erasure recorded, one
  transaction per account), without compaction;
- compaction: the `VACUUM FULL` of the touched tables that makes the replaced values
  unreadable from the files, once for all of them.

A quarterly return is computed before and after and must be identical.

    .venv/bin/python -m bench.erasure [--complaints 1000000] [--accounts 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from bench.pgschema import NoServer, scratch_schema
from consumers.erasure import compact_database, erase_account
from reporting.items import QUARTERLY
from reporting.periods import parse_quarter
from reporting.report import run_report, to_json
from workflow.bootstrap import bootstrap

LOAD = [
    # n: 1..N; account a = n % accounts; received 2020-01-01 + n minutes (so Q1 2020 onwards).
    """
    INSERT INTO complaints (complaint_id, reference, state, category, subsidiary_categories,
        channel, source, fuel, meter_type, summary, customer, taken_by, handler, received_at,
        received_event_id, cycle, cycle_received_at, cycle_d1_deadline,
        senior_manager_responded, remedy_overdue, last_event_at, version)
    SELECT 'C-' || n, 'BR-' || n, 'resolved', 'B13', '[]'::jsonb, 'telephone', 'direct',
        'electricity', 'unknown',
        'Customer ' || (n % :accounts) || ' says the bill for ' || n || ' is estimated',
        jsonb_build_object('account_id', 'ACC-' || (n % :accounts),
            'name', 'Customer ' || (n % :accounts) || ' Surname',
            'address', jsonb_build_array((n % :accounts) || ' Long Street', 'Exeter'),
            'postcode', 'EX1 ' || (n % 9) || 'AA',
            'email', 'customer' || (n % :accounts) || '@example.org',
            'preferred_contact', 'letter'),
        '{"id": "h-1", "name": "Sam Patel"}'::jsonb, '{"id": "h-1", "name": "Sam Patel"}'::jsonb,
        t, 'e-' || n, 1, t, t + interval '1 day', false, false, t + interval '2 days', 1
    FROM generate_series(1, :n) AS n,
         LATERAL (SELECT timestamp '2020-01-01' + n * interval '1 minute' AS t) AS times
    """,
    """
    INSERT INTO history (complaint_id, at, event_id, type, from_state, to_state, cycle, detail,
        recorded_at)
    SELECT c.complaint_id, c.received_at, c.received_event_id, 'complaint.received', NULL,
        'immediate', 1,
        jsonb_build_object('event_id', c.received_event_id, 'type', 'complaint.received',
            'complaint_id', c.complaint_id, 'channel', 'telephone', 'category', 'B13',
            'summary', c.summary, 'customer', c.customer, 'handler', c.handler),
        c.received_at
    FROM complaints c
    UNION ALL
    SELECT c.complaint_id, c.last_event_at, 'r-' || c.complaint_id, 'complaint.resolved',
        'immediate', 'resolved', 1,
        jsonb_build_object('type', 'complaint.resolved', 'resolution', jsonb_build_object(
            'apology', true, 'explanation', 'We told ' || (c.customer ->> 'name') ||
            ' we re-read the meter')),
        c.last_event_at
    FROM complaints c
    """,
    """
    INSERT INTO letters (letter_id, dedupe_key, complaint_id, kind, cycle, issued_at, cause,
        context)
    SELECT 'L-' || substr(md5(c.complaint_id), 1, 20), c.complaint_id || '/acknowledgement/1',
        c.complaint_id, 'acknowledgement', 1, c.cycle_d1_deadline, 'd-' || c.complaint_id,
        jsonb_build_object('kind', 'acknowledgement', 'reference', c.reference,
            'complaint_id', c.complaint_id, 'customer', c.customer, 'summary', c.summary,
            'supplier', jsonb_build_object('name', 'Kilowatt Connect', 'address',
                jsonb_build_array('83 Tarka Way', 'Crediton', 'EX17 3FF')),
            'owner', c.handler, 'category', 'B13')
    FROM complaints c
    """,
    """
    INSERT INTO receipts (complaint_id, event_id, cycle, is_reopen, received_at, d1_deadline,
        channel)
    SELECT complaint_id, received_event_id, 1, false, received_at, cycle_d1_deadline,
        'telephone'
    FROM complaints
    """,
    """
    INSERT INTO resolutions (complaint_id, event_id, type, cycle, resolved_at,
        original_received_at, original_d1_deadline, eight_weeks_at, counted)
    SELECT complaint_id, 'r-' || complaint_id, 'complaint.resolved', 1, last_event_at,
        received_at, cycle_d1_deadline, received_at + interval '56 days', true
    FROM complaints
    """,
    """
    INSERT INTO raw_events (event_id, type, complaint_id, occurred_at, source, position, raw,
        applied_at)
    SELECT h.event_id, h.type, h.complaint_id, h.at, 'bench', 'line 1',
        convert_to(h.detail::text, 'UTF8'), h.at
    FROM history h
    """,
    """
    INSERT INTO outbox (event_id, topic, key, payload, created_at, published_at)
    SELECT c.complaint_id || ':' || s.kind, CASE WHEN s.kind = 'letter' THEN 'letters'
        ELSE 'lifecycle' END, c.complaint_id,
        jsonb_build_object('type', s.kind, 'complaint_id', c.complaint_id,
            'reference', c.reference, 'category', 'B13'),
        c.received_at, c.received_at
    FROM complaints c CROSS JOIN (VALUES ('registered'), ('state_changed'), ('letter')) AS s(kind)
    """,
    """
    INSERT INTO rejections (rejected_at, source, position, reason, raw, event_id)
    SELECT c.received_at, 'bench', 'line 2', 'category B99 is not one of B5..B22',
        convert_to(jsonb_build_object('complaint_id', c.complaint_id, 'category', 'B99',
            'customer', c.customer)::text, 'UTF8'), 'x-' || c.complaint_id
    FROM complaints c WHERE substr(c.complaint_id, 3)::bigint % 1000 = 0
    """,
]

BASELINE = [
    """UPDATE complaints SET customer = '{"name": "[erased]"}'::jsonb, summary = '[erased]'
       WHERE customer ->> 'account_id' = ANY(:accounts)""",
    """UPDATE history SET detail = '{}'::jsonb WHERE complaint_id = ANY(:ids)""",
    """UPDATE letters SET context = '{}'::jsonb WHERE complaint_id = ANY(:ids)""",
    """UPDATE raw_events SET raw = '\\x'::bytea WHERE complaint_id = ANY(:ids)""",
    """UPDATE outbox SET payload = '{}'::jsonb WHERE topic <> 'lifecycle'
       AND key = ANY(:ids)""",
]


def load(engine: Engine, complaints: int) -> dict[str, float]:
    accounts = complaints // 2
    timings: dict[str, float] = {}
    with engine.begin() as connection:
        for statement in LOAD:
            started = time.monotonic()
            connection.execute(text(statement), {"n": complaints, "accounts": accounts})
            table = statement.split("INTO", 1)[1].split()[0]
            timings[table] = round(time.monotonic() - started, 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    return timings


def complaint_ids(engine: Engine, accounts: list[str]) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text(
            "SELECT complaint_id FROM complaints WHERE customer ->> 'account_id' = ANY(:a)"),
            {"a": accounts}).scalars())


def quarter(app: Any) -> str:
    report = run_report(app, QUARTERLY, parse_quarter("2020-Q1"), datetime(2030, 1, 1,
                                                                            tzinfo=UTC))
    return json.dumps(to_json(report), sort_keys=True)


def run(complaints: int, erased_accounts: int) -> dict[str, Any]:
    with scratch_schema(prefix="bench_erasure") as url:
        app = bootstrap(url, "kilowatt-connect")
        try:
            started = time.monotonic()
            loaded = load(app.engine, complaints)
            load_s = time.monotonic() - started
            rng = random.Random(15)
            accounts = [f"ACC-{a}" for a in rng.sample(range(complaints // 2), erased_accounts)]
            ids = complaint_ids(app.engine, accounts)
            before = quarter(app)

            with app.engine.connect() as connection:
                started = time.monotonic()
                transaction = connection.begin()
                for statement in BASELINE:
                    connection.execute(text(statement), {"accounts": accounts, "ids": ids})
                baseline_s = time.monotonic() - started
                transaction.rollback()

            # The same plain UPDATEs one account at a time, each committed (as the erasure
            # commits each account), on 10,000 other accounts of the same shape.
            others = [f"ACC-{a}" for a in rng.sample(
                sorted(set(range(complaints // 2)) - {int(x[4:]) for x in accounts}),
                erased_accounts)]
            other_ids = {a: complaint_ids(app.engine, [a]) for a in others}
            started = time.monotonic()
            for account in others:
                with app.engine.begin() as connection:
                    for statement in BASELINE:
                        connection.execute(text(statement), {"accounts": [account],
                                                             "ids": other_ids[account]})
            per_account_s = time.monotonic() - started

            now = datetime(2030, 1, 1, tzinfo=UTC)
            started = time.monotonic()
            erased = 0
            for account in accounts:
                erased += len(erase_account(app, account, now=now, by="bench",
                                            compact=False).erased)
            erasure_s = time.monotonic() - started
            started = time.monotonic()
            compact_database(app.engine)
            compact_s = time.monotonic() - started
            after = quarter(app)
            assert after == before, "the quarterly return changed"
            assert erased == len(ids), (erased, len(ids))
            return {
                "complaints": complaints, "accounts_erased": erased_accounts,
                "complaints_erased": erased, "load_s": round(load_s, 1), "load": loaded,
                "baseline_update_s": round(baseline_s, 2),
                "baseline_update_per_account_s": round(per_account_s, 2),
                "erasure_s": round(erasure_s, 2),
                "erasure_ms_per_account": round(erasure_s * 1000 / erased_accounts, 2),
                "vacuum_full_s": round(compact_s, 1),
                "quarterly_return_unchanged": True,
            }
        finally:
            app.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    try:
        print(json.dumps(run(args.complaints, args.accounts), indent=2))
    except NoServer as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
