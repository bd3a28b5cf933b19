"""Graceful drain (bridge/drain.py): SIGTERM stops new calls at once and ends calls in progress
politely, each saved and handed to the pipeline.

The first test runs the installed `receptionist serve` in a subprocess with three live calls;
its steps are driven by signals the test sends (a second SIGTERM: goodbye now), so no step
races a clock. The second runs the bridge in-process to see DRAIN_TIMEOUT_S itself expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from receptionist.bridge.server import reuse_port_balances
from receptionist.sim.caller import (
    CallerScript,
    CallOptions,
    CallResult,
    TranscriptEvent,
    place_call,
)
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.telephony.exotel import connected_frame, start_frame, stop_frame
from receptionist.tenants.repository import TenantRepository
from tests.integration.bridge_harness import REPO, running_bridge
from tests.integration.test_scale_out import (
    Cluster,
    Doubles,
    cluster_env,
    doubles,  # noqa: F401 - the fixture
    wait_ready,
)
from tests.pg import free_port
from tests.prom import parse, sample

# Bounds for a broken build, never speed requirements: each wait returns once its condition holds.
BOUND_S = 60.0


class OpenLine:
    """A call the test holds open and hangs up itself: `connected` and `start`, then nothing
    until `hang_up()` (a caller listening in silence). Counts the agent audio it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.call_sid = "CAline" + uuid.uuid4().hex[:24]
        self.stream_sid = "MZline" + uuid.uuid4().hex[:24]
        self.media = 0
        self.heard = asyncio.Event()  # the first agent audio arrived: the call is live
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def dial(cls, url: str) -> OpenLine:
        line = cls(await connect(url, proxy=None, ping_interval=None, compression=None))
        await line.ws.send(connected_frame())
        await line.ws.send(
            start_frame(
                stream_sid=line.stream_sid,
                call_sid=line.call_sid,
                from_number="+919800000042",
                to_number="+918000000001",
            )
        )
        return line

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                if orjson.loads(raw).get("event") == "media":
                    self.media += 1
                    self.heard.set()

    async def hang_up(self) -> None:
        await self.ws.send(stop_frame(self.stream_sid, self.call_sid, sequence=2))
        await self._reader  # until the server closes its side
        await self.ws.close()


def silent_caller(url: str, on_event: Callable[[TranscriptEvent], None]) -> CallOptions:
    """A sim caller that says nothing and never hangs up (it records all it receives)."""
    return CallOptions(url=url, realtime=True, max_call_s=BOUND_S * 3, on_event=on_event)


NEVER_HANGS_UP = CallerScript(utterances=[], hangup_after_ms=int(BOUND_S * 3 * 1000))


def heard_after(result: CallResult, moment: float) -> bool:
    """Did agent audio start reaching this caller after `moment` (time.monotonic)?"""
    assert result.start_sent_at is not None
    return any(
        ev.kind == "agent_audio_start" and result.start_sent_at + ev.t_ms / 1000.0 > moment
        for ev in result.events
    )


async def poll(cond: Callable[[], Any], what: str) -> None:
    try:
        async with asyncio.timeout(BOUND_S):
            while True:
                if await cond():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_three_live_calls(
    doubles: Doubles,  # noqa: F811
    tmp_path: Path,
    workers: int,
) -> None:
    """With `--workers 2` the supervisor passes each signal on to both processes."""
    if workers > 1 and not reuse_port_balances():
        pytest.skip("serve --workers N drains through our supervisor on Linux only")
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    env = cluster_env(db_url, doubles, tmp_path)
    cluster = Cluster(env, tmp_path)
    port = free_port()
    # A long drain: the test's second SIGTERM decides when the goodbyes start, not a clock
    server = cluster.start(
        "serve", "serve", "--workers", str(workers), PORT=str(port), DRAIN_TIMEOUT_S="300"
    )
    url = f"ws://127.0.0.1:{port}/exotel/bakery"
    base = f"http://127.0.0.1:{port}"
    db = Database(db_url)
    try:
        await wait_ready(port, server, cluster)
        # three live calls: one the test hangs up during the drain, two silent sim callers
        line = await OpenLine.dial(url)
        greeted = [asyncio.Event(), asyncio.Event()]

        def greeting_heard(i: int) -> Callable[[TranscriptEvent], None]:
            return lambda ev: greeted[i].set() if ev.kind == "agent_audio_end" else None

        callers = [
            asyncio.create_task(place_call(silent_caller(url, greeting_heard(i)), NEVER_HANGS_UP))
            for i in range(2)
        ]
        async with asyncio.timeout(BOUND_S):
            await line.heard.wait()
            for g in greeted:
                await g.wait()

        server.popen.send_signal(signal.SIGTERM)

        async def all_draining() -> bool:  # each process says so once its flag is up
            return server.text().count("draining: refusing new calls") == workers

        await poll(all_draining, "every server process draining")
        async with httpx.AsyncClient(timeout=5.0) as http:

            async def not_ready() -> bool:
                return (await http.get(f"{base}/readyz")).status_code == 503

            await poll(not_ready, "readyz 503")
            assert (await http.get(f"{base}/healthz")).status_code == 200  # alive, not ready

            # a new call is refused in the handshake, and counted
            refused = await place_call(CallOptions(url=url, max_call_s=BOUND_S), CallerScript())
            assert refused.error == "connect: HTTP 503", refused
            assert "refusing new calls: draining" in server.text()
            # one scrape counts every process's refusals (prometheus multiprocess mode)
            scraped = parse((await http.get(f"{base}/metrics")).text)
            assert sample(scraped, "receptionist_calls_rejected_total", reason="draining") == 1

            # the test's caller hangs up during the drain: saved as any call
            await line.hang_up()

            async def line_saved() -> bool:
                row = await get_call(db, line.call_sid)
                return row is not None and row["stage"] != "live"

            await poll(line_saved, "the hung-up call saved")
            assert not any(c.done() for c in callers)  # the silent callers are still on

        goodbye_at = time.monotonic()
        server.popen.send_signal(signal.SIGTERM)  # again: goodbye now
        async with asyncio.timeout(BOUND_S):
            results = await asyncio.gather(*callers)
        code = await asyncio.to_thread(server.popen.wait, BOUND_S)
    finally:
        await cluster.stop()
    log = server.text()
    assert code == 0, log
    assert log.count("drain finished") == workers, log
    assert log.count("Finished server process") == workers, log

    goodbye = TenantRepository(REPO / "tenants").get("bakery").messages.technical_problem
    for res in results:
        # the goodbye reached the caller after the signal, then the server closed normally
        assert heard_after(res, goodbye_at), res.events
        assert res.closed_by == "server" and res.close_code == 1000, res
        row = await get_call(db, res.call_sid)
        assert row is not None, res.call_sid
        assert row["status"] == "completed" and row["end_reason"] == "server_shutdown", row
        assert row["stage"] != "live", row  # handed to the pipeline
        agent = [t["text"] for t in row["transcript"] if t["speaker"] == "agent"]
        assert agent[-1] == goodbye, agent
        assert "hangup" in [e["kind"] for e in row["events"]]
    hung_up = await get_call(db, line.call_sid)
    assert hung_up is not None
    assert hung_up["status"] == "completed" and hung_up["end_reason"] == "stop:callended"
    assert "1012" not in log and "server_restart" not in log
    await db.dispose()


async def test_drain_timeout_then_goodbye(sqlite_db: Database, tmp_path: Path) -> None:
    """A call still open when DRAIN_TIMEOUT_S passes hears the tenant's goodbye and is saved."""
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, drain_timeout_s=0.5) as bridge,
    ):
        greeted = asyncio.Event()
        caller = asyncio.create_task(
            place_call(
                silent_caller(
                    bridge.url("clinic"),
                    lambda ev: greeted.set() if ev.kind == "agent_audio_end" else None,
                ),
                NEVER_HANGS_UP,
            )
        )
        async with asyncio.timeout(BOUND_S):
            await greeted.wait()
        drained_at = time.monotonic()
        async with asyncio.timeout(BOUND_S):
            await bridge.ctx.drain.start()  # as the signal handler does
            result = await caller
        tenant = bridge.ctx.tenants.get("clinic")
    assert heard_after(result, drained_at) and result.close_code == 1000, result
    assert fake.sessions[0].reply_texts[-1] == tenant.messages.technical_problem
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["end_reason"] == "server_shutdown"
    assert row["stage"] != "live"
