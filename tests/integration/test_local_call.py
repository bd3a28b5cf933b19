"""Real spoken calls through the bridge with the local engine: the simulated caller speaks with
Piper at 8 kHz, the engine hears it with Whisper, answers from the tenant's files and speaks.

Callers pace their audio in real time and the engine takes as long as the machine makes it take:
so the bridge's silence timers are out of reach (a slow answer must not be taken for a silent
caller) except in the test about silence, and every wait is for the condition meant (the
agent's reply, the stored call) with a deadline that only stops a hung test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from receptionist.engines.base import EngineRequest, VoiceEngine
from receptionist.engines.local.engine import LocalEngine
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.engines.local.stt import Transcription
from receptionist.engines.local.tts import TextToSpeech, TtsSettings
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
#: Only a hung call waits this long for the agent's reply, or lasts this long in all.
REPLY_GUARD_S = 300.0
CALL_GUARD_S = 900.0
#: Quiet after which the simulated caller takes the agent's reply as over and speaks again.
#: The engine makes each sentence of a reply while the one before is played: on a loaded machine
#: that leaves pauses inside a reply, which the caller's default (600 ms) takes for its end.
AGENT_QUIET_MS = 5000
#: Silence timers no slow turn can reach (the bridge's own limit on a call is 600 s).
FAR_OFF = {"silence_prompt_after_s": 1000.0, "silence_hangup_after_s": 1100.0}


@pytest.fixture(scope="module")
def voice() -> Voice:
    # Piper without generator noise: the caller says each line the same way on every run, so
    # what Whisper hears, and so the conversation, is the same on every run too (with noise, a
    # "one kilo" now and then came out as "1 Tilo", and the order never closed)
    tts = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))
    tts.load()

    async def speak(text: str, sample_rate: int) -> bytes:
        return await tts.synthesize(text, sample_rate)

    return speak


@contextlib.asynccontextmanager
async def local_bridge(db: Database, tmp_path: Path, **settings: Any) -> AsyncIterator[Bridge]:
    async with (
        FakeGeminiLive() as unused,  # the harness wants one; no call reaches it
        running_bridge(
            db, tmp_path, unused, voice_engine="local", run_worker=True, **settings
        ) as b,
    ):
        yield b


@pytest.fixture
async def bridge(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with local_bridge(sqlite_db, tmp_path, **FAR_OFF) as b:
        yield b


async def spoken_call(bridge: Bridge, voice: Voice, lines: list[str]) -> CallResult:
    return await place_call(
        CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=CALL_GUARD_S),
        CallerScript(utterances=lines, turn_timeout_s=REPLY_GUARD_S, agent_quiet_ms=AGENT_QUIET_MS),
    )


async def stored(db: Database, call_sid: str) -> dict[str, Any]:
    """The call's row once the post-call pipeline is through with it. Polls the database for
    that condition (the row is written by another task); the deadline only stops a hung test."""
    async with asyncio.timeout(120):
        while True:
            row = await get_call(db, call_sid)
            if row is not None and row["stage"] in ("done", "failed"):
                return row
            await asyncio.sleep(0.1)


def said(row: dict[str, Any], speaker: str) -> str:
    return " ".join(t["text"] for t in row["transcript"] if t["speaker"] == speaker).lower()


def transcript(row: dict[str, Any]) -> str:
    return "\n".join(f"{t['speaker']}: {t['text']}" for t in row["transcript"])


def agent_turns(row: dict[str, Any]) -> list[str]:
    return [t["text"] for t in row["transcript"] if t["speaker"] == "agent"]


@dataclass
class Recorded:
    """The local engines a bridge made for calls, and every utterance sent to speech-to-text."""

    engines: list[LocalEngine] = field(default_factory=list)
    transcribed: int = 0


def record_engines(bridge: Bridge) -> Recorded:
    """From now on, keep every local engine the bridge makes (their turn counts) and count the
    utterances its engines hand to speech-to-text, as they are handed over."""
    recorded = Recorded()
    factory = bridge.ctx.engine_factory
    counted: set[int] = set()

    def recording(request: EngineRequest) -> VoiceEngine:
        engine = factory(request)
        assert isinstance(engine, LocalEngine)
        recorded.engines.append(engine)
        stt = engine.speech.stt  # shared by the bridge's calls: wrapped once
        if id(stt) not in counted:
            counted.add(id(stt))
            transcribe = stt.transcribe

            async def counting(pcm8k: bytes, hint: str | None = None) -> Transcription:
                recorded.transcribed += 1
                return await transcribe(pcm8k, hint)

            stt.transcribe = counting  # type: ignore[method-assign]
        return engine

    bridge.ctx.engine_factory = recording
    return recorded


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
    assert row["end_reason"] == "agent_ended" and row["status"] == "completed", transcript(row)
    assert row["engine"] == "local"
    assert row["call_type"] == "order"
    assert {u["model_name"] for u in row["usage"]} >= {"local/whisper-tiny.en", "local/grounded"}
    assert all(u["total_cost"] == 0 for u in row["usage"])


async def test_silence_for_the_whole_call_is_prompted_once_then_ended(
    sqlite_db: Database, tmp_path: Path, voice: Voice
) -> None:
    # the bridge's real timers (what this test is about): 15 s of silence to the prompt, 10 more
    # to the goodbye; 15 s leaves a loaded machine time to make the greeting before it
    async with local_bridge(
        sqlite_db, tmp_path, silence_prompt_after_s=15, silence_hangup_after_s=25
    ) as bridge:
        recorded = record_engines(bridge)
        # the caller stays on the line, silent, far longer than the bridge waits
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=CALL_GUARD_S),
            CallerScript(utterances=[], turn_timeout_s=REPLY_GUARD_S, hangup_after_ms=600_000),
        )
        row = await stored(bridge.db, result.call_sid)
        messages = bridge.ctx.tenants.get("bakery").messages
    assert result.closed_by == "server"  # the bridge ended it, not the caller
    assert row["end_reason"] == "caller_silent" and said(row, "caller") == ""
    # the greeting, one "are you still there?", the goodbye: nothing else, nothing twice
    greeting, *rest = agent_turns(row)
    assert greeting.startswith("Hello, thank you for calling Sweet Crumbs Bakery")
    assert rest == [messages.still_there, messages.goodbye_inactive], rest
    assert [e["kind"] for e in row["events"]].count("silence_prompt") == 1
    (engine,) = recorded.engines
    assert recorded.transcribed == 0 and engine.stats.barge_ins == 0  # silence makes no turn


async def test_the_caller_can_interrupt_the_agent(bridge: Bridge, voice: Voice) -> None:
    """Speaking over the greeting stops it (Exotel `clear`) and the question is answered."""
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), voice=voice, max_call_s=CALL_GUARD_S),
        CallerScript(
            utterances=["What time do you close on Sunday?"],
            barge_in={0: 1200},  # 1.2 s into the greeting
            turn_timeout_s=REPLY_GUARD_S,
            agent_quiet_ms=AGENT_QUIET_MS,
        ),
    )
    assert result.ok, result.error
    assert result.clears >= 1 and result.cleared_ms > 0
    row = await stored(bridge.db, result.call_sid)
    agent = [t for t in row["transcript"] if t["speaker"] == "agent"]
    (heard,) = [t["text"] for t in row["transcript"] if t["speaker"] == "caller"]
    assert "sunday" in heard.lower()
    # the greeting, cut short, then the answer to the question that cut it: what the grounded
    # brain answers to the words heard (which vary a little with the caller's voice)
    assert [t.get("interrupted") is True for t in agent] == [True, False], agent
    tenant = bridge.ctx.tenants.get("bakery")
    caller_number = CallOptions(url="").from_number  # the simulated caller's, as on the call
    answer = await GroundedBrain(tenant, caller_number).reply(heard)
    assert agent[1]["text"] == answer.text, transcript(row)


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
    recorded = record_engines(bridge)
    # the caller waits 5 s for a reply to its clicks before hanging up; that wait decides
    # nothing: a click taken for speech goes to speech-to-text the moment the detector closes
    # it, while the clicks are still being played, and is counted there
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), wav_in=path, max_call_s=CALL_GUARD_S),
        CallerScript(turn_timeout_s=5, hangup_after_ms=3000),
    )
    assert result.ok, result.error
    row = await stored(bridge.db, result.call_sid)
    assert row["stats"]["bytes_in"] >= audio.nbytes  # the clicks reached the engine
    (engine,) = recorded.engines
    # no click was taken for speech: none stopped the greeting (barge-in), none went to
    # speech-to-text
    assert engine.stats.barge_ins == 0 and result.clears == 0
    assert recorded.transcribed == 0 and said(row, "caller") == ""
    # so the agent answered nothing: the greeting was all it said
    (greeting,) = agent_turns(row)
    assert greeting.startswith("Hello, thank you for calling Sweet Crumbs Bakery")


async def test_the_llm_brain_words_replies_and_falls_back_when_the_model_fails(
    sqlite_db: Database, tmp_path: Path, voice: Voice
) -> None:
    """LOCAL_BRAIN=llm against the OpenAI-compatible double: the first answer's request fails
    (HTTP 500), so the grounded brain's words are spoken and the reason is on the call's record;
    the next answer is the model's."""
    from receptionist.sim.openai_chat import ECHO_PREFIX, FakeOpenAIChat, Fault

    async with (
        FakeOpenAIChat(api_key="llm-key") as chat,
        local_bridge(
            sqlite_db,
            tmp_path,
            **FAR_OFF,
            local_brain="llm",
            llm_base_url=chat.base_url,
            llm_model="tiny-chat",
            llm_api_key="llm-key",
            # the double answers at once; far-off deadlines keep a busy machine from turning
            # the model's answer into a timeout fallback
            llm_first_token_timeout_s=120.0,
            llm_total_timeout_s=120.0,
        ) as b,
    ):
        chat.script(Fault(status=500))
        result = await spoken_call(
            b, voice, ["How much is the black forest cake?", "What time do you close on Sunday?"]
        )
        assert result.ok, result.error
        row = await stored(b.db, result.call_sid)
    _, first, second = agent_turns(row)  # after the greeting
    assert "750" in first and not first.startswith(ECHO_PREFIX.strip())
    assert second.startswith(ECHO_PREFIX.strip())  # the double's recognisable wording
    notes = [e for e in row["events"] if e["kind"] == "llm_fallback"]
    assert len(notes) == 1 and "500" in notes[0]["detail"]  # the first answer only
    assert any(u["model_name"] == "llm/tiny-chat" for u in row["usage"])
    assert row["stage"] == "done"  # costed: llm/* is priced at 0
