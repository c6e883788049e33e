"""`complaints simulate --html FILE`: the comparison as a page a complaints director reads.

Charts are drawn by matplotlib (a well-kept plotting library, Agg backend: no display) as SVG
and embedded in the page, so the file stands alone: no script, no other file, prints as is.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

import jinja2
from markupsafe import Markup

from reporting.items import MONTHLY, QUARTERLY


class Simulation(Protocol):
    """What the page reads of `consumers.simulate.Simulation` (reporting imports no consumer)."""

    @property
    def document(self) -> dict[str, Any]: ...
    @property
    def letters_by_month(self) -> dict[str, dict[str, dict[str, int]]]: ...
    @property
    def ingest(self) -> dict[str, dict[str, int]]: ...


TEMPLATES = Path(__file__).parent / "templates"
BASE_COLOUR, VARIANT_COLOUR = "#4c72b0", "#dd8452"
# Letters a director watches: the ones the regulator counts (D16, D17).
SIGNPOSTING = ("eight_week", "deadlock")


def _svg(figure: Any) -> Markup:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    # Our own drawing, from counts and item codes only: safe to embed as markup.
    return Markup(text[text.index("<svg"):])  # noqa: S704


def letters_chart(letters_by_month: dict[str, dict[str, dict[str, int]]],
                  months: list[str]) -> Markup:
    """Letters issued per month, base beside variant: all letters, and the 8-week and
    deadlock letters on their own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def totals(side: str, kinds: tuple[str, ...] | None) -> list[int]:
        return [sum(n for kind, n in letters_by_month[side].get(m, {}).items()
                    if kinds is None or kind in kinds) for m in months]

    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    positions = list(range(len(months)))
    width = 0.4
    for ax, kinds, title in ((axes[0], None, "All letters"),
                             (axes[1], SIGNPOSTING, "8-week and deadlock letters")):
        ax.bar([p - width / 2 for p in positions], totals("base", kinds), width,
               label="base", color=BASE_COLOUR)
        ax.bar([p + width / 2 for p in positions], totals("variant", kinds), width,
               label="variant", color=VARIANT_COLOUR)
        ax.set_xticks(positions, months, rotation=45 if len(months) > 6 else 0)
        ax.set_title(title)
        ax.set_ylabel("letters issued")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    figure.tight_layout()
    return _svg(figure)


def items_chart(changed: list[dict[str, Any]]) -> Markup | None:
    """Each changed return item (numbers only), base beside variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [c for c in changed if isinstance(c["base"], int | float | None)
               and isinstance(c["variant"], int | float | None)][:40]
    if not numeric:
        return None
    labels = [f"{c['period']} {c['item']}" for c in numeric]
    figure, ax = plt.subplots(figsize=(9, 0.45 * len(numeric) + 1.2))
    positions = list(range(len(numeric)))
    height = 0.4
    ax.barh([p - height / 2 for p in positions], [c["base"] or 0 for c in numeric], height,
            label="base", color=BASE_COLOUR)
    ax.barh([p + height / 2 for p in positions], [c["variant"] or 0 for c in numeric], height,
            label="variant", color=VARIANT_COLOUR)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_title("Return items that change")
    ax.legend()
    figure.tight_layout()
    return _svg(figure)


def changed_items(document: dict[str, Any]) -> list[dict[str, Any]]:
    """[{"return", "period", "item", "base", "variant"}] for every item that differs."""
    return [{"return": shape, "period": label, "item": item, **values}
            for shape, by_period in document["returns"].items()
            for label, items in by_period.items()
            for item, values in items.items() if values["base"] != values["variant"]]


def render_simulation_html(result: Simulation) -> str:
    document = result.document
    descriptions = {item.code: item.description
                    for spec in (MONTHLY, QUARTERLY) for item in spec.items}
    changed = changed_items(document)
    for row in changed:
        row["description"] = descriptions.get(row["item"], row["item"])
    months = list(document["returns"]["monthly"])
    procedure_changes = [
        {"key": key, "base": document["base"][key], "variant": document["variant"].get(key)}
        for key in document["base"] if document["base"][key] != document["variant"].get(key)]
    letters = document["letters"]
    headline = {
        "letters": (sum(v["base"] for v in letters.values()),
                    sum(v["variant"] for v in letters.values())),
        "eight_week": (letters["eight_week"]["base"], letters["eight_week"]["variant"]),
        "deadlock": (letters["deadlock"]["base"], letters["deadlock"]["variant"]),
        "complaints": len(document["complaints"]),
    }
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("simulation.html").render(
        document=document, procedure_changes=procedure_changes, headline=headline,
        changed=changed, letters_svg=letters_chart(result.letters_by_month, months),
        items_svg=items_chart(changed), complaints=document["complaints"][:500],
        more_complaints=max(0, len(document["complaints"]) - 500), ingest=result.ingest)


def write_simulation_html(result: Simulation, path: Path) -> None:
    path.write_text(render_simulation_html(result), encoding="utf-8")
