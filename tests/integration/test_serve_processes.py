"""`receptionist serve --workers N` as a supervisor of N server processes on one port: a
second server on the same port is refused, a process that dies is replaced, SIGTERM stops all.

Calls through such a server, on PostgreSQL, are in test_scale_out.py."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import psutil
import pytest

from receptionist.bridge.server import reuse_port_balances
from tests.integration.test_scale_out import (
    RECEPTIONIST,
    START_BOUND_S,
    Cluster,
    Doubles,
    Proc,
    cluster_env,
    doubles,  # noqa: F401 - the fixture
    listening_sockets,
    wait_ready,
)
from tests.pg import free_port

pytestmark = pytest.mark.skipif(
    not reuse_port_balances(), reason="SO_REUSEPORT balances on Linux only"
)


async def listeners(pid: int, port: int, *, other_than: set[int], bound_s: float) -> set[int]:
    """The two pids listening on `port` once neither is in `other_than`."""
    async with asyncio.timeout(bound_s):
        while True:
            pids = set(listening_sockets(pid, port))
            if len(pids) == 2 and not pids & other_than:
                return pids
            await asyncio.sleep(0.1)


async def serving(pids: set[int], server: Proc) -> None:
    """Each of `pids` has said it is serving (what the supervisor goes by when one dies)."""
    async with asyncio.timeout(START_BOUND_S):
        while True:
            log = server.text()  # the condition lives in another process's log
            if all(f"server process {pid} serving" in log for pid in pids):
                return
            await asyncio.sleep(0.1)


async def test_supervisor_refuses_a_taken_port_replaces_a_dead_process_and_stops_all(
    doubles: Doubles,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = cluster_env(f"sqlite:///{tmp_path / 'r.db'}", doubles, tmp_path)
    cluster = Cluster(env, tmp_path)
    port = free_port()
    server = cluster.start("serve", "serve", "--workers", "2", PORT=str(port))
    try:
        await wait_ready(port, server, cluster)
        first = await listeners(server.popen.pid, port, other_than=set(), bound_s=START_BOUND_S)
        await serving(first, server)

        # a second server on the port, even one that would share it, is refused at once
        again = await asyncio.to_thread(
            subprocess.run,
            [str(RECEPTIONIST), "serve", "--workers", "2"],
            env={**env, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in again.stderr

        # a server process killed outright is replaced, on the same port
        dead = min(first)
        psutil.Process(dead).kill()
        now = await listeners(server.popen.pid, port, other_than={dead}, bound_s=START_BOUND_S)
        assert now - first and (first - {dead}) <= now
        await serving(now, server)
    finally:
        codes = await cluster.stop()
    log = server.text()
    assert codes == {"serve": 0}, log
    assert f"server process {dead} ended (-9); starting another" in log
    assert log.count("Finished server process") == 2, log  # the two alive at SIGTERM
    assert "could not start" not in log
    assert "2 processes on SQLite: the dashboard's live view shows only" in log
