"""Alembic migrations of the state schema (run by :func:`tradestack.storage.open_database`)."""
