"""The local engine's grounded brain books through the same tools as Gemini Live: "is 4 pm free
tomorrow?" -> check_slot -> "taken; 5 pm is free, shall I book it?" -> book."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from receptionist.engines.base import EngineRequest, TurnComplete
from receptionist.engines.local.engine import LocalEngine, LocalSpeech
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.store import bookings as store
from receptionist.store.db import Database
from receptionist.tools.runner import ToolBox, ToolContext
from tests.tool_tenants import tool_tenant

NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)  # Monday 09:00 in Chennai
FOUR_PM_TOMORROW = datetime(2026, 12, 8, 10, 30, tzinfo=UTC)


def _brain(tmp_path: Path, db: Database, **kw: Any) -> tuple[GroundedBrain, ToolBox]:
    tenant = tool_tenant(tmp_path)
    box = ToolBox(ToolContext(tenant=tenant, db=db, call_sid="CAlocal", clock=lambda: NOW), **kw)
    brain = GroundedBrain(tenant, "+919811112222", now=NOW)
    brain.use_tools(box)
    return brain, box


async def test_taken_then_next_free_then_booked(tmp_path: Path, db: Database) -> None:
    await store.hold_slot(
        db,
        store.SlotHold(
            "saloon", "Priya", FOUR_PM_TOMORROW, FOUR_PM_TOMORROW + timedelta(hours=1),
            timedelta(minutes=30), call_sid="CAother",
        ),
        now=NOW,
    )  # fmt: skip
    brain, box = _brain(tmp_path, db)
    first = await brain.reply("Is 4 pm free tomorrow?")
    assert first.text == "4 pm tomorrow is taken; 5 pm tomorrow is free. Shall I book it?"
    second = await brain.reply("Yes please.")
    assert second.text == "Sure. What name shall I book it under?"
    third = await brain.reply("Asha.")
    assert third.text.startswith("Done, Asha: 5 pm tomorrow is booked. Your reference is ")
    [mine] = await store.find_bookings(db, "saloon", name="Asha")
    assert mine.call_sid == "CAlocal" and mine.status == "pending"
    assert third.text.endswith(" ".join(mine.reference) + ".")
    assert [o.name for o in box.outcomes] == ["check_slot", "book"]
    # anything else still goes to the grounded brain
    other = await brain.reply("What are your timings?")
    assert other.reason != "slot" and "10" in other.text


async def test_a_closed_time_and_a_failing_diary(tmp_path: Path, sqlite_db: Database) -> None:
    brain, _ = _brain(tmp_path, sqlite_db)
    early = await brain.reply("Can I book 7 am tomorrow?")
    assert early.text.startswith("Sorry, I cannot book 7 am tomorrow: we take appointments from")

    async def down(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("database went away")

    brain, box = _brain(tmp_path / "2", sqlite_db, functions={"check_slot": down, "book": down})
    said = await brain.reply("Is 4 pm free tomorrow?")
    assert said.text == (
        "Sorry, I cannot reach the diary right now. The owner will call you back to book."
    )
    assert box.outcomes[-1].status == "failed"


# --- the engine: a hold is the caller's once the reply telling it was spoken -------------------


class _Voice:
    """An instant voice that holds the words telling of a booking until the test lets them go
    (`go` None: never)."""

    def __init__(self) -> None:
        self.go: asyncio.Event | None = asyncio.Event()
        self.reached = asyncio.Event()

    async def synthesize(self, text: str, rate: int) -> bytes:
        if "is booked" in text:
            self.reached.set()
            if self.go is not None:
                await self.go.wait()
            else:
                await asyncio.Event().wait()  # the caller hangs up first
        return b"\x01\x00" * 80

    async def warm_up(self) -> None:
        pass


class _NoStt:
    async def transcribe(self, pcm: bytes, hint: str | None = None) -> Any:
        raise AssertionError("the test gives the engine its turns as text")

    async def warm_up(self) -> None:
        pass


async def _local_engine(tmp_path: Path, db: Database, voice: _Voice) -> tuple[LocalEngine, ToolBox]:
    tenant = tool_tenant(tmp_path)
    box = ToolBox(ToolContext(tenant=tenant, db=db, call_sid="CAlocal", clock=lambda: NOW))
    request = EngineRequest("CAlocal", "saloon", "", "en-IN", tenant=tenant, tools=box)
    speech = LocalSpeech(stt=_NoStt(), tts=voice)  # type: ignore[arg-type]
    engine = LocalEngine(speech, lambda t, n: GroundedBrain(t, n, now=NOW), request)
    await engine.connect()
    return engine, box


async def _turn(engine: LocalEngine, text: str) -> None:
    """The caller says `text`; returns when the agent's turn is complete."""
    await engine._answer(text)
    async with asyncio.timeout(10):  # only a hung test waits this long
        while not isinstance(await engine._events.get(), TurnComplete):
            pass


@pytest.mark.parametrize("spoken", [True, False], ids=["spoken", "hung_up_first"])
async def test_local_hold_is_confirmed_only_once_spoken(
    tmp_path: Path, db: Database, spoken: bool
) -> None:
    voice = _Voice()
    engine, box = await _local_engine(tmp_path, db, voice)
    try:
        await _turn(engine, "Can I book 5 pm tomorrow?")
        await _turn(engine, "Yes please.")
        if spoken:
            voice.go.set()  # type: ignore[union-attr]
            await _turn(engine, "Asha.")
        else:
            voice.go = None
            await engine._answer("Asha.")
            await asyncio.wait_for(voice.reached.wait(), 10)  # the reply is being voiced ...
            assert len(box.ctx.held) == 1 and box.ctx.told == []
    finally:
        await engine.close()  # ... when the caller hangs up: never heard
    assert len(box.ctx.held) == 1
    settled = await store.settle_call(db, "CAlocal", told=box.ctx.told)
    assert settled == ((1, 0) if spoken else (0, 1))
    [mine] = await store.find_bookings(db, "saloon", name="Asha")
    assert mine.status == ("confirmed" if spoken else "expired")
