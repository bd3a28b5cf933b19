"""The command line and the operational endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from receptionist.cli import app
from receptionist.sim.call_cli import run_call_command
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.db import Database
from receptionist.store.schema import tenant_configs
from tests.integration.bridge_harness import FIXTURE_TENANTS, TENANTS, running_bridge
from tests.prom import Changes, parse, sample

runner = CliRunner()


def invoke(args: list[str], tmp_path: Path, **env: str) -> tuple[int, str]:
    base = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TENANTS_DIR": str(TENANTS)}
    result = runner.invoke(app, args, env={**base, **env})
    return result.exit_code, result.output


def test_tenants_validate_examples_ok(tmp_path: Path) -> None:
    code, out = invoke(["tenants", "validate"], tmp_path)
    assert code == 0, out
    assert {"bakery", "saloon", "clinic"} <= {line.split()[-1] for line in out.splitlines()}


def test_tenants_validate_reports_file_and_line(tmp_path: Path) -> None:
    code, out = invoke(["tenants", "validate"], tmp_path, TENANTS_DIR=str(FIXTURE_TENANTS))
    assert code == 1
    assert "broken_toml/tenant.toml:" in out
    assert "bad_phone/tenant.toml:" in out
    assert "ok      minimal" in out


def test_tenants_sync_upserts(tmp_path: Path) -> None:
    code, out = invoke(["tenants", "sync"], tmp_path)
    assert code == 0, out
    # the four example tenants: bakery, clinic, pharmacy, saloon
    assert out.count("updated") == 4
    code, out = invoke(["tenants", "sync"], tmp_path)
    assert out.count("unchanged") == 4

    async def read() -> list[dict[str, Any]]:
        db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
        try:
            async with db.session() as conn:
                rows = await conn.execute(sa.select(tenant_configs))
                return [dict(r) for r in rows.mappings()]
        finally:
            await db.dispose()

    rows = asyncio.run(read())  # the CLI runs its own event loop, so this test has none
    by_id = {r["tenant_id"]: r for r in rows}
    assert by_id["clinic"]["languages"][0] == "hi-IN"
    assert "appointment" in by_id["clinic"]["call_type_schema"]
    assert by_id["clinic"]["version"] == 1  # its files are stored too (stored_tenants.py)


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    code, out = invoke(["tenants", "list"], tmp_path, PORT="eighty")
    assert code == 2
    assert "PORT" in out and len(out.strip().splitlines()) == 1


async def test_health_ready_metrics(sqlite_db: Database, tmp_path: Path) -> None:
    script = CallScript(turns=[ScriptedTurn(heard="Hi", reply="Hello!")])
    changes = Changes()
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as b,
    ):
        console = Console(record=True, width=200)
        code = await run_call_command(
            url=b.url("bakery"),
            lines=["Hi"],
            wav_in=None,
            wav_out=tmp_path / "agent.wav",
            calls=1,
            concurrency=1,
            realtime=False,
            sample_rate=8000,
            from_number="+919800000077",
            auth=None,
            console=console,
        )
        assert code == 0, console.export_text()
        assert (tmp_path / "agent.wav").stat().st_size > 44
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.port}") as http:
            health = (await http.get("/healthz")).json()
            ready = await http.get("/readyz")
            metrics = (await http.get("/metrics")).text
    assert health == {"status": "ok", "active_calls": 0}
    assert ready.status_code == 200
    assert changes("receptionist_calls_ended_total", status="completed", tenant="bakery") == 1
    scraped = parse(metrics)  # the scrape says what this process counted
    assert sample(scraped, "receptionist_active_calls") == 0
    assert sample(scraped, "receptionist_bridge_latency_in_seconds_count") >= 1
    assert sample(scraped, "receptionist_greeting_seconds_count") >= 1


async def test_readyz_reports_database_down(tmp_path: Path) -> None:
    broken = Database("postgresql://nobody@127.0.0.1:9/nowhere")
    async with (
        FakeGeminiLive() as fake,
        running_bridge(broken, tmp_path, fake) as b,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.port}") as http,
    ):
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert health.status_code == 200  # alive, just not ready
    await broken.dispose()


async def test_keepalive_pings_reach_exotel(sqlite_db: Database, tmp_path: Path) -> None:
    """Raw socket, so we see the ping frames a WebSocket library would answer silently."""
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, keepalive_interval_s=0.2) as b,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        writer.write(
            b"GET /exotel/bakery HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        status = await reader.readuntil(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101")
        async with asyncio.timeout(3):
            first = await reader.readexactly(2)
        writer.close()
    assert first[0] == 0x89  # FIN + opcode 9: ping
