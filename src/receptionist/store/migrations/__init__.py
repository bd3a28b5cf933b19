"""Alembic migrations for the Receptionist database (see env.py)."""
