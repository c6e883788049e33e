"""`complaints simulate`'s events file (consumers/simulate.prepare), read line by line: the lines
a replay's ingest would apply, in the order it applies them (consumers/file_ingest's
read_lines, numbered_lines, time_ordered over the lines kept), so that the replay can read it
as it goes (`ingest_ordered`)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path

import pytest

from consumers.file_ingest import UnreadableFile, numbered_lines, read_lines, time_ordered
from consumers.simulate import _occurred, prepare, source_lines

BOM = b"\xef\xbb\xbf"


def _event(n: int, at: str) -> bytes:
    return json.dumps({"event_id": f"e-{n}", "type": "complaint.assigned", "occurred_at": at,
                       "complaint_id": f"C-{n}", "handler": {"id": "h", "name": "H"}}).encode()


def _messy(ordered: bool) -> bytes:
    """A BOM, blank lines, CRLF, bad lines, offsets other than UTC, equal instants, one line
    with no event_id (ordered by its occurred_at, never cut by `until`)."""
    lines = [_event(n, f"2026-01-{1 + n % 20:02d}T{n % 24:02d}:00:00+00:00") for n in range(60)]
    lines += [_event(100, "2026-01-05T12:00:00+05:00"), _event(101, "2026-01-05T07:00:00Z"),
              _event(102, "2026-01-05T07:00:00+00:00")]
    lines.append(json.dumps({"type": "x", "occurred_at": "2026-01-30T00:00:00Z"}).encode())
    if ordered:
        lines.sort(key=lambda line: datetime.fromisoformat(json.loads(line)["occurred_at"]))
    else:
        random.Random(4).shuffle(lines)
    for at, extra in ((0, b"not json"), (3, b""), (9, b"   "), (20, b"[1]"), (30, lines[5]),
                      (40, BOM + lines[7])):
        lines.insert(at, extra)
    return BOM + b"\n".join(line + (b"\r" if i % 5 == 0 else b"") for i, line in
                            enumerate(lines)) + b"\n"


def _expected(source: Path, until: datetime | None) -> bytes:
    """What the replay's ingest applied before: the lines kept (in file order), then put in
    time order by time_ordered."""
    kept = [line for _, line in numbered_lines(read_lines(source))
            if until is None or (at := _occurred(_loads(line))) is None or at <= until]
    staged = source.parent / "staged.jsonl"
    staged.write_bytes(b"".join(line + b"\n" for line in kept))
    return b"".join(line + b"\n" for _, line in time_ordered(numbered_lines(read_lines(staged))))


def _loads(line: bytes) -> dict | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("until", [None, "2026-01-10T00:00:00+00:00"])
def test_prepared_lines_are_those_ingest_applies_in_its_order(
        tmp_path: Path, ordered: bool, until: str | None) -> None:
    source = tmp_path / "source.jsonl"
    source.write_bytes(_messy(ordered))
    end = datetime.fromisoformat(until) if until else None
    work = tmp_path / "work"
    work.mkdir()
    events = prepare(source, end, work)
    assert events.path.read_bytes() == _expected(source, end)
    # And a file in that order is left in it: what ingest_ordered reads is what ingest_file
    # would apply.
    assert [line for _, line in time_ordered(numbered_lines(read_lines(events.path)))] == \
        list(source_lines(events.path))
    # The end: `until`, else the latest instant of an event with an event_id (the line with
    # none, on 30 January, orders but does not count).
    instants = [at for _, line in numbered_lines(read_lines(source))
                if (at := _occurred(_loads(line))) is not None]
    assert events.until == (end or max(instants))
    assert events.first == min(at for at in instants if end is None or at <= end)


def test_prepare_may_write_over_its_source(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(_messy(False))
    expected = _expected(source, None)
    assert prepare(source, None, tmp_path).path.read_bytes() == expected


def test_source_lines_are_numbered_lines_of_read_lines(tmp_path: Path) -> None:
    source = tmp_path / "source.jsonl"
    source.write_bytes(_messy(False))
    assert list(source_lines(source)) == [line for _, line in numbered_lines(read_lines(source))]


def test_unreadable_files_are_refused_with_the_same_message(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(BOM + _event(1, "2026-01-01T00:00:00Z") + b"\n" + b'{"a": "\xff"}\n')
    with pytest.raises(UnreadableFile) as whole:
        read_lines(source)
    with pytest.raises(UnreadableFile) as streamed:
        list(source_lines(source))
    assert str(streamed.value) == str(whole.value)
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(UnreadableFile) as whole:
        read_lines(missing)
    with pytest.raises(UnreadableFile) as streamed:
        list(source_lines(missing))
    assert str(streamed.value) == str(whole.value)


def test_a_file_with_no_readable_instant_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "none.jsonl"
    source.write_bytes(b"not json\n[1]\n")
    with pytest.raises(ValueError, match="no event with a readable occurred_at"):
        prepare(source, None, tmp_path)
