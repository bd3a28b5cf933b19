"""The `receptionist` command line (the console script's `receptionist.cli:app`).

`common` holds the Typer apps and what every command shares; `serving` the commands that run
things (serve, demo, call, worker, costs); `tenants` the tenant commands; `admin` the other ones
that look after things (db, calls, messages, keys, sim). Importing them registers their commands
on `app`.
"""

from __future__ import annotations

from receptionist.cli import admin, serving, tenants
from receptionist.cli.common import app

__all__ = ["admin", "app", "serving", "tenants"]
