"""Example tenants with tools enabled, for the tools' tests (a copy of tenants/ in tmp)."""

from __future__ import annotations

import shutil
from pathlib import Path

from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

EXAMPLES = Path(__file__).resolve().parents[1] / "tenants"

SALOON_TOOLS = """
[tools]
enabled = ["check_slot", "book", "quote", "order_status", "handoff"]

[booking]
slot_minutes = 60
hold_minutes = 10
resources = ["Priya"]
opens = "10:00"
closes = "20:00"
"""

BAKERY_TOOLS = """
[tools]
enabled = ["quote", "book", "order_status"]
"""


def tool_tenant(tmp_path: Path, name: str = "saloon", extra: str | None = None) -> Tenant:
    root = tmp_path / "tenants"
    if not (root / name).exists():
        shutil.copytree(EXAMPLES / name, root / name)
        toml = root / name / "tenant.toml"
        add = extra if extra is not None else (SALOON_TOOLS if name == "saloon" else BAKERY_TOOLS)
        toml.write_text(toml.read_text(encoding="utf-8") + add, encoding="utf-8")
    tenant, problems = load_tenant(root, name)
    assert tenant is not None, problems
    return tenant
