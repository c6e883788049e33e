"""Letters issued before rules revision 2 (template version 1) render byte for byte as they were
issued (docs/rules.md s.6: "Letters issued before a change of templates still render as they were
issued"). The golden files in tests/golden/letters/v1/ are the renderer's output before the
templates were versioned; they are never regenerated.
"""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest

from letters.render import (
    CURRENT_TEMPLATE_VERSION,
    TEMPLATE_SETS,
    render_html,
    render_text,
)
from tests.unit import background_pdfs
from tests.unit.letter_samples_v1 import GOLDEN as GOLDEN_V1
from workflow.letter_context import TEMPLATE_VERSION

V1_DIR = Path(__file__).resolve().parents[1] / "golden" / "letters" / "v1"

# Rendered by a subprocess started as collection ends (tests/unit/background_pdfs.py).
BACKGROUND_PDFS = [("v1-eight_week", GOLDEN_V1["eight_week"])]

pytestmark = pytest.mark.filterwarnings(
    "ignore:HarfBuzz-Subset will be required:DeprecationWarning"
)


def test_letters_are_issued_with_the_current_templates() -> None:
    assert TEMPLATE_VERSION == CURRENT_TEMPLATE_VERSION == 2
    assert set(TEMPLATE_SETS) == {1, 2}


@pytest.mark.parametrize("name", sorted(GOLDEN_V1))
@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_a_v1_letter_renders_as_issued(name: str, suffix: str) -> None:
    context = GOLDEN_V1[name]
    assert "template_version" not in context  # stored before versions existed
    rendered = render_html(context) if suffix == "html" else render_text(context)
    assert rendered.encode("utf-8") == (V1_DIR / f"{name}.{suffix}").read_bytes()


def test_an_explicit_version_1_is_the_same_as_none() -> None:
    context = {**GOLDEN_V1["deadlock"], "template_version": 1}
    assert render_html(context).encode("utf-8") == (V1_DIR / "deadlock.html").read_bytes()


@pytest.mark.parametrize("version", [0, 3, "2", True, None])
def test_an_unknown_template_version_is_refused(version: object) -> None:
    context = {**GOLDEN_V1["deadlock"], "template_version": version}
    with pytest.raises(ValueError, match="unknown letter template version"):
        render_html(context)


def test_a_v1_pdf_keeps_its_plain_tagged_form() -> None:
    # Version 1 PDFs were tagged, not PDF/A: re-rendering one must not add an archival
    # identification it never had (that would change its bytes).
    pdf = background_pdfs.renders().first.pdf("v1-eight_week")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert "/StructTreeRoot" in reader.trailer["/Root"]
    assert "/Metadata" not in reader.trailer["/Root"]
