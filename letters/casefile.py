"""The Ombudsman case file as a PDF, or a ZIP of that PDF with every letter's PDF.

The content comes from `workflow.casefile.casefile_record`; the HTML template is
`letters/templates/casefile.html` in the letters' Jinja2 environment (autoescaped), and the
PDF is made by the letters' own machinery (`letters.render.pdf_from_html`), in clear print:
body text 12 pt, nothing under 10 pt.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from letters.render import environment, pdf_from_html, render_pdf


def casefile_html(record: Mapping[str, Any]) -> str:
    return environment().get_template("casefile.html").render(dict(record))


def casefile_pdf(record: Mapping[str, Any]) -> bytes:
    generated = datetime.fromisoformat(str(record["generated_at"]))
    return pdf_from_html(casefile_html(record), identifier=f"casefile-{record['complaint_id']}",
                         created=generated)


def casefile_zip(record: Mapping[str, Any],
                 letter_contexts: Mapping[str, Mapping[str, Any]]) -> bytes:
    """`casefile-<reference>.pdf` and `letters/<n>-<kind>-<letter id>.pdf`, in issue order."""
    generated = datetime.fromisoformat(str(record["generated_at"])).astimezone(UTC)
    stamp = (max(generated.year, 1980), generated.month, generated.day, generated.hour,
             generated.minute, generated.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o640 << 16
            archive.writestr(info, data)

        add(f"casefile-{record['reference']}.pdf", casefile_pdf(record))
        for number, letter in enumerate(record["letters"], start=1):
            context = letter_contexts.get(letter["letter_id"])
            if context is not None:
                add(f"letters/{number:02d}-{letter['kind']}-{letter['letter_id']}.pdf",
                    render_pdf(context))
    return buffer.getvalue()
