"""What our Gemini Live engine puts on the wire when it opens a session."""

from __future__ import annotations

from pathlib import Path

from receptionist.engines.base import EngineRequest
from receptionist.engines.gemini_live import GeminiLiveConfig, GeminiLiveEngine, make_client
from receptionist.sim.gemini_live import FakeGeminiLive


async def test_the_live_socket_offers_no_compression() -> None:
    """permessage-deflate on the caller's audio would cost about as much CPU as the whole
    bridge (bench/ws_deflate.py), so the engine's handshake offers no extension at all; the
    same client's HTTP side still works (the session opened with the key)."""
    async with FakeGeminiLive() as fake:
        cfg = GeminiLiveConfig(
            api_key="test-key", model="m", base_url=fake.base_url, ca_file=Path(fake.ca_file)
        )
        request = EngineRequest(
            call_sid="CAwire", tenant_id="bakery", system_instruction="hi", language="en-IN"
        )
        engine = GeminiLiveEngine(make_client(cfg), cfg, request)
        await engine.connect()
        await engine.close()
    (session,) = fake.sessions
    assert session.key_ok
    assert "sec-websocket-extensions" not in session.headers, session.headers
