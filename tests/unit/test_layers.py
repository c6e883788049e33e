"""The package layout holds: dependencies point `consumers -> reporting -> letters -> workflow`,
never back, and no module of the four packages takes part in an import cycle.

The import graph is built by grimp (the library behind import-linter): every `import` of the
packages' modules, at the top of a file, inside a function or under TYPE_CHECKING, since a
deferred import is still a dependency (it only hides a cycle until the function runs).
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("consumers", "reporting", "workflow", "letters")
# Highest first: a layer may import the layers below it, never one above. letters (rendering)
# may use the domain's declarations (the letter kinds, workflow/letter_kinds.py); workflow (the
# domain) imports nothing above it.
LAYERS = ("consumers", "reporting", "letters", "workflow")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def test_dependencies_point_down_the_layers(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS)
    described = sorted(
        f"{d.importer} -> {d.imported}: "
        + "; ".join(sorted(f"{sorted(r.heads)} ... {sorted(r.tails)}" for r in d.routes))
        for d in illegal)
    assert described == []


def test_no_module_is_in_an_import_cycle(graph: grimp.ImportGraph) -> None:
    assert cycles(graph) == []


def test_the_checks_see_a_backward_import_and_a_cycle() -> None:
    """The checks themselves: a report module importing the command line is caught twice,
    as reporting -> consumers and as a cycle through consumers.cli."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)  # its own: this test changes it
    graph.add_import(importer="reporting.commands", imported="consumers.cli")
    assert graph.find_illegal_dependencies_for_layers(layers=LAYERS)
    assert any({"consumers.cli", "reporting.commands"} <= set(c) for c in cycles(graph))
    graph.add_import(importer="workflow.events", imported="letters.render")
    assert any(d.importer == "workflow" and d.imported == "letters"
               for d in graph.find_illegal_dependencies_for_layers(layers=LAYERS))
