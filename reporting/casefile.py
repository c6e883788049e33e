"""The case file of one complaint, as the command line and the ops API serve it, and the
record of who read a complaint's personal data on the ops API."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from letters.casefile import casefile_pdf, casefile_zip
from workflow.bootstrap import App
from workflow.casefile import casefile_record
from workflow.schema import Letter, PersonalDataRead

CaseFileFormat = Literal["pdf", "zip"]


def casefile_bytes(app: App, complaint_id: str, fmt: CaseFileFormat,
                   generated_at: datetime) -> bytes | None:
    """The case file as PDF, or ZIP with every letter's PDF; None for an unknown complaint."""
    with app.sessions() as session:
        record = casefile_record(session, complaint_id, app.procedure, generated_at)
        if record is None:
            return None
        contexts = {} if fmt == "pdf" else {
            letter.letter_id: dict(letter.context)
            for letter in session.scalars(select(Letter)
                                          .where(Letter.complaint_id == complaint_id))}
    return casefile_pdf(record) if fmt == "pdf" else casefile_zip(record, contexts)


def token_identity(token: str) -> str:
    """Who presented this token, for the read log: a fingerprint, never the token itself."""
    return "token:sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def record_read(app: App, *, reader: str, complaint_id: str, what: str,
                at: datetime) -> None:
    """One read of one complaint's personal data (committed before the data is sent)."""
    with app.sessions() as session:
        session.add(PersonalDataRead(read_at=at, reader=reader, complaint_id=complaint_id,
                                     what=what))
        session.commit()
