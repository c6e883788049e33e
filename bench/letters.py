"""Letters rendered per second: HTML, text and PDF, beside plain Jinja2 in the same run.

    .venv/bin/python bench/letters.py [--seconds 2] [--pdf-seconds 10]

The baseline renders the same template source with a bare `jinja2.Environment` (default
Undefined, no autoescape, no context check) from `from_string`, given the same context. It
still needs a loader (the templates extend `base.html` and include partials) and the letters'
filters (the templates call them), so the difference from `render_html` is what the renderer
adds: the context check, autoescaping and StrictUndefined. Contexts cycle through the seven
sample letters of tests/unit/letter_samples.py.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402

import letters.render as letters  # noqa: E402
from tests.unit.letter_samples import SAMPLES  # noqa: E402

TEMPLATES = ROOT / "letters" / "templates" / f"v{letters.CURRENT_TEMPLATE_VERSION}"


def bare_jinja(suffix: str) -> Callable[[Mapping[str, Any]], str]:
    """The baseline: a bare Environment, `from_string` of each kind's template source."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    env.filters.update(letters.environment().filters)  # the custom ones the templates call
    compiled = {
        kind: env.from_string((TEMPLATES / f"{kind}.{suffix}").read_text("utf-8"))
        for kind in letters.LETTER_KINDS
    }

    def render(context: Mapping[str, Any]) -> str:
        kind = context["kind"]
        return compiled[kind].render({**context, "letter": letters.KINDS[kind]})

    return render


def rate(render: Callable[[Mapping[str, Any]], object], seconds: float) -> tuple[float, int]:
    """Letters per second over at least `seconds` (whole passes over the seven kinds)."""
    contexts = list(SAMPLES.values())
    for context in contexts:  # warm up: compile templates, import WeasyPrint, load fonts
        render(context)
    count = 0
    start = time.perf_counter()
    for context in itertools.cycle(contexts):
        render(context)
        count += 1
        if count % len(contexts) == 0 and time.perf_counter() - start >= seconds:
            break
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per HTML/text measure")
    parser.add_argument("--pdf-seconds", type=float, default=10.0, help="for the PDF measure")
    args = parser.parse_args()

    import weasyprint

    print(
        f"Python {platform.python_version()}, Jinja2 {jinja2.__version__}, "
        f"WeasyPrint {weasyprint.__version__}, {platform.machine()}"
    )
    measures: list[tuple[str, Callable[[Mapping[str, Any]], object], float]] = [
        ("baseline: bare Jinja2, .html source", bare_jinja("html"), args.seconds),
        ("render_html", letters.render_html, args.seconds),
        ("baseline: bare Jinja2, .txt source", bare_jinja("txt"), args.seconds),
        ("render_text", letters.render_text, args.seconds),
        ("render_pdf", letters.render_pdf, args.pdf_seconds),
    ]
    results: dict[str, float] = {}
    print(f"{'measure':<38}{'letters/s':>12}{'ms/letter':>12}{'letters':>9}")
    for name, render, seconds in measures:
        per_second, count = rate(render, seconds)
        results[name] = per_second
        print(f"{name:<38}{per_second:>12,.1f}{1000 / per_second:>12.3f}{count:>9}")
    html_base = results["baseline: bare Jinja2, .html source"]
    print()
    print(f"render_html: {results['render_html'] / html_base:.2f} x the bare Jinja2 rate")
    print(
        f"render_text: {results['render_text'] / results['baseline: bare Jinja2, .txt source']:.2f}"
        " x the bare Jinja2 rate"
    )
    print(f"render_pdf:  {results['render_pdf'] / html_base:.4f} x the bare Jinja2 (HTML) rate")


if __name__ == "__main__":
    main()
