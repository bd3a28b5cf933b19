"""Real spoken calls through the bridge with the local engine: the simulated caller speaks with
Piper at 8 kHz, the engine hears it with Whisper, answers from the tenant's files and speaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.bridge_harness import Bridge, running_bridge

try:
    check_local_models()
except LocalModelsMissing as exc:  # pragma: no cover - CI installs the extra
    pytest.skip(f"local engine not installed: {exc}", allow_module_level=True)

Voice = Callable[[str, int], Awaitable[bytes]]


@pytest.fixture(scope="module")
def voice() -> Voice:
    from receptionist.sim.voice import local_voice

    return asyncio.run(local_voice())  # the voice object is loop-independent


@pytest.fixture
async def bridge(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with (
        FakeGeminiLive() as unused,  # the harness wants one; no call reaches it
        running_bridge(
            sqlite_db,
            tmp_path,
            unused,
            voice_engine="local",
            run_worker=True,
            silence_prompt_after_s=8,
            silence_hangup_after_s=14,
        ) as b,
    ):
        yield b


async def spoken_call(bridge: Bridge, voice: Voice, lines: list[str], **opts: Any) -> CallResult:
    return await place_call(
        CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=90, **opts),
        CallerScript(utterances=lines, turn_timeout_s=20),
    )


async def stored(db: Database, call_sid: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            row = await get_call(db, call_sid)
            if row is not None and row["stage"] in ("done", "failed"):
                return row
            await asyncio.sleep(0.1)


def said(row: dict[str, Any], speaker: str) -> str:
    return " ".join(t["text"] for t in row["transcript"] if t["speaker"] == speaker).lower()


async def test_a_spoken_order_is_heard_answered_from_the_menu_and_closed(
    bridge: Bridge, voice: Voice
) -> None:
    result = await spoken_call(
        bridge,
        voice,
        [
            "How much is the black forest cake?",
            "I want to order one kilo of black forest cake for pickup tomorrow at five pm.",
            "My name is Priya.",
            "Yes, that's right.",
        ],
    )
    assert result.ok, result.error
    row = await stored(bridge.db, result.call_sid)
    caller, agent = said(row, "caller"), said(row, "agent")
    assert "black forest" in caller and "priya" in caller  # what Whisper heard
    assert "750" in agent  # the menu's price, read from the tenant's file
    assert row["end_reason"] == "agent_ended" and row["status"] == "completed"
    assert row["engine"] == "local"
    assert row["call_type"] == "order"
    assert {u["model_name"] for u in row["usage"]} >= {"local/whisper-tiny.en", "local/grounded"}
    assert all(u["total_cost"] == 0 for u in row["usage"])


async def test_silence_for_the_whole_call_is_prompted_once_then_ended(
    bridge: Bridge, voice: Voice
) -> None:
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=60),
        CallerScript(utterances=[], hangup_after_ms=30_000),
    )
    row = await stored(bridge.db, result.call_sid)
    assert row["end_reason"] == "caller_silent"
    agent = said(row, "agent")
    assert "are you still there" in agent and said(row, "caller") == ""


async def test_the_caller_can_interrupt_the_agent(bridge: Bridge, voice: Voice) -> None:
    """Speaking over the greeting stops it (Exotel `clear`) and the question is answered."""
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=60),
        CallerScript(
            utterances=["What time do you close on Sunday?"],
            barge_in={0: 1200},  # 1.2 s into the greeting
            turn_timeout_s=20,
        ),
    )
    assert result.ok, result.error
    assert result.clears >= 1 and result.cleared_ms > 0
    row = await stored(bridge.db, result.call_sid)
    agent_turns = [t for t in row["transcript"] if t["speaker"] == "agent"]
    assert agent_turns[0].get("interrupted") is True
    assert "sunday" in said(row, "caller")
    assert len(agent_turns) >= 2  # the question got its answer after the interruption


async def test_clicks_and_noise_bursts_make_no_turn(
    bridge: Bridge, voice: Voice, tmp_path: Path
) -> None:
    """Short loud clicks on the line: the agent does not answer them."""
    import wave

    import numpy as np

    rng = np.random.default_rng(3)
    audio = np.zeros(8000 * 6, dtype=np.int16)
    for start_s in (1.0, 2.2, 3.1, 4.4):  # 40 ms bursts of loud noise
        i = int(start_s * 8000)
        audio[i : i + 320] = rng.integers(-12000, 12000, 320, dtype=np.int16)
    path = tmp_path / "clicks.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(audio.tobytes())
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), wav_in=path, max_call_s=40),
        CallerScript(hangup_after_ms=3000),
    )
    assert result.ok, result.error
    row = await stored(bridge.db, result.call_sid)
    assert said(row, "caller") == ""
    # the agent never answered a click: its only words are the greeting and, once the line
    # has been quiet long enough, "are you still there?"
    greeting, *later = [t["text"] for t in row["transcript"] if t["speaker"] == "agent"]
    assert greeting.startswith("Hello, thank you for calling Sweet Crumbs Bakery")
    assert all("still there" in text for text in later), later


async def test_the_llm_brain_words_replies_and_falls_back_when_the_model_fails(
    sqlite_db: Database, tmp_path: Path, voice: Voice
) -> None:
    """LOCAL_BRAIN=llm against the OpenAI-compatible double: the first answer's request fails
    (HTTP 500), so the grounded brain's words are spoken and the reason is on the call's record;
    the next answer is the model's."""
    from receptionist.sim.openai_chat import ECHO_PREFIX, FakeOpenAIChat, Fault

    async with (
        FakeOpenAIChat(api_key="llm-key") as chat,
        FakeGeminiLive() as unused,
        running_bridge(
            sqlite_db,
            tmp_path,
            unused,
            voice_engine="local",
            run_worker=True,
            local_brain="llm",
            llm_base_url=chat.base_url,
            llm_model="tiny-chat",
            llm_api_key="llm-key",
        ) as b,
    ):
        chat.script(Fault(status=500))
        result = await spoken_call(
            b, voice, ["How much is the black forest cake?", "What time do you close on Sunday?"]
        )
        assert result.ok, result.error
        row = await stored(b.db, result.call_sid)
    first, second = [t["text"] for t in row["transcript"] if t["speaker"] == "agent"][1:3]
    assert "750" in first and not first.startswith(ECHO_PREFIX.strip())
    assert second.startswith(ECHO_PREFIX.strip())  # the double's recognisable wording
    notes = [e for e in row["events"] if e["kind"] == "llm_fallback"]
    assert notes and "500" in notes[0]["detail"]
    assert any(u["model_name"] == "llm/tiny-chat" for u in row["usage"])
    assert row["stage"] == "done"  # costed: llm/* is priced at 0
