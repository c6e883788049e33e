"""The live view: counts derived from the complaint records, and the documents served from them.

`LiveView` holds only what the records imply (counters, and sorted due instants and resolution
times), so it can always be rebuilt from the records, which is what happens after a faust table
is recovered from its changelog. `Aggregator` applies one message to the records and moves the
view by the difference between the record before and after: no event is counted twice, and a
re-delivered one changes nothing.

Queries are O(log n): a count of deadlines due before an instant is a bisection of that kind's
sorted due instants, so `/backlog` costs the same at a hundred complaints or a million.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Final

from sortedcontainers import SortedList

from reporting.numbers import as_json_number, ratio, round_half_up
from reporting.ops.records import (
    DUE,
    RESOLUTION_TIME,
    Contributions,
    Malformed,
    Record,
    Rules,
    Source,
    apply,
    complaint_id_of,
    contributions,
    micros,
)
from workflow.calendar import WorkingCalendar, local_date, start_of_date
from workflow.counting import (
    CATEGORIES,
    CHANNELS,
    COMPLAINTS,
    DUE_SOON_WORKING_DAYS,
    SIGNPOSTING_ITEMS,
    complaints_item,
    item_codes,
)
from workflow.handlers import DEADLINE_KINDS
from workflow.letter_context import LETTER_KINDS
from workflow.lifecycle import STATES

log = logging.getLogger(__name__)

MICROSECONDS_PER_DAY: Final = 86_400 * 1_000_000
# Items of the returns that the output topics cannot give: contacts (enquiries and logged
# contacts are not published), and accounts (snapshots are not published either).
NOT_STREAMED: Final = {
    "monthly": ["C24", "C25", "C26", "C27", "C28"],
    "quarterly": ["A1", "A2", "A3", "A4", "A5", "E18", "E19", "E20", "E21", "E22"],
}
MONTHLY_ITEMS: Final = ("A1", "A2", "A3", "A4", *CATEGORIES, "B23")
QUARTERLY_ITEMS: Final = ("B6", "B7", "B8", "B9", "B10", "C11", "C12", "C12_pct", "C13",
                          "C13_pct", "C14", "C14_pct", "C15", "D16", "D17")


BACKLOG_CACHE: Final = 4  # encoded backlog documents kept (LiveView.backlog_json)


class LiveView:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.sorted: dict[tuple[str, str], SortedList] = {}
        self.version = 0  # moves on every change: a cached document is valid for one version
        # (version, first, last instant, encoded rest) of the latest few documents, newest
        # first: a few, because dashboards and probes ask at "now" and at fixed instants in
        # turn, and one entry would be recomputed on each of them.
        self._backlog_cache: list[tuple[int, int, int, bytes]] = []

    def clear(self) -> None:
        self.counts.clear()
        self.sorted.clear()
        self.version += 1

    def rebuild(self, records: Iterable[Record]) -> int:
        self.clear()
        total = 0
        for record in records:
            self._add(contributions(record), 1)
            total += 1
        return total

    def replace(self, old: Record | None, new: Record | None) -> None:
        self.version += 1
        before, after = contributions(old), contributions(new)
        delta = after.counts
        delta.subtract(before.counts)
        for key, change in delta.items():
            if change:
                self._count(key, change)
        for point, times in (before.points - after.points).items():
            self._points(point, -times)
        for point, times in (after.points - before.points).items():
            self._points(point, times)

    def _add(self, found: Contributions, sign: int) -> None:
        self.version += 1
        for key, n in found.counts.items():
            self._count(key, sign * n)
        for point, times in found.points.items():
            self._points(point, sign * times)

    def _count(self, key: tuple[str, ...], change: int) -> None:
        value = self.counts[key] + change
        if value:
            self.counts[key] = value
        else:
            del self.counts[key]  # so that `periods` lists only periods with something in them

    def _points(self, point: tuple[str, str, int], times: int) -> None:
        family, group, value = point
        values = self.sorted.get((family, group))
        if values is None:
            values = self.sorted[family, group] = SortedList()
        for _ in range(abs(times)):
            if times > 0:
                values.add(value)
            else:
                values.remove(value)
        if not values:
            del self.sorted[family, group]

    # ------------------------------------------------------------------ documents
    def backlog(self, as_of: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
        """The shape of `complaints backlog` (workflow.queries.backlog), from memory."""
        now = micros(as_of)
        horizon = micros(calendar.working_days_after(as_of, DUE_SOON_WORKING_DAYS))
        overdue: dict[str, int] = {}
        due_soon: dict[str, int] = {}
        for kind in DEADLINE_KINDS:
            due = self.sorted.get((DUE, kind))
            if not due:
                overdue[kind] = due_soon[kind] = 0
                continue
            before = due.bisect_left(now)  # unfired and due before as_of
            overdue[kind] = before
            due_soon[kind] = due.bisect_right(horizon) - before  # as_of <= due <= horizon
        # A remedy whose deadline fired and that is still not implemented stays overdue.
        overdue["remedy"] += self.counts.get(("remedy_overdue",), 0)
        return {
            "as_of": as_of.isoformat(),
            "by_state": {state: self.counts.get(("state", state), 0) for state in STATES},
            "overdue": overdue,
            "due_within_5_working_days": due_soon,
            "late_referrals": self.counts.get(("late_referral",), 0),
            "undelivered_letters": self.counts.get(("undelivered",), 0),
        }

    def backlog_json(self, as_of: datetime, calendar: WorkingCalendar) -> bytes:
        """`backlog` encoded, from a cache that is exact, never stale.

        The counts at an instant t stay the same for every later instant up to the next due
        instant (none passes before it) and within t's local date (the 5-working-day horizon
        moves only with the date), as long as the view does not change. Only "as_of" differs
        then, so the rest of the encoded document is reused.
        """
        now = micros(as_of)
        head = b'{"as_of": ' + json.dumps(as_of.isoformat()).encode() + b", "
        for version, start, end, rest in self._backlog_cache:
            if version == self.version and start <= now <= end:
                return head + rest
        document = self.backlog(as_of, calendar)
        del document["as_of"]
        rest = json.dumps(document).encode()[1:]
        end = micros(start_of_date(local_date(as_of) + timedelta(days=1))) - 1
        for (family, _), values in self.sorted.items():
            if family == DUE and values:
                index = values.bisect_left(now)
                if index < len(values):
                    end = min(end, values[index])
        kept = [entry for entry in self._backlog_cache if entry[0] == self.version]
        self._backlog_cache = [(self.version, now, end, rest), *kept[:BACKLOG_CACHE - 1]]
        return head + rest

    def monthly(self, month: str) -> dict[str, Any]:
        def count(*key: str) -> int:
            return self.counts.get(("m", month, *key), 0)

        items: dict[str, int] = {code: count(code) for code in ("A1", "A2", "A3", "A4")}
        items.update({code: count("category", code) for code in CATEGORIES})
        items["B23"] = sum(items[code] for code in CATEGORIES)
        return {
            "period": month,
            "items": items,
            "receipts_by_channel": {channel: count("channel", channel) for channel in CHANNELS},
            "letters": {kind: count("letter", kind) for kind in LETTER_KINDS},
        }

    def quarterly(self, quarter: str) -> dict[str, Any]:
        def count(*key: str) -> int:
            return self.counts.get(("q", quarter, *key), 0)

        items: dict[str, int | float | None] = {}
        by_item: Counter[str] = Counter()
        for channel in CHANNELS:
            by_item[complaints_item(channel)] += count("channel", channel)
        complaint_items = item_codes(COMPLAINTS)
        items["B6"] = sum(by_item[code] for code in complaint_items)
        items.update({code: by_item[code] for code in complaint_items})
        c11 = count("C11")
        items["C11"] = c11
        for code in ("C12", "C13", "C14"):
            items[code] = count(code)
            share = ratio(count(code), c11, 100)
            items[f"{code}_pct"] = None if share is None else as_json_number(
                round_half_up(share))
        items["C15"] = self._median_days(quarter)
        for code in ("D16", "D17"):
            items[code] = count("letter", SIGNPOSTING_ITEMS[code])
        return {
            "period": quarter,
            "items": {code: items[code] for code in QUARTERLY_ITEMS},
            "receipts_by_channel": {channel: count("channel", channel) for channel in CHANNELS},
            "letters": {kind: count("letter", kind) for kind in LETTER_KINDS},
        }

    def _median_days(self, quarter: str) -> float | None:
        times = self.sorted.get((RESOLUTION_TIME, quarter))
        if not times:
            return None
        n = len(times)
        middle = [times[(n - 1) // 2]] if n % 2 else [times[n // 2 - 1], times[n // 2]]
        days = Fraction(sum(middle), len(middle) * MICROSECONDS_PER_DAY)
        return as_json_number(round_half_up(days))

    def periods(self) -> dict[str, list[str]]:
        """The months and quarters with anything counted, for reconciliation."""
        months = {key[1] for key in self.counts if key[0] == "m"}
        quarters = {key[1] for key in self.counts if key[0] == "q"}
        for family, group in self.sorted:
            if family == RESOLUTION_TIME and self.sorted[family, group]:
                quarters.add(group)
        return {"months": sorted(months), "quarters": sorted(quarters)}


@dataclass
class AggregatorStats:
    applied: int = 0
    duplicates: int = 0
    malformed: int = 0
    recovered: int = 0  # complaint records restored from the changelog at the last recovery
    last_applied_at: float | None = None  # wall clock (time.time) of the last applied event


class Aggregator:
    """Folds messages into the records (`store`) and keeps the view in step.

    `store` is the faust table in production (each assignment writes its changelog), a dict in
    tests and benchmarks. Not thread-safe: one event loop owns it.
    """

    def __init__(self, rules: Rules, store: MutableMapping[str, Record] | None = None) -> None:
        self.rules = rules
        self.store: MutableMapping[str, Record] = {} if store is None else store
        self.view = LiveView()
        self.stats = AggregatorStats()
        self.ready = store is None  # a faust table is ready once recovered

    def handle(self, source: Source, raw: bytes | str | None, where: str = "") -> str:
        """Apply one message; returns "applied", "duplicate" or "malformed"."""
        try:
            if raw is None:
                raise Malformed("empty message")
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise Malformed("not a JSON object")
            complaint_id = complaint_id_of(payload)
            old = self.store.get(complaint_id)
            new = apply(old, source, payload, self.rules)
        except (Malformed, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
            # The reason names fields, never their values: no personal data reaches the log.
            self.stats.malformed += 1
            log.warning("skipped a malformed %s message %s: %s", source, where,
                        exc if isinstance(exc, Malformed) else type(exc).__name__)
            return "malformed"
        if new is None:
            self.stats.duplicates += 1
            return "duplicate"
        self.store[complaint_id] = new
        self.view.replace(old, new)
        self.stats.applied += 1
        self.stats.last_applied_at = time.time()
        return "applied"

    def rebuild(self) -> int:
        """Derive the view again from every record held (after a recovery)."""
        total = self.view.rebuild(self.store.values())
        self.stats.recovered = total
        self.ready = True
        return total

    @property
    def complaints(self) -> int:
        return len(self.store)
