"""Alembic environment: runs on the connection dcman hands over (see dcman.db.engine.migrate)."""

from alembic import context

from dcman.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
