"""[tools] and [booking] in tenant.toml: what is kept, and every mistake reported with its line."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from receptionist.tenants.loading import load_tenant
from receptionist.tenants.tool_checks import TOOL_NAMES, BookingSettings
from receptionist.tools.spec import SPECS
from tests.unit.test_tenant_actions import BASE, make_tenant


def _load(tmp_path: Path, extra: str) -> tuple[object, list[str]]:
    make_tenant(tmp_path, BASE + extra)
    tenant, problems = load_tenant(tmp_path, "shop")
    return tenant, [f"{p.line}: {p.message}" for p in problems]


def test_every_tool_name_has_a_spec() -> None:
    assert set(SPECS) == set(TOOL_NAMES)


def test_tools_and_booking_are_kept(tmp_path: Path) -> None:
    tenant, problems = _load(
        tmp_path,
        '\n[tools]\nenabled = ["book", "quote", "book"]\n\n[booking]\nslot_minutes = 45\n'
        'resources = ["Priya", "Arun"]\nopens = "9:30"\ndays = ["sat", "mon"]\n',
    )
    assert problems == []
    tools = tenant.tools  # type: ignore[attr-defined]
    assert tools.enabled == ("book", "quote")
    assert tools.booking == BookingSettings(
        slot_minutes=45, resources=("Priya", "Arun"), opens=time(9, 30), days=("mon", "sat")
    )


def test_no_tools_by_default_and_booking_defaults(tmp_path: Path) -> None:
    tenant, problems = _load(tmp_path, "")
    assert problems == [] and tenant.tools.enabled == ()  # type: ignore[attr-defined]
    tenant, problems = _load(tmp_path / "2", '\n[tools]\nenabled = ["check_slot"]\n')
    assert tenant.tools.booking == BookingSettings()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('[tools]\nenabled = ["bok"]\n', "unknown tool 'bok'; did you mean 'book'?"),
        ('[tools]\nenabled = "book"\n', "must be a list of names"),
        ("[tools]\nenable = []\n", "unknown key 'enable'"),
        ("[tools]\nenabled = [1]\n", "must be a list of names"),
        ("[booking]\nslot_minutes = 30\n", "no [tools] enabled uses it"),
        ('[tools]\nenabled = ["book"]\n[booking]\nslot_minutes = 0\n', "slot_minutes must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nhold_minutes = true\n', "hold_minutes must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nopens = "25:00"\n', 'like "10:00"'),
        ('[tools]\nenabled = ["book"]\n[booking]\nopens = "20:00"\ncloses = "09:00"\n', "later"),
        ('[tools]\nenabled = ["book"]\n[booking]\nresources = []\n', "resources must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nresources = ["A", "a"]\n', "different"),
        ('[tools]\nenabled = ["book"]\n[booking]\ndays = ["someday"]\n', "days must be"),
        ('[tools]\nenabled = ["book"]\n[booking]\nslot = 30\n', "unknown key 'slot'"),
    ],
)
def test_mistakes_are_reported(tmp_path: Path, extra: str, says: str) -> None:
    tenant, problems = _load(tmp_path, "\n" + extra)
    assert tenant is None
    assert any(says in p for p in problems), problems
    assert all(not p.startswith("None") for p in problems if "no [tools]" not in p), problems
