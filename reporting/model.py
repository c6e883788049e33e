"""What a return is made of: items, checks, and the evaluation that runs them.

An `Item` is an Ofgem code, its description, the kind of number it is and how it is computed:
either from a measure (an SQL aggregate in `reporting.measures`) or from other items. The
tables in `reporting.items` are the only list of items; JSON, text, CSV and the workbook are
all produced by walking them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection

from reporting.numbers import Exact, Value, round_half_up
from reporting.periods import Period, Window
from workflow.procedure import Procedure

T = TypeVar("T")


class Kind(Enum):
    COUNT = "count"  # an integer
    ACCOUNTS = "accounts"  # an integer from the accounts snapshot; null when there is none
    RATE = "rate"  # per 100,000 / 10,000 accounts, 2 dp
    PERCENT = "percent"  # 2 dp
    DAYS = "days"  # 2 dp

    @property
    def decimal(self) -> bool:
        return self in (Kind.RATE, Kind.PERCENT, Kind.DAYS)

    def finish(self, value: Exact | None) -> Value:
        """Counts stay integers; rates, percentages and days are rounded half-up to 2 dp."""
        if value is None:
            return None
        if self.decimal:
            return round_half_up(value)
        if int(value) != value:
            raise ValueError(f"a {self.value} must be a whole number, got {value}")
        return int(value)


@dataclass(frozen=True)
class Item:
    code: str
    description: str
    kind: Kind
    compute: Callable[[Context], Exact | None]
    # True for the cells Ofgem's template calculates from other items (sums, totals, rates):
    # the workbook marks them, so a reviewer can tell counted figures from derived ones.
    derived: bool = False


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Check:
    name: str
    evaluate: Callable[[Context], tuple[bool, str]]


@dataclass(frozen=True)
class Annex:
    """(v2) A part of a return beside its items (docs/rules.md s.7: the monthly return's
    `b22_explanations` and `subsidiary_types`): a JSON value under `name` in the document,
    and a sheet of the workbook titled `title` with one row per entry of `rows(value)`."""

    name: str
    title: str
    columns: tuple[str, ...]
    compute: Callable[[Context], Any]
    rows: Callable[[Any], list[tuple[Any, ...]]]


Shape = Literal["return", "figures", "annual"]


@dataclass(frozen=True)
class ReturnSpec:
    name: str  # monthly, quarterly, publication, annual
    title: str
    items: tuple[Item, ...]
    checks: tuple[Check, ...] = ()
    sections: Mapping[str, str] = field(default_factory=dict)  # code letter -> heading
    shape: Shape = "return"
    annexes: tuple[Annex, ...] = ()

    def __post_init__(self) -> None:
        codes = [item.code for item in self.items]
        if len(codes) != len(set(codes)):
            raise ValueError(f"{self.name}: an item code appears twice")

    def item(self, code: str) -> Item:
        for candidate in self.items:
            if candidate.code == code:
                return candidate
        raise KeyError(f"{self.name} return has no item {code}")

    def section(self, code: str) -> str | None:
        return self.sections.get(code[0])


class Context:
    """One return for one period, evaluated lazily against one database snapshot.

    Items are computed on first use and memoised (so an item may use items defined after it);
    measures are memoised per window and shared with the other returns a check or a figure
    needs (a quarterly return's check reads the monthly A1 of its months).
    """

    def __init__(self, conn: Connection, spec: ReturnSpec, period: Period, as_of: datetime,
                 procedure: Procedure, _shared: dict[Any, Any] | None = None) -> None:
        self.conn = conn
        self.spec = spec
        self.period = period
        self.as_of = as_of
        self.procedure = procedure
        self.window: Window = period.window(as_of)
        self._shared = {} if _shared is None else _shared
        self._values: dict[str, Value] = {}
        self._evaluating: set[str] = set()

    def measure(self, query: Callable[[Connection, Window], T]) -> T:
        key = (query, self.window)
        if key not in self._shared:
            self._shared[key] = query(self.conn, self.window)
        result: T = self._shared[key]
        return result

    def __getitem__(self, code: str) -> Value:
        if code not in self._values:
            if code in self._evaluating:
                raise ValueError(f"{self.spec.name} item {code} depends on itself")
            self._evaluating.add(code)
            item = self.spec.item(code)
            self._values[code] = item.kind.finish(item.compute(self))
            self._evaluating.discard(code)
        return self._values[code]

    def count(self, code: str) -> int:
        value = self[code]
        if not isinstance(value, int):
            raise TypeError(f"{self.spec.name} item {code} is not a count: {value!r}")
        return value

    def of(self, spec: ReturnSpec, period: Period | None = None) -> Context:
        """Another return (or another period) on the same connection and as-of instant."""
        key = ("context", spec.name, period or self.period)
        if key not in self._shared:
            self._shared[key] = Context(self.conn, spec, period or self.period, self.as_of,
                                        self.procedure, self._shared)
        context: Context = self._shared[key]
        return context

    def values(self) -> dict[str, Value]:
        return {item.code: self[item.code] for item in self.spec.items}

    def run_checks(self) -> list[CheckResult]:
        return [CheckResult(check.name, *check.evaluate(self)) for check in self.spec.checks]
