"""Reading a scenario's record from whichever store it ran on (see `backend` in conftest)."""

from __future__ import annotations

from sqlalchemy import select

from workflow.bootstrap import App, Application, MemoryApp
from workflow.schema import Letter


def stored_letters(app: Application, complaint_id: str) -> list[Letter]:
    """A complaint's letters as stored, from whichever store the scenario ran on."""
    if isinstance(app, MemoryApp):
        return app.store.rows_of(Letter, complaint_id)
    assert isinstance(app, App)
    with app.sessions() as session:
        return list(session.scalars(select(Letter).where(Letter.complaint_id == complaint_id)))


def dispose(app: Application) -> None:
    """Close a database app's connections (an in-memory app holds none)."""
    if isinstance(app, App):
        app.engine.dispose()
