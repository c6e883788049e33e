"""`complaints simulate`: the same events replayed under two procedures, compared.

Each replay runs in its own process (the two in parallel) on the replay unit of work
(workflow/memory_uow.py: rows in memory, never the `--db` record). A replay applies the events
as `complaints ingest` does (in the same order, time_ordered's, which `prepare` writes the file
in, and in the same batches through the same handlers; read as it goes) and then fires what
is due up to `until` as `complaints tick --until` does. The rows the returns read are written
as it goes into a scratch SQLite in memory (consumers/replay_store.py), where the return SQL
itself counts them, so the return rules stay defined once. The figures as of `until`: letters
by kind, complaints by state, every item of the monthly and quarterly returns of every period
from the first event's to `until`'s, and each complaint's state and letters.
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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from consumers.file_ingest import (
    BATCH_LINES,
    IngestReport,
    UnreadableFile,
    apply_batches,
    ingest_file,
    numbered_lines,
    read_lines,
    tick,
    time_ordered,
)
from consumers.replay_store import ScratchRecord
from reporting.simulation_html import changed_items  # noqa: F401 - read here too
from workflow import events as ev
from workflow.bootstrap import MemoryApp
from workflow.calendar import local_date
from workflow.letter_context import LETTER_KINDS
from workflow.lifecycle import STATES
from workflow.limits import MAX_MESSAGE_BYTES
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
    path: Path  # the lines to replay (those after `until` left out), in the order applied
    first: datetime | None  # the earliest readable occurred_at replayed
    until: datetime


_BOM = b"\xef\xbb\xbf"


def prepare(source: Path, until: datetime | None, workdir: Path, *,
            as_applied: bool = False) -> Events:
    """The lines to replay: every line of `source` (bad ones included: both replays reject
    them) except those whose `occurred_at` is after `until` (default: the latest instant),
    written in the order `complaints ingest` applies them (consumers/file_ingest.
    time_ordered), so that each replay reads the file as it goes (`ingest_ordered`) instead
    of holding all of it. `as_applied`: the lines are a record's applied events
    (export-events) and are replayed in that order, as the record applied them: an event
    applied after later-dated ones (a second ingest, a late message) is applied late
    again, after the deadlines it came after, so the base replay reproduces the record.

    Read line by line: a file in time order already (bench/generate.py's, a record's export)
    is copied as it is read, never held whole. Only a file out of order is read back and
    sorted by time_ordered itself, as a replay's ingest did before."""
    path = workdir / "events.jsonl"
    # Written beside it, then renamed: `source` may be that very file, read as it goes.
    written = workdir / "events.jsonl.part"
    first: datetime | None = None  # the earliest readable instant kept
    latest: datetime | None = None  # the latest readable instant of the file
    ordered_to: datetime | None = None  # the latest instant time_ordered reads, so far
    in_order = True
    kept = 0
    with written.open("wb") as out:
        for line in source_lines(source):
            document = _document(line)
            at = _occurred(document)
            if at is not None:
                if until is not None and at > until:
                    continue
                if first is None or at < first:
                    first = at
                if latest is None or at > latest:
                    latest = at
            # What a replay's ingest reads of this file: its first line without a byte
            # order mark (consumers/file_ingest.read_lines takes one away there too).
            raw = line.removeprefix(_BOM) if kept == 0 else line
            kept += 1
            if in_order:
                instant = _order_instant(raw, document if raw is line else None)
                if instant is not None:
                    in_order = ordered_to is None or instant >= ordered_to
                    ordered_to = instant
            out.write(raw + b"\n")
    written.replace(path)
    # With no `until` every readable line is kept: the latest of the file is the end.
    end = until if until is not None else latest
    if end is None:
        raise ValueError(f"{source} has no event with a readable occurred_at to replay")
    if not in_order and not as_applied:
        ordered = time_ordered(numbered_lines(read_lines(path)))
        path.write_bytes(b"".join(line + b"\n" for _, line in ordered))
    return Events(path, first, end)


def source_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a file, read as it goes, as consumers/file_ingest's
    `numbered_lines(read_lines(path))` gives them (without their numbers): split at b"\n",
    a trailing b"\r" taken away, the file's byte order mark too; UnreadableFile (the same
    message) when it cannot be read or a byte is not UTF-8. (A b"\n" is never inside a
    UTF-8 sequence, so line by line finds the first bad byte the whole file's decode would.)
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        offset = 0
        try:
            for piece in handle:
                try:
                    piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise UnreadableFile(f"{path} is not UTF-8 (invalid byte at offset "
                                         f"{offset + exc.start})") from None
                line = piece.removeprefix(_BOM) if offset == 0 else piece
                offset += len(piece)
                line = line.removesuffix(b"\n")
                if line.strip():
                    yield line.rstrip(b"\r")
        except OSError as exc:
            raise UnreadableFile(f"cannot read {path}: {exc.strerror}") from None


def _document(line: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _occurred(document: dict[str, Any] | None) -> datetime | None:
    """The instant `until` cuts by: an event's with a usable event_id (the clock's)."""
    if document is None:
        return None
    clocked = ev.clock_fields(document)
    return clocked[1] if clocked is not None else None


def _order_instant(raw: bytes, document: dict[str, Any] | None) -> datetime | None:
    """`workflow.events.occurred_at_of(raw)`, what time_ordered sorts by, from the object
    `_document` already read from these bytes where that is the one its `decode` reads: a
    line within the size limit opening with "{" (json.loads of bytes then decodes UTF-8 as
    `decode` does; a BOM or a NUL among the first bytes would make it guess otherwise).
    Else parsed again by occurred_at_of itself."""
    if (document is None or len(raw) > MAX_MESSAGE_BYTES or raw[:1] != b"{"
            or raw[1:2] == b"\x00"):
        return ev.occurred_at_of(raw)
    try:
        return ev._instant(document.get("occurred_at"))
    except PydanticCustomError:
        return None


def ingest_ordered(app: MemoryApp, path: Path) -> IngestReport:
    """`consumers.file_ingest.ingest_file` of a file whose lines are in the order it applies
    them (`prepare`'s), read as it goes: a batch of lines at a time, never the whole file
    (a replay holding it and its time-ordered copy was the largest part of its memory). The
    same batches, messages, line numbers and counts as ingest_file gives the same file:
    time_ordered leaves lines already in its order where they are."""
    report = IngestReport()
    numbered = enumerate(source_lines(path), start=1)
    apply_batches(app, iter(lambda: list(islice(numbered, BATCH_LINES)), []), str(path),
                  report)
    return report


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
           quarters: list[str], store: str | None = None,
           ordered: bool = False) -> dict[str, Any]:
    """Run in a worker process: replay the events under the procedure on the replay unit of
    work (workflow/memory_uow.py: rows in memory, nothing of `--db`), fire what is due up to
    `until`, and read the outcome as of `until`.

    The returns are the return SQL itself (reporting/measures.py), run on a scratch SQLite
    that the replay's rows are written into as it commits: in memory, holding only the tables
    the measures read, or, given `store` (a file), the whole record as `complaints ingest`
    would have written it there (what tests compare with an ingest). `ordered`: the file is
    `prepare`'s, its lines in the order applied, read as it goes (`ingest_ordered`); else
    any events file, read whole and put in time order as `complaints ingest` does."""
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
        report = (ingest_ordered(app, Path(events_path)) if ordered
                  else ingest_file(app, Path(events_path)))
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
             months, quarters, None, True)
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
