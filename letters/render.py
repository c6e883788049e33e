"""Render a letter from its stored context to HTML, plain text or PDF (RULES.md s.6).

A letter is rendered only from the JSON-able context dict stored when it was issued (see
`workflow.letter_context.build_context`): nothing here reads the clock, the locale, the
database or the network, so the same context gives the same bytes in every format.

Each kind has two templates in `letters/templates/`: `<kind>.html` (extends `base.html`,
autoescaped) and `<kind>.txt` (extends `base.txt`, not escaped: it is plain text). Both are
rendered with `StrictUndefined`, so a key the template needs but the context lacks raises
`jinja2.UndefinedError` rather than printing an empty string.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

import jinja2

LetterFormat = Literal["html", "txt", "pdf"]


@dataclass(frozen=True)
class LetterKind:
    """What the base layout needs to know about a kind; the prose is in its templates."""

    title: str  # the heading that labels the letter
    subtitle: str | None = None
    signposting: bool = False  # labelled prominently, with the Ombudsman signposting block
    keys: tuple[str, ...] = ()  # kind-specific context keys, on top of COMMON_KEYS


# The one table of truth: every kind of letter, in lifecycle order.
KINDS: Final[Mapping[str, LetterKind]] = MappingProxyType(
    {
        "acknowledgement": LetterKind(
            "We have received your complaint", keys=("expected_by", "eight_week_date")
        ),
        "progress_update": LetterKind("An update on your complaint", keys=("expected_by",)),
        "senior_manager_update": LetterKind(
            "Senior manager review: an update", keys=("senior_manager", "escalated_on")
        ),
        "deadlock": LetterKind(
            "Deadlock letter",
            "Our final response to your complaint",
            signposting=True,
            keys=("position", "offer_open", "referral_deadline"),
        ),
        "eight_week": LetterKind(
            "8-week letter",
            "Your complaint has not been resolved within eight weeks",
            signposting=True,
            keys=("referral_deadline",),
        ),
        "resolution": LetterKind("Your complaint has been resolved", keys=("resolution",)),
        "ombudsman_outcome": LetterKind(
            "The Ombudsman's decision has been carried out",
            keys=("ombudsman_ref", "remedy_summary"),
        ),
    }
)
LETTER_KINDS: Final[tuple[str, ...]] = tuple(KINDS)

# Present in every letter's context (values may be null where the contract allows).
COMMON_KEYS: Final[tuple[str, ...]] = (
    "kind",
    "letter_id",
    "issued_at",
    "date",
    "reference",
    "complaint_id",
    "supplier",
    "customer",
    "owner",
    "procedure",
    "ombudsman",
    "citizens_advice",
    "category",
    "category_description",
    "summary",
    "received_on",
    "original_received_on",
    "cycle",
)

SUFFIX_FORMATS: Final[Mapping[str, LetterFormat]] = MappingProxyType(
    {".html": "html", ".htm": "html", ".txt": "txt", ".pdf": "pdf"}
)
FORMATS: Final[tuple[LetterFormat, ...]] = get_args(LetterFormat)

TEXT_WIDTH: Final = 72
# Fixed English month names: strftime("%B") would follow the process locale.
MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


class MissingContextKeyError(jinja2.UndefinedError):
    """The context lacks a key every letter of its kind needs."""


# --- filters ---------------------------------------------------------------------------------


def long_date(value: Any) -> str:
    """`2026-03-05` -> `5 March 2026` (a date as customers read it)."""
    if value is None:
        raise TypeError("long_date: no date (null) given")
    day = date.fromisoformat(str(value))  # str() raises UndefinedError on a missing key
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def pounds(value: Any) -> str:
    """Integer pence -> pounds: `2500` -> `£25.00`, `123456` -> `£1,234.56`."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # raises UndefinedError
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"pounds: expected integer pence, got {value!r}")
    sign = "-" if value < 0 else ""
    whole, pence = divmod(abs(value), 100)
    return f"{sign}£{whole:,}.{pence:02d}"


def paragraph(value: Any, indent: str = "", first: str | None = None) -> str:
    """Plain text: collapse the template's line breaks and fill to TEXT_WIDTH columns.

    `first` replaces `indent` on the first line (e.g. a bullet: first="  - ", indent="    ").
    """
    words = " ".join(str(value).split())
    return textwrap.fill(
        words,
        width=TEXT_WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


# --- environment -----------------------------------------------------------------------------


@cache
def environment() -> jinja2.Environment:
    """The letters' Jinja2 environment: `.html` autoescaped, `.txt` not, StrictUndefined."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("letters", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,  # anything new is escaped until it says otherwise
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["long_date"] = long_date
    env.filters["pounds"] = pounds
    env.filters["paragraph"] = paragraph
    return env


def letter_kind(context: Mapping[str, Any]) -> LetterKind:
    """The kind's entry, after checking the context has every key that kind needs."""
    if "kind" not in context:
        raise MissingContextKeyError("letter context has no 'kind'")
    kind = context["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown letter kind {kind!r}; expected one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    missing = [key for key in (*COMMON_KEYS, *spec.keys) if key not in context]
    if missing:
        raise MissingContextKeyError(
            f"{kind} letter context is missing {', '.join(repr(k) for k in missing)}"
        )
    if "letter" in context:
        raise ValueError("letter context must not define 'letter' (the renderer sets it)")
    return spec


def _render(context: Mapping[str, Any], suffix: str) -> str:
    spec = letter_kind(context)
    template = environment().get_template(f"{context['kind']}.{suffix}")
    return template.render({**context, "letter": spec})


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def render_html(context: Mapping[str, Any]) -> str:
    """The letter as a standalone HTML document (styles inline, no external resources)."""
    return _render(context, "html")


def render_text(context: Mapping[str, Any]) -> str:
    """The letter as plain text, lines of at most 72 columns where words allow."""
    text = _render(context, "txt")
    text = _TRAILING_SPACE.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text).strip("\n") + "\n"


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A letter has no external resources: never fetch (or leak) anything."""
    raise ValueError(f"letters do not load external resources ({url})")


def render_pdf(context: Mapping[str, Any]) -> bytes:
    """The letter as an A4 PDF, byte-for-byte the same for the same context.

    WeasyPrint writes no timestamps of its own: the creation and modification dates come
    from the letter's `issued_at` (HTML `dcterms.created`/`dcterms.modified`), and the PDF
    file identifier from its `letter_id`.
    """
    import weasyprint  # heavy (pango, fonts): only when a PDF is wanted

    html = render_html(context)
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=_refuse_fetch).render()
    pdf: bytes = document.write_pdf(
        pdf_identifier=str(context["letter_id"]).encode("utf-8"),
        pdf_tags=True,  # structure for screen readers
    )
    return pdf


def render(context: Mapping[str, Any], fmt: LetterFormat) -> bytes:
    """The letter in `fmt`; text formats as UTF-8."""
    if fmt == "html":
        return render_html(context).encode("utf-8")
    if fmt == "txt":
        return render_text(context).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(context)
    raise ValueError(f"unknown letter format {fmt!r}; expected one of {', '.join(FORMATS)}")


def format_for_suffix(path: str | os.PathLike[str]) -> LetterFormat:
    """The format a file name asks for: `.html`/`.htm`, `.txt` or `.pdf` (any case)."""
    suffix = PurePath(path).suffix.lower()
    try:
        return SUFFIX_FORMATS[suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell a letter format from {os.fspath(path)!r}: "
            "the file name must end in .html, .txt or .pdf"
        ) from None
