"""The returns, item by item: the one table of Ofgem items (docs/rules.md s.7).

Each item is written once here, with its code, description, kind and computation; the JSON,
text, CSV and workbook outputs walk these tables. Complaint types come from
`workflow.codes.CATEGORIES` and the channel-to-item mapping from `workflow.codes.CHANNELS`
(read through `workflow.counting`, where every rule of what counts is declared once), so
those codes, too, are written down once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from reporting import measures as m
from reporting.model import Annex, Check, Context, Item, Kind, ReturnSpec
from reporting.numbers import Exact, add, ratio
from workflow.counting import (
    CATEGORIES,
    SIGNPOSTING_ITEMS,
    channels_of,
    item_codes,
)

COUNT, ACCOUNTS, RATE, PERCENT, DAYS = (
    Kind.COUNT, Kind.ACCOUNTS, Kind.RATE, Kind.PERCENT, Kind.DAYS)
Compute = Callable[[Context], Exact | None]


def _channels_of(item_code: str, position: int) -> list[str]:
    """The channels that map to a quarterly item (position 0: contacts, 1: complaints)."""
    return channels_of(item_code, position)


def _channel_items(position: int) -> list[str]:
    return item_codes(position)


def _channel_label(item_code: str, position: int) -> str:
    return ", ".join(c.replace("_", " ") for c in _channels_of(item_code, position))


def _sum_channels(counts: dict[str, int], item_code: str, position: int) -> int:
    return sum(counts.get(channel, 0) for channel in _channels_of(item_code, position))


def _sum_of(codes: list[str]) -> Compute:
    return lambda c: sum(c.count(code) for code in codes)


# --------------------------------------------------------------------------- monthly
def _receipts(c: Context) -> m.ReceiptCounts:
    return c.measure(m.receipt_counts)


def _first_day(c: Context) -> m.FirstDayOutcomes:
    return c.measure(m.first_day_outcomes)


def _category(code: str) -> Compute:
    return lambda c: c.measure(m.receipts_by_category).by_category.get(code, 0)


MONTHLY_CATEGORY_ITEMS: Final = list(CATEGORIES)

MONTHLY: Final = ReturnSpec(
    name="monthly",
    title="Ofgem monthly complaints return",
    sections={"A": "Complaints received", "B": "Complaints received by type",
              "C": "Customer accounts"},
    items=(
        Item("A1", "Total number of complaints received", COUNT,
             lambda c: _receipts(c).received),
        Item("A2", "Complaints received during the month that were resolved by the end of "
                   "the first working day after the complaint was received", COUNT,
             lambda c: _first_day(c).resolved_by_d1),
        Item("A3", "Complaints that were not resolved by the end of the first working day "
                   "after the complaint was received (including those still unresolved)",
             COUNT, lambda c: _first_day(c).not_resolved_by_d1),
        Item("A4", "Repeat complaints received (reopened complaints)", COUNT,
             lambda c: _receipts(c).reopens),
        *(Item(code, f"{code} - {description}", COUNT, _category(code))
          for code, description in CATEGORIES.items()),
        Item("B23", "Total complaints received by type (sum of B5-B22)", COUNT,
             _sum_of(MONTHLY_CATEGORY_ITEMS), derived=True),
        Item("C24", "Number of electricity customer accounts at the end of the month",
             ACCOUNTS, lambda c: c.measure(m.accounts).electricity),
        Item("C25", "Number of gas customer accounts at the end of the month", ACCOUNTS,
             lambda c: c.measure(m.accounts).gas),
        Item("C26", "Total number of domestic electricity and gas accounts", ACCOUNTS,
             lambda c: add(c["C24"], c["C25"]), derived=True),
        Item("C27", "Number of complaints received per 100,000 customer accounts", RATE,
             lambda c: ratio(c["A1"], c["C26"], 100_000), derived=True),
        Item("C28", "Number of complaints received per 10,000 customer accounts (the measure "
                    "used when there are fewer than 100,000 accounts)", RATE,
             lambda c: ratio(c["A1"], c["C26"], 10_000), derived=True),
    ),
    checks=(
        Check("A1 = A2 + A3", lambda c: (
            c.count("A1") == c.count("A2") + c.count("A3"),
            f"A1 {c['A1']}; A2 {c['A2']} + A3 {c['A3']} = {c.count('A2') + c.count('A3')}",
        )),
        Check("B23 = A1", lambda c: _b23_check(c)),
        Check("B22 explained", lambda c: _b22_check(c)),
        Check("accounts at period end", lambda c: _accounts_at_period_end(c)),
    ),
    annexes=(
        Annex("b22_explanations", "B22 explanations", ("Explanation", "Count"),
              lambda c: [{"explanation": e.explanation, "count": e.count}
                         for e in c.measure(m.receipts_by_category).b22_explanations],
              lambda value: [(e["explanation"], e["count"]) for e in value]),
        Annex("subsidiary_types", "Subsidiary types", ("Item", "Description", "Count"),
              lambda c: c.measure(m.subsidiary_types),
              lambda value: [(code, CATEGORIES[code], n) for code, n in value.items()]),
    ),
)


def _b23_check(c: Context) -> tuple[bool, str]:
    detail = f"B23 {c['B23']}; A1 {c['A1']}"
    missing = c.measure(m.receipts_by_category).uncategorised
    if missing:
        detail += f"; {missing} receipt(s) had no category at the as-of instant"
    return c.count("B23") == c.count("A1"), detail


def _b22_check(c: Context) -> tuple[bool, str]:
    counts = c.measure(m.receipts_by_category)
    if counts.other_unexplained == 0:
        return True, f"all {c['B22']} B22 complaint(s) have an explanation"
    return False, (f"{counts.other_unexplained} of {c['B22']} B22 complaint(s) have no "
                   f"explanation: {', '.join(counts.unexplained_examples)}")


def _accounts_at_period_end(c: Context) -> tuple[bool, str]:
    """(v2) The accounts items are "at the end of the month/quarter": ok only when the
    snapshot they come from is dated the period's last day (docs/rules.md s.7)."""
    snapshot = c.measure(m.accounts).as_of
    last = c.window.last.isoformat()
    if snapshot is None:
        return False, f"no accounts snapshot dated in the period: missing (needs one dated {last})"
    if snapshot == last:
        return True, f"accounts from the snapshot dated {snapshot}, the period's last day"
    return False, (f"accounts from the snapshot dated {snapshot}, not the period's last day "
                   f"({last})")


# --------------------------------------------------------------------------- quarterly
def _contacts(code: str) -> Compute:
    return lambda c: _sum_channels(c.measure(m.contacts_by_channel), code, 0)


def _complaints(code: str) -> Compute:
    return lambda c: _sum_channels(c.measure(m.receipts_by_channel), code, 1)


def _resolutions(c: Context) -> m.ResolutionCounts:
    return c.measure(m.resolution_counts)


def _letters(kind: str) -> Compute:
    return lambda c: c.measure(m.letters_by_kind).get(kind, 0)


def _share_of_c11(code: str) -> Compute:
    return lambda c: ratio(c[code], c["C11"], 100)


CONTACT_ITEMS: Final = _channel_items(0)
COMPLAINT_ITEMS: Final = _channel_items(1)

QUARTERLY: Final = ReturnSpec(
    name="quarterly",
    title="Ofgem quarterly complaints return",
    sections={"A": "Contacts received (enquiries and complaints) by channel",
              "B": "Complaints received by channel", "C": "Complaints resolved",
              "D": "Ombudsman signposting letters", "E": "Customer accounts"},
    items=(
        Item("A1", "Total contacts received (sum of A2-A5)", COUNT, _sum_of(CONTACT_ITEMS),
             derived=True),
        *(Item(code, f"Contacts received by {_channel_label(code, 0)}", COUNT, _contacts(code))
          for code in CONTACT_ITEMS),
        Item("B6", "Total complaints received (sum of B7-B10)", COUNT, _sum_of(COMPLAINT_ITEMS),
             derived=True),
        *(Item(code, f"Complaints received by {_channel_label(code, 1)}", COUNT,
               _complaints(code))
          for code in COMPLAINT_ITEMS),
        Item("C11", "Complaints resolved during the quarter (not counting complaints sent an "
                    "8-week or deadlock letter before the resolution)", COUNT,
             lambda c: _resolutions(c).resolved),
        Item("C12", "Complaints resolved by the end of the first working day after the "
                    "complaint was received (D+1)", COUNT,
             lambda c: _resolutions(c).by_original_d1),
        Item("C12_pct", "C12 as a percentage of C11", PERCENT, _share_of_c11("C12"),
             derived=True),
        Item("C13", "Complaints resolved between the date the complaint was received and "
                    "eight weeks (including those in C12)", COUNT,
             lambda c: _resolutions(c).within_eight_weeks),
        Item("C13_pct", "C13 as a percentage of C11", PERCENT, _share_of_c11("C13"),
             derived=True),
        Item("C14", "Complaints resolved later than eight weeks after the complaint was "
                    "received", COUNT, lambda c: _resolutions(c).after_eight_weeks),
        Item("C14_pct", "C14 as a percentage of C11", PERCENT, _share_of_c11("C14"),
             derived=True),
        Item("C15", "Average (median) resolution time in days of the complaints resolved "
                    "during the quarter, from the original receipt", DAYS,
             lambda c: m.median_resolution_days(c.conn, c.window, c.count("C11"))),
        Item("D16", "Letters sent signposting the Ombudsman at 8 weeks", COUNT,
             _letters(SIGNPOSTING_ITEMS["D16"])),
        Item("D17", "Deadlock letters sent signposting the Ombudsman", COUNT,
             _letters(SIGNPOSTING_ITEMS["D17"])),
        Item("E18", "Number of electricity customer accounts at the end of the quarter",
             ACCOUNTS, lambda c: c.measure(m.accounts).electricity),
        Item("E19", "Number of gas customer accounts at the end of the quarter", ACCOUNTS,
             lambda c: c.measure(m.accounts).gas),
        Item("E20", "Total number of domestic electricity and gas accounts", ACCOUNTS,
             lambda c: add(c["E18"], c["E19"]), derived=True),
        Item("E21", "Number of complaints received per 100,000 customer accounts", RATE,
             lambda c: ratio(c["B6"], c["E20"], 100_000), derived=True),
        Item("E22", "Number of complaints received per 10,000 customer accounts (the measure "
                    "used when there are fewer than 100,000 accounts)", RATE,
             lambda c: ratio(c["B6"], c["E20"], 10_000), derived=True),
    ),
    checks=(
        Check("B6 = sum of monthly A1", lambda c: _b6_check(c)),
        Check("C11 = C13 + C14", lambda c: (
            c.count("C11") == c.count("C13") + c.count("C14"),
            f"C11 {c['C11']}; C13 {c['C13']} + C14 {c['C14']} = "
            f"{c.count('C13') + c.count('C14')}",
        )),
        Check("C12 <= C13", lambda c: (
            c.count("C12") <= c.count("C13"), f"C12 {c['C12']}; C13 {c['C13']}")),
        Check("accounts at period end", lambda c: _accounts_at_period_end(c)),
    ),
)


def _b6_check(c: Context) -> tuple[bool, str]:
    monthly = [(p.label, c.of(MONTHLY, p).count("A1")) for p in c.period.months()]
    parts = " + ".join(f"{n} ({label})" for label, n in monthly)
    total = sum(n for _, n in monthly)
    return c.count("B6") == total, f"B6 {c['B6']}; monthly A1 {parts} = {total}"


# --------------------------------------------------------------------------- publication
def _quarterly(code: str) -> Compute:
    return lambda c: c.of(QUARTERLY)[code]


def _per_accounts(code: str, scale: int) -> Compute:
    return lambda c: ratio(c.of(QUARTERLY)[code], c.of(QUARTERLY)["E20"], scale)


PUBLICATION: Final = ReturnSpec(
    name="publication",
    title="Complaints figures for publication (Ofgem guidance section 6)",
    shape="figures",
    items=(
        Item("complaints_received", "Complaints received in the quarter (quarterly B6)", COUNT,
             _quarterly("B6"), derived=True),
        Item("received_per_100k", "Complaints received per 100,000 customer accounts "
                                  "(B6 over E20)", RATE, _per_accounts("B6", 100_000),
             derived=True),
        Item("received_per_10k", "Complaints received per 10,000 customer accounts "
                                 "(B6 over E20; the figure to show below 100,000 accounts)",
             RATE, _per_accounts("B6", 10_000), derived=True),
        Item("complaints_resolved", "Complaints resolved in the quarter (quarterly C11)", COUNT,
             _quarterly("C11"), derived=True),
        Item("resolved_per_100k", "Complaints resolved per 100,000 customer accounts "
                                  "(C11 over E20)", RATE, _per_accounts("C11", 100_000),
             derived=True),
        Item("resolved_per_10k", "Complaints resolved per 10,000 customer accounts "
                                 "(C11 over E20; the figure to show below 100,000 accounts)",
             RATE, _per_accounts("C11", 10_000), derived=True),
        Item("pct_resolved_next_working_day", "Percentage of resolved complaints resolved by "
                                              "the end of the next working day (C12 / C11)",
             PERCENT, _quarterly("C12_pct"), derived=True),
        Item("pct_resolved_within_8_weeks", "Percentage of resolved complaints resolved "
                                            "within eight weeks (C13 / C11)", PERCENT,
             _quarterly("C13_pct"), derived=True),
    ),
)

# --------------------------------------------------------------------------- annual
ANNUAL: Final = ReturnSpec(
    name="annual",
    title="Annual complaints report (CHR 2008 reg. 11)",
    shape="annual",
    items=(
        Item("not_resolved_by_next_working_day",
             "Complaints received that were not resolved by the end of the first working day "
             "after receipt (sum of the monthly A3 over the 12 months)", COUNT,
             lambda c: sum(c.of(MONTHLY, p).count("A3") for p in c.period.months()),
             derived=True),
    ),
)

RETURNS: Final = {spec.name: spec for spec in (MONTHLY, QUARTERLY, PUBLICATION, ANNUAL)}
