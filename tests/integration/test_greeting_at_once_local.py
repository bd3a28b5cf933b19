"""Greet at once with the local engine: the first call's Piper greeting is cached; the next call
plays it from the cache, synthesizes nothing for it, and its brain knows it was said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from receptionist.engines.base import EngineRequest, VoiceEngine
from receptionist.engines.local.engine import LocalEngine
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.db import Database
from tests.integration.bridge_harness import Bridge, RawCall, row_for, running_bridge, sid
from tests.integration.test_greeting_at_once import BAKERY_GREETING, agent_audio

try:
    check_local_models()
except LocalModelsMissing as exc:  # pragma: no cover - CI installs the extra
    pytest.skip(f"local engine not installed: {exc}", allow_module_level=True)


async def greeting_call(bridge: Bridge) -> tuple[bytes, dict[str, Any]]:
    async with connect(bridge.url("bakery"), max_size=2**22) as ws:
        call = RawCall(ws, sid())
        await call.start()
        await call.wait_until(lambda: "mark" in call.events(), within_s=120)  # Piper, loaded
        await call.hang_up()
    return agent_audio(call), await row_for(bridge.db, call.call_sid)


async def test_local_engine_greets_once_then_from_the_cache(
    sqlite_db: Database, tmp_path: Path
) -> None:
    engines: list[LocalEngine] = []
    heard: list[bytes] = []
    rows: list[dict[str, Any]] = []
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, voice_engine="local") as bridge,
    ):
        factory = bridge.ctx.engine_factory

        def recording(request: EngineRequest) -> VoiceEngine:
            engine = factory(request)
            assert isinstance(engine, LocalEngine)
            engines.append(engine)
            return engine

        bridge.ctx.engine_factory = recording
        for _ in range(2):
            audio, row = await greeting_call(bridge)
            heard.append(audio)
            rows.append(row)

    assert fake.sessions == []  # nothing went to Gemini
    cold, warm = engines
    assert cold.stats.turns == 1 and cold.stats.tts_s > 0
    assert warm.stats.turns == 0 and warm.stats.tts_s == 0  # nothing synthesized for it
    assert warm._brain is not None
    assert warm._brain.state.history[:1] == [("agent", BAKERY_GREETING)]
    assert heard[0] == heard[1] and heard[0]
    assert [r["stats"]["greeting_source"] for r in rows] == ["engine", "cache"]
    for row in rows:
        assert row["transcript"][0]["speaker"] == "agent"
        assert row["transcript"][0]["text"] == BAKERY_GREETING
