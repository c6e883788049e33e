"""Customer letters: Jinja2 templates rendered to HTML, plain text and PDF (RULES.md s.6).

Every letter is rendered only from its stored context (a JSON-able dict), so the same
stored context always gives the same bytes.
"""

from letters.render import (
    LETTER_KINDS,
    LetterFormat,
    MissingContextKeyError,
    format_for_suffix,
    render,
    render_html,
    render_pdf,
    render_text,
)

__all__ = [
    "LETTER_KINDS",
    "LetterFormat",
    "MissingContextKeyError",
    "format_for_suffix",
    "render",
    "render_html",
    "render_pdf",
    "render_text",
]
