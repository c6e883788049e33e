"""(v2) A letter as an email (docs/rules.md s.6 "Delivery"): text and HTML bodies, the PDF attached.

Built with the standard library's `email` package (RFC 5322/2045 handled by Python itself):
`multipart/mixed` holding a `multipart/alternative` (the letter as plain text, then as HTML)
and the PDF as an attachment. The `Message-ID` is derived from the letter id alone, so an
email sent again after a crash (between the server's acceptance and our record of it) is the
same message to every mail system that deduplicates by it. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Final

from letters.render import KINDS

DEFAULT_DOMAIN: Final = "complaints.invalid"  # RFC 2606: never a real host


def message_id(letter_id: str, domain: str) -> str:
    """`<letter-id@domain>`: the same for every send of the letter."""
    return f"<{letter_id.lower()}@{domain}>"


def sender_domain(sender: str | None) -> str:
    if sender and "@" in sender:
        domain = sender.rsplit("@", 1)[1].strip().strip(">").lower()
        if re.fullmatch(r"[a-z0-9.-]+", domain):
            return domain
    return DEFAULT_DOMAIN


def subject(context: Mapping[str, Any]) -> str:
    kind = KINDS.get(str(context.get("kind")))
    title = kind.title if kind is not None else "A letter about your complaint"
    return f"{title} (reference {context['reference']})"


def attachment_name(context: Mapping[str, Any]) -> str:
    return f"{context['reference']}-{context['kind']}.pdf".replace("/", "-")


def compose(context: Mapping[str, Any], *, sender: str, recipient: str, text: bytes,
            html: bytes, pdf: bytes, date: datetime) -> EmailMessage:
    """The email for one letter. `sender` is the From address (the supplier's)."""
    supplier = context.get("supplier") or {}
    message = EmailMessage()
    message["From"] = Address(display_name=str(supplier.get("name") or ""), addr_spec=sender)
    message["To"] = Address(display_name=str(context["customer"]["name"]),
                            addr_spec=recipient)
    message["Subject"] = subject(context)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id(str(context["letter_id"]), sender_domain(sender))
    # Machine-readable: a reply or a bounce can be matched to the letter and the complaint.
    message["X-Complaint-Reference"] = str(context["reference"])
    message["X-Letter-Id"] = str(context["letter_id"])
    message.set_content(text.decode("utf-8"), subtype="plain", cte="quoted-printable")
    message.add_alternative(html.decode("utf-8"), subtype="html", cte="quoted-printable")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=attachment_name(context))
    return message
