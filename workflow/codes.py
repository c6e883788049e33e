"""Ofgem complaint types and contact channels: the one table of truth for the codes.

Category descriptions are Ofgem's (Guidance on submitting domestic customer complaints data,
Nov 2025, table 1). Channel -> return item mapping is our reading (docs/rules.md s.7).
"""

from __future__ import annotations

from typing import Final

CATEGORIES: Final[dict[str, str]] = {
    "B5": "Debt and debt related disconnections - non prepayment (PPM) related",
    "B6": "Debt and debt related disconnections - prepayment (PPM) related",
    "B7": "Sales & Marketing - sales directly between supplier and customer",
    "B8": "Sales & Marketing - sales via a third party",
    "B9": "Customer service",
    "B10": "Feed-In Tariffs",
    "B11": "Payment issues",
    "B12": "Pricing",
    "B13": "Billing and meter reading issues unrelated with meter type",
    "B14": "Billing and meter reading issues related with smart meters",
    "B15": "Switching issues unrelated with meter type",
    "B16": "Switching issues related with smart/advanced credit meters",
    "B17": "Switching issues related with smart/advanced prepayment meters",
    "B18": "Meter installation/exchange or meter not working - classic credit meter",
    "B19": "Meter installation/exchange or meter not working - smart or advanced credit meter",
    "B20": "Meter installation/exchange or meter not working - classic prepayment meter",
    "B21": "Meter installation/exchange or meter not working - smart or advanced prepayment meter",
    "B22": "Other",
}
OTHER_CATEGORY: Final = "B22"

# channel -> (quarterly contacts item, quarterly complaints item)
CHANNELS: Final[dict[str, tuple[str, str]]] = {
    "telephone": ("A2", "B7"),
    "in_person": ("A2", "B7"),
    "letter": ("A3", "B8"),
    "email": ("A4", "B9"),
    "webform": ("A4", "B9"),
    "webchat": ("A5", "B10"),
    "social_media": ("A5", "B10"),
}

ORAL_CHANNELS: Final = frozenset({"telephone", "in_person"})
