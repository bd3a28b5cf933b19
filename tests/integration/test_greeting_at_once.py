"""Greet at once: the first call of a tenant greets through the engine and fills the greeting
cache; later calls hear the same audio from the cache the moment `start` arrives, while the
engine connects with the greeting as history and never greets again.

Real bridge (uvicorn on loopback), real google-genai client, the Live double over TLS, SQLite.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from receptionist.bridge.greeting_cache import GreetingCache, greeting_cache_for
from receptionist.engines.base import EngineRequest, VoiceEngine
from receptionist.engines.gemini_live import greeted_note, say_instruction
from receptionist.sim.gemini_live import (
    CallScript,
    Failure,
    FakeGeminiLive,
    LiveSessionRecord,
    ScriptedTurn,
)
from receptionist.store.db import Database
from receptionist.telephony import exotel
from tests.integration.bridge_harness import Bridge, RawCall, row_for, running_bridge, sid

BAKERY_GREETING = (
    "Hello, thank you for calling Sweet Crumbs Bakery! This is Priya. How can I help you today?"
)
SALOON_GREETING = "Vanakkam! Thank you for calling Glow Unisex Saloon. How can I help you today?"
TURN = ScriptedTurn(heard="Eggless cakes?", reply="Yes, all our cakes.")


def agent_audio(call: RawCall) -> bytes:
    return b"".join(
        base64.b64decode(m["media"]["payload"]) for m in call.received if m["event"] == "media"
    )


async def greeting_only(bridge: Bridge, tenant: str = "bakery") -> tuple[bytes, dict[str, Any]]:
    """A call that hears the greeting out (its mark) and hangs up: (audio heard, stored row)."""
    async with connect(bridge.url(tenant), max_size=2**22) as ws:
        call = RawCall(ws, sid())
        await call.start()
        await call.wait_for("mark")
        await call.hang_up()
    return agent_audio(call), await row_for(bridge.db, call.call_sid)


async def echo_marks(call: RawCall) -> None:
    for m in call.received:
        if m["event"] == "mark":
            name = m["mark"]["name"]
            await call.ws.send(exotel.mark_frame(call.stream_sid, name, sequence=call.next_seq()))


def cache_of(bridge: Bridge) -> GreetingCache:
    cache = greeting_cache_for(bridge.ctx.settings)
    assert cache is not None
    return cache


def cache_files(bridge: Bridge) -> list[Path]:
    directory = cache_of(bridge).directory
    assert directory is not None
    return sorted(directory.glob("*.greeting"))


def history_config(rec: LiveSessionRecord) -> Any:
    setup = rec.setup or {}
    return setup.get("historyConfig") or setup.get("history_config")


def set_greeting(bridge: Bridge, tenant: str, old: str, new: str) -> None:
    prompt = bridge.ctx.settings.tenants_dir / tenant / "prompts" / "assistant.txt"
    text = prompt.read_text()
    assert old in text
    prompt.write_text(text.replace(old, new))
    bridge.ctx.tenants.invalidate(tenant)


async def test_cold_call_fills_the_cache_warm_call_plays_it_and_the_model_does_not_greet(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=[TURN])) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        cold_audio, cold = await greeting_only(bridge)
        await cache_of(bridge).drain()
        assert len(cache_files(bridge)) == 1  # written for every process and restart
        assert cache_files(bridge)[0].parent == tmp_path / "greetings"  # beside SPOOL_DIR

        async with connect(bridge.url("bakery"), max_size=2**22) as ws:
            call = RawCall(ws, sid())
            await call.start()
            await call.wait_for("mark")  # the cached greeting, all sent
            warm_audio = agent_audio(call)
            await echo_marks(call)  # as Exotel does once it has played them
            await call.speak(TURN.heard)  # the conversation goes on with the model
            await call.wait_for("mark", 2)
            await call.hang_up()
        warm = await row_for(sqlite_db, call.call_sid)

    # The caller heard the very audio the engine spoke on the first call.
    assert warm_audio == cold_audio and len(cold_audio) > 16000
    assert cold["stats"]["greeting_source"] == "engine"
    assert warm["stats"]["greeting_source"] == "cache"
    assert warm["stats"]["greeting_ms"] is not None

    first, second = fake.sessions
    assert [(r.kind, r.text) for r in first.replies] == [("greeting", BAKERY_GREETING)]
    assert history_config(first) is None  # a cold call opens as before
    # The warm call's model was never asked to greet: it was told the greeting was said.
    assert history_config(second) in (  # casing is mixed on the wire (PROTOCOLS.md)
        {"initialHistoryInClientContent": True},
        {"initial_history_in_client_content": True},
    )
    assert second.history == [
        {"role": "user", "text": say_instruction(BAKERY_GREETING)},
        {"role": "model", "text": BAKERY_GREETING},
    ]
    assert [(r.kind, r.text) for r in second.replies] == [("turn", TURN.reply)]

    # The greeting turn is in the transcript with its times, as on the cold call.
    for row in (cold, warm):
        greeting = row["transcript"][0]
        assert greeting["speaker"] == "agent" and greeting["text"] == BAKERY_GREETING
        assert 0 <= greeting["start_ms"] <= greeting["end_ms"]
        assert not greeting.get("interrupted")
    assert [(t["speaker"], t["text"]) for t in warm["transcript"][1:]] == [
        ("caller", TURN.heard),
        ("agent", TURN.reply),
    ]
    assert warm["transcript"][1]["start_ms"] >= warm["transcript"][0]["end_ms"]


async def test_a_caller_speaking_over_the_cached_greeting_stops_it(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # A greeting of about 18 s: the caller speaks while it certainly still plays.
    long_greeting = " ".join([BAKERY_GREETING] * 3)
    async with (
        FakeGeminiLive(script=CallScript(turns=[TURN])) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        set_greeting(bridge, "bakery", BAKERY_GREETING, long_greeting)
        full_audio, _ = await greeting_only(bridge)
        async with connect(bridge.url("bakery"), max_size=2**22) as ws:
            call = RawCall(ws, sid())
            await call.start()
            await call.wait_for("media")
            await call.speak(TURN.heard)
            await call.wait_for("clear")
            await call.wait_for("mark")  # the model's answer to what the caller said
            await call.hang_up()
        row = await row_for(sqlite_db, call.call_sid)

    events = call.events()
    assert events.count("clear") == 1
    before_clear = events[: events.index("clear")]
    assert "mark" not in before_clear  # the greeting never finished
    heard = sum(1 for e in before_clear if e == "media")
    assert heard > 0 and len(agent_audio(call)) < len(full_audio)
    assert row["stats"]["clears"] == 1 and row["stats"]["interruptions"] == 1
    agent = [t for t in row["transcript"] if t["speaker"] == "agent"]
    assert agent[0]["text"] == long_greeting and agent[0]["interrupted"] is True
    assert [(t["speaker"], t["text"]) for t in row["transcript"][1:]] == [
        ("caller", TURN.heard),
        ("agent", TURN.reply),
    ]
    assert fake.sessions[1].replies[0].kind == "turn"  # the model answered, it did not greet


async def test_a_model_refusing_initial_history_is_told_in_its_instruction(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """A Live model whose setup has no `historyConfig`: the warm call's engine connects again
    without it, with the greeting named in the system instruction, and the process remembers
    the model (its own name here: the memory is per process)."""
    refusing = Failure(reject_history_config=True)
    async with (
        FakeGeminiLive(script=CallScript(turns=[TURN]), failure=refusing) as fake,
        running_bridge(sqlite_db, tmp_path, fake, gemini_live_model="no-history-live") as bridge,
    ):
        await greeting_only(bridge)  # cold: no history asked for
        async with connect(bridge.url("bakery"), max_size=2**22) as ws:
            call = RawCall(ws, sid())
            await call.start()
            await call.wait_for("mark")
            await echo_marks(call)
            await call.speak(TURN.heard)
            await call.wait_for("mark", 2)
            await call.hang_up()
        row = await row_for(sqlite_db, call.call_sid)
        _, again = await greeting_only(bridge)  # remembered: no refused attempt first

    cold, refused, warm, third = fake.sessions
    assert history_config(cold) is None
    assert refused.error == "historyConfig refused" and refused.close_code == 1007
    for rec in (warm, third):
        assert history_config(rec) is None and rec.history == []
        assert (
            (rec.system_instruction or "").strip().endswith(greeted_note(BAKERY_GREETING).strip())
        )
    assert [(r.kind, r.text) for r in warm.replies] == [("turn", TURN.reply)]
    assert third.replies == []
    assert row["stats"]["greeting_source"] == again["stats"]["greeting_source"] == "cache"
    assert [t["text"] for t in row["transcript"]] == [BAKERY_GREETING, TURN.heard, TURN.reply]


async def test_tenants_never_share_and_a_tenant_edit_misses(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        bakery_audio, _ = await greeting_only(bridge, "bakery")
        _, saloon = await greeting_only(bridge, "saloon")  # bakery is cached: saloon is not
        new_greeting = "Namaste! Sweet Crumbs Bakery here, fresh cakes every day."
        set_greeting(bridge, "bakery", BAKERY_GREETING, new_greeting)
        _, edited = await greeting_only(bridge, "bakery")  # a new tenant version: a miss
        edited_audio, warm = await greeting_only(bridge, "bakery")
        await cache_of(bridge).drain()
        assert len(cache_files(bridge)) == 3  # old bakery, saloon, new bakery

    assert [s.replies[0].kind if s.replies else None for s in fake.sessions] == [
        "greeting",
        "greeting",
        "greeting",
        None,
    ]
    assert [s.replies[0].text for s in fake.sessions[:3]] == [
        BAKERY_GREETING,
        SALOON_GREETING,
        new_greeting,
    ]
    assert saloon["transcript"][0]["text"] == SALOON_GREETING
    assert edited["stats"]["greeting_source"] == "engine"
    assert warm["stats"]["greeting_source"] == "cache"
    assert warm["transcript"][0]["text"] == new_greeting
    assert edited_audio != bakery_audio


async def test_cache_off_greets_through_the_engine_every_time(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, greeting_cache=False) as bridge,
    ):
        await greeting_only(bridge)
        _, row = await greeting_only(bridge)
    assert [s.replies[0].kind for s in fake.sessions] == ["greeting", "greeting"]
    assert row["stats"]["greeting_source"] == "engine"
    assert not (tmp_path / "greetings").exists()


async def test_an_engine_without_the_capability_greets_as_before(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """A wrapped engine (bench taps, for one) does not offer `greeting_played`: no cache."""

    class Wrapped:
        def __init__(self, inner: VoiceEngine) -> None:
            self.inner = inner
            self.name, self.model = inner.name, inner.model
            self.input_rate, self.output_rate = inner.input_rate, inner.output_rate
            self.connect, self.say = inner.connect, inner.say
            self.send_audio, self.events, self.close = inner.send_audio, inner.events, inner.close

    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        factory = bridge.ctx.engine_factory

        def wrapping(request: EngineRequest) -> VoiceEngine:
            return Wrapped(factory(request))  # type: ignore[return-value]

        bridge.ctx.engine_factory = wrapping
        await greeting_only(bridge)
        await greeting_only(bridge)
    assert [s.replies[0].kind for s in fake.sessions] == ["greeting", "greeting"]
