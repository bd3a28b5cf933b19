"""The dashboard's test call (web/test_call.py): typed lines bounded where they enter, the call
against a tenant's brain and analysis, its time bound, and the per-person brake."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.tenants.repository import TenantRepository
from receptionist.web.test_call import (
    MAX_LINE_CHARS,
    MAX_LINES,
    BadLines,
    TestCallBrake,
    caller_lines,
    run_test_call,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"


def test_lines_are_bounded() -> None:
    assert caller_lines(" hello \r\n\n  two   words ") == ["hello", "two words"]
    for bad in ("", " \n\t\n", "x" * (MAX_LINE_CHARS + 1),
                "\n".join(["hi"] * (MAX_LINES + 1)), "a\n" * 10_000):  # fmt: skip
        with pytest.raises(BadLines):
            caller_lines(bad)


async def test_a_call_gives_turns_a_type_and_messages() -> None:
    tenant = TenantRepository(EXAMPLES).get("bakery")
    got = await run_test_call(
        tenant, ["I want to order a Black Forest cake 1 kg", "My name is Ravi", "Pickup tomorrow"]
    )
    assert got.turns[0][0] == "agent" and got.turns[1] == (
        "caller", "I want to order a Black Forest cake 1 kg"
    )  # fmt: skip
    assert got.call_type == "order" and not got.problems
    assert ("owner", "owner_new_order") in got.messages


async def test_a_call_over_its_time_is_stopped() -> None:
    tenant = TenantRepository(EXAMPLES).get("bakery")
    with pytest.raises(TimeoutError):
        await run_test_call(tenant, ["hello"] * 5, timeout_s=0)


def test_the_brake_counts_per_person_within_its_window() -> None:
    now = [0.0]
    brake = TestCallBrake(per_window=2, window_s=60, max_people=2, clock=lambda: now[0])
    assert brake.take(1) and brake.take(1) and not brake.take(1)
    assert brake.take(2)
    now[0] = 61
    assert brake.take(1)
    brake.take(3)  # a third person: the oldest remembered is forgotten, the map stays bounded
    assert len(brake._calls) == 2
