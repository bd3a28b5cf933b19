"""A `receptionist serve` killed with SIGKILL in the middle of live calls, on PostgreSQL and on
SQLite, all with the installed console script.

The calls have each been answered and have said their order (checkpointed: the test polls the
database for it) when the server is killed. Two new servers then start at the same moment:
between them they close every call once (end reason `server_lost`, the transcript that was
checkpointed, into the pipeline), and `receptionist worker --once` carries each to `done`
with one analysis per call.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.store.db import Database
from receptionist.store.schema import ai_token_usage, call_details, server_processes
from tests.integration.bridge_harness import REPO
from tests.integration.test_scale_out import (
    ORDER,
    RECEPTIONIST,
    Cluster,
    Doubles,
    caller_number,
    cluster_env,
    doubles,  # noqa: F401 - the fixture
    script_analyses,
    wait_ready,
)
from tests.pg import ThrowawayPostgres, free_port

CALLS = 6
BOUND_S = 60.0  # for a broken build; every wait returns as soon as its condition holds
FAST = {
    "CHECKPOINT_INTERVAL_S": "0.2",
    "REAPER_INTERVAL_S": "1",
    "SERVER_LOST_AFTER_S": "30",  # start-up must not need it: the dead pid says so at once
    "RUN_WORKER": "false",  # the pipeline is run by `worker --once` below
    "LOG_LEVEL": "WARNING",
}


async def rows(db: Database, sids: set[str]) -> dict[str, dict[str, Any]]:
    c = call_details.c
    async with db.session() as conn:
        found = await conn.execute(sa.select(call_details).where(c.call_sid.in_(sids)))
        return {r["call_sid"]: dict(r) for r in found.mappings()}


def said_the_order(row: dict[str, Any] | None) -> bool:
    """The order and its reply are checkpointed, with the tokens the model billed for them."""
    turns = (row or {}).get("transcript") or []
    spent = ((row or {}).get("stats") or {}).get("usage")
    return bool(spent) and (
        any(t["speaker"] == "caller" and t["text"] for t in turns)
        and any(t["speaker"] == "agent" and "Anita" in t["text"] for t in turns)
    )


async def until(what: str, check: Any, cluster: Cluster) -> Any:
    """Poll the database until `check` returns something true."""
    try:
        async with asyncio.timeout(BOUND_S):
            while True:
                if result := await check():
                    return result
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not reached: {what}\n{cluster.logs()}") from None


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(RECEPTIONIST), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def kill_mid_call_and_recover(url: str, d: Doubles, tmp: Path) -> None:
    u = ai_token_usage.c
    db = Database(url)
    cluster = Cluster({**cluster_env(url, d, tmp), **FAST}, tmp)
    script_analyses(d, CALLS)
    await asyncio.to_thread(run_cli, cluster.env, "db", "upgrade")
    port = free_port()
    first = cluster.start("serve", "serve", PORT=str(port))
    callers: list[asyncio.Task[CallResult]] = []
    try:
        await wait_ready(port, first, cluster)
        options = [
            CallOptions(
                url=f"ws://127.0.0.1:{port}/exotel/bakery",
                realtime=False,
                from_number=caller_number(500 + i),
                max_call_s=BOUND_S * 3,
            )
            for i in range(CALLS)
        ]
        # each caller orders, hears the reply, then holds the line until the server dies
        script = CallerScript(utterances=[ORDER], hangup_after_ms=int(BOUND_S * 3000))
        callers = [asyncio.create_task(place_call(o, script)) for o in options]
        sids = {o.call_sid for o in options}

        async def all_checkpointed() -> bool:
            found = await rows(db, sids)
            return len(found) == CALLS and all(map(said_the_order, found.values()))

        await until("every call checkpointed its order", all_checkpointed, cluster)
        async with db.session() as conn:  # the killed process is the one that registered
            pids = (await conn.execute(sa.select(server_processes.c.pid))).scalars().all()
        assert pids == [first.popen.pid], pids
        first.popen.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.popen.wait, 30) == -signal.SIGKILL
        await asyncio.gather(*callers, return_exceptions=True)  # their line went dead
        checkpointed = {sid: r["transcript"] for sid, r in (await rows(db, sids)).items()}
        assert all(r["status"] == "in_progress" for r in (await rows(db, sids)).values())

        # two new servers at once: the killed pid is not running, so neither waits for
        # SERVER_LOST_AFTER_S, and each call is closed by exactly one of them
        ports = [free_port(), free_port()]
        again = [cluster.start(f"serve{i}", "serve", PORT=str(p)) for i, p in enumerate(ports)]

        async def all_closed() -> dict[str, dict[str, Any]] | None:
            found = await rows(db, sids)
            done = all(r["status"] != "in_progress" for r in found.values())
            return found if done else None

        closed = await until("every lost call closed", all_closed, cluster)
        for sid, row in closed.items():
            assert (row["status"], row["end_reason"]) == ("failed", "server_lost"), row
            assert row["transcript"] == checkpointed[sid]  # what was checkpointed, all of it
            assert row["stage"] in ("transcript_saved",), row
            assert row["ended_at"] is not None and row["from_number"], row
        await asyncio.gather(
            *(wait_ready(p, s, cluster) for p, s in zip(ports, again, strict=True))
        )
        reaped = Counter(
            sid
            for s in again
            for line in s.text().splitlines()
            if "server process" in line and "server_lost" in line
            for sid in re.findall(r"CAsim\w+", line)
        )
        assert reaped == Counter(dict.fromkeys(sids, 1)), (reaped, cluster.logs())

        # the pipeline takes them as any ended call: analysed once each, carried to done
        out = await asyncio.to_thread(run_cli, cluster.env, "worker", "--once")
        stages = Counter(r["stage"] for r in (await rows(db, sids)).values())
        assert stages == Counter({"done": CALLS}), (stages, out)
        assert len(d.rest.requests) == CALLS
        assert {r["call_type"] for r in (await rows(db, sids)).values()} == {"order"}
        async with db.session() as conn:  # the live tokens checkpointed, and the analysis'
            usage = (await conn.execute(sa.select(u.call_sid, u.purpose, u.total_cost))).all()
        assert Counter((sid, purpose) for sid, purpose, _ in usage) == Counter(
            {(sid, purpose): 1 for sid in sids for purpose in ("live", "analysis")}
        )
        assert all(cost is not None for _, _, cost in usage)  # costed like any call
        for p in cluster.procs:
            assert "Traceback" not in p.text(), p.text()
    finally:
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await cluster.stop()
        await db.dispose()


async def test_sqlite_server_killed_mid_call_its_calls_are_closed_once_and_processed(
    doubles: Doubles,  # noqa: F811
    tmp_path: Path,
) -> None:
    await kill_mid_call_and_recover(f"sqlite:///{tmp_path / 'r.db'}", doubles, tmp_path)


async def test_postgres_server_killed_mid_call_its_calls_are_closed_once_and_processed(
    postgres_server: ThrowawayPostgres,
    doubles: Doubles,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with postgres_server.fresh_database() as url:
        await kill_mid_call_and_recover(url, doubles, tmp_path)
