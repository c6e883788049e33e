"""Letters (docs/rules.md s.6): content per kind, escaping, strictness, PDF validity and
reproducibility, golden files.

Regenerate the golden files after a deliberate template change with
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_letters.py
and review the diff of tests/golden/letters/ before committing it.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import xml.etree.ElementTree as ET
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pypdf
import pytest

from letters.render import (
    KINDS,
    LETTER_KINDS,
    MissingContextKeyError,
    environment,
    format_for_suffix,
    long_date,
    pounds,
    render,
    render_html,
    render_pdf,
    render_text,
)
from tests.unit import background_pdfs
from tests.unit.letter_samples import GOLDEN, LASTMILE_ACKNOWLEDGEMENT, SAMPLES, sample

pytestmark = pytest.mark.filterwarnings(
    # WeasyPrint asks for Debian's libharfbuzz-subset0; without it, it subsets with fontTools.
    "ignore:HarfBuzz-Subset will be required:DeprecationWarning"
)

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "letters"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


# --- helpers ---------------------------------------------------------------------------------


VOID = {"br", "meta", "link", "img", "hr", "input"}
INLINE = {"strong", "b", "em", "i", "span", "a", "abbr", "small", "sup", "sub"}


class _Page(HTMLParser):
    """The visible text of an HTML letter (not <head>), its elements, and its headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.chunks: list[str] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self._stack.append(tag)
        if tag in self.headings:
            self.headings[tag].append("")
        if tag not in INLINE:
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._stack:
            while self._stack.pop() != tag:
                pass
        if tag not in INLINE:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if "head" in self._stack:
            return
        self.chunks.append(data)
        for tag in self.headings:
            if tag in self._stack:
                self.headings[tag][-1] += data

    @property
    def text(self) -> str:
        return normalise("".join(self.chunks))


def normalise(text: str) -> str:
    """Collapse all whitespace (no-break spaces and line breaks included) to single spaces."""
    return " ".join(text.split())


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


# Each golden letter's PDF is rendered once, by a subprocess started as collection ends
# (tests/unit/background_pdfs.py), and its text read once here (`pages_of`,
# `font_sizes_of`: one pass); every test of its properties reads that one rendering. The
# reproducibility tests compare it with a second rendering made by another subprocess, in
# another order, with another hash seed and no SOURCE_DATE_EPOCH (`other_process`).


def _large_print(kind: str) -> dict[str, Any]:
    context = sample(kind)
    context["customer"]["accessible_format"] = "large_print"
    return context


# Read by tests/unit/conftest.py, which starts their renderings.
BACKGROUND_PDFS: list[tuple[str, dict[str, Any]]] = [
    *GOLDEN.items(), ("eight_week-in-large-print", _large_print("eight_week"))]
REPRODUCED_PDFS: list[str] = list(GOLDEN)


@cache
def pdf_of(name: str) -> bytes:
    return background_pdfs.renders().first.pdf(name)


@cache
def _read(name: str) -> tuple[list[str], list[tuple[float, str]]]:
    return read_pdf(pdf_of(name))


def pages_of(name: str) -> list[str]:
    return _read(name)[0]


def font_sizes_of(name: str) -> list[tuple[float, str]]:
    return _read(name)[1]


def read_pdf(data: bytes) -> tuple[list[str], list[tuple[float, str]]]:
    """The text of each page (`pdf_pages`) and the runs of text with their sizes
    (`pdf_font_sizes`), in one reading of the PDF."""
    runs: list[tuple[float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if text.strip():
            # The height of a text-space unit in user space (points): the y column of tm x cm.
            y = (tm[2] * cm[0] + tm[3] * cm[2], tm[2] * cm[1] + tm[3] * cm[3])
            runs.append((round(size * math.hypot(*y), 2), text))

    pages = [normalise(page.extract_text(visitor_text=visit) or "")
             for page in pypdf.PdfReader(io.BytesIO(data)).pages]
    return pages, runs


def pdf_pages(data: bytes) -> list[str]:
    return read_pdf(data)[0]


def pdf_font_sizes(data: bytes) -> list[tuple[float, str]]:
    """(size in pt, text) of every run of text the PDF shows: the font size scaled by the text
    and transformation matrices, as a reader measures it (not what the CSS asked for)."""
    return read_pdf(data)[1]


def size_of(runs: list[tuple[float, str]], phrase: str) -> float:
    """The font size of the run containing `phrase` (normalised)."""
    matches = [size for size, text in runs if phrase in normalise(text)]
    assert matches, f"{phrase!r} not found in the PDF's text runs"
    return min(matches)


def money(context: dict[str, Any], key: str) -> str:
    return pounds(context["resolution"][key])


SIGNPOSTING = [
    "refer your complaint to the Energy Ombudsman",
    "is independent of us",
    "its service is free",
    "give you an apology",
    "give you an explanation",
    "take practical action to put things right",
    "make you a financial award",
    "we must do what it says",
    "You do not have to accept it",
    "P.O. Box 966",
    "Warrington",
    "WA4 9DF",
    "0330 440 1624",
    "www.energyombudsman.org",
    "free and impartial advice",
]
# docs/rules.md s.6 (v2) "Plain words": the Ombudsman's list of words to avoid in these letters.
AVOIDED_WORDS = ("binding", "exhausted", "remedy", "redress", "abide", "oblige", "constitutes")


def advice_phrases(context: dict[str, Any]) -> list[str]:
    """The advice body of the customer's nation, as the letter must name it."""
    advice = context["advice"]
    phrases = [advice["name"], advice["phone"], advice["website"]]
    if advice["welsh_phone"]:
        phrases.append(f"Welsh-language line {advice['welsh_phone']}")
    return phrases


def required_phrases(context: dict[str, Any]) -> list[str]:
    """What docs/rules.md s.6 (and the brief) say the letter must say, for this sample."""
    supplier, customer = context["supplier"], context["customer"]
    phrases = [
        supplier["name"],
        *supplier["address"],
        supplier["phone"],
        supplier["email"],
        supplier["website"],
        f"Our reference: {context['reference']}",
        normalise(long_date(context["date"])),
        customer["name"],
        *customer["address"],
        customer["postcode"],
        f"Dear {customer['name']},",
        KINDS[context["kind"]].title,
        # A person, not a team: named and signing (docs/rules.md s.6).
        f"Complaint handled by: {context['owner']['name']}",
        f"Yours sincerely, {context['owner']['name']} {context['owner']['role']}, "
        f"{supplier['name']}",
    ]
    kind = context["kind"]
    if kind == "acknowledgement":
        procedure = context["procedure"]
        phrases += [
            f"within {procedure['acknowledge_within_working_days']} working day",
            "this letter is our acknowledgement",
            "eight weeks",
            normalise(long_date(context["eight_week_date"])),
            "ask for a senior manager to review your complaint",
            f"Your complaint reference is {context['reference']}",
        ]
        if procedure["resolution_target_days"]:
            phrases += [
                f"within {procedure['resolution_target_days']} days",
                normalise(long_date(context["expected_by"])),
            ]
        phrases.append(f"{context['owner']['name']} ({context['owner']['role'].lower()}) "
                       "is handling your complaint")
    elif kind == "progress_update":
        phrases += [
            "We are still working on your complaint",
            f"We now expect to give you our full response by "
            f"{normalise(long_date(context['expected_by']))}",
            context["reference"],
        ]
    elif kind == "senior_manager_update":
        phrases += [
            context["reference"],
            "The review is continuing",
            "5 working days",
            "where this cannot be done in that time we contact you with an update",
        ]
        if context["senior_manager"]:
            phrases.append(f"{context['senior_manager']['name']}, a senior manager")
    elif kind in ("deadlock", "eight_week"):
        phrases += [
            *SIGNPOSTING,
            *advice_phrases(context),
            "12 months from the date of this letter",
            f"please do so by {normalise(long_date(context['referral_deadline']))}",
            context["reference"],
        ]
        if kind == "deadlock":
            phrases += ["Our final position", normalise(context["position"]),
                        "What has happened so far"]
            phrases += [f"{normalise(long_date(item['date']))}: "
                        for item in context["communications"]]
            if context["offer"] is None:
                phrases.append("no offer has been made")
            else:
                phrases += [normalise(context["offer"]["description"]),
                            "will stay open if you" if context["offer_open"]
                            else "will not stay open"]
        else:
            phrases += ["Eight weeks have now passed", "Where your complaint stands",
                        f"{context['owner']['name']} is still working on your complaint",
                        "we will write to you when we have resolved it",
                        "You do not have to wait for us"]
    elif kind == "resolution":
        resolution = context["resolution"]
        phrases += [context["reference"], normalise(resolution["explanation"])]
        if resolution["apology"]:
            phrases.append("Please accept our apology")
        if resolution["corrective_action"]:
            phrases.append(normalise(resolution["corrective_action"]))
        if resolution["goodwill_pence"]:
            phrases.append(f"Goodwill payment {money(context, 'goodwill_pence')}")
        if resolution["compensation_pence"]:
            phrases.append(f"Compensation {money(context, 'compensation_pence')}")
    elif kind == "ombudsman_outcome":
        phrases += [
            context["reference"],
            context["ombudsman_ref"],
            normalise(context["remedy_summary"]),
            "We have done what the decision told us to do, and your complaint is now resolved",
        ]
    elif kind == "withdrawal":
        phrases += [
            context["reference"],
            "we have closed your complaint",
            f"You withdrew your complaint on {normalise(long_date(context['withdrawn_on']))}",
            *advice_phrases(context),
        ]
        if context["referral_deadline"]:
            phrases += [*SIGNPOSTING, "you can still refer it to the Energy Ombudsman until "
                        f"{normalise(long_date(context['referral_deadline']))}"]
    return phrases


def assert_says(text: str, phrases: list[str]) -> None:
    haystack = normalise(text).casefold()
    missing = [p for p in phrases if normalise(p).casefold() not in haystack]
    assert not missing, f"missing from the letter: {missing}"


# --- the table of kinds ----------------------------------------------------------------------


def test_letter_kinds_are_the_eight_of_the_rules() -> None:
    assert LETTER_KINDS == (
        "acknowledgement",
        "progress_update",
        "senior_manager_update",
        "deadlock",
        "eight_week",
        "resolution",
        "ombudsman_outcome",
        "withdrawal",
    )
    assert set(SAMPLES) == set(LETTER_KINDS)
    templates = Path(__file__).resolve().parents[2] / "letters" / "templates" / "v2"
    for kind in LETTER_KINDS:
        assert (templates / f"{kind}.html").is_file()
        assert (templates / f"{kind}.txt").is_file()


def test_only_deadlock_and_eight_week_letters_signpost() -> None:
    assert {kind for kind, spec in KINDS.items() if spec.signposting} == {"deadlock", "eight_week"}


def test_html_autoescapes_and_text_does_not() -> None:
    select = environment().autoescape
    assert callable(select)
    assert select("deadlock.html") is True
    assert select("deadlock.txt") is False
    assert select("anything.else") is True
    assert environment().undefined is jinja2.StrictUndefined


# --- content, per kind -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GOLDEN))
def test_html_says_what_the_rules_require(name: str) -> None:
    context = GOLDEN[name]
    page = parse(render_html(context))
    assert_says(page.text, required_phrases(context))
    assert [normalise(h) for h in page.headings["h1"]] == [KINDS[context["kind"]].title]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_text_says_what_the_rules_require(name: str) -> None:
    context = GOLDEN[name]
    text = render_text(context)
    assert_says(text, required_phrases(context))
    assert "\u00a0" not in text and "&amp;" not in text and "<" not in text
    too_long = [line for line in text.splitlines() if len(line) > 72 and " " in line.strip()]
    assert not too_long


@pytest.mark.parametrize("kind", ["deadlock", "eight_week"])
def test_signposting_letters_are_labelled_and_signpost_prominently(kind: str) -> None:
    context = SAMPLES[kind]
    title = KINDS[kind].title
    page = parse(render_html(context))
    # The label is the letter's one h1, ahead of everything the customer reads after the
    # address block; the signposting box comes straight after the opening paragraphs.
    assert page.headings["h1"] == [title]
    assert normalise(page.headings["h2"][0]) == (
        "Your right to refer your complaint to the Energy Ombudsman"
    )
    assert 'class="signposting"' in render_html(context)
    text = page.text
    assert text.index(title) < text.index("Dear ") < text.index("we must do what it says")
    # The text version too: a ruled, upper-case label before the salutation.
    plain = render_text(context)
    assert plain.index(title.upper()) < plain.index("Dear ")
    assert plain.index("YOUR RIGHT TO REFER YOUR COMPLAINT") < plain.index("Yours sincerely")
    # And in print, the box starts on the first page, straight after the opening; at clear
    # print sizes it runs on to the second.
    first_page, second_page = pages_of(kind)[:2]
    assert_says(first_page, [title, "Your right to refer your complaint to the Energy Ombudsman"])
    assert_says(first_page + " " + second_page, SIGNPOSTING)


def test_acknowledgement_without_a_resolution_target_or_handler() -> None:
    context = LASTMILE_ACKNOWLEDGEMENT
    for text in (parse(render_html(context)).text, render_text(context)):
        assert "within 1 working day of receiving it" in normalise(text)
        assert "We aim to resolve complaints within" not in text
        assert "keep you informed of our progress" in normalise(text)
        # No handler yet: the procedure's complaints manager owns and signs it.
        assert "Complaint handled by: Helen Marsh" in normalise(text)
        assert "Helen Marsh (complaints manager) is handling your complaint" in normalise(text)
        assert "Yours sincerely, Helen Marsh Complaints Manager, Lastmile" in normalise(text)
        assert "complaints team" not in normalise(text)
        assert "by email at grace@example.org" in normalise(text)


def test_acknowledgement_of_a_reopened_complaint_past_eight_weeks() -> None:
    context = sample("acknowledgement")
    context.update(
        cycle=2,
        received_on="2026-05-11",
        date="2026-05-12",
        issued_at="2026-05-12T23:59:59.999999+01:00",
        expected_by="2026-05-21",
        eight_week_date="2026-04-27",
    )
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "first raised with us on 2 March 2026, has not been resolved" in text
        assert "We have reopened your complaint" in text
        assert "you can already ask the Energy Ombudsman" in text


@pytest.mark.parametrize("kind", ["progress_update", "senior_manager_update"])
def test_update_after_eight_weeks_does_not_promise_them_again(kind: str) -> None:
    # A senior manager review asked for from `eight_week` (or a progress update of a complaint
    # reopened late) comes after the eight weeks: "if we have not resolved it within eight
    # weeks ... you can ask the Ombudsman" would be out of date; the customer already can.
    context = sample(kind)
    context.update(date="2026-05-12", issued_at="2026-05-12T23:59:59.999999+01:00",
                   original_received_on="2026-03-02", eight_week_date="2026-04-27")
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "If we have not resolved your complaint within eight weeks" not in text
        assert ("As you first raised this complaint with us on 2 March 2026, more than eight "
                "weeks ago, you can already ask the Energy Ombudsman to look into it") in text
    # Before the eight-week date, and in letters stored before the key existed: as before.
    for before in ({"eight_week_date": "2026-05-13"}, {"eight_week_date": None}):
        context = sample(kind)
        context.update(date="2026-05-12", **before)
        if before["eight_week_date"] is None:
            del context["eight_week_date"]
        for text in (parse(render_html(context)).text, normalise(render_text(context))):
            assert "If we have not resolved your complaint within eight weeks" in text


def test_deadlock_offer_stated_in_full_and_kept_open() -> None:
    for text in (parse(render_html(SAMPLES["deadlock"])).text,
                 normalise(render_text(SAMPLES["deadlock"]))):
        assert ("We have offered you: A goodwill payment for the inconvenience, credited to your "
                "account. Amount: £30.00 This offer will stay open if you refer your complaint "
                "to the Energy Ombudsman") in text
        assert "no offer has been made" not in text
        assert "if we have made you an offer" not in text.casefold()


def test_deadlock_offer_not_kept_open() -> None:
    context = sample("deadlock")
    context.update(offer_open=False, offer={"description": "A credit of £40.00 to your account.",
                                            "amount_pence": None})
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert ("We have offered you: A credit of £40.00 to your account. This offer will not "
                "stay open if you refer your complaint to the Energy Ombudsman") in text
        assert "Amount:" not in text  # no amount given: the description alone


@pytest.mark.parametrize("offer_open", [True, False])
def test_deadlock_without_an_offer_says_none_was_made(offer_open: bool) -> None:
    context = sample("deadlock")
    context.update(offer=None, offer_open=offer_open)
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "So far, no offer has been made to settle your complaint." in text
        assert "stay open" not in text
        assert "if we have made you an offer" not in text.casefold()


def test_deadlock_summarises_the_communications_in_order() -> None:
    # The sample's six communications, in the words and order the customer reads them.
    expected = [
        "2 March 2026: You made your complaint by phone: Customer says the March bill is "
        "estimated although she sent a meter reading on 28 February.",
        "5 March 2026: We sent you our acknowledgement of your complaint.",
        "9 March 2026: We were in contact with you by email: Sent a photo of the meter "
        "showing the reading.",
        "16 March 2026: You asked for a senior manager to review your complaint.",
        "20 March 2026: Rachel Okafor, a senior manager, gave you our response: Rebilled with "
        "the customer's reading; offered £30.00 goodwill.",
        "2 April 2026: You told us you were still not satisfied: Wants the estimated bill's "
        "late-payment fee refunded too.",
    ]
    for text in (parse(render_html(SAMPLES["deadlock"])).text,
                 normalise(render_text(SAMPLES["deadlock"]))):
        positions = [text.index(line) for line in expected]
        assert positions == sorted(positions)
        assert text.index("What has happened so far") < positions[0]
        assert positions[-1] < text.index("Our final position") < text.index("Our offer")


def test_eight_week_letter_says_where_the_complaint_stands() -> None:
    context = SAMPLES["eight_week"]  # immediate stage, a contact logged, no manager response
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert ("When the eight weeks ended, our customer services team were looking into "
                "it.") in text
        assert ("Our latest contact with you about it was on 10 February 2026: Engineer visit "
                "booked for 24 February to test the meter.") in text
    with_manager = sample("eight_week")
    with_manager.update(stage="senior_manager", latest_response={
        "kind": "senior_manager_response", "date": "2026-02-20", "who": "Priya Shah",
        "summary": "We will replace the meter."})
    for text in (parse(render_html(with_manager)).text, normalise(render_text(with_manager))):
        assert "When the eight weeks ended, a senior manager was reviewing it." in text
        assert ("On 20 February 2026, Priya Shah, a senior manager, gave you our response: We "
                "will replace the meter.") in text
        # A senior manager is already reviewing it: not invited to ask for one.
        assert "ask for a senior manager" not in text
        assert "while the senior manager completes the review" in text
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "you can also ask for a senior manager to review it" in text
    neither = sample("eight_week")
    neither.update(stage="received", latest_response=None)
    for text in (parse(render_html(neither)).text, normalise(render_text(neither))):
        assert "we had received it and were looking into it" in text
        assert "We have not yet been able to give you a response." in text


def test_withdrawal_outside_a_referral_window_has_no_signposting() -> None:
    context = GOLDEN["withdrawal-no-window"]
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "You withdrew your complaint on 6 March 2026" in text
        assert "refer your complaint to the Energy Ombudsman" not in text
        assert "Citizens Advice consumer service" in text  # independent advice still given
    page = parse(render_html(context))
    assert page.headings["h1"] == ["Your complaint has been withdrawn"]
    assert "Deadlock" not in page.text and "8-week" not in page.text


def test_withdrawal_inside_the_window_signposts_to_its_end_and_is_not_labelled() -> None:
    context = SAMPLES["withdrawal"]
    page = parse(render_html(context))
    assert page.headings["h1"] == ["Your complaint has been withdrawn"]
    assert "Deadlock letter" not in page.text and "8-week letter" not in page.text
    assert "12 months" not in page.text  # the window's end date in its place
    assert not KINDS["withdrawal"].signposting


@pytest.mark.parametrize("name", list(GOLDEN))
def test_letters_use_plain_words(name: str) -> None:
    for text in (parse(render_html(GOLDEN[name])).text, render_text(GOLDEN[name])):
        found = [word for word in AVOIDED_WORDS if word in text.casefold()]
        assert not found, f"{name}: {found}"


def test_the_advice_body_is_the_customers_nations() -> None:
    scottish = GOLDEN["deadlock-scotland-large-print"]
    for text in (parse(render_html(scottish)).text, normalise(render_text(scottish))):
        assert ("contact Advice Direct Scotland: phone 0808 164 6000; web "
                "www.consumeradvice.scot.") in text
        assert "Citizens Advice" not in text and "Welsh-language" not in text
    for text in (parse(render_html(SAMPLES["deadlock"])).text,
                 normalise(render_text(SAMPLES["deadlock"]))):
        assert ("contact Citizens Advice consumer service: phone 0808 223 1133 (Welsh-language "
                "line 0808 223 1144); web www.citizensadvice.org.uk.") in text
        assert "Advice Direct Scotland" not in text


def test_senior_manager_update_without_a_named_manager_is_signed_by_the_owner() -> None:
    context = sample("senior_manager_update")
    context["senior_manager"] = None
    context["owner"] = {"id": "h9", "name": "Tom Evans", "role": "Complaint handler"}
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "A senior manager is reviewing not only your complaint" in text
        assert "Yours sincerely, Tom Evans Complaint handler, Lastmile" in text


def test_resolution_payments_in_pounds_and_optional_parts() -> None:
    full = SAMPLES["resolution"]
    assert_says(
        render_text(full), ["Goodwill payment £25.00", "Compensation £30.00", "Total £55.00"]
    )

    bare = sample("resolution")
    bare["resolution"].update(
        apology=False, corrective_action=None, goodwill_pence=None, compensation_pence=0
    )
    for text in (parse(render_html(bare)).text, normalise(render_text(bare))):
        assert "Our apology" not in text
        assert "What we have done to put things right" not in text
        assert "Payment to you" not in text
        assert "£" not in text.replace("£212.40", "")

    goodwill_only = sample("resolution")
    goodwill_only["resolution"].update(goodwill_pence=123456, compensation_pence=None)
    for text in (parse(render_html(goodwill_only)).text, normalise(render_text(goodwill_only))):
        assert "Goodwill payment £1,234.56" in text
        assert "Compensation" not in text and "Total" not in text


@pytest.mark.parametrize("kind", LETTER_KINDS)
def test_every_kind_names_a_person_never_a_team(kind: str) -> None:
    context = sample(kind)
    for text in (parse(render_html(context)).text, normalise(render_text(context))):
        assert "team" not in text.replace("customer services team", "")
        assert text.count(context["owner"]["name"]) >= 2  # named, and signing
    context["owner"] = None  # version 2 always has a person: no silent fallback to a team
    with pytest.raises(jinja2.UndefinedError):
        render_text(context)


def test_filters() -> None:
    assert pounds(2500) == "£25.00"
    assert pounds(5) == "£0.05"
    assert pounds(123456) == "£1,234.56"
    with pytest.raises(TypeError):
        pounds(True)
    with pytest.raises(TypeError):
        pounds(25.0)
    assert normalise(long_date("2026-03-05")) == "5 March 2026"
    assert normalise(long_date("2027-02-28")) == "28 February 2027"


def test_postcode_is_not_repeated_when_the_address_ends_with_it() -> None:
    context = sample("progress_update")
    context["customer"]["address"] = ["1 High Street", "Exeter", "ex1 1aa"]
    assert render_text(context).count("1AA") == 0
    assert render_text(context).lower().count("ex1 1aa") == 1
    context["customer"]["address"] = []
    assert "Ada Lovelace\nEX1 1AA\n" in render_text(context)


# --- escaping --------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> & Co"


def test_customer_markup_is_escaped_in_html_and_verbatim_in_text() -> None:
    context = sample("deadlock")
    context["customer"]["name"] = HOSTILE
    context["customer"]["address"][0] = '<img src=x onerror="alert(2)">'
    context["summary"] = "</blockquote><b>bold</b>"
    context["position"] = "<a href='https://evil.example'>click</a>"
    html = render_html(context)
    page = parse(html)
    assert not {"script", "img", "a", "b"} & set(page.tags)
    assert HOSTILE in page.text
    assert f"Dear {HOSTILE}," in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "<script" not in html
    text = render_text(context)
    assert f"Dear {HOSTILE}," in text
    assert "&lt;" not in text and "&amp;" not in text


@pytest.mark.parametrize("kind", ["deadlock", "eight_week"])
def test_names_and_summaries_from_the_record_are_escaped(kind: str) -> None:
    # The deadlock summary and the 8-week update quote the record (people's names, their
    # words, an offer): escaped in HTML like everything else, verbatim in text.
    context = sample(kind)
    if kind == "deadlock":
        context["communications"][4]["who"] = HOSTILE
        context["communications"][0]["summary"] = HOSTILE
        context["offer"]["description"] = HOSTILE
    else:
        context["latest_response"] = {"kind": "senior_manager_response", "date": "2026-02-20",
                                      "who": HOSTILE, "summary": HOSTILE}
    context["owner"]["name"] = HOSTILE
    html = render_html(context)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert not {"script"} & set(parse(html).tags)
    assert HOSTILE in render_text(context)


# --- strictness ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["html", "txt"])
@pytest.mark.parametrize(
    "path",
    [
        ("reference",),
        ("customer",),
        ("position",),
        ("referral_deadline",),
        ("supplier", "website"),
        ("customer", "postcode"),
        ("ombudsman", "phone"),
        ("procedure", "referral_window_months"),
    ],
)
def test_a_missing_key_raises(fmt: str, path: tuple[str, ...]) -> None:
    context = sample("deadlock")
    parent = context
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(jinja2.UndefinedError):
        render(context, fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", LETTER_KINDS)
def test_a_missing_kind_specific_key_raises(kind: str) -> None:
    for key in KINDS[kind].keys:
        context = sample(kind)
        del context[key]
        with pytest.raises(MissingContextKeyError, match=key):
            render_text(context)


def test_a_missing_nested_key_raises_from_the_template() -> None:
    context = sample("resolution")
    del context["resolution"]["goodwill_pence"]
    with pytest.raises(jinja2.UndefinedError):
        render_html(context)
    context = sample("senior_manager_update")
    del context["senior_manager"]["name"]
    with pytest.raises(jinja2.UndefinedError):
        render_text(context)


def test_an_unknown_kind_or_format_is_refused() -> None:
    context = sample("deadlock")
    context["kind"] = "love_letter"
    with pytest.raises(ValueError, match="unknown letter kind"):
        render_html(context)
    with pytest.raises(ValueError, match="unknown letter format"):
        render(sample("deadlock"), "docx")  # type: ignore[arg-type]
    context = sample("deadlock")
    context["letter"] = "mine"
    with pytest.raises(ValueError):
        render_html(context)


# --- the public API --------------------------------------------------------------------------


def test_render_matches_the_format_functions() -> None:
    context = SAMPLES["eight_week"]
    assert render(context, "html") == render_html(context).encode("utf-8")
    assert render(context, "txt") == render_text(context).encode("utf-8")
    assert render(context, "pdf") == pdf_of("eight_week")


def test_rendering_needs_only_the_stored_json() -> None:
    for context in GOLDEN.values():
        stored = json.loads(json.dumps(context))
        assert render_html(stored) == render_html(context)
        assert render_text(stored) == render_text(context)


def test_render_does_not_modify_the_context() -> None:
    context = sample("resolution")
    before = copy.deepcopy(context)
    render_html(context)
    render_text(context)
    assert context == before


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("letter.html", "html"),
        ("out/L-1.HTM", "html"),
        ("/tmp/letter.txt", "txt"),
        (Path("a.b/letter.PDF"), "pdf"),
    ],
)
def test_format_for_suffix(path: str | Path, fmt: str) -> None:
    assert format_for_suffix(path) == fmt


@pytest.mark.parametrize("path", ["letter.docx", "letter", "letter.pdf.bak", ".pdf", "html"])
def test_format_for_suffix_refuses_others(path: str) -> None:
    with pytest.raises(ValueError, match=r"\.html, \.txt or \.pdf"):
        format_for_suffix(path)


# --- PDF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GOLDEN))
def test_pdf_is_a_valid_letter(name: str) -> None:
    context = GOLDEN[name]
    data = pdf_of(name)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert 1 <= len(reader.pages) <= (4 if context["customer"]["accessible_format"] ==
                                      "large_print" else 3)
    for page in reader.pages:
        assert [round(float(x)) for x in page.mediabox] == [0, 0, 595, 842]  # A4
    pages = pages_of(name)
    text = " ".join(pages)
    assert_says(text, required_phrases(context))
    # Every page carries the reference (running footer) and its number.
    for number, page_text in enumerate(pages, start=1):
        assert context["reference"] in page_text
        assert f"Page {number} of {len(pages)}" in page_text
    metadata = reader.metadata
    assert metadata is not None
    assert metadata.title == (
        f"{KINDS[context['kind']].title} – {context['supplier']['name']} – {context['reference']}"
    )
    assert metadata.author == context["supplier"]["name"]


STANDARD_PRINT = [name for name, context in GOLDEN.items()
                  if context["customer"]["accessible_format"] == "standard"]
LARGE_PRINT = [name for name in GOLDEN if name not in STANDARD_PRINT]


@pytest.mark.parametrize("name", STANDARD_PRINT)
def test_pdf_is_in_clear_print(name: str) -> None:
    # docs/rules.md s.6: body text at least 12 pt, nothing smaller than 10 pt; read back from
    # the PDF.
    runs = font_sizes_of(name)
    assert min(size for size, _ in runs) >= 10
    context = GOLDEN[name]
    assert size_of(runs, f"Dear {context['customer']['name']}") >= 12
    assert size_of(runs, "Yours sincerely") >= 12
    if KINDS[context["kind"]].signposting:
        assert size_of(runs, "its service is") >= 12  # the signposting box is body text
        assert size_of(runs, "WA4 9DF") >= 12
    # Only the letterhead's contact lines, the details beside the address and the running
    # footer are smaller than body text (10-11 pt); everything else is 12 pt or more.
    supplier, date = context["supplier"], normalise(long_date(context["date"]))
    small_allowed = " ".join(normalise(part) for part in [
        ", ".join(supplier["address"]), f"Phone: {supplier['phone']}",
        f"Email: {supplier['email']}", f"Web: {supplier['website']}",
        "Date:", date, "Our reference:", context["reference"], "Account number:",
        context["customer"]["account_id"], "Complaint handled by:", context["owner"]["name"],
        f"{supplier['name']} · Our reference: {context['reference']} · {date}",
        "Page 1 of 2 Page 2 of 2 Page 1 of 3 Page 2 of 3 Page 3 of 3 Page 1 of 1"])
    small = [text for size, text in runs if size < 12]
    assert small and all(normalise(text) in small_allowed for text in small), small
    assert size_of(runs, "Page 1 of") >= 10  # the running footer, the smallest text


@pytest.mark.parametrize("name", LARGE_PRINT)
def test_pdf_in_large_print_is_16_pt_throughout(name: str) -> None:
    runs = font_sizes_of(name)
    assert min(size for size, _ in runs) >= 16
    assert size_of(runs, "Page 1") >= 16


def test_the_same_letter_in_large_print() -> None:
    runs = pdf_font_sizes(pdf_of("eight_week-in-large-print"))  # _large_print("eight_week")
    assert min(size for size, _ in runs) >= 16
    assert size_of(runs, "Dear Grace Hopper") >= 16
    standard = font_sizes_of("eight_week")
    assert size_of(standard, "Dear Grace Hopper") == 12


def _structure_roles(node: Any, roles: set[str], depth: int = 0) -> None:
    node = node.get_object() if hasattr(node, "get_object") else node
    if isinstance(node, pypdf.generic.ArrayObject):
        for child in node:
            _structure_roles(child, roles, depth)
    elif isinstance(node, pypdf.generic.DictionaryObject) and depth < 40:
        if "/S" in node:
            roles.add(str(node["/S"]))
        if "/K" in node:
            _structure_roles(node["/K"], roles, depth + 1)


@pytest.mark.parametrize("name", ["deadlock", "withdrawal", "deadlock-scotland-large-print"])
def test_pdf_is_tagged_and_archival(name: str) -> None:
    reader = pypdf.PdfReader(io.BytesIO(pdf_of(name)))
    root = reader.trailer["/Root"]
    # Tagged (for screen readers): a structure tree with headings, paragraphs and lists; the
    # content marked; the language given.
    assert bool(root["/MarkInfo"]["/Marked"])
    assert root["/Lang"] == "en-GB"
    roles: set[str] = set()
    _structure_roles(root["/StructTreeRoot"]["/K"], roles)
    assert {"/Document", "/H1", "/H2", "/P", "/L", "/LI"} <= roles, roles
    # Archival: PDF/A-3, conformance level A (accessible), identified in the XMP metadata
    # with an sRGB output intent. (No validator such as veraPDF can be installed here.)
    xmp = ET.fromstring(root["/Metadata"].get_object().get_data())
    pdfaid = "{http://www.aiim.org/pdfa/ns/id/}"
    ids = {key: value for element in xmp.iter() for key, value in element.attrib.items()
           if key.startswith(pdfaid)}
    assert ids == {f"{pdfaid}part": "3", f"{pdfaid}conformance": "A"}
    assert root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"


def test_pdf_dates_and_identifier_come_from_the_letter() -> None:
    reader = pypdf.PdfReader(io.BytesIO(pdf_of("deadlock")))  # issued 2026-04-10T14:30+01:00
    info = reader.metadata
    assert info is not None
    assert info["/CreationDate"] == "D:20260410143000+01'00"
    assert info["/ModDate"] == "D:20260410143000+01'00"
    identifier = reader.trailer["/ID"]
    assert isinstance(identifier, pypdf.generic.ArrayObject)
    assert identifier[0] == SAMPLES["deadlock"]["letter_id"]


@pytest.fixture
def other_process() -> background_pdfs.Renders:
    """Every golden letter rendered again in another interpreter: another hash seed, no
    SOURCE_DATE_EPOCH, in the reverse of GOLDEN's order (so each letter is rendered after other
    letters than in the first set); started with the first set as collection ended."""
    return background_pdfs.renders().other


@pytest.mark.parametrize("name", list(GOLDEN))
def test_pdf_is_reproducible_byte_for_byte(name: str,
                                          other_process: background_pdfs.Renders) -> None:
    """Rendered again (in another process, `other_process`): the same bytes."""
    assert other_process.pdf(name) == pdf_of(name)


def test_pdf_is_reproducible_in_another_process(other_process: background_pdfs.Renders) -> None:
    """Another interpreter, another hash seed, later: the same bytes."""
    assert other_process.pdf("deadlock") == pdf_of("deadlock")


def test_pdf_needs_an_instant_with_an_offset() -> None:
    context = sample("deadlock")
    context["issued_at"] = "2026-04-10T14:30:00"
    with pytest.raises(ValueError, match="offset"):
        render_pdf(context)


def test_pdf_rendering_leaves_source_date_epoch_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    render_pdf(SAMPLES["progress_update"])
    assert "SOURCE_DATE_EPOCH" not in os.environ
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "42")
    # The same bytes as the first set's rendering (`pdf_of`: another process, with this
    # session's own SOURCE_DATE_EPOCH or none).
    assert render_pdf(SAMPLES["progress_update"]) == pdf_of("progress_update")
    assert os.environ["SOURCE_DATE_EPOCH"] == "42"


# --- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["txt", "html"])
@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden(name: str, suffix: str) -> None:
    rendered = render_text(GOLDEN[name]) if suffix == "txt" else render_html(GOLDEN[name])
    path = GOLDEN_DIR / f"{name}.{suffix}"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8", newline="\n")
    assert path.is_file(), f"no golden file {path}: run with UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from the rendering: if the change is intended, rerun with "
        "UPDATE_GOLDEN=1 and review the diff"
    )
