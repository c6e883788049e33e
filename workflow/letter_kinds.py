"""The kinds of letter, declared once: what each is (its label, whether it signposts the
Energy Ombudsman and opens a referral window) and what its context holds (docs/rules.md s.6).

The domain issues them (workflow/handlers.py, workflow/letter_context.py) and the renderer
lays them out (letters/render.py, which imports this table: letters depend on workflow,
never the reverse).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class LetterKind:
    """What the base layout needs to know about a kind; the prose is in its templates."""

    title: str  # the heading that labels the letter
    subtitle: str | None = None
    signposting: bool = False  # labelled prominently, with the Ombudsman signposting block
    keys: tuple[str, ...] = ()  # kind-specific context keys, on top of COMMON_KEYS


# The one table of truth: every kind of letter, in lifecycle order. Template version 1 (the
# letters issued before rules revision 2) is frozen: its letters must render as issued.
KINDS_V1: Final[Mapping[str, LetterKind]] = MappingProxyType(
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
# Template version 2 (rules revision 2): the letters issued from now on.
KINDS: Final[Mapping[str, LetterKind]] = MappingProxyType(
    {
        **KINDS_V1,
        "deadlock": LetterKind(
            "Deadlock letter",
            "Our final response to your complaint",
            signposting=True,
            keys=("position", "offer_open", "offer", "communications", "referral_deadline"),
        ),
        "eight_week": LetterKind(
            "8-week letter",
            "Your complaint has not been resolved within eight weeks",
            signposting=True,
            keys=("referral_deadline", "stage", "latest_response"),
        ),
        # Not labelled as a deadlock or 8-week letter, though it carries the signposting
        # block while a referral window is still open (`referral_deadline` not null).
        "withdrawal": LetterKind(
            "Your complaint has been withdrawn", keys=("withdrawn_on", "referral_deadline")
        ),
    }
)
LETTER_KINDS: Final[tuple[str, ...]] = tuple(KINDS)
