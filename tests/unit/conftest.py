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
    # Started once the session knows it will run a test that reads them, and not otherwise.
    for item in session.items:
        if _reads_background_pdfs(item):
            module = _module(item)
            background_pdfs.start(module.BACKGROUND_PDFS, compared=module.REPRODUCED_PDFS)
            return


def pytest_sessionfinish(session: pytest.Session) -> None:
    background_pdfs.stop()
