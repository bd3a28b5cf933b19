"""The unmodified google-genai SDK against FakeGeminiLive over a real TLS WebSocket.

The double's playback clock is held still by the tests (audio "plays" only when a test moves it
on) and its replies and handshake can be held part-way, so barge-in and timing outcomes are
decided by the test, not by how fast the machine runs it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import orjson
import pytest
import websockets
from google import genai
from google.genai import errors, types
from websockets.asyncio.client import connect as ws_connect

from receptionist.sim.gemini_live import (
    AGENT_SAMPLE_RATE,
    CallScript,
    Failure,
    FakeGeminiLive,
    Hold,
    ScriptedTurn,
)
from receptionist.sim.speech import silence, synth_speech

MODEL = "gemini-live-test"
RATE_IN = 16000
MIME_IN = "audio/pcm;rate=16000"


def _client(fake: FakeGeminiLive, api_key: str = "test-key") -> genai.Client:
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=fake.base_url, async_client_args={"ssl": fake.client_ssl_context}
        ),
    )


def _config(**kw: object) -> types.LiveConnectConfig:
    base: dict[str, object] = {
        "response_modalities": ["AUDIO"],
        "system_instruction": "You are the receptionist of Sharma Clinic.",
        "input_audio_transcription": {},
        "output_audio_transcription": {},
    }
    base.update(kw)
    return types.LiveConnectConfig(**base)  # type: ignore[arg-type]


class Clock:
    """The double's clock, held still: agent audio it sent "plays" only as the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def play(self, seconds: float) -> None:
        """Let `seconds` of agent audio play out (and a millisecond more: its end has passed)."""
        self.now += seconds + 0.001


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeGeminiLive]:
    async with FakeGeminiLive(
        script=CallScript(
            turns=[
                ScriptedTurn("I need an appointment with Dr Sharma", "Sure. Which day?"),
                ScriptedTurn("Tomorrow morning please", "Booked for ten."),
            ]
        ),
        clock=clock,
    ) as f:
        yield f


class Turn:
    """Everything the SDK yielded during one ``receive()`` loop."""

    def __init__(self) -> None:
        self.msgs: list[types.LiveServerMessage] = []
        self.audio = b""
        self.audio_mimes: set[str] = set()
        self.chunks = 0
        self.input_tx: list[str] = []
        self.output_tx: list[str] = []
        self.events: list[str] = []
        self.usage: types.UsageMetadata | None = None
        self.resumption: list[types.LiveServerSessionResumptionUpdate] = []

    def add(self, msg: types.LiveServerMessage) -> None:
        self.msgs.append(msg)
        sc = msg.server_content
        if msg.usage_metadata is not None:
            self.usage = msg.usage_metadata
        if msg.session_resumption_update is not None:
            self.resumption.append(msg.session_resumption_update)
        if sc is None:
            return
        if sc.model_turn and sc.model_turn.parts:
            for part in sc.model_turn.parts:
                if part.inline_data and part.inline_data.data:
                    self.audio += part.inline_data.data
                    self.audio_mimes.add(part.inline_data.mime_type or "")
                    self.chunks += 1
                    self.events.append("audio")
        if sc.input_transcription and sc.input_transcription.text:
            self.input_tx.append(sc.input_transcription.text)
            self.events.append("input_tx")
        if sc.output_transcription and sc.output_transcription.text:
            self.output_tx.append(sc.output_transcription.text)
            self.events.append("output_tx")
        for flag in ("interrupted", "generation_complete", "turn_complete"):
            if getattr(sc, flag):
                self.events.append(flag)

    @property
    def audio_s(self) -> float:
        return len(self.audio) / (2 * AGENT_SAMPLE_RATE)


async def _turn(session: genai.live.AsyncSession) -> Turn:
    t = Turn()
    async with asyncio.timeout(10):
        async for msg in session.receive():
            t.add(msg)
    return t


async def _say(session: genai.live.AsyncSession, pcm: bytes, chunk: int = 640) -> None:
    for i in range(0, len(pcm), chunk):
        await session.send_realtime_input(
            audio=types.Blob(data=pcm[i : i + chunk], mime_type=MIME_IN)
        )


async def _greet(session: genai.live.AsyncSession, text: str) -> Turn:
    await session.send_client_content(
        turns=types.Content(role="user", parts=[types.Part(text=text)]), turn_complete=True
    )
    return await _turn(session)


async def test_setup_recorded_and_greeting_spoken_back(fake: FakeGeminiLive) -> None:
    greeting = "Namaste! Welcome to Sharma Clinic."
    async with _client(fake).aio.live.connect(model=MODEL, config=_config()) as session:
        t = await _greet(session, greeting)
    rec = fake.sessions[0]
    assert rec.key_ok and rec.api_key == "test-key"
    assert rec.headers["x-goog-api-key"] == "test-key"
    assert rec.path.endswith("GenerativeService.BidiGenerateContent")
    assert rec.model == f"models/{MODEL}"
    assert rec.system_instruction == "You are the receptionist of Sharma Clinic."
    assert rec.setup is not None and "inputAudioTranscription" in rec.setup
    assert rec.frame_counts == {"setup": 1, "client_content": 1}
    assert rec.frames[0]["client_content"]["turns"][0]["parts"][0]["text"] == greeting

    assert "".join(t.output_tx) == greeting
    assert len(t.output_tx) == len(greeting.split())
    assert t.audio == synth_speech(greeting, AGENT_SAMPLE_RATE)
    assert t.audio_s == pytest.approx(0.065 * len(greeting), abs=0.001)
    assert t.audio_mimes == {"audio/pcm;rate=24000"}
    assert t.chunks == -(-len(t.audio) // 1920)  # 40 ms chunks
    assert t.input_tx == []
    assert t.events[-2:] == ["generation_complete", "turn_complete"]
    assert t.events.index("output_tx") < t.events.index("audio")  # interleaved, text first
    assert t.usage is not None and t.usage.prompt_token_count and t.usage.response_token_count
    assert rec.replies[0].kind == "greeting" and rec.replies[0].completed


async def test_script_greeting_and_callable_script() -> None:
    seen: list[dict] = []

    def script_for(setup: dict) -> CallScript:
        seen.append(setup)
        return CallScript(greeting="Hello from the script.")

    async with (
        FakeGeminiLive(script=script_for) as fake,
        _client(fake).aio.live.connect(model=MODEL, config=_config()) as session,
    ):
        t = await _greet(session, "Namaste! Welcome to ...")
    assert "".join(t.output_tx) == "Hello from the script."
    assert seen and seen[0]["model"] == f"models/{MODEL}"


async def test_two_turn_scripted_conversation(fake: FakeGeminiLive, clock: Clock) -> None:
    config = _config(session_resumption=types.SessionResumptionConfig())
    async with _client(fake).aio.live.connect(model=MODEL, config=config) as session:
        g = await _greet(session, "Hi.")
        clock.play(g.audio_s)  # the greeting has played: speaking now is no barge-in
        await _say(session, silence(200, RATE_IN))  # background silence is not a turn
        await _say(session, synth_speech("book me an appointment", RATE_IN) + silence(600, RATE_IN))
        t1 = await _turn(session)
        clock.play(t1.audio_s)
        await _say(session, synth_speech("tomorrow", RATE_IN) + silence(500, RATE_IN))
        t2 = await _turn(session)
        clock.play(t2.audio_s)
        await _say(session, synth_speech("thanks", RATE_IN) + silence(600, RATE_IN))
        t3 = await _turn(session)

    assert "".join(t1.input_tx) == "I need an appointment with Dr Sharma"
    assert len(t1.input_tx) == 2  # arrives in pieces
    assert "".join(t1.output_tx) == "Sure. Which day?"
    assert t1.audio == synth_speech("Sure. Which day?", AGENT_SAMPLE_RATE)
    assert t1.events.index("input_tx") < t1.events.index("audio")
    assert "".join(t2.input_tx) == "Tomorrow morning please"
    assert "".join(t2.output_tx) == "Booked for ten."
    assert "".join(t3.output_tx) == "Sure, I can help with that."  # fallback
    assert t3.input_tx == []

    # usage: audio at 25 tokens/s out, prompt (whole context) grows every turn
    usages = [t.usage for t in (g, t1, t2, t3)]
    assert all(u is not None for u in usages)
    prompts = [u.prompt_token_count for u in usages]  # type: ignore[union-attr]
    assert prompts == sorted(prompts) and len(set(prompts)) == 4
    assert usages[1].response_token_count == round(t1.audio_s * 25)  # type: ignore[union-attr]
    u = usages[2]
    assert u is not None and u.total_token_count == u.prompt_token_count + u.response_token_count
    assert {d.modality.value for d in u.prompt_tokens_details} == {"TEXT", "AUDIO"}  # type: ignore[union-attr]
    assert [d.modality.value for d in u.response_tokens_details] == ["AUDIO"]  # type: ignore[union-attr]

    # resumption handles follow each turnComplete (seen at the start of the next loop)
    assert [r.resumable for r in t1.resumption] == [True]
    assert t1.resumption[0].new_handle

    rec = fake.sessions[0]
    assert rec.heard == ["I need an appointment with Dr Sharma", "Tomorrow morning please", ""]
    assert [t.source for t in rec.caller_turns] == ["audio"] * 3
    assert rec.caller_turns[0].speech_ms == pytest.approx(65 * 22, abs=25)
    assert rec.interruptions == []
    assert rec.audio_chunks > 0 and rec.frames == rec.frames[:1]  # audio frames not stored
    assert rec.audio_ms == pytest.approx(rec.audio_bytes / 32, rel=1e-6)
    assert rec.completed_replies == 4
    assert len(rec.resumption_handles) == 4


async def test_barge_in_interrupts_and_stops_the_reply() -> None:
    long_reply = "This is a rather long greeting that keeps going on and on for a few seconds."
    # The greeting stops after 200 ms (five 40 ms chunks) and is never released: the caller
    # speaks over a reply that is still being generated, however slowly this runs.
    hold = Hold(after_ms=200)
    script = CallScript(greeting=long_reply, greeting_hold=hold, fallback_reply="Okay, go on.")
    async with (
        FakeGeminiLive(script=script, realtime=True) as fake,
        _client(fake).aio.live.connect(model=MODEL, config=_config()) as session,
    ):
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="Hello")]),
            turn_complete=True,
        )
        t = Turn()
        barged = False
        async with asyncio.timeout(10):
            async for msg in session.receive():
                t.add(msg)
                if not barged and t.chunks == 5:
                    barged = True
                    await hold.wait_reached()
                    await _say(session, synth_speech("wait", RATE_IN) + silence(600, RATE_IN))
    full = synth_speech(long_reply, AGENT_SAMPLE_RATE)
    i = t.events.index("interrupted")
    before, after = t.events[:i], t.events[i + 1 :]
    old_audio = before.count("audio") * 1920
    assert old_audio == 5 * 1920  # not one chunk after the hold
    assert t.audio[:old_audio] == full[:old_audio]
    # nothing of the interrupted reply after `interrupted`: next comes the new turn
    assert "generation_complete" not in before
    assert after[0] == "audio" or after.index("output_tx") < after.index("audio")
    assert "".join(t.output_tx).endswith("Okay, go on.")
    rec = fake.sessions[0]
    assert len(rec.interruptions) == 1
    assert rec.replies[0].interrupted and not rec.replies[0].completed
    assert rec.replies[0].audio_ms == pytest.approx(old_audio / 48, abs=1)
    assert rec.caller_turns[0].barge_in
    assert rec.replies[1].completed


async def test_barge_in_during_playback_after_turn_complete(fake: FakeGeminiLive) -> None:
    # realtime=False: the audio is all sent at once, but it "plays" for its duration; the clock
    # is never moved on here, so the greeting is still playing when the caller speaks
    async with _client(fake).aio.live.connect(model=MODEL, config=_config()) as session:
        await _greet(session, "Namaste! Welcome to Sharma Clinic, how can I help you today?")
        await _say(session, synth_speech("hello", RATE_IN) + silence(600, RATE_IN))
        t = await _turn(session)
    assert t.events[0] == "interrupted"
    assert "".join(t.output_tx) == "Sure. Which day?"
    rec = fake.sessions[0]
    assert rec.replies[0].completed and rec.replies[0].interrupted
    assert rec.caller_turns[0].barge_in


async def test_audio_stream_end_and_legacy_media_chunks(fake: FakeGeminiLive) -> None:
    async with _client(fake).aio.live.connect(model=MODEL, config=_config()) as session:
        pcm = synth_speech("hello there", RATE_IN)
        # one big legacy media chunk (split into 20 ms VAD windows by the double)
        await session.send_realtime_input(media=types.Blob(data=pcm, mime_type=MIME_IN))
        await session.send_realtime_input(audio_stream_end=True)
        t = await _turn(session)
    assert "".join(t.input_tx) == "I need an appointment with Dr Sharma"
    assert fake.sessions[0].caller_turns[0].speech_ms == pytest.approx(65 * 11, abs=25)


async def test_text_input_is_a_caller_turn(fake: FakeGeminiLive) -> None:
    async with _client(fake).aio.live.connect(model=MODEL, config=_config()) as session:
        await session.send_realtime_input(text="I need an appointment")
        t = await _turn(session)
    assert t.input_tx == []
    assert "".join(t.output_tx) == "Sure. Which day?"
    assert fake.sessions[0].caller_turns[0].source == "text"


async def test_wrong_key_is_rejected_with_a_clear_error(fake: FakeGeminiLive) -> None:
    with pytest.raises(errors.APIError, match="API key not valid") as ei:
        async with _client(fake, api_key="wrong-key").aio.live.connect(
            model=MODEL, config=_config()
        ):
            pass
    assert ei.value.code == 1007
    assert fake.sessions[0].api_key == "wrong-key" and not fake.sessions[0].key_ok


async def test_reject_key_failure() -> None:
    async with FakeGeminiLive(failure=Failure(reject_key=True)) as fake:
        with pytest.raises(errors.APIError, match="API key not valid"):
            async with _client(fake).aio.live.connect(model=MODEL, config=_config()):
                pass


async def test_fail_setup() -> None:
    async with FakeGeminiLive(failure=Failure(fail_setup=True)) as fake:
        with pytest.raises(errors.APIError) as ei:
            async with _client(fake).aio.live.connect(model=MODEL, config=_config()):
                pass
    assert ei.value.code == 1011


async def test_close_after_turns() -> None:
    async with (
        FakeGeminiLive(failure=Failure(close_after_turns=1)) as fake,
        _client(fake).aio.live.connect(model=MODEL, config=_config()) as session,
    ):
        t = await _greet(session, "Hello")
        assert "turn_complete" in t.events
        with pytest.raises(errors.APIError) as ei:
            await _turn(session)
    assert ei.value.code == 1011
    async with asyncio.timeout(10):  # the double records the close once its handler has ended
        while fake.sessions[0].close_code is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert fake.sessions[0].close_code == 1011


async def test_go_away_and_slow_handshake() -> None:
    handshake = Hold()
    failure = Failure(go_away_after_s=0.05, hold_handshake=handshake)
    async with FakeGeminiLive(failure=failure) as fake:
        opened = asyncio.Event()

        async def call() -> types.LiveServerMessage:
            async with _client(fake).aio.live.connect(model=MODEL, config=_config()) as session:
                opened.set()
                async for msg in session.receive():
                    if msg.go_away is not None:
                        return msg
            raise AssertionError("the session ended without goAway")

        task = asyncio.create_task(call())
        await handshake.wait_reached()
        assert not opened.is_set() and not task.done()  # the client waits for the handshake
        handshake.release()
        async with asyncio.timeout(10):
            msg = await task
    assert opened.is_set()
    assert msg.go_away is not None and msg.go_away.time_left
    assert fake.sessions[0].go_away_sent_at is not None


async def test_ssl_cert_file_alternative(
    fake: FakeGeminiLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", fake.ca_file)
    client = genai.Client(
        api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url)
    )
    async with client.aio.live.connect(model=MODEL, config=_config()) as session:
        t = await _greet(session, "Hi.")
    assert "".join(t.output_tx) == "Hi."


# ------------------------------------------------------------------ raw websockets clients


async def _raw_recv(ws: websockets.asyncio.client.ClientConnection) -> dict:
    async with asyncio.timeout(10):
        return orjson.loads(await ws.recv())


async def _raw_until_turn_complete(ws: websockets.asyncio.client.ClientConnection) -> list[dict]:
    out = []
    while True:
        msg = await _raw_recv(ws)
        out.append(msg)
        if msg.get("serverContent", {}).get("turnComplete"):
            return out


def _uri(fake: FakeGeminiLive, path: str) -> str:
    return f"wss://127.0.0.1:{fake.port}{path}"


async def test_raw_camel_case_setup_manual_vad_and_key_query(fake: FakeGeminiLive) -> None:
    path = (
        "//ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        "?key=test-key"
    )
    async with ws_connect(_uri(fake, path), ssl=fake.client_ssl_context) as ws:
        setup = {
            "setup": {
                "model": "models/x",
                "generationConfig": {"responseModalities": ["AUDIO"]},
                "systemInstruction": {"parts": [{"text": "Be nice."}]},
                "inputAudioTranscription": {},
                "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
            }
        }
        await ws.send(orjson.dumps(setup).decode())  # text frame
        assert await _raw_recv(ws) == {"setupComplete": {}}
        await ws.send(orjson.dumps({"realtimeInput": {"activityStart": {}}}))  # binary frame
        blob = {
            "data": __import__("base64").b64encode(synth_speech("hi", RATE_IN)).decode(),
            "mimeType": MIME_IN,
        }
        await ws.send(orjson.dumps({"realtimeInput": {"audio": blob}}))
        await ws.send(orjson.dumps({"realtimeInput": {"activityEnd": {}}}))
        msgs = await _raw_until_turn_complete(ws)
    sc = [m["serverContent"] for m in msgs if "serverContent" in m]
    assert "".join(s["inputTranscription"]["text"] for s in sc if "inputTranscription" in s) == (
        "I need an appointment with Dr Sharma"
    )
    assert not any("outputTranscription" in s for s in sc)  # not asked for
    audio_parts = [p for s in sc for p in s.get("modelTurn", {}).get("parts", [])]
    assert audio_parts and all(
        p["inlineData"]["mimeType"] == "audio/pcm;rate=24000" for p in audio_parts
    )
    assert "usageMetadata" in msgs[-1]
    rec = fake.sessions[0]
    assert rec.key_ok and rec.system_instruction == "Be nice."
    assert rec.caller_turns[0].source == "activity"


async def test_raw_snake_case_setup_text_modality(fake: FakeGeminiLive) -> None:
    path = "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
    async with ws_connect(
        _uri(fake, path),
        ssl=fake.client_ssl_context,
        additional_headers={"x-goog-api-key": "test-key"},
    ) as ws:
        setup = {
            "setup": {
                "model": "models/x",
                "generation_config": {"response_modalities": ["TEXT"]},
                "system_instruction": "Plain string instruction.",
                "session_resumption": {},
            }
        }
        await ws.send(orjson.dumps(setup))
        assert await _raw_recv(ws) == {"setupComplete": {}}
        cc = {
            "client_content": {
                "turns": [{"role": "user", "parts": [{"text": "Hi there"}]}],
                "turn_complete": True,
            }
        }
        await ws.send(orjson.dumps(cc))
        msgs = await _raw_until_turn_complete(ws)
        resumption = await _raw_recv(ws)
    text = "".join(
        p["text"]
        for m in msgs
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    )
    assert text == "Hi there"
    assert msgs[-1]["usageMetadata"]["responseTokensDetails"] == [
        {"modality": "TEXT", "tokenCount": 2}
    ]
    assert resumption["sessionResumptionUpdate"]["resumable"] is True
    assert fake.sessions[0].system_instruction == "Plain string instruction."


async def test_other_path_is_404_and_bad_first_frame(fake: FakeGeminiLive) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as ei:
        async with ws_connect(_uri(fake, "/ws/other.Service"), ssl=fake.client_ssl_context):
            pass
    assert ei.value.response.status_code == 404
    assert fake.rejected_paths == ["/ws/other.Service"]
    path = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent?key=test-key"
    async with ws_connect(_uri(fake, path), ssl=fake.client_ssl_context) as ws:
        await ws.send(orjson.dumps({"realtime_input": {"text": "no setup"}}))
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as ce:
            await _raw_recv(ws)
    assert ce.value.rcvd is not None and ce.value.rcvd.code == 1007


def test_client_context_trusts_only_the_test_ca(fake: FakeGeminiLive) -> None:
    ctx = fake.client_ssl_context
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname
    assert fake.base_url == f"https://127.0.0.1:{fake.port}"
