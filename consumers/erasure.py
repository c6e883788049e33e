"""`complaints erase` and `complaints retention` beyond the database transaction: the letter
files, and the database files that still hold what an UPDATE replaced.

The record's side is workflow/erasure.py. Here, in order: the erasure's rows are written (not
yet committed); every rendered letter file of those complaints in COMPLAINTS_LETTERS_DIR is
overwritten with zeros and replaced by a rendering of its erased context (so the letter store
stays complete, without the personal data); the transaction commits; then the database files
are compacted so that the replaced values cannot be read back from them:

- SQLite: the erasure's connection runs with `secure_delete` (freed cells and pages are
  zeroed), then the WAL is checkpointed and truncated, then `VACUUM` rewrites the file;
- PostgreSQL: `VACUUM FULL` of every table the erasure touched rewrites it, its TOAST table
  and its indexes into new files and removes the old ones (an UPDATE leaves the old row
  version in the page until VACUUM, and plain VACUUM only marks it reusable), then a
  `CHECKPOINT`. What PostgreSQL's WAL, base backups and Kafka's topics still hold is the
  deployment's to expire (README, "Erasure").

Files are rewritten before the commit: if the commit fails the files are already erased and
the erasure can simply be run again (it is idempotent); the other order could leave a letter
file with the personal data behind an erasure recorded as done.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from workflow import erasure, queries
from workflow.bootstrap import App
from workflow.schema import Complaint

log = logging.getLogger(__name__)
LETTER_FORMATS = ("pdf", "html", "txt")


def operator_name() -> str:
    """Who runs the command, when `--by` does not say: COMPLAINTS_OPERATOR, else the login."""
    explicit = os.environ.get("COMPLAINTS_OPERATOR", "").strip()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): say so
        return "unknown"


def letters_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get("COMPLAINTS_LETTERS_DIR") or "letters-out")


@dataclass
class EraseOutcome:
    erased: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # kept under hold: id -> why
    overridden: dict[str, str] = field(default_factory=dict)  # erased with --force: id -> hold
    erasure_id: int | None = None
    letter_files: int = 0


def erase_account(app: App, account_id: str, *, now: datetime, by: str, force: bool = False,
                  reason: str | None = None, letters: Path | None = None,
                  print_queue: Path | None = None, compact: bool = True) -> EraseOutcome:
    """Erase every complaint of the account, or refuse (nothing changed) when any is under
    legal hold and `force` is not given."""
    with app.sessions() as session:
        _secure_delete(session)
        complaints = erasure.complaints_of_account(session, account_id)
        # Holds are judged at the record's now (offline: event time, docs/rules.md s.5), as
        # the record's own deadlines were: a referral window the record has seen lapse
        # holds nothing, even while the wall clock is earlier. `now` stays the erasure's
        # own time.
        held = erasure.holds(session, complaints, queries.default_as_of(session, now),
                             app.procedure)
        if held and not force:
            # Those under hold are kept, the rest erased (the customer's right reaches what
            # no hold keeps); the account id stays on the held ones, so the same erasure
            # run again once the holds end finishes the job.
            free = [c for c in complaints if c.complaint_id not in held]
            outcome = _erase(app, session, free, now=now, by=by, trigger="erase", held={},
                             reason=None, letters=letters, extra_accounts=[],
                             print_queue=print_queue)
            outcome.held = held
        else:
            outcome = _erase(app, session, complaints, now=now, by=by, trigger="erase",
                             held=held, reason=reason, letters=letters,
                             extra_accounts=[account_id], print_queue=print_queue)
            outcome.overridden = held
    if compact and outcome.erased:
        compact_database(app.engine)
    return outcome


def erase_complaints(app: App, complaint_ids: list[str], *, now: datetime, by: str,
                     trigger: str, letters: Path | None = None,
                     print_queue: Path | None = None, compact: bool = True) -> EraseOutcome:
    """Erase these complaints (retention: those due and not held), one erasure per account."""
    total = EraseOutcome()
    with app.sessions() as session:
        _secure_delete(session)
        complaints = [c for cid in complaint_ids
                      if (c := session.get(Complaint, cid)) is not None]
        by_account: dict[str, list[Complaint]] = {}
        for complaint in complaints:
            account = str((complaint.customer or {}).get("account_id"))
            by_account.setdefault(account, []).append(complaint)
        for group in by_account.values():
            outcome = _erase(app, session, group, now=now, by=by, trigger=trigger, held={},
                             reason=None, letters=letters, extra_accounts=[],
                             print_queue=print_queue)
            total.erased += outcome.erased
            total.letter_files += outcome.letter_files
    if compact and total.erased:
        compact_database(app.engine)
    return total


def _erase(app: App, session: Session, complaints: list[Complaint], *, now: datetime, by: str,
           trigger: str, held: Mapping[str, str], reason: str | None, letters: Path | None,
           extra_accounts: list[str], print_queue: Path | None = None) -> EraseOutcome:
    if not complaints:
        return EraseOutcome()
    work = erasure.erase(session, complaints, now=now, by=by, trigger=trigger, held=held,
                         reason=reason, extra_account_ids=extra_accounts)
    record = work.record
    files = rewrite_letter_files(letters, work.contexts) if letters is not None else 0
    if print_queue is not None:
        files += rewrite_print_queue(print_queue, work.contexts, work.scrubber)
    session.commit()
    log.info("erasure %s: %d complaint(s), %d letter file(s)", record.id,
             len(record.complaint_ids), files)
    # The record's list, not the complaints' attributes: erase() expired them (a reload each).
    return EraseOutcome(erased=list(record.complaint_ids), erasure_id=record.id,
                        letter_files=files)


def rewrite_letter_files(directory: Path, contexts: Mapping[str, Mapping[str, Any]]) -> int:
    """Each letter file of these letters: zeros over the old bytes, then the erased rendering
    in its place (atomically). Letters never rendered to files are left to the letter service,
    which renders the erased context when it comes to them."""
    from consumers.letter_service import write_atomically
    from letters.render import render

    written = 0
    for letter_id, context in contexts.items():
        for fmt in LETTER_FORMATS:
            path = directory / f"{letter_id}.{fmt}"
            if not path.exists():
                continue
            _overwrite_with_zeros(path)
            write_atomically(path, render(context, fmt))  # type: ignore[arg-type]
            written += 1
    return written


def rewrite_print_queue(directory: Path, contexts: Mapping[str, Mapping[str, Any]],
                        scrubber: erasure.Scrubber) -> int:
    """The print queue's runs (consumers/delivery.py): each erased letter's PDF as for the
    letter store, and every manifest quoting an erased value rewritten without it. A run
    already collected by the printer is the printer's to destroy (README, "Erasure")."""
    from consumers.letter_service import write_atomically
    from letters.render import render

    if not directory.is_dir():
        return 0
    written = 0
    for run in sorted(p for p in directory.iterdir() if p.is_dir()):
        for letter_id, context in contexts.items():
            path = run / f"{letter_id}.pdf"
            if path.exists():
                _overwrite_with_zeros(path)
                write_atomically(path, render(context, "pdf"))
                written += 1
        for manifest in (run / "manifest.json", run / "manifest.csv"):
            if not manifest.exists():
                continue
            before = manifest.read_text("utf-8")
            after = scrubber.text(before)
            if after != before:
                _overwrite_with_zeros(manifest)
                write_atomically(manifest, after.encode("utf-8"))
                written += 1
    return written


def print_queue_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get("COMPLAINTS_PRINT_DIR") or "print-queue")


def _overwrite_with_zeros(path: Path) -> None:
    """Best effort on the file's own blocks (a copy-on-write or journalling file system may
    keep old blocks elsewhere: README, "Erasure")."""
    with contextlib.suppress(OSError), path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())


def _secure_delete(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")


def compact_database(engine: Engine, tables: list[str] | None = None) -> None:
    """Rewrite the database files so that replaced values are gone from them (module doc)."""
    tables = tables or erasure.touched_tables()
    if engine.dialect.name == "sqlite":
        # The DB-API connection directly: VACUUM cannot run inside the transaction that
        # SQLAlchemy's connection would begin (workflow/database.py begins one explicitly).
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement in ("PRAGMA secure_delete = ON", "PRAGMA wal_checkpoint(TRUNCATE)",
                              "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
                cursor.execute(statement)
                cursor.fetchall()
            cursor.close()
        finally:
            raw.close()
        return
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            existing = set(connection.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )).scalars())
            for table in tables:
                if table in existing:
                    quoted = engine.dialect.identifier_preparer.quote(table)
                    connection.exec_driver_sql(f"VACUUM (FULL, ANALYZE) {quoted}")
            try:
                connection.exec_driver_sql("CHECKPOINT")  # superuser or pg_checkpoint only
            except Exception as exc:  # noqa: BLE001 - the next checkpoint comes anyway
                log.info("CHECKPOINT after erasure not allowed (%s)", type(exc).__name__)


def run_retention(app: App, as_of: datetime, *, apply: bool, by: str,
                  letters: Path | None = None, print_queue: Path | None = None,
                  now: datetime | None = None) -> tuple[list[erasure.RetentionDue], int]:
    """What retention makes due at `as_of` and, with `apply`, how many were erased."""
    with app.sessions() as session:
        due = erasure.retention_due(session, as_of, app.procedure, app.procedure.retention_years)
    if not apply or not due:
        return due, 0
    outcome = erase_complaints(app, [d.complaint_id for d in due], now=now or as_of, by=by,
                               trigger="retention", letters=letters,
                               print_queue=print_queue)
    return due, len(outcome.erased)
