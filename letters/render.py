"""Render a letter from its stored context to HTML, plain text or PDF (docs/rules.md s.6).

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
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args

import jinja2

# The letter kinds are declared once, in the domain; re-exported here for the renderer's users.
from workflow.letter_kinds import KINDS, KINDS_V1, LETTER_KINDS, LetterKind  # noqa: F401

LetterFormat = Literal["html", "txt", "pdf"]

# Present in every letter's context (values may be null where the contract allows).
COMMON_KEYS_V1: Final[tuple[str, ...]] = (
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
# Version 2: the owner is always a person; the advice body is the customer's nation's.
COMMON_KEYS: Final[tuple[str, ...]] = (
    *(key for key in COMMON_KEYS_V1 if key != "citizens_advice"),
    "advice",
    "template_version",
)


@dataclass(frozen=True)
class TemplateSet:
    """One version of the templates (`letters/templates/v<N>/`) and what its contexts hold."""

    version: int
    kinds: Mapping[str, LetterKind]
    common_keys: tuple[str, ...]
    pdf_variant: str | None  # WeasyPrint's PDF variant; None: plain PDF (tagged)


# A letter's context records the version it was issued with (`template_version`); a context
# without one was issued before versions existed: version 1.
TEMPLATE_SETS: Final[Mapping[int, TemplateSet]] = MappingProxyType(
    {
        1: TemplateSet(1, KINDS_V1, COMMON_KEYS_V1, None),
        # PDF/A-3a: archival, and level A is tagged (WeasyPrint makes one variant a document).
        2: TemplateSet(2, KINDS, COMMON_KEYS, "pdf/a-3a"),
    }
)
CURRENT_TEMPLATE_VERSION: Final = max(TEMPLATE_SETS)

SUFFIX_FORMATS: Final[Mapping[str, LetterFormat]] = MappingProxyType(
    {".html": "html", ".htm": "html", ".txt": "txt", ".pdf": "pdf"}
)
FORMATS: Final[tuple[LetterFormat, ...]] = get_args(LetterFormat)

TEXT_WIDTH: Final = 72
NBSP: Final = "\u00a0"
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")  # not str.split(): that splits at NBSP too
# Fixed English month names: strftime("%B") would follow the process locale.
MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


class MissingContextKeyError(jinja2.UndefinedError):
    """The context lacks a key every letter of its kind needs."""


# --- filters ---------------------------------------------------------------------------------


def _require(mapping: Any, name: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """`mapping`, after checking it is there and has `keys` (as StrictUndefined would)."""
    mapping = _defined(mapping)
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise MissingContextKeyError(f"{name} is missing {', '.join(map(repr, missing))}")
    return cast(Mapping[str, Any], mapping)


def _defined(value: Any) -> Any:
    """`value`, unless it stands for a missing key: then the StrictUndefined error."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError, naming what is missing
    return value


def long_date(value: Any) -> str:
    """`2026-03-05` -> `5 March 2026` (a date as customers read it; never split by a line
    break: the spaces are no-break spaces, plain spaces again in the text rendering)."""
    if value is None:
        raise TypeError("long_date: no date (null) given")
    day = date.fromisoformat(str(value))  # str() raises UndefinedError on a missing key
    return nobreak(f"{day.day} {MONTHS[day.month - 1]} {day.year}")


def nobreak(value: Any) -> str:
    """Keep a short phrase (a phone number, a date) on one line: spaces -> no-break spaces."""
    return str(value).replace(" ", NBSP)


def pounds(value: Any) -> str:
    """Integer pence -> pounds: `2500` -> `£25.00`, `123456` -> `£1,234.56`."""
    value = _defined(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"pounds: expected integer pence, got {value!r}")
    sign = "-" if value < 0 else ""
    whole, pence = divmod(abs(value), 100)
    return f"{sign}£{whole:,}.{pence:02d}"


def quantity(value: Any, noun: str) -> str:
    """`3|quantity("working day")` -> `3 working days`; `1` -> `1 working day`."""
    value = _defined(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"quantity: expected an integer, got {value!r}")
    return f"{value} {noun}" if value == 1 else f"{value} {noun}s"


def ways_to_contact(supplier: Mapping[str, Any]) -> str:
    """How to reach the supplier, as a phrase: `by phone on …, by email to … or by post to …`."""
    supplier = _require(supplier, "supplier", ("name", "address", "phone", "email"))
    ways = []
    if supplier["phone"]:
        ways.append(f"by phone on {nobreak(supplier['phone'])}")
    if supplier["email"]:
        ways.append(f"by email to {supplier['email']}")
    address = ", ".join(supplier["address"])
    ways.append(f"by post to {supplier['name']}, {address}" if address else "by post")
    return ways[0] if len(ways) == 1 else f"{', '.join(ways[:-1])} or {ways[-1]}"


def postal_lines(customer: Mapping[str, Any]) -> list[str]:
    """The customer's address lines, then the postcode unless the last line already is it."""
    customer = _require(customer, "customer", ("address", "postcode"))
    lines = [str(line) for line in customer["address"]]
    postcode = customer["postcode"]
    if postcode and not (lines and _squash(lines[-1]) == _squash(postcode)):
        lines.append(str(postcode))
    return lines


def _squash(text: str) -> str:
    return "".join(str(text).split()).upper()


def paragraph(value: Any, indent: str = "", first: str | None = None) -> str:
    """Plain text: collapse the template's line breaks and fill to TEXT_WIDTH columns, as a
    block (ending in a newline, so `{% endfilter %}` then a blank line separates paragraphs).

    `first` replaces `indent` on the first line (e.g. a bullet: first="  - ", indent="    ").
    """
    return _fill(_ASCII_SPACE.sub(" ", str(value)).strip(" "), indent, first) + "\n"


def _fill(text: str, indent: str, first: str | None = None) -> str:
    return textwrap.fill(
        text,
        width=TEXT_WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def free_text(value: Any, indent: str = "    ") -> str:
    """Plain text: someone's own words (a summary, a position), indented, their line breaks
    kept and each line filled to TEXT_WIDTH columns."""
    return "\n".join(
        _fill(_ASCII_SPACE.sub(" ", line).strip(" "), indent) if line.strip() else ""
        for line in str(value).splitlines()
    )


# --- environment -----------------------------------------------------------------------------


@cache
def environment(version: int = CURRENT_TEMPLATE_VERSION) -> jinja2.Environment:
    """The Jinja2 environment of one template version: `.html` autoescaped, `.txt` not,
    StrictUndefined."""
    if version not in TEMPLATE_SETS:
        raise ValueError(f"unknown letter template version {version!r}")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("letters", f"templates/v{version}"),
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
    env.filters["nobreak"] = nobreak
    env.filters["pounds"] = pounds
    env.filters["paragraph"] = paragraph
    env.filters["free_text"] = free_text
    env.filters["quantity"] = quantity
    env.filters["ways_to_contact"] = ways_to_contact
    env.filters["postal_lines"] = postal_lines
    return env


def template_set(context: Mapping[str, Any]) -> TemplateSet:
    """The templates a stored context was issued with (version 1 when it names none)."""
    version = context.get("template_version", 1)
    if isinstance(version, bool) or version not in TEMPLATE_SETS:
        raise ValueError(
            f"unknown letter template version {version!r}; expected one of "
            f"{', '.join(map(str, TEMPLATE_SETS))}"
        )
    return TEMPLATE_SETS[version]


def letter_kind(context: Mapping[str, Any]) -> LetterKind:
    """The kind's entry, after checking the context has every key that kind needs."""
    if "kind" not in context:
        raise MissingContextKeyError("letter context has no 'kind'")
    templates = template_set(context)
    kind = context["kind"]
    if kind not in templates.kinds:
        raise ValueError(
            f"unknown letter kind {kind!r} for template version {templates.version}; "
            f"expected one of {', '.join(templates.kinds)}"
        )
    spec = templates.kinds[kind]
    missing = [key for key in (*templates.common_keys, *spec.keys) if key not in context]
    if missing:
        raise MissingContextKeyError(
            f"{kind} letter context is missing {', '.join(repr(k) for k in missing)}"
        )
    if "letter" in context:
        raise ValueError("letter context must not define 'letter' (the renderer sets it)")
    return spec


def _render(context: Mapping[str, Any], suffix: str) -> str:
    spec = letter_kind(context)
    version = template_set(context).version
    template = environment(version).get_template(f"{context['kind']}.{suffix}")
    return template.render({**context, "letter": spec})


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def render_html(context: Mapping[str, Any]) -> str:
    """The letter as a standalone HTML document (styles inline, no external resources)."""
    return _render(context, "html")


def render_text(context: Mapping[str, Any]) -> str:
    """The letter as plain text, lines of at most 72 columns where words allow."""
    text = _render(context, "txt").replace(NBSP, " ")
    text = _TRAILING_SPACE.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text).strip("\n") + "\n"


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A letter has no external resources: never fetch (or leak) anything."""
    raise ValueError(f"letters do not load external resources ({url})")


@contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    """Pin the "now" of font subsetting to `epoch` for the duration.

    Without HarfBuzz's subsetter (Debian's libharfbuzz-subset0, absent on a bare machine)
    WeasyPrint subsets embedded fonts with fontTools, which stamps each font's `head.modified`
    with the current time unless SOURCE_DATE_EPOCH is set (the reproducible-builds convention).
    The environment is process-wide, so PDF writing holds a lock while it is pinned.
    """
    with _PDF_WRITE_LOCK:
        previous = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
        try:
            yield
        finally:
            if previous is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous


_PDF_WRITE_LOCK = threading.Lock()


def render_pdf(context: Mapping[str, Any]) -> bytes:
    """The letter as an A4 PDF, byte-for-byte the same for the same context.

    Nothing in it depends on when or where it is rendered (given the same WeasyPrint, fonts
    and libraries): the PDF's creation and modification dates are the letter's `issued_at`
    (HTML `dcterms.created`/`dcterms.modified`), its file identifier is the `letter_id`, and
    the embedded fonts' timestamps are pinned to `issued_at` too.
    """
    html = render_html(context)
    variant = template_set(context).pdf_variant
    issued_at = datetime.fromisoformat(str(context["issued_at"]))
    if issued_at.utcoffset() is None:
        raise ValueError(f"issued_at has no UTC offset: {context['issued_at']!r}")
    return pdf_from_html(html, identifier=str(context["letter_id"]), created=issued_at,
                         variant=variant)


def pdf_from_html(html: str, *, identifier: str, created: datetime,
                  variant: str | None = None) -> bytes:
    """A standalone HTML document of ours (a letter, a case file) as a PDF, the same way
    every time: no external resources, tagged for screen readers, the file identifier
    `identifier`, the embedded fonts' timestamps pinned to `created`; `variant` is
    WeasyPrint's `pdf_variant` (e.g. "pdf/a-3a"), none for a plain tagged PDF."""
    import weasyprint  # heavy (pango, fonts): only when a PDF is wanted

    if created.utcoffset() is None:
        raise ValueError(f"created has no UTC offset: {created!r}")
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=_refuse_fetch).render()
    with _source_date_epoch(int(created.timestamp())):
        options: dict[str, Any] = {"pdf_variant": variant} if variant else {}
        pdf: bytes = document.write_pdf(
            pdf_identifier=identifier.encode("utf-8"),
            pdf_tags=True,  # structure for screen readers
            **options,
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
