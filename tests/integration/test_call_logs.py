"""A real call's JSON log: every line logged while the call and its post-call work run names
the call and its tenant, and the caller's number never appears in clear.

The simulated caller and the Gemini Live double run in this process too; their lines are told
apart by a context field of their own (`job=harness`), so the assertion covers every other line:
the bridge's, the engine's and the SDK's, the pipeline's and the message dispatcher's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receptionist import logctx
from receptionist.logs import setup_logging
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from receptionist.store.schema import Stage
from tests.integration.bridge_harness import running_bridge

CALLER = "+919811112222"
SERVER_BOOKKEEPING = {"connection open", "connection closed"}
TURNS = [
    ScriptedTurn(
        heard="I'd like to order a one kilo chocolate truffle cake for pickup tomorrow at 5 pm.",
        reply="Done, one kilo truffle for tomorrow at 5 pm.",
    )
]


@contextlib.asynccontextmanager
async def as_harness() -> AsyncIterator[None]:
    """Tasks started inside (the double's server, the caller) log with `job=harness`."""
    with logctx.bound(job="harness"):
        yield


async def until(check: Any, what: str) -> None:
    try:
        async with asyncio.timeout(60):  # a hang becomes a failure; no claim about speed
            while not await check():  # noqa: ASYNC110 - the condition lives in the database
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"not within 60 s: {what}")


async def test_every_line_of_a_call_names_it_and_hides_the_caller(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", json_lines=True, secrets=["test-key"])  # the harness's Gemini key
    for name in ("receptionist", "google_genai"):  # more lines to check, ours and the SDK's
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        fake = FakeGeminiLive(script=CallScript(turns=TURNS))
        async with as_harness():
            await fake.__aenter__()
        try:
            # the bridge (and its in-process pipeline worker) starts outside the harness
            async with running_bridge(sqlite_db, tmp_path, fake, run_worker=True) as bridge:
                async with as_harness():
                    result = await place_call(
                        CallOptions(url=bridge.url("bakery"), realtime=False, from_number=CALLER),
                        CallerScript(utterances=[t.heard for t in TURNS]),
                    )
                assert result.ok, result.error
                sid = result.call_sid

                async def settled() -> bool:
                    row = await get_call(sqlite_db, sid)
                    sent = await list_notifications(sqlite_db, call_sid=sid)
                    return bool(row and row["stage"] == Stage.DONE and sent) and all(
                        n["status"] not in ("queued", "sending") for n in sent
                    )

                await until(settled, "the call went through the pipeline and its messages")
        finally:
            async with as_harness():
                await fake.__aexit__(None, None, None)
    finally:
        for name in ("receptionist", "google_genai"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger().handlers.clear()
        setup_logging()

    out = capsys.readouterr().err
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    ours = [i for i, e in enumerate(lines) if e.get("call_sid") == sid]
    jobs = {lines[i].get("job") for i in ours}
    assert {None, "pipeline", "message"} <= jobs, jobs  # the live call, its pipeline, messages
    assert any(lines[i].get("stream_sid") for i in ours)
    [ended] = [lines[i] for i in ours if lines[i]["message"].startswith(f"call {sid} ended")]
    assert ended["status"] == "completed" and ended["turns"] == 3  # its outcome as fields
    # Every line from the call's first to its last (the call, the analysis, the messages), other
    # than the harness's own, is the call's: nothing it logged lacks its call_sid and tenant.
    for entry in lines[ours[0] : ours[-1] + 1]:
        if entry.get("job") == "harness":
            continue
        if entry["logger"] == "uvicorn.error" and entry["message"] in SERVER_BOOKKEEPING:
            continue  # the WebSocket layer's own, logged from the server's protocol callbacks
        assert (entry.get("call_sid"), entry.get("tenant")) == (sid, "bakery"), entry
    # The number reached the logs (the call's first line, the owner's message) only masked.
    digits = CALLER.lstrip("+")
    assert digits[2:] not in out and digits not in out
    assert any("•222" in e["message"] for e in lines), "the caller's number is logged masked"
    assert "test-key" not in out
