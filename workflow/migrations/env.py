"""Alembic environment: runs against the engine the application hands over."""

from __future__ import annotations

from alembic import context

from workflow.schema import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from workflow.database import database_url, make_engine

    engine = make_engine(database_url(config.get_main_option("sqlalchemy.url")))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
