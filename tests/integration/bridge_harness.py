"""A real bridge (uvicorn on loopback) wired to the Gemini Live double and a real database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosedError

from receptionist.bridge.app import BridgeContext, create_app
from receptionist.bridge.server import serve_in_process, uvicorn_options
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.sim.speech import silence, synth_speech
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.telephony import exotel
from receptionist.web.deps import WebDeps

REPO = Path(__file__).resolve().parents[2]
TENANTS = REPO / "tenants"
FIXTURE_TENANTS = REPO / "tests" / "data" / "tenants"


@dataclass
class Bridge:
    ctx: BridgeContext
    port: int
    fake: FakeGeminiLive
    db: Database
    web: WebDeps | None = None  # what the API and dashboard were given (create_app)

    def url(self, tenant: str | None = "bakery", query: str = "") -> str:
        path = f"/exotel/{tenant}" if tenant else "/exotel"
        return f"ws://127.0.0.1:{self.port}{path}{query}"


def tenants_dir(tmp_path: Path) -> Path:
    """A private copy of the example tenants plus the inactive fixture tenant."""
    root = tmp_path / "tenants"
    shutil.copytree(TENANTS, root, ignore=shutil.ignore_patterns("README.md"))
    shutil.copytree(FIXTURE_TENANTS / "inactive", root / "inactive")
    return root


@contextlib.asynccontextmanager
async def running_bridge(
    db: Database, tmp_path: Path, fake: FakeGeminiLive, *, port: int = 0, **settings: Any
) -> AsyncIterator[Bridge]:
    values: dict[str, Any] = {
        "database_url": db.url,
        "tenants_dir": tenants_dir(tmp_path),
        "spool_dir": tmp_path / "spool",
        "gemini_api_key": SecretStr("test-key"),
        "gemini_base_url": fake.base_url,
        "gemini_ca_file": Path(fake.ca_file),
        "gemini_connect_timeout_s": 5.0,
        "keepalive_interval_s": 0,
        "run_worker": False,  # pipeline tests turn it on
        "analyzer": "offline",  # the Live double does not serve generateContent
        "caller_audio_max_speed": 0,  # most test callers do not pace their audio
    }
    values.update(settings)
    cfg = load_settings(**values)
    ctx = build_context(cfg, db=db)
    ctx.recorder.retry_delays = (0.01,)
    app = create_app(ctx)
    async with serve_in_process(app, port=port, **uvicorn_options(cfg)) as bound:
        yield Bridge(ctx=ctx, port=bound, fake=fake, db=db, web=app.state.web)


def bakery_auth_only(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Exotel credentials for the bakery alone (none global); returns (user, token)."""
    monkeypatch.setenv("BAKERY_EXOTEL_KEY", "bk")
    monkeypatch.setenv("BAKERY_EXOTEL_TOKEN", "bt")
    toml = bridge.ctx.settings.tenants_dir / "bakery" / "tenant.toml"
    text = (
        toml.read_text()
        .replace("# [exotel]\n# auth_user_env", "[exotel]\nauth_user_env")
        .replace("# auth_token_env", "auth_token_env")
    )
    toml.write_text(text)
    bridge.ctx.tenants.invalidate("bakery")
    return "bk", "bt"


class RawCall:
    """A hand-driven Exotel connection for sending malformed frames."""

    def __init__(self, ws: Any, call_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = "MZ" + call_sid
        self.seq = 0
        self.received: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                self.received.append(orjson.loads(msg))
                self._arrived.set()
        except ConnectionClosedError:
            pass  # a dropped line (the test aborted it): what arrived before is kept
        finally:
            self._arrived.set()  # closed: whoever waits looks again (and fails if it must)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def start(self, **params: str) -> None:
        await self.ws.send(exotel.connected_frame())
        await self.ws.send(
            exotel.start_frame(
                stream_sid=self.stream_sid,
                call_sid=self.call_sid,
                from_number="+919800000042",
                to_number="+918000000001",
                custom_parameters=params,
                sequence=self.next_seq(),
            )
        )

    async def speak(self, text: str) -> None:
        # Sent at once, as a network burst: the line plus the 600 ms of silence that ends the
        # turn stay under the 2 s the bridge lets a caller run ahead of real time.
        pcm = synth_speech(text, 8000) + silence(600, 8000)
        assert len(pcm) < 2 * 16000, "too long to send as one burst"
        for i in range(0, len(pcm), 1600):
            seq = self.next_seq()
            frame = exotel.caller_media_frame(
                self.stream_sid, pcm[i : i + 1600], sequence=seq, chunk=seq, timestamp_ms=seq * 100
            )
            await self.ws.send(frame)

    async def wait_until(self, cond: Callable[[], bool], within_s: float = 15.0) -> None:
        """Until `cond()` holds, looked at each time a frame arrives (TimeoutError: a failure)."""
        async with asyncio.timeout(within_s):
            while not cond():
                if self._reader.done():
                    raise AssertionError(f"connection closed; received {self.events()}")
                self._arrived.clear()
                await self._arrived.wait()

    def events(self) -> list[str]:
        return [str(m.get("event")) for m in self.received]

    async def wait_for(self, event: str, count: int = 1) -> None:
        await self.wait_until(lambda: self.events().count(event) >= count)

    async def hang_up(self) -> None:
        """Send `stop` and wait for the bridge to end the call (it closes the socket)."""
        await self.ws.send(exotel.stop_frame(self.stream_sid, self.call_sid, sequence=999))
        async with asyncio.timeout(15):
            await self._reader
        assert self.ws.close_code == 1000, (self.ws.close_code, self.ws.close_reason)


def sid() -> str:
    return "CAtest" + os.urandom(6).hex()


async def row_for(db: Database, call_sid: str) -> dict[str, Any]:
    """The call's row once it is finished (the bridge writes it right after the socket closes)."""
    row = None
    try:
        async with asyncio.timeout(15):
            while row is None or row["status"] == "in_progress":
                await asyncio.sleep(0.02)
                row = await get_call(db, call_sid)
    except TimeoutError:
        raise AssertionError(f"call {call_sid} never finished: {row}") from None
    return row
