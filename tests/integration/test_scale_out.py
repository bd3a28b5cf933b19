"""Scale-out on one PostgreSQL database: several `receptionist serve` processes and several
`receptionist worker`s, all the installed console script, each its own process.

Calls go to every server at once; afterwards each call must be stored once (one row per
call_sid, owned by the stream that placed it), analysed once (the analysis model at the
generateContent double was asked once per call), carried to `done`, and each of its WhatsApp
messages must have reached the MSG91 double once (counted per recipient, template and
variables: the caller's own number makes each call's messages distinct).

The doubles (Gemini Live over TLS, Gemini REST for the analysis, MSG91) run on this test's event
loop; the processes reach them over loopback. Every process starts at the same moment on a fresh
database, so they also migrate it at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa

from receptionist.bridge.server import reuse_port_balances
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.sim.gemini_rest import FakeGeminiRest
from receptionist.sim.msg91 import FakeMsg91
from receptionist.store.db import Database
from receptionist.store.schema import ai_token_usage, call_details, notifications
from tests.integration.bridge_harness import REPO
from tests.pg import ThrowawayPostgres, free_port
from tests.prom import parse, sample

RECEPTIONIST = Path(sys.executable).parent / "receptionist"  # the installed console script

AUTH_KEY = "msg91-scale-key"
ORDER = "I'd like to order six chocolate brownies for pickup tomorrow at 5 pm. My name is Anita."
ANALYSIS = {
    "call_type": "order",
    "summary": "Order: six chocolate brownies, pickup tomorrow 5 pm",
    "details": {
        "name": "Anita",
        "phone": "+919812345678",
        "items": ["chocolate brownies x6"],
        "pickup_or_delivery": "pickup",
    },
}
OWNER = "919800000001"  # the bakery's owner_phone, as MSG91 gets it
# Bounds for a broken build, never speed requirements: the test returns as soon as the
# condition it polls for holds.
START_BOUND_S = 60.0
SETTLE_BOUND_S = 60.0


@dataclass
class Proc:
    """A `receptionist` process this test started; stopped by its own pid."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    env: dict[str, str]
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, **env: str) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(RECEPTIONIST), *args],
                env={**self.env, **env},
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.text()[-3000:]}" for p in self.procs)

    async def stop(self) -> dict[str, int]:
        """SIGTERM to every process, then wait for each (a bound, then SIGKILL)."""
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        for p in self.procs:
            try:
                codes[p.name] = await asyncio.to_thread(p.popen.wait, 30)
            except subprocess.TimeoutExpired:  # pragma: no cover - reported by the caller
                children = psutil.Process(p.popen.pid).children(recursive=True)
                p.popen.kill()
                codes[p.name] = await asyncio.to_thread(p.popen.wait)
                for child in children:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
        return codes


@dataclass
class Doubles:
    live: FakeGeminiLive
    rest: FakeGeminiRest
    msg91: FakeMsg91


@pytest.fixture
async def doubles() -> AsyncIterator[Doubles]:
    script = CallScript(turns=[ScriptedTurn(heard=ORDER, reply="Done, Anita!")])
    async with (
        FakeGeminiLive(api_key="test-key", script=script) as live,
        FakeGeminiRest(api_key="test-key") as rest,
        FakeMsg91(auth_key=AUTH_KEY) as msg91,
    ):
        yield Doubles(live, rest, msg91)


def cluster_env(db_url: str, d: Doubles, tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "MSG91_", "VOICE_ENGINE", "LOCAL_", "LLM_"))
    }
    env.update(
        DATABASE_URL=db_url,
        TENANTS_DIR=str(REPO / "tenants"),
        SPOOL_DIR=str(tmp / "spool"),
        HOST="127.0.0.1",
        GEMINI_API_KEY="test-key",
        GEMINI_BASE_URL=d.live.base_url,
        GEMINI_CA_FILE=d.live.ca_file,
        ANALYZER="gemini",
        GEMINI_ANALYSIS_BASE_URL=d.rest.base_url,
        NOTIFY_PROVIDER="msg91",
        MSG91_AUTH_KEY=AUTH_KEY,
        MSG91_BASE_URL=d.msg91.base_url,
        NOTIFY_AI="off",
        KEEPALIVE_INTERVAL_S="0",
        CALLER_AUDIO_MAX_SPEED="0",  # the test's callers do not pace their audio
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        NO_COLOR="1",
    )
    return env


async def wait_ready(port: int, proc: Proc, cluster: Cluster) -> None:
    """/readyz answers 200: the process migrated, started its app and reaches the database."""
    async with httpx.AsyncClient(timeout=2.0) as http, asyncio.timeout(START_BOUND_S):
        while True:
            assert proc.popen.poll() is None, f"{proc.name} exited:\n{cluster.logs()}"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


def caller_number(i: int) -> str:
    return f"+9198123{i:05d}"


async def place_calls(port: int, numbers: list[str]) -> list[CallResult]:
    url = f"ws://127.0.0.1:{port}/exotel/bakery"
    return await asyncio.gather(
        *(
            place_call(
                CallOptions(url=url, realtime=False, from_number=n),
                CallerScript(utterances=[ORDER]),
            )
            for n in numbers
        )
    )


async def settled(db: Database, sids: set[str], cluster: Cluster) -> None:
    """Every call `done` and every message out of the queue, polled from the database."""
    c, n = call_details.c, notifications.c
    async with asyncio.timeout(SETTLE_BOUND_S):
        while True:
            for p in cluster.procs:
                assert p.popen.poll() is None, f"{p.name} exited:\n{cluster.logs()}"
            async with db.session() as conn:
                stages = Counter(
                    (await conn.execute(sa.select(c.stage).where(c.call_sid.in_(sids))))
                    .scalars()
                    .all()
                )
                waiting = await conn.scalar(
                    sa.select(sa.func.count()).where(n.status.in_(("queued", "sending")))
                )
            if stages == Counter({"done": len(sids)}) and not waiting:
                return
            await asyncio.sleep(0.1)


async def check_exactly_once(
    db: Database, d: Doubles, placed: dict[str, str], cluster: Cluster
) -> None:
    """`placed`: call_sid -> the caller's number. Stored, analysed, messaged: once each."""
    c, u, n = call_details.c, ai_token_usage.c, notifications.c
    async with db.session() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(
                        c.call_sid,
                        c.session_id,
                        c.from_number,
                        c.status,
                        c.stage,
                        c.attempts,
                        c.last_error,
                        c.lease_owner,
                        c.call_type,
                        c.transcript,
                    )
                )
            )
            .mappings()
            .all()
        )
        usage = (await conn.execute(sa.select(u.call_sid, u.purpose))).all()
        messages = (
            (
                await conn.execute(
                    sa.select(
                        n.call_sid, n.recipient, n.template_name, n.status, n.attempts, n.provider
                    )
                )
            )
            .mappings()
            .all()
        )
    logs = cluster.logs()

    # stored once: one row per call_sid (the table's unique key says so; the count says no
    # row is missing and none is extra), each owned by one stream with the caller's number
    assert sorted(r["call_sid"] for r in rows) == sorted(placed), logs
    assert len({r["session_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["from_number"] == placed[r["call_sid"]], r
        assert r["status"] == "completed", (r, logs)
        speakers = {t["speaker"] for t in r["transcript"]}
        assert speakers == {"caller", "agent"}, r["transcript"]
        # processed once, through every stage, without a failed try or a lease left behind
        assert (r["stage"], r["attempts"], r["last_error"], r["lease_owner"]) == (
            "done",
            0,
            None,
            None,
        ), r
        assert r["call_type"] == "order", r

    # analysed once: the model was asked once per call, and its tokens are on one row per call
    analyses = [q for q in d.rest.requests if q.response_mime_type == "application/json"]
    assert len(analyses) == len(d.rest.requests) == len(placed), len(d.rest.requests)
    per_call = Counter(sid for sid, purpose in usage if purpose == "analysis")
    assert per_call == Counter(dict.fromkeys(placed, 1)), per_call
    assert Counter(sid for sid, purpose in usage if purpose == "live") == per_call

    # messages: one customer confirmation and one owner alert per call, each sent once
    assert len(messages) == 2 * len(placed), messages
    for m in messages:
        assert (m["status"], m["attempts"], m["provider"]) == ("sent", 1, "msg91"), m
    received = Counter(
        (m.to, m.template, m.variables) for m in d.msg91.messages
    )  # what MSG91 accepted
    assert all(k == 1 for k in received.values()), received
    assert len(d.msg91.requests) == len(d.msg91.messages) == 2 * len(placed)
    for number in placed.values():
        digits = number.lstrip("+")
        assert d.msg91.accepted_for(digits, "order_confirmation") == 1, number
        owner = [m for m in d.msg91.messages if m.to == OWNER and m.variables[1] == number]
        assert len(owner) == 1 and owner[0].template == "owner_new_order", owner

    for p in cluster.procs:
        assert "Traceback" not in p.text(), p.text()


def script_analyses(d: Doubles, count: int) -> None:
    d.rest.script(*[json.dumps(ANALYSIS)] * count)


@contextlib.asynccontextmanager
async def fresh_db(server: ThrowawayPostgres) -> AsyncIterator[tuple[str, Database]]:
    async with server.fresh_database() as url:
        db = Database(url)
        try:
            yield url, db
        finally:
            await db.dispose()


def assert_clean_exit(codes: dict[str, int], cluster: Cluster) -> None:
    # uvicorn and the worker end on SIGTERM after finishing what they hold; uvicorn re-raises
    # the signal it caught, so dying of SIGTERM after a graceful stop is a clean end
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, cluster.logs())


async def test_two_servers_and_two_workers_handle_every_call_exactly_once(
    postgres_server: ThrowawayPostgres, doubles: Doubles, tmp_path: Path
) -> None:
    per_server = 10
    async with fresh_db(postgres_server) as (url, db):
        cluster = Cluster(cluster_env(url, doubles, tmp_path), tmp_path)
        script_analyses(doubles, 2 * per_server)
        ports = [free_port(), free_port()]
        try:
            # all four at once, on a database nobody has migrated yet
            servers = [
                cluster.start(f"serve{i}", "serve", "--migrate", PORT=str(port), RUN_WORKER="false")
                for i, port in enumerate(ports)
            ]
            for i in range(2):
                cluster.start(f"worker{i}", "worker")
            await asyncio.gather(
                *(wait_ready(p, s, cluster) for p, s in zip(ports, servers, strict=True))
            )

            numbers = [caller_number(i) for i in range(2 * per_server)]
            results = await asyncio.gather(
                place_calls(ports[0], numbers[:per_server]),
                place_calls(ports[1], numbers[per_server:]),
            )
            placed = {}
            for result, number in zip([r for rs in results for r in rs], numbers, strict=True):
                assert result.ok, (result.error, cluster.logs())
                placed[result.call_sid] = number
            await settled(db, set(placed), cluster)
            await check_exactly_once(db, doubles, placed, cluster)
        finally:
            codes = await cluster.stop()
        assert_clean_exit(codes, cluster)
        for p in servers:  # RUN_WORKER=false: only the separate workers carried the calls
            assert "pipeline worker" not in p.text(), p.text()


def listening_sockets(pid: int, port: int) -> dict[int, str]:
    """The processes under `pid` listening on `port`: child pid -> its socket's identity."""
    found: dict[int, str] = {}
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in child.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    found[child.pid] = os.readlink(f"/proc/{child.pid}/fd/{conn.fd}")
    return found


@pytest.mark.skipif(not reuse_port_balances(), reason="SO_REUSEPORT balances on Linux only")
async def test_serve_with_two_processes_on_one_port(
    postgres_server: ThrowawayPostgres, doubles: Doubles, tmp_path: Path
) -> None:
    """`serve --workers 2`: two processes, each with its own socket on the one port and its own
    in-process pipeline worker; the calls are still stored, analysed and messaged once."""
    calls = 6
    async with fresh_db(postgres_server) as (url, db):
        cluster = Cluster(cluster_env(url, doubles, tmp_path), tmp_path)
        script_analyses(doubles, calls)
        port = free_port()
        server = cluster.start("serve", "serve", "--migrate", "--workers", "2", PORT=str(port))
        try:
            await wait_ready(port, server, cluster)
            async with asyncio.timeout(START_BOUND_S):  # both listening, not only the first
                while len(sockets := listening_sockets(server.popen.pid, port)) < 2:
                    assert server.popen.poll() is None, cluster.logs()
                    await asyncio.sleep(0.1)
            # two sockets (SO_REUSEPORT), not one inherited by both: the kernel spreads
            # connections over them instead of waking both for each
            assert len(set(sockets.values())) == 2, sockets

            numbers = [caller_number(100 + i) for i in range(calls)]
            placed = {}
            for result, number in zip(await place_calls(port, numbers), numbers, strict=True):
                assert result.ok, (result.error, cluster.logs())
                placed[result.call_sid] = number
            await settled(db, set(placed), cluster)
            await check_exactly_once(db, doubles, placed, cluster)

            # a scrape reaches one process and counts the calls of both
            async with httpx.AsyncClient(timeout=5.0) as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            assert sample(parse(text), "receptionist_calls_started_total", tenant="bakery") == calls
        finally:
            codes = await cluster.stop()
        assert codes == {"serve": 0}, cluster.logs()  # the supervisor ends cleanly on SIGTERM
        assert server.text().count("Finished server process") == 2, server.text()
        assert "pipeline worker" in server.text()  # RUN_WORKER on: the servers' own workers
