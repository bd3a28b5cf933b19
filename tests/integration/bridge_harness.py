"""A real bridge (uvicorn on loopback) wired to the Gemini Live double and a real database."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from receptionist.bridge.app import BridgeContext, create_app
from receptionist.bridge.server import serve_in_process, uvicorn_options
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.db import Database

REPO = Path(__file__).resolve().parents[2]
TENANTS = REPO / "tenants"
FIXTURE_TENANTS = REPO / "tests" / "data" / "tenants"


@dataclass
class Bridge:
    ctx: BridgeContext
    port: int
    fake: FakeGeminiLive
    db: Database

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
    db: Database, tmp_path: Path, fake: FakeGeminiLive, **settings: Any
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
    ctx.store.retry_delays = (0.01,)
    async with serve_in_process(create_app(ctx), **uvicorn_options(cfg)) as port:
        yield Bridge(ctx=ctx, port=port, fake=fake, db=db)
