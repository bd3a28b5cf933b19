"""PostgreSQL stops for 30 s under live calls (issue 14, part 7), end to end.

The installed `receptionist serve` runs on a private PostgreSQL server that this test stops
(`pg_ctl stop`: connections are refused, as when the database restarts or its machine is
replaced) and starts again on the same port and data. Meanwhile:

- calls in progress go on: their callers keep hearing answers;
- two calls end, and are spooled to disk; a new call starts and is answered;
- `/readyz` says 503 (the load balancer stops sending new calls), `/healthz` stays 200;

and once the database is back, `/readyz` is 200 again, the running server writes the spooled
calls by itself, its live feed LISTENs again, and every call (ended before, during and after the
outage, and the one started during it) is stored once, whole, and processed once by
`receptionist worker --once`.

The stop is `-m fast` (clients are told, then cut; a clean checkpoint). `-m immediate` (as a
crash) behaves the same towards the bridge, but the throw-away server runs with
synchronous_commit=off, so a crash-like stop could lose its last commits and the test would be
checking the test server's settings, not the bridge.

When each call speaks is decided by the test: each reply that must wait for a moment of the
outage is held at the Gemini Live double (`Hold`) until the test releases it. The outage itself
lasts OUTAGE_S by the clock on purpose: it is the scenario (longer than every retry and
back-off of the bridge), not a wait that hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
import pytest
import sqlalchemy as sa

from receptionist.bridge.recorder import CallRecorder
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.store.calls import FinishedCall, get_call
from receptionist.store.db import Database
from receptionist.store.live import CHANNEL
from receptionist.store.schema import call_details
from tests.integration.bridge_harness import REPO, running_bridge
from tests.pg import ThrowawayPostgres, free_port, pg_tests_enabled

pytestmark = pytest.mark.postgres

RECEPTIONIST = Path(sys.executable).parent / "receptionist"  # the installed console script
OUTAGE_S = 30.0  # the figure: the database is away this long
BOUND_S = 60.0  # a bound on every wait for a condition: reaching it is a failure


@pytest.fixture
def private_pg() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test's own: stopping it must not touch other tests."""
    if not pg_tests_enabled():
        pytest.skip("PostgreSQL tests disabled by RECEPTIONIST_TEST_PG=0")
    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


async def until(what: str, check: Callable[[], Awaitable[bool]], logs: Callable[[], str]) -> None:
    """Poll `check` until it holds; fail naming `what` after BOUND_S."""
    try:
        async with asyncio.timeout(BOUND_S):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"not within {BOUND_S:g} s: {what}\n{logs()}")


@dataclass
class Server:
    popen: subprocess.Popen[bytes]
    log: Path
    port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        return self.text()[-6000:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def server_env(db_url: str, live: FakeGeminiLive, tmp: Path, port: int) -> dict[str, str]:
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
        PORT=str(port),
        GEMINI_API_KEY="test-key",
        GEMINI_BASE_URL=live.base_url,
        GEMINI_CA_FILE=live.ca_file,
        ANALYZER="offline",
        NOTIFY_PROVIDER="log",
        NOTIFY_AI="off",
        RUN_WORKER="false",  # `worker --once` below does the post-call work, once
        SPOOL_REPLAY_INTERVAL_S="1",
        # callers wait on held replies for as long as the test says: no "are you there?"
        SILENCE_PROMPT_AFTER_S="600",
        SILENCE_HANGUP_AFTER_S="900",
        KEEPALIVE_INTERVAL_S="0",
        CALLER_AUDIO_MAX_SPEED="0",  # the callers do not pace their scripted audio
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        NO_COLOR="1",
    )
    return env


@contextlib.asynccontextmanager
async def serving(env: dict[str, str], tmp: Path) -> AsyncIterator[Server]:
    """`receptionist db upgrade`, then `receptionist serve` until /readyz says 200."""
    upgrade = await asyncio.to_thread(
        subprocess.run, [str(RECEPTIONIST), "db", "upgrade"], env=env, cwd=REPO,
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    log = tmp / "serve.log"
    popen = _start(["serve"], env, log)
    server = Server(popen, log, int(env["PORT"]))
    try:

        async def ready() -> bool:
            assert popen.poll() is None, f"serve exited:\n{server.tail()}"
            return await status(server, "/readyz") == 200

        await until("serve is ready", ready, server.tail)
        yield server
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(popen.wait, 30)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the test's failure
            children = psutil.Process(popen.pid).children(recursive=True)
            popen.kill()
            await asyncio.to_thread(popen.wait)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(RECEPTIONIST), *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )


async def status(server: Server, path: str) -> int | None:
    """The HTTP status of GET `path`, or None while the server does not answer."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            return (await http.get(server.url(path))).status_code
    except httpx.TransportError:
        return None


@dataclass
class Call:
    """One simulated call: what the caller says, and the model's replies the test holds."""

    name: str
    number: str
    utterances: list[str]
    holds: dict[int, Hold] = field(default_factory=dict)  # caller turn -> hold on its reply
    call_sid: str = ""
    task: asyncio.Task[CallResult] | None = None

    def __post_init__(self) -> None:
        self.call_sid = f"CAoutage{self.name}{uuid.uuid4().hex[:12]}"

    def reply(self, i: int) -> str:
        return f"Reply {i} to the {self.name} call."

    def script(self) -> CallScript:
        return CallScript(
            greeting="Hello!",  # short: every call's caller hears it out before speaking
            turns=[
                ScriptedTurn(heard=u, reply=self.reply(i), hold=self.holds.get(i))
                for i, u in enumerate(self.utterances)
            ],
        )

    async def result(self) -> CallResult:
        assert self.task is not None
        async with asyncio.timeout(BOUND_S):
            result = await self.task
        assert result.ok, (self.name, result.error)
        return result


class Calls:
    """Places calls one at a time, each with its own model script: the double takes scripts in
    the order sessions connect, so a call is placed once the one before has its session."""

    def __init__(self, live: FakeGeminiLive, port: int) -> None:
        self.live = live
        self.port = port
        self.scripts: deque[CallScript] = deque()
        self.placed: list[Call] = []
        live.script = lambda _setup: self.scripts.popleft()

    async def place(self, call: Call) -> Call:
        self.scripts.append(call.script())
        opts = CallOptions(
            url=f"ws://127.0.0.1:{self.port}/exotel/bakery",
            call_sid=call.call_sid,
            realtime=False,
            from_number=call.number,
            max_call_s=OUTAGE_S + 4 * BOUND_S,
        )
        # a held reply keeps its caller waiting on the line (sending silence) until released
        script = CallerScript(utterances=call.utterances, turn_timeout_s=OUTAGE_S + 3 * BOUND_S)
        call.task = asyncio.create_task(place_call(opts, script))
        self.placed.append(call)
        await self.live.wait_for_sessions(len(self.placed), within_s=BOUND_S)
        return call


def heard_agent_between(result: CallResult, start: float, end: float) -> bool:
    """Did agent audio start reaching the caller between monotonic times `start` and `end`?"""
    assert result.start_sent_at is not None
    return any(
        e.kind == "agent_audio_start" and start < result.start_sent_at + e.t_ms / 1000.0 < end
        for e in result.events
    )


async def stored(db: Database) -> dict[str, dict[str, Any]]:
    """Every call row by call_sid (a call_sid twice would fail the count check below)."""
    c = call_details.c
    async with db.session() as conn:
        found = (
            (
                await conn.execute(
                    sa.select(
                        c.call_sid, c.session_id, c.from_number, c.to_number, c.stream_sid,
                        c.sample_rate, c.status, c.stage, c.attempts, c.last_error,
                        c.lease_owner, c.transcript, c.events,
                    )
                )
            )
            .mappings()
            .all()
        )  # fmt: skip
    by_sid = {r["call_sid"]: dict(r) for r in found}
    assert len(by_sid) == len(found), [r["call_sid"] for r in found]
    return by_sid


def spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.glob("*.json")) if spool.is_dir() else []


async def metric(server: Server, name: str) -> float:
    async with httpx.AsyncClient(timeout=5.0) as http:
        text = (await http.get(server.url("/metrics"))).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def worker_once(env: dict[str, str]) -> str:
    proc = await asyncio.to_thread(
        subprocess.run, [str(RECEPTIONIST), "worker", "--once"], env=env, cwd=REPO,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


async def test_postgres_stopped_for_30_s_under_live_calls(
    private_pg: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = Database(private_pg.url)
    spool = tmp_path / "spool"
    try:
        async with FakeGeminiLive(api_key="test-key") as live:
            env = server_env(private_pg.url, live, tmp_path, free_port())
            async with serving(env, tmp_path) as server:
                await outage(server, Calls(live, server.port), db, private_pg, spool)
            log = server.text()
        assert "Traceback" not in log, log
        # an operator reads the outage, once each way, in the server's log
        assert log.count("not ready: database unreachable") == 1, log
        assert log.count("ready again: the database answers") == 1, log
        await processed_once(env, db)
    finally:
        await db.dispose()


async def outage(
    server: Server, calls: Calls, db: Database, pg: ThrowawayPostgres, spool: Path
) -> None:
    logs = server.tail

    async def row_is(sid: str, statuses: tuple[str, ...]) -> bool:
        row = (await stored(db)).get(sid)
        return row is not None and row["status"] in statuses

    # --- before: a short call, ended and stored while the database is up
    before = await calls.place(Call("before", "+919811100001", ["Do you have rusks?"]))
    await before.result()
    await until("the first call is stored", lambda: row_is(before.call_sid, ("completed",)), logs)

    # --- calls in progress when the database stops, each waiting at a held reply
    ends = [
        await calls.place(
            Call(f"end{i}", f"+91981110001{i}", ["I want a cake.", "Chocolate."], {1: Hold()})
        )
        for i in (1, 2)
    ]
    through = await calls.place(
        Call(
            "through",
            "+919811100021",
            ["Are you open on Sunday?", "And on Monday?", "Thank you."],
            {1: Hold(), 2: Hold()},
        )
    )
    live_calls = [*ends, through]
    for call in live_calls:
        await call.holds[1].wait_reached(BOUND_S)
        await until(
            f"{call.name}'s row is created", lambda c=call: row_is(c.call_sid, ("in_progress",)),
            logs,
        )  # fmt: skip

    # --- the outage
    await asyncio.to_thread(pg.halt, "fast")
    stopped_at = time.monotonic()

    await until("/readyz says 503", lambda: _is(status(server, "/readyz"), 503), logs)
    assert await status(server, "/healthz") == 200  # the process itself is fine
    async with httpx.AsyncClient(timeout=5.0) as http:  # public: names no address
        answer = (await http.get(server.url("/readyz"))).json()
    assert answer == {"status": "unavailable", "database": "unreachable"}, answer

    # a new call is answered while the database is away (its row cannot be written yet)
    new = await calls.place(
        Call("new", "+919811100031", ["Can I pick up at six?"], {0: Hold()})
    )  # fmt: skip
    await new.holds[0].wait_reached(BOUND_S)  # greeted, and its caller spoke

    # the live calls go on: each hears its held reply; two of them end, the third goes on
    for call in live_calls:
        call.holds[1].release()
    ended = [await call.result() for call in ends]
    await through.holds[2].wait_reached(BOUND_S)
    want = sorted(c.call_sid for c in ends)
    await until(
        "the two ended calls are spooled",
        lambda: _true([n.rsplit("-", 1)[0] for n in spooled(spool)] == want),
        logs,
    )
    # two ends spooled, one start not written (the new call's)
    assert await metric(server, "receptionist_persist_failures_total") == 3
    assert await status(server, "/readyz") == 503

    # the scenario: the database is away this long (longer only if the steps above took
    # longer on a busy machine: at least OUTAGE_S either way)
    await asyncio.sleep(max(0.0, stopped_at + OUTAGE_S - time.monotonic()))
    assert len(spooled(spool)) == 2
    await asyncio.to_thread(pg.resume)
    back_at = time.monotonic()

    # --- the database is back: ready again, the spool written by the running server
    await until("/readyz says 200 again", lambda: _is(status(server, "/readyz"), 200), logs)
    for call in ends:
        await until(
            f"{call.name}'s spooled end is written",
            lambda c=call: row_is(c.call_sid, ("completed",)),
            logs,
        )
    await until("the spool is empty", lambda: _true(not spooled(spool)), logs)

    # the live feed LISTENs again: a call starting now is announced on the channel
    announced: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    listener = await asyncpg.connect(host=pg.host, port=pg.port, user=pg.user, database=pg.database)
    try:
        await listener.add_listener(
            CHANNEL, lambda *args: announced.put_nowait(orjson.loads(args[3]))
        )
        after = await calls.place(Call("after", "+919811100041", ["One loaf, please."]))

        async def announced_start() -> bool:
            while not announced.empty():
                event = announced.get_nowait()
                if event["k"] == "call_started" and event["c"] == after.call_sid:
                    return True
            return False

        await until("the live feed announces a new call", announced_start, logs)
    finally:
        await listener.close()
    await after.result()

    # the held calls finish after the outage
    through.holds[2].release()
    new.holds[0].release()
    results = {call.name: await call.result() for call in (through, new)}

    # callers heard the agent while the database was away
    for call, result in zip(ends, ended, strict=True):
        assert heard_agent_between(result, stopped_at, back_at), call.name
    assert heard_agent_between(results["through"], stopped_at, back_at)
    assert heard_agent_between(results["new"], stopped_at, back_at)  # its greeting

    # --- every call stored once, whole, with the caller's details
    async def all_completed() -> bool:
        rows = await stored(db)
        return all(
            c.call_sid in rows and rows[c.call_sid]["status"] == "completed" for c in calls.placed
        )

    await until("every call is stored", all_completed, logs)
    rows = await stored(db)
    assert sorted(rows) == sorted(c.call_sid for c in calls.placed)
    for call in calls.placed:
        row = rows[call.call_sid]
        assert row["stage"] == "transcript_saved", row
        assert (row["from_number"], row["to_number"], row["sample_rate"]) == (
            call.number,
            CallOptions(url="").to_number,
            8000,
        ), (call.name, row)
        assert row["stream_sid"], (call.name, row)
        transcript = row["transcript"]
        assert [t["speaker"] for t in transcript] == ["agent"] + ["caller", "agent"] * len(
            call.utterances
        ), (call.name, transcript)
        assert [t["text"] for t in transcript[1::2]] == call.utterances, transcript
        replies = [call.reply(i) for i in range(len(call.utterances))]
        assert [t["text"] for t in transcript[2::2]] == replies, transcript
    events = [e["kind"] for e in rows[new.call_sid]["events"]]
    assert "db_unavailable_at_start" in events, events


async def processed_once(env: dict[str, str], db: Database) -> None:
    """`receptionist worker --once` carries every call to `done` at its first try."""
    out = await worker_once(env)
    rows = await stored(db)
    for row in rows.values():
        assert (row["stage"], row["attempts"], row["last_error"], row["lease_owner"]) == (
            "done",
            0,
            None,
            None,
        ), (row, out)


async def _is(answer: Awaitable[int | None], expected: int) -> bool:
    return await answer == expected


async def _true(value: bool) -> bool:
    return value


async def test_a_call_started_while_the_database_is_away_keeps_its_callers_details(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """Bug: a call whose start could not be written was stored, from the spool or at its end,
    without the caller's number, the stream, the rate or the engine (FinishedCall carries
    none of them): no confirmation could reach the caller and the owner saw no number."""
    away = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere")  # nothing listens
    try:
        async with (
            FakeGeminiLive(script=CallScript(turns=[ScriptedTurn("Open today?", "Yes.")])) as fake,
            running_bridge(away, tmp_path, fake) as bridge,
        ):
            result = await place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False, from_number="+919811122233"),
                CallerScript(utterances=["Open today?"]),
            )
            assert result.ok, result.error
            spool = bridge.ctx.settings.spool_dir
        assert len(spooled(spool)) == 1
        assert await CallRecorder(sqlite_db, spool).replay_spool() == 1
    finally:
        await away.dispose()
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    assert (row["status"], row["from_number"], row["sample_rate"]) == (
        "completed",
        "+919811122233",
        8000,
    ), row
    assert row["stream_sid"] and row["to_number"] and row["engine"] == "gemini-live", row
    assert [t["speaker"] for t in row["transcript"]] == ["agent", "caller", "agent"]


class FreezingProxy:
    """A TCP relay to PostgreSQL that can stop passing bytes on (`freeze`) without closing
    anything: a database that hangs instead of refusing, as when its machine is lost or the
    network between drops packets."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                await self._flowing.wait()  # frozen: the bytes wait here, the socket stays open
                dst.write(data)
                await dst.drain()


async def test_a_hung_database_does_not_hold_a_calls_record_back(
    postgres_server: ThrowawayPostgres, pg_db: Database, tmp_path: Path
) -> None:
    """Bug: with a database that hangs rather than refuses, the start's write and then the
    end's waited on a pooled connection's socket (for as long as TCP keeps it: many minutes),
    so the ended call was neither stored nor spooled, and lost if the server restarted then."""
    proxy = await FreezingProxy(postgres_server.host, postgres_server.port).start()
    hung = Database(
        f"postgresql://{postgres_server.user}@127.0.0.1:{proxy.port}/{pg_db.engine.url.database}"
    )
    try:
        async with (
            FakeGeminiLive(script=CallScript(turns=[ScriptedTurn("Open today?", "Yes.")])) as fake,
            running_bridge(hung, tmp_path, fake, spool_replay_interval_s=0.2) as bridge,
        ):
            bridge.ctx.recorder.write_timeout_s = 1.0  # the test's bound, not production's
            spool = bridge.ctx.settings.spool_dir
            await hung.ping()  # a pooled connection, as a server has after its first calls
            proxy.freeze()
            result = await place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False, from_number="+919811133344"),
                CallerScript(utterances=["Open today?"]),
            )
            assert result.ok, result.error  # the caller noticed nothing
            await until("the call is spooled", lambda: _true(len(spooled(spool)) == 1), str)
            proxy.thaw()

            async def written() -> bool:
                row = await get_call(pg_db, result.call_sid)
                return row is not None and row["status"] == "completed"

            await until("the running server writes the spooled call", written, str)
            await until("the spool is empty", lambda: _true(not spooled(spool)), str)
    finally:
        proxy.thaw()
        await proxy.close()
        await hung.dispose()
    row = await get_call(pg_db, result.call_sid)
    assert row is not None and row["from_number"] == "+919811133344", row
    assert [t["speaker"] for t in row["transcript"]] == ["agent", "caller", "agent"]


async def test_a_replay_round_stops_at_the_first_call_the_database_is_away_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug: each round (every SPOOL_REPLAY_INTERVAL_S) tried every spooled call while the
    database was away, one connection and one warning each: a flood of both after an outage
    with many calls ended, and with a hung database a round took one timeout per call."""
    away = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere")  # nothing listens
    recorder = CallRecorder(away, tmp_path / "spool")
    for i in range(3):
        recorder._spool(  # as a failed save writes it
            FinishedCall(call_sid=f"CAaway{i}", status="completed", tenant="bakery"),
            recorder.spool_dir,
        )
    try:
        assert await recorder.replay_spool() == 0
    finally:
        await away.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "receptionist.recorder"]
    assert len(warnings) == 1 and "3 spooled call(s) wait" in warnings[0], warnings
    assert len(spooled(recorder.spool_dir)) == 3
