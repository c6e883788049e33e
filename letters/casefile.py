"""The Ombudsman case file as a PDF, or a ZIP of that PDF with every letter's PDF.

The content comes from `workflow.casefile.casefile_record`; the HTML template is
`letters/templates/casefile/casefile.html` (autoescaped, StrictUndefined, as letters), and the
PDF is made by the letters' own machinery (`letters.render.pdf_from_html`), in clear print:
body text and tables 12 pt; the running footer and the appendix's payloads 10 pt.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2

from letters.render import (
    CURRENT_TEMPLATE_VERSION,
    TEMPLATE_SETS,
    pdf_from_html,
    render_pdf,
)


@cache
def _environment() -> jinja2.Environment:
    """The case file's templates (`letters/templates/casefile/`), set up as the letters' are:
    autoescaped, StrictUndefined (a key the template needs and the record lacks raises)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("letters", "templates/casefile"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)


def casefile_html(record: Mapping[str, Any]) -> str:
    return _environment().get_template("casefile.html").render(dict(record))


def casefile_pdf(record: Mapping[str, Any]) -> bytes:
    generated = datetime.fromisoformat(str(record["generated_at"]))
    # Archival and tagged, as the current letters are (PDF/A-3a).
    variant = TEMPLATE_SETS[CURRENT_TEMPLATE_VERSION].pdf_variant
    return pdf_from_html(casefile_html(record), identifier=f"casefile-{record['complaint_id']}",
                         created=generated, variant=variant)


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
