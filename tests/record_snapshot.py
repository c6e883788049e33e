"""The whole record as comparable data: every complaint as `show` gives it (state, history,
deadlines, letters), every letter's stored context, and the monthly and quarterly returns of
every period the record touches. Two records built from the same events compare equal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from reporting.items import MONTHLY, QUARTERLY
from reporting.periods import Period, month, quarter
from reporting.report import run_report, to_json
from workflow import queries
from workflow.bootstrap import App
from workflow.calendar import local_date
from workflow.schema import Complaint, HistoryEntry, Letter


def periods(first: datetime, last: datetime) -> tuple[list[Period], list[Period]]:
    start, end = local_date(first), local_date(last)
    months, quarters = [], []
    year, number = start.year, start.month
    while (year, number) <= (end.year, end.month):
        months.append(month(year, number))
        if not quarters or quarters[-1].label != f"{year:04d}-Q{(number - 1) // 3 + 1}":
            quarters.append(quarter(year, (number - 1) // 3 + 1))
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months, quarters


def record(app: App, as_of: datetime) -> dict[str, Any]:
    with app.sessions() as session:
        ids = list(session.scalars(select(Complaint.complaint_id).order_by(Complaint.complaint_id)))
        complaints = {cid: queries.show_complaint(session, cid) for cid in ids}
        contexts = {lid: ctx for lid, ctx in session.execute(
            select(Letter.letter_id, Letter.context).order_by(Letter.letter_id))}
        first = session.scalar(select(func.min(HistoryEntry.at)))
    months, quarters = periods(first, as_of) if first else ([], [])
    returns = {p.label: to_json(run_report(app, MONTHLY, p, as_of)) for p in months}
    returns.update({p.label: to_json(run_report(app, QUARTERLY, p, as_of)) for p in quarters})
    return {"complaints": complaints, "letter_contexts": contexts, "returns": returns}
