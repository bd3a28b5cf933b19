"""Streams that lie, flood or break: a call row is written only by the stream that created it,
outside values are cleaned before they are stored or shown, a hung database never silences a
caller, audio beyond real time is dropped, and an abrupt end names its cause."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import orjson
import pytest
import sqlalchemy.engine.url as sa_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from receptionist.bridge.budget import BudgetGuard
from receptionist.bridge.server import WS_HARD_MAX_BYTES
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import (
    CallOwnedElsewhere,
    FinishedCall,
    NewCall,
    create_call,
    finish_call,
    get_call,
    list_calls,
)
from receptionist.store.db import Database
from receptionist.telephony import exotel
from tests.integration.bridge_harness import (
    REPO,
    Bridge,
    RawCall,
    bakery_auth_only,
    row_for,
    running_bridge,
    sid,
)
from tests.integration.test_notifications import insert, new
from tests.prom import Changes

TURNS = [ScriptedTurn(heard="Are you open today?", reply="Yes, till nine.")]
RECEPTIONIST = Path(sys.executable).parent / "receptionist"


async def _finished_call(bridge: Bridge, auth: tuple[str, str] | None = None) -> dict[str, Any]:
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), realtime=False, auth=auth),
        CallerScript(utterances=["Are you open today?"]),
    )
    assert result.ok, result.error
    return await row_for(bridge.db, result.call_sid)


async def _replay_start(url: str, call_sid: str, headers: dict[str, str] | None = None) -> int:
    """Open a stream reusing `call_sid`, send its `start`, and return the close code (1008 is a
    refusal). A stream that is accepted is hung up after the start."""
    async with connect(url, additional_headers=headers or {}) as ws:
        call = RawCall(ws, call_sid)
        await call.start()
        done, _ = await asyncio.wait([call._reader], timeout=15)  # ends when the server closes
        if not done:
            await call.hang_up()
    with contextlib.suppress(ConnectionClosed):
        await call._reader
    assert ws.close_code is not None
    return ws.close_code


async def test_unauthenticated_streams_cannot_touch_a_finished_call(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        auth = bakery_auth_only(bridge, monkeypatch)
        before = await _finished_call(bridge, auth)
        changes = Changes()
        for url in (bridge.url(None), bridge.url("nope"), bridge.url(None, "?tenant=nope")):
            assert await _replay_start(url, before["call_sid"]) == 1008
            assert await _replay_start(url, sid()) == 1008  # a fresh sid plants no row either
        unavailable = changes("receptionist_calls_rejected_total", reason="tenant_unavailable")
        spool = bridge.ctx.settings.spool_dir
    after = await get_call(db, before["call_sid"])
    assert after == before  # not one field changed
    assert [c["call_sid"] for c in await list_calls(db)] == [before["call_sid"]]
    assert unavailable == 6
    assert not spool.exists() or not any(spool.rglob("*.json"))  # nothing kept anywhere


async def test_a_second_stream_reusing_a_sid_is_refused_and_changes_nothing(
    db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        changes = Changes()
        before = await _finished_call(bridge)
        # authentic (no credentials are configured), another tenant, the same call_sid
        assert await _replay_start(bridge.url("saloon"), before["call_sid"]) == 1008
        rejected = changes("receptionist_calls_rejected_total")
        duplicate = changes("receptionist_calls_rejected_total", reason="duplicate_call_sid")
        ended = changes("receptionist_calls_ended_total")
        completed = changes("receptionist_calls_ended_total", status="completed")
    after = await get_call(db, before["call_sid"])
    assert after == before
    assert len(await list_calls(db)) == 1
    assert rejected == duplicate == 1
    assert ended == completed == 1  # the refused stream is not counted as a call


async def test_the_store_never_lets_a_second_stream_write_a_call(db: Database) -> None:
    first, second = NewCall(call_sid="CA1", tenant="bakery"), NewCall(call_sid="CA1", tenant="x")
    assert await create_call(db, first) is True
    assert await create_call(db, first) is True  # idempotent for its owner
    assert await create_call(db, second) is False
    with pytest.raises(CallOwnedElsewhere):
        await finish_call(
            db, FinishedCall(call_sid="CA1", status="completed", session_id=second.session_id)
        )
    row = await get_call(db, "CA1")
    assert row is not None and row["tenant"] == "bakery" and row["status"] == "in_progress"
    await finish_call(
        db, FinishedCall(call_sid="CA1", status="completed", session_id=first.session_id)
    )
    row = await get_call(db, "CA1")
    assert row is not None and row["status"] == "completed"


async def test_a_live_call_sid_reused_at_once_is_refused_and_the_call_goes_on(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
        connect(bridge.url("bakery")) as ws,
    ):
        first = RawCall(ws, sid())
        await first.start()
        await first.wait_for("media")  # live: greeting audio flows
        assert await _replay_start(bridge.url("bakery"), first.call_sid) == 1008
        await first.speak("Are you open today?")
        await first.wait_for("mark", count=2)  # greeting + answer: the first call went on
        await first.hang_up()
    row = await row_for(sqlite_db, first.call_sid)
    assert row["status"] == "completed" and row["stats"]["agent_turns"] >= 2
    assert TURNS[0].reply in [t["text"] for t in row["transcript"]]


async def test_hostile_start_values_are_stored_clean_and_shown_safely(
    db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
        connect(bridge.url("bakery")) as ws,
    ):
        call = RawCall(ws, sid())
        await ws.send(exotel.connected_frame())
        await ws.send(
            exotel.start_frame(
                stream_sid="MZ" + call.call_sid,
                call_sid=call.call_sid,
                from_number="+91\x0098000\r\n00042\x1b[31m[/]",
                to_number="+918000000001",
                custom_parameters={"note": "[/]\x00\x1b]0;owned\x07", "\x00": "x"},
            )
        )
        await call.wait_for("media")
        await call.hang_up()
    row = await row_for(db, call.call_sid)
    assert row["from_number"] == "+919800000042[31m[/]"
    assert row["custom_parameters"] == {"note": "[/]]0;owned"}
    assert "db_unavailable_at_start" not in {e["kind"] for e in row["events"]}

    # a stored message whose provider error and text carry markup and escape codes
    await insert(
        db,
        new(call.call_sid, error="[/]\x1b[2J 400", details={"text": "[bold]\x1b]0;owned\x07"}),
    )
    env = {**os.environ, "DATABASE_URL": db.url, "TENANTS_DIR": str(REPO / "tenants")}
    for args, shows in (
        (["calls", "list"], call.call_sid),
        (["calls", "show", call.call_sid], "[31m[/]"),
        (["messages", "list"], "why: [/]\\x1b[2J 400"),  # the escape made visible
    ):
        code, out, err = await cli(args, env)
        assert code == 0, (args, err)
        assert "\x1b" not in out and "\x00" not in out and "\x07" not in out
        assert shows in out, out


async def cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """The installed command, as a user runs it."""
    proc = await asyncio.create_subprocess_exec(
        str(RECEPTIONIST), *args, env=env, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers: a frozen database server."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_hung_database_does_not_silence_a_caller_with_a_budget(
    sqlite_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        black_hole() as port,
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        toml = bridge.ctx.settings.tenants_dir / "bakery" / "tenant.toml"
        toml.write_text(
            toml.read_text().replace(
                "[call_types.order]\n",
                "[budget]\nmonthly_usd_warn = 1\nmonthly_usd_limit = 2\n\n[call_types.order]\n",
                1,
            )
        )
        bridge.ctx.tenants.invalidate("bakery")
        frozen = Database(f"postgresql://nobody@127.0.0.1:{port}/frozen")
        bridge.ctx.budgets = BudgetGuard(frozen, timeout_s=0.2)
        try:
            with caplog.at_level(logging.WARNING, "receptionist.budget"):
                result = await place_call(
                    CallOptions(url=bridge.url("bakery"), realtime=False),
                    CallerScript(utterances=["Are you open today?"]),
                )
        finally:
            await bridge.ctx.budgets.aclose()
            await frozen.dispose()
    # the frozen database never answers: the greeting can only come from the timeout path
    assert result.ok and result.greeting_ms is not None, result.error
    assert "budget of bakery not checked: no answer within 0.2s" in caplog.text
    assert fake.sessions and fake.sessions[0].reply_texts[-1] == TURNS[0].reply


async def test_caller_audio_beyond_real_time_is_dropped_and_the_call_goes_on(
    db: Database, tmp_path: Path
) -> None:
    frames = 300  # 30 s of audio, sent as fast as the socket takes it
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, caller_audio_max_speed=1.0) as bridge,
    ):
        began = time.monotonic()  # the caller's budget counts from its connection
        async with connect(bridge.url("bakery")) as ws:
            call = RawCall(ws, sid())
            await call.start()
            for i in range(frames):
                await ws.send(
                    exotel.caller_media_frame(
                        call.stream_sid,
                        b"\x01\x00" * 800,
                        sequence=i,
                        chunk=i,
                        timestamp_ms=i * 100,
                    )
                )
            await ws.send(orjson.dumps({"event": "dtmf", "dtmf": {"digit": "5"}}).decode())
            await call.hang_up()
            row = await row_for(db, call.call_sid)
            elapsed = time.monotonic() - began  # the server cannot have seen the audio for longer
    forwarded = row["stats"]["frames_in"]
    dropped = row["stats"]["bad_frames"].get("over_realtime", 0)
    assert forwarded + dropped == frames
    # real time since the connection, plus the 2 s burst, plus the frame that crossed the line
    assert forwarded <= (elapsed + 2.0) * 10 + 1, (forwarded, elapsed)
    assert dropped > 0
    assert row["status"] == "completed" and row["end_reason"].startswith("stop:")
    assert "dtmf" in {e["kind"] for e in row["events"]}  # frames after the flood still count


@pytest.mark.parametrize(
    ("frame", "close_code", "reason"),
    [
        ("x" * (20 * 1024 * 1024), 1009, "frame_too_large"),
        ("x" * (WS_HARD_MAX_BYTES + 1), 1009, "frame_too_large"),  # the cap, not 16 MiB
        (b'{"event": "media", "bad": "\xff\xfe"}', 1007, "invalid_frame_data"),
    ],
    ids=["20MB", "over-the-cap", "invalid-utf8"],
)
async def test_an_abrupt_end_names_its_cause(
    sqlite_db: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    frame: str | bytes,
    close_code: int,
    reason: str,
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
        connect(bridge.url("bakery"), max_size=None) as ws,
    ):
        call = RawCall(ws, sid())
        await call.start()
        await call.wait_for("media")
        with caplog.at_level(logging.INFO):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame, text=True)
            with contextlib.suppress(ConnectionClosed):
                await call._reader
        row = await row_for(sqlite_db, call.call_sid)
    assert row["end_reason"] == reason
    assert {"kind": "closed", "detail": f"WebSocket close code {close_code}"}.items() <= {
        k: v for e in row["events"] if e["kind"] == "closed" for k, v in e.items()
    }.items()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_frame_under_the_cap_but_over_max_frame_bytes_is_dropped_and_the_call_goes_on(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,  # MAX_FRAME_BYTES 256 KiB
        connect(bridge.url("bakery"), max_size=None) as ws,
    ):
        call = RawCall(ws, sid())
        await call.start()
        await call.wait_for("media")
        await ws.send("x" * (WS_HARD_MAX_BYTES // 2), text=True)  # 512 KiB: over 256, under 1024
        await call.hang_up()
    row = await row_for(sqlite_db, call.call_sid)
    assert row["stats"]["bad_frames"] == {"oversized_frame": 1}
    assert row["status"] == "completed" and row["end_reason"].startswith("stop:")


class DatabaseGate:
    """A TCP relay in front of the test PostgreSQL that the test opens and shuts: shut, every
    connection is cut and new ones are closed at once (a database that went away)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.is_open = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> DatabaseGate:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.shut()
        assert self._server is not None
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def shut(self) -> None:
        self.is_open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.postgres
async def test_spooled_calls_are_replayed_by_the_running_server_when_the_database_returns(
    pg_db: Database, tmp_path: Path
) -> None:
    target = sa_url.make_url(pg_db.url)
    async with DatabaseGate(target.port or 5432) as gate:
        through_gate = Database(str(target.set(host="127.0.0.1", port=gate.port)))
        async with (
            FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
            running_bridge(through_gate, tmp_path, fake, spool_replay_interval_s=0.2) as bridge,
        ):
            result = await place_call(  # the database is away for the whole call
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=["Are you open today?"]),
            )
            assert result.ok, result.error
            spool = bridge.ctx.settings.spool_dir
            async with asyncio.timeout(30):  # the bridge saves after the caller is gone
                while not any(spool.glob("*.json")):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert await get_call(pg_db, result.call_sid) is None
            gate.is_open = True  # the database is back; nobody restarts anything
            async with asyncio.timeout(30):
                while (row := await get_call(pg_db, result.call_sid)) is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            async with asyncio.timeout(30):  # the file goes once its call is written
                while any(spool.glob("*.json")):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        await through_gate.dispose()
    assert row["status"] == "completed" and row["stage"] == "transcript_saved"
    assert TURNS[0].reply in [t["text"] for t in row["transcript"]]


async def test_a_nul_in_what_the_model_transcribed_does_not_lose_the_call(db: Database) -> None:
    turn = {"speaker": "caller", "text": "two\x00 cakes", "start_ms": 0, "end_ms": 900}
    await finish_call(
        db,
        FinishedCall(
            call_sid="CAnul",
            status="failed",
            tenant="bakery",
            transcript=[turn],
            error="engine said \x00",
            events=[{"t_ms": 1, "kind": "note", "detail": "\x00"}],
        ),
    )
    row = await get_call(db, "CAnul")
    assert row is not None and row["transcript"][0]["text"] == "two cakes"
    assert row["error"] == "engine said " and row["events"][0]["detail"] == ""
