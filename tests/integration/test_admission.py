"""Admission control (bridge/admission.py) on a real bridge: a process at MAX_CALLS_PER_PROCESS,
or whose event loop runs late, refuses a new call in the handshake (HTTP 503, nothing
accepted), counts it by reason, and takes calls again once it has room."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from websockets.exceptions import InvalidStatus

from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.bridge_harness import Bridge, running_bridge
from tests.integration.test_drain import BOUND_S, OpenLine, poll
from tests.prom import Changes, parse, sample

REFUSED = "connect: HTTP 503"


async def one_call(bridge: Bridge) -> CallResult:
    """A short call: greeting, then `stop`."""
    return await place_call(
        CallOptions(url=bridge.url("bakery"), realtime=False, max_call_s=BOUND_S),
        CallerScript(hangup_after_ms=100),
    )


async def try_line(bridge: Bridge) -> OpenLine | None:
    """A line held open, or None when the handshake is refused with 503."""
    try:
        return await OpenLine.dial(bridge.url("bakery"))
    except InvalidStatus as exc:
        assert exc.response.status_code == 503, exc
        return None


async def metrics_text(bridge: Bridge) -> str:
    async with httpx.AsyncClient(timeout=5.0) as http:
        return (await http.get(f"http://127.0.0.1:{bridge.port}/metrics")).text


async def rejected_metric(bridge: Bridge, reason: str) -> float:
    """The scraped count of calls refused for `reason` (this test process's, all servers)."""
    scraped = parse(await metrics_text(bridge))
    return sample(scraped, "receptionist_calls_rejected_total", reason=reason)


async def test_full_process_refuses_the_next_call(sqlite_db: Database, tmp_path: Path) -> None:
    changes = Changes()
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, max_calls_per_process=2) as bridge,
    ):
        lines = [await OpenLine.dial(bridge.url("bakery")) for _ in range(2)]
        async with asyncio.timeout(BOUND_S):
            for line in lines:
                await line.heard.wait()
        third = await one_call(bridge)
        assert third.error == REFUSED and third.frames_sent == 0, third
        assert changes("receptionist_calls_rejected_total", reason="capacity") == 1
        assert await rejected_metric(bridge, "capacity") >= 1  # and the scrape shows it
        assert await get_call(sqlite_db, third.call_sid) is None  # never a call: no row

        # one call ends: room again (its connection is released once its row is written)
        await lines[0].hang_up()

        async def room() -> bool:
            return bridge.ctx.admission.active < 2

        await poll(room, "a call's place freed")
        again = await try_line(bridge)
        assert again is not None
        async with asyncio.timeout(BOUND_S):
            await again.heard.wait()
        for line in (again, lines[1]):
            await line.hang_up()


async def test_late_event_loop_refuses_then_recovers(sqlite_db: Database, tmp_path: Path) -> None:
    changes = Changes()
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, admission_max_loop_lag_ms=50) as bridge,
    ):
        # Block the event loop the bridge runs on (this test's own) in 250 ms slices with one
        # loop turn between: each wake of the lag monitor (every 100 ms) comes about 150 ms
        # late, as in a process carrying too much (a busy machine only makes it later)
        loop = asyncio.get_running_loop()
        blocking = True

        def hog() -> None:
            time.sleep(0.25)  # deliberately blocking: the load being measured
            if blocking:
                loop.call_soon(hog)

        loop.call_soon(hog)

        async def late() -> bool:
            return bridge.ctx.loop_lag.lag_s > 0.05

        await poll(late, "the loop lag above the limit")
        refused = await one_call(bridge)
        assert refused.error == REFUSED, refused
        assert changes("receptionist_calls_rejected_total", reason="overloaded") == 1
        scraped = parse(await metrics_text(bridge))
        assert sample(scraped, "receptionist_calls_rejected_total", reason="overloaded") >= 1
        assert sample(scraped, "receptionist_event_loop_lag_seconds") > 0.05, scraped

        blocking = False
        # the loop catches up: calls are taken again (tried until one is: a busy machine may
        # still refuse one or two)
        accepted: OpenLine | None = None

        async def taken() -> bool:
            nonlocal accepted
            accepted = await try_line(bridge)
            return accepted is not None

        await poll(taken, "a call accepted once the loop caught up")
        assert accepted is not None
        async with asyncio.timeout(BOUND_S):
            await accepted.heard.wait()  # a call like any: greeted
        await accepted.hang_up()
