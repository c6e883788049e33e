"""`complaints simulate`: the same events replayed under two procedures, compared.

Each replay runs in its own process (the two in parallel) on the replay unit of work
(workflow/memory_uow.py: rows in memory, never the `--db` record). A replay applies the events
as `complaints ingest` does (the same function, so in the same order, through the same handlers)
and then fires what is due up to `until` as `complaints tick --until` does. The rows the returns
read are written as it goes into a scratch SQLite in memory (consumers/replay_store.py), where
the return SQL itself counts them, so the return rules stay defined once. The figures as of
`until`: letters by kind, complaints by state, every item of the monthly and quarterly returns
of every period from the first event's to `until`'s, and each complaint's state and letters.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import time
import tomllib
import types
import typing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from consumers.file_ingest import ingest_file, read_lines, tick
from consumers.replay_store import ScratchRecord
from reporting.simulation_html import changed_items  # noqa: F401 - read here too
from workflow import events as ev
from workflow.bootstrap import MemoryApp
from workflow.calendar import local_date
from workflow.letter_context import LETTER_KINDS
from workflow.lifecycle import STATES
from workflow.procedure import Procedure


class BadSetting(ValueError):
    """A `--set KEY=VALUE` that names no procedure key or gives it an unusable value."""


# -- the variant procedure ----------------------------------------------------------------
def with_settings(procedure: Procedure, settings: list[str]) -> Procedure:
    """The procedure with each `KEY=VALUE` applied: top-level keys, dotted keys into its
    tables (`supplier.phone=...`); `none` for no value; values read as TOML values (`42`,
    `true`, `["a", "b"]`), else as text."""
    data = procedure.model_dump(mode="json")
    for setting in settings:
        key, equals, text = setting.partition("=")
        if not equals or not key.strip():
            raise BadSetting(f"--set {setting!r}: expected KEY=VALUE")
        parts = key.strip().split(".")
        model: type[BaseModel] = Procedure
        target = data
        for depth, part in enumerate(parts):
            field = model.model_fields.get(part)
            if field is None:
                where = ".".join(parts[:depth]) or "the procedure"
                known = ", ".join(sorted(model.model_fields))
                raise BadSetting(f"--set {key}: {part!r} is not a key of {where} "
                                 f"(keys: {known})")
            if depth == len(parts) - 1:
                target[part] = _value(text, field.annotation)
                break
            table = _model_of(field.annotation)
            if table is None:
                raise BadSetting(f"--set {key}: {'.'.join(parts[:depth + 1])} is not a table")
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target, model = target[part], table
    try:
        return Procedure.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise BadSetting(f"--set: the variant procedure is not valid: {problems}") from None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _value(text: str, annotation: Any) -> Any:
    stripped = text.strip()
    if stripped.lower() == "none":
        return None
    # A text field takes the text as given (a phone number is not an integer).
    wanted = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if str in wanted:
        return text
    try:
        return tomllib.loads(f"value = {stripped}")["value"]
    except tomllib.TOMLDecodeError:
        return text


# -- the events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Events:
    path: Path  # the lines to replay (those after `until` left out)
    first: datetime | None  # the earliest readable occurred_at replayed
    until: datetime


def prepare(source: Path, until: datetime | None, workdir: Path) -> Events:
    """The lines to replay: every line of `source` (bad ones included: both replays reject
    them) except those whose `occurred_at` is after `until` (default: the latest instant)."""
    lines = [line.rstrip(b"\r") for line in read_lines(source) if line.strip()]
    instants: list[datetime | None] = [_occurred(line) for line in lines]
    known = [i for i in instants if i is not None]
    end = until if until is not None else (max(known) if known else None)
    if end is None:
        raise ValueError(f"{source} has no event with a readable occurred_at to replay")
    kept = [line for line, at in zip(lines, instants, strict=True) if at is None or at <= end]
    replayed = [at for at in known if at <= end]
    path = workdir / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in kept))
    return Events(path, min(replayed) if replayed else None, end)


def _occurred(line: bytes) -> datetime | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    clocked = ev.clock_fields(document)
    return clocked[1] if clocked is not None else None


# -- one replay ---------------------------------------------------------------------------
def periods(first: datetime | None, until: datetime) -> tuple[list[str], list[str]]:
    """Every month and quarter label (Europe/London) from the first event's to until's."""
    start, end = local_date(first or until), local_date(until)
    months: list[str] = []
    quarters: list[str] = []
    year, number = start.year, start.month
    while (year, number) <= (end.year, end.month):
        months.append(f"{year:04d}-{number:02d}")
        label = f"{year:04d}-Q{(number - 1) // 3 + 1}"
        if label not in quarters:
            quarters.append(label)
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months, quarters


def replay(events_path: str, procedure: dict[str, Any], until: str, months: list[str],
           quarters: list[str], store: str | None = None) -> dict[str, Any]:
    """Run in a worker process: replay the events under the procedure on the replay unit of
    work (workflow/memory_uow.py: rows in memory, nothing of `--db`), fire what is due up to
    `until`, and read the outcome as of `until`.

    The returns are the return SQL itself (reporting/measures.py), run on a scratch SQLite
    that the replay's rows are written into as it commits: in memory, holding only the tables
    the measures read, or, given `store` (a file), the whole record as `complaints ingest`
    would have written it there (what tests compare with an ingest)."""
    from consumers.gc_tuning import tune_garbage_collector
    from reporting.items import MONTHLY, QUARTERLY
    from reporting.periods import parse_month, parse_quarter
    from reporting.report import run_reports, to_json

    tune_garbage_collector()
    _spare_young_collections()
    end = datetime.fromisoformat(until)
    scratch = ScratchRecord(store)
    app = MemoryApp(Procedure.model_validate(procedure), scratch.store)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        report = ingest_file(app, Path(events_path))
        tick(app, end)
        replayed, cpu = time.perf_counter(), time.process_time() - cpu_started
        scratch.finish()
        loaded = time.perf_counter()
        states = app.store.states()
        letters: dict[str, list[str]] = {cid: [] for cid in states}
        by_month: dict[str, dict[str, int]] = {label: {} for label in months}
        issued = sorted(((at, letter_id, kind, cid)
                         for cid, rows in app.store.letters.items()
                         for at, letter_id, kind in rows if at <= end))
        for at, _, kind, cid in issued:
            letters.setdefault(cid, []).append(kind)
            counts = by_month.setdefault(f"{local_date(at):%Y-%m}", {})
            counts[kind] = counts.get(kind, 0) + 1
        reports = run_reports(scratch.app(app.procedure),
                              [(MONTHLY, parse_month(label)) for label in months]
                              + [(QUARTERLY, parse_quarter(label)) for label in quarters], end)
        items = [to_json(r)["items"] for r in reports]
        monthly = dict(zip(months, items[:len(months)], strict=True))
        quarterly = dict(zip(quarters, items[len(months):], strict=True))
        counted = time.perf_counter()
    finally:
        scratch.close()
    return {"ingest": report.as_json(), "states": states, "letters": letters,
            "seconds": {"replay": replayed - started, "replay_cpu": cpu,
                        "load": loaded - replayed,
                        "read": counted - loaded},
            "letters_by_month": by_month,
            "returns": {"monthly": monthly, "quarterly": quarterly}}


# A replay worker's young-generation threshold (net allocations). Its store freezes what each
# commit (2,000 lines) leaves (consumers/replay_store.py), which also restarts the count, so
# at the usual 50,000 a young collection ran about once a batch, scanning that batch's
# survivors: 1.23 s of a 100,000-event replay's 13 s of CPU. Above a batch's allocations,
# one ran in that replay (0.13 s). A replay makes no cyclic garbage to speak of: with the
# collector off, the same peak memory (416 against 415 MiB after 100,000 events).
REPLAY_YOUNG_THRESHOLD = 500_000


def _spare_young_collections() -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(REPLAY_YOUNG_THRESHOLD, middle, old)


# -- two replays, compared ----------------------------------------------------------------
@dataclass(frozen=True)
class Simulation:
    document: dict[str, Any]  # docs/contract.md's document, exactly
    # Beside it, for the HTML report and the command's notes: per side, letters per month
    # ({"YYYY-MM": {kind: n}}) and the ingest counts ({"applied", "duplicates", "rejected"}).
    letters_by_month: dict[str, dict[str, dict[str, int]]]
    ingest: dict[str, dict[str, int]]
    seconds: dict[str, dict[str, float]]  # per side: replaying, loading, reading the figures


def simulate(events: Events, base: Procedure, variant: Procedure,
             parallel: bool = True) -> Simulation:
    """Both replays (in two processes unless `parallel` is off) and their comparison."""
    months, quarters = periods(events.first, events.until)
    # No `store`: each replay keeps only what the returns read, in an in-memory SQLite (the
    # whole record in a scratch file cost three times the CPU; tests/integration/
    # test_replay_parity.py holds the two equal, figure for figure, and equal to an ingest).
    jobs = [(str(events.path), procedure.model_dump(mode="json"), events.until.isoformat(),
             months, quarters)
            for procedure in (base, variant)]
    if parallel:
        # spawn: a fresh interpreter, sharing no connection or lock with this one.
        with ProcessPoolExecutor(max_workers=2,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            outcomes = list(pool.map(replay, *zip(*jobs, strict=True)))
    else:
        outcomes = [replay(*job) for job in jobs]
    b, v = outcomes
    return Simulation(compare(events.until, base, variant, b, v),
                      {"base": b["letters_by_month"], "variant": v["letters_by_month"]},
                      {"base": b["ingest"], "variant": v["ingest"]},
                      {"base": b["seconds"], "variant": v["seconds"]})


def compare(until: datetime, base: Procedure, variant: Procedure, b: dict[str, Any],
            v: dict[str, Any]) -> dict[str, Any]:
    def count_letters(side: dict[str, Any]) -> Counter[str]:
        return Counter(kind for kinds in side["letters"].values() for kind in kinds)

    def count_states(side: dict[str, Any]) -> Counter[str]:
        return Counter(side["states"].values())

    letters_b, letters_v = count_letters(b), count_letters(v)
    states_b, states_v = count_states(b), count_states(v)
    returns: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for shape in ("monthly", "quarterly"):
        returns[shape] = {
            label: {item: {"base": value, "variant": v["returns"][shape][label].get(item)}
                    for item, value in items.items()}
            for label, items in b["returns"][shape].items()}
    complaints = []
    for cid in sorted(set(b["states"]) | set(v["states"])):
        outcome_b = (b["states"].get(cid), b["letters"].get(cid, []))
        outcome_v = (v["states"].get(cid), v["letters"].get(cid, []))
        if outcome_b != outcome_v:
            complaints.append({"complaint_id": cid, "base_state": outcome_b[0],
                               "variant_state": outcome_v[0], "base_letters": outcome_b[1],
                               "variant_letters": outcome_v[1]})
    return {
        "until": until.isoformat(),
        "base": base.model_dump(mode="json"),
        "variant": variant.model_dump(mode="json"),
        "letters": {kind: {"base": letters_b[kind], "variant": letters_v[kind]}
                    for kind in LETTER_KINDS},
        "states": {state: {"base": states_b[state], "variant": states_v[state]}
                   for state in STATES},
        "returns": returns,
        "complaints": complaints,
    }
