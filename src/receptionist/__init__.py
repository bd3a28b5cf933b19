"""Receptionist: a multi-tenant AI phone receptionist."""

__version__ = "0.1.0"
