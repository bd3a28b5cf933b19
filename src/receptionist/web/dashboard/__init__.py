"""The owner's dashboard (Jinja2 pages at `/app`): `create_dashboard(deps, live)`."""

from receptionist.web.dashboard.app import Options, create_dashboard

__all__ = ["Options", "create_dashboard"]
