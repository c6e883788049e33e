"""A replay on the in-memory unit of work (workflow/memory_uow.py) is an ingest: over a generated
file (bench/generate.py: escalations, deadlocks, the Ombudsman, reopens, snapshots), the record
it writes equals `complaints ingest` + `tick --until` into an empty SQLite database (every
complaint as `show` gives it, every letter's context, every monthly and quarterly return), and
the replay keeping only what the returns read gives the same figures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bench.generate import write
from consumers import replay_store
from consumers.file_ingest import ingest_file, tick
from consumers.simulate import periods, prepare, replay
from tests.record_snapshot import record
from workflow.bootstrap import bootstrap
from workflow.procedure import load_procedure


def test_a_replay_writes_the_record_ingest_would(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Few complaints kept as objects: most are read back from their tuples.
    monkeypatch.setattr(replay_store, "HOT_COMPLAINTS", 50)
    source = write(tmp_path / "events.jsonl", 3_000)
    procedure = load_procedure("kilowatt-connect")
    events = prepare(source, None, tmp_path)
    months, quarters = periods(events.first, events.until)
    ingested = bootstrap(f"sqlite:///{tmp_path / 'ingested.db'}", procedure)
    replayed = None
    try:
        report = ingest_file(ingested, events.path).as_json()
        tick(ingested, events.until)
        until = events.until.isoformat()
        whole = replay(str(events.path), procedure.model_dump(mode="json"), until, months,
                       quarters, str(tmp_path / "replayed.db"))
        # As `simulate` runs it: the prepared file read as it goes (ingest_ordered).
        lean = replay(str(events.path), procedure.model_dump(mode="json"), until, months,
                      quarters, ordered=True)
        assert whole["ingest"] == lean["ingest"] == report and report["applied"] > 2_000
        replayed = bootstrap(f"sqlite:///{tmp_path / 'replayed.db'}", procedure)
        as_of = datetime.fromisoformat(until)
        assert record(replayed, as_of) == record(ingested, as_of)
        for key in ("states", "letters", "letters_by_month", "returns"):
            assert lean[key] == whole[key], key
        assert sum(len(kinds) for kinds in lean["letters"].values()) > 1_000
    finally:
        ingested.engine.dispose()
        if replayed is not None:
            replayed.engine.dispose()
