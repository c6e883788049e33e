"""`complaints export-events`: the events the record applied, one per line, in applied order.

Every event applied since migration 0008 has its raw bytes in `raw_events`, in one global
order (`seq`). A record older than that holds only normalised copies: complaint events in the
history (the validated event as JSON), enquiries and off-supply reports in `contacts`, account
snapshots in `accounts_snapshots`. Those are exported from what they hold, before every raw
event (they were applied first), in event-time order, and the export says what is missing.

The output is a file `complaints ingest` and `complaints simulate` read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, and_, inspect, select
from sqlalchemy.orm import Session

from workflow.queries import iso
from workflow.schema import (
    AccountsSnapshotRow,
    Contact,
    HistoryEntry,
    ProcessedEvent,
    RawEvent,
)


@dataclass
class ExportNotes:
    """What a person should know about an export (printed on stderr)."""

    raw: int = 0  # exported byte for byte
    normalised: int = 0  # exported from a normalised copy (applied before raw events existed)
    missing: int = 0  # applied, but nothing of them is held that could be exported
    from_kafka: int = 0  # applied from a topic, with deadlines fired by wall clock
    re_encoded: int = 0  # raw bytes spanning several lines, written as one compact line
    # applied after an event with a later occurred_at (a later ingest, or late on a topic)
    after_later: int = 0
    lines: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        said = []
        if self.normalised:
            said.append(
                f"{self.normalised} event(s) were applied before raw events were kept "
                "(migration 0008): exported from the record's normalised copies (complaint "
                "history, contacts, accounts snapshots), not their original bytes; fields the "
                "record did not keep are absent, and they come first, in event-time order, "
                "not their applied order")
        if self.missing:
            said.append(
                f"{self.missing} applied event(s) could not be exported: the record holds "
                "their ids but no copy of them (e.g. a logged contact's event is in the "
                "history of its complaint only when it was applied to one)")
        if self.from_kafka:
            said.append(
                f"{self.from_kafka} event(s) came from Kafka, where deadlines fired by the "
                "wall clock; a replay of this export (ingest, simulate) runs by event time, so "
                "its deadlines fire at their due instants, which may differ from the record")
        if self.after_later:
            said.append(
                f"{self.after_later} event(s) were applied after events dated later than "
                "them (a later ingest, or late on a topic): `complaints ingest` of this file "
                "applies its lines in event-time order, so the record it builds may differ "
                "from this one; `complaints simulate --db` replays them as they were applied")
        if self.re_encoded:
            said.append(
                f"{self.re_encoded} event(s) whose raw bytes spanned several lines were written "
                "as one line of compact JSON (same content, not the same bytes)")
        return said


def export_events(engine: Engine, start: datetime | None = None,
                  end: datetime | None = None) -> tuple[Iterator[bytes], ExportNotes]:
    """The lines to write (each without its newline) and the notes, filled in once the lines
    have been consumed. `start`/`end` bound `occurred_at` (both inclusive)."""
    notes = ExportNotes()
    return _lines(engine, start, end, notes), notes


def _lines(engine: Engine, start: datetime | None, end: datetime | None,
           notes: ExportNotes) -> Iterator[bytes]:
    has_raw = inspect(engine).has_table(RawEvent.__tablename__)
    with Session(engine) as session:
        raw_ids: set[str] = set()
        if has_raw:
            raw_ids = set(session.scalars(select(RawEvent.event_id)))
        legacy = _legacy(session, raw_ids)
        applied = set(session.scalars(select(ProcessedEvent.event_id)))
        notes.missing = len(applied - raw_ids - {event_id for _, event_id, _ in legacy})
        for occurred, _, line in legacy:
            if _within(occurred, start, end):
                notes.normalised += 1
                yield line
        if not has_raw:
            return
        query = select(RawEvent.raw, RawEvent.position, RawEvent.occurred_at)
        conditions = []
        if start is not None:
            conditions.append(RawEvent.occurred_at >= start)
        if end is not None:
            conditions.append(RawEvent.occurred_at <= end)
        if conditions:
            query = query.where(and_(*conditions))
        latest: datetime | None = None  # the latest occurred_at exported so far
        for raw, position, occurred in session.execute(
                query.order_by(RawEvent.seq).execution_options(yield_per=5_000)):
            notes.raw += 1
            if occurred is not None:
                if latest is not None and occurred < latest:
                    notes.after_later += 1
                latest = occurred if latest is None else max(latest, occurred)
            if not position.startswith("line "):
                notes.from_kafka += 1
            if b"\n" in raw or b"\r" in raw:
                # One event per line: a multi-line message (pretty-printed JSON from a
                # producer) is written compact; its content is unchanged.
                notes.re_encoded += 1
                raw = json.dumps(json.loads(raw), ensure_ascii=False,
                                 separators=(",", ":")).encode("utf-8")
            yield raw


def _within(instant: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or instant >= start) and (end is None or instant <= end)


def _legacy(session: Session, raw_ids: set[str]) -> list[tuple[datetime, str, bytes]]:
    """(occurred_at, event_id, line) of every applied event without a raw row, rebuilt from
    the record's normalised copies, in event-time order (ties: the copy's own applied order)."""
    found: dict[str, tuple[datetime, int, int, bytes]] = {}
    for ident, event_id, detail, at in session.execute(
            select(HistoryEntry.id, HistoryEntry.event_id, HistoryEntry.detail, HistoryEntry.at)
            .where(HistoryEntry.type.not_like("deadline.%"))
            .order_by(HistoryEntry.id)):
        if event_id in raw_ids or event_id in found or not isinstance(detail, dict):
            continue
        found[event_id] = (at, 0, ident, _line(detail))
    for contact in session.scalars(
            select(Contact).where(Contact.complaint_id.is_(None)).order_by(Contact.id)):
        if contact.event_id in raw_ids or contact.event_id in found:
            continue
        found[contact.event_id] = (contact.occurred_at, 1, contact.id, _line({
            "event_id": contact.event_id, "type": "contact.received",
            "occurred_at": iso(contact.occurred_at), "contact_id": contact.contact_id,
            "channel": contact.channel, "kind": contact.kind}))
    for snapshot in session.scalars(select(AccountsSnapshotRow).order_by(AccountsSnapshotRow.id)):
        if snapshot.event_id in raw_ids or snapshot.event_id in found:
            continue
        found[snapshot.event_id] = (snapshot.occurred_at, 2, snapshot.id, _line({
            "event_id": snapshot.event_id, "type": "accounts.snapshot",
            "occurred_at": iso(snapshot.occurred_at), "as_of": snapshot.as_of.isoformat(),
            "electricity_accounts": snapshot.electricity_accounts,
            "gas_accounts": snapshot.gas_accounts}))
    ordered = sorted(found.items(), key=lambda item: item[1][:3])
    return [(occurred, event_id, line) for event_id, (occurred, _, _, line) in ordered]


def _line(document: dict[str, object]) -> bytes:
    # Nulls the validated copy added for absent optional fields are left out: the event as
    # sent had no such field (and a null is not always accepted where absence is).
    return json.dumps({k: v for k, v in document.items() if v is not None},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
