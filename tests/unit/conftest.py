"""Unit-test session hooks: the letter PDFs rendered in the background (background_pdfs.py).

The modules that read those PDFs (those defining BACKGROUND_PDFS) run last, so the renderings
have the rest of the session, on the machine's other core, to be ready.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit import background_pdfs


def _module(item: pytest.Item) -> Any:
    return getattr(item, "module", None)


def _reads_background_pdfs(item: pytest.Item) -> bool:
    return getattr(_module(item), "BACKGROUND_PDFS", None) is not None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    items.sort(key=_reads_background_pdfs)  # stable: each group keeps its own order


def pytest_collection_finish(session: pytest.Session) -> None:
    # Started once the session knows it will run a test that reads them, and not otherwise:
    # every such module's letters, in one first set and one other set.
    modules: dict[str, Any] = {}
    for item in session.items:
        if _reads_background_pdfs(item):
            modules.setdefault(_module(item).__name__, _module(item))
    if not modules:
        return
    contexts = [letter for module in modules.values() for letter in module.BACKGROUND_PDFS]
    names = [name for name, _ in contexts]
    assert len(set(names)) == len(names), f"two background letters share a name: {names}"
    compared = [name for module in modules.values()
                for name in getattr(module, "REPRODUCED_PDFS", [])]
    background_pdfs.start(contexts, compared=compared)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background_pdfs.stop()
