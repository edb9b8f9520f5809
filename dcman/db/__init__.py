"""Persistence: table definitions, the engine, repositories and Alembic migrations."""
