"""The live feed of calls in progress: tenant scoping, slow watchers, hostile NOTIFYs, several
processes on one PostgreSQL, a lost connection, and a real call through the bridge.

"Two processes" are two LiveFeed instances on two separate Database objects (each its own
connection, as two server processes would have); on SQLite, which is one process by design, the
publisher and the watcher share one in-process feed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.db import Database
from receptionist.store.live import (
    CHANNEL,
    PAYLOAD_MAX_BYTES,
    SUBSCRIBER_QUEUE,
    TEXT_MAX_BYTES,
    LiveEvent,
    LiveFeed,
    PostgresLiveFeed,
    Subscription,
    encode,
    live_feed_for,
)
from tests.integration.bridge_harness import RawCall, row_for, running_bridge, sid
from tests.prom import Changes, parse

GUARD_S = 15.0  # a bound on every wait: reaching it is a failure, never a timing assumption


def turn(call_sid: str, tenant: str, text: str, speaker: str = "caller") -> LiveEvent:
    return LiveEvent(
        "turn",
        call_sid,
        tenant,
        {"speaker": speaker, "text": text, "start_ms": 10, "end_ms": 900, "interrupted": False},
    )


def started(call_sid: str, tenant: str) -> LiveEvent:
    return LiveEvent(
        "call_started",
        call_sid,
        tenant,
        {"from_number": "+919800000001", "started_at": "2026-12-07T05:00:00+00:00"},
    )


def ended(call_sid: str, tenant: str) -> LiveEvent:
    return LiveEvent("call_ended", call_sid, tenant, {"status": "completed", "end_reason": "x"})


async def next_event(events: Subscription) -> LiveEvent:
    return await asyncio.wait_for(anext(events), GUARD_S)


async def connected(feed: LiveFeed) -> None:
    if isinstance(feed, PostgresLiveFeed):
        await asyncio.wait_for(feed.connected.wait(), GUARD_S)


@contextlib.asynccontextmanager
async def started_feed(db: Database) -> AsyncIterator[LiveFeed]:
    feed = live_feed_for(db)
    await feed.start()
    try:
        await connected(feed)
        yield feed
    finally:
        await feed.aclose()


@contextlib.asynccontextmanager
async def two_processes(db: Database) -> AsyncIterator[tuple[LiveFeed, LiveFeed]]:
    """(publisher's feed, watcher's feed): on PostgreSQL on two separate Database objects."""
    if db.dialect != "postgresql":
        async with started_feed(db) as feed:
            yield feed, feed
        return
    other = Database(db.url)
    try:
        async with started_feed(db) as here, started_feed(other) as there:
            yield here, there
    finally:
        await other.dispose()


async def hand_notify(db: Database, *payloads: str) -> None:
    """NOTIFY straight through the driver, as anyone with database access could."""
    conn = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for payload in payloads:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    finally:
        await conn.close()


# --- every database ------------------------------------------------------------------------


async def test_tenant_scope_and_admin(db: Database) -> None:
    async with (
        two_processes(db) as (publisher, watcher),
        watcher.subscribe("bakery") as bakery,
        watcher.subscribe("saloon") as saloon,
        watcher.subscribe(None) as admin,
    ):
        publisher.publish(started("CA1", "bakery"))
        publisher.publish(turn("CA2", "saloon", "haircut at four"))
        publisher.publish(turn("CA1", "bakery", "one truffle cake"))
        publisher.publish(ended("CA1", "bakery"))
        publisher.publish(ended("CA2", "saloon"))

        seen_admin = [await next_event(admin) for _ in range(5)]
        assert [(e.kind, e.call_sid, e.tenant) for e in seen_admin] == [
            ("call_started", "CA1", "bakery"),
            ("turn", "CA2", "saloon"),
            ("turn", "CA1", "bakery"),
            ("call_ended", "CA1", "bakery"),
            ("call_ended", "CA2", "saloon"),
        ]
        assert seen_admin[0].data == {
            "from_number": "+919800000001",
            "started_at": "2026-12-07T05:00:00+00:00",
        }
        assert seen_admin[2].data == {
            "speaker": "caller",
            "text": "one truffle cake",
            "start_ms": 10,
            "end_ms": 900,
            "interrupted": False,
        }
        assert seen_admin[3].data == {"status": "completed", "end_reason": "x"}
        # the admin watcher had everything, so each scoped one has all it will ever get
        seen_bakery = [await next_event(bakery) for _ in range(bakery.pending)]
        seen_saloon = [await next_event(saloon) for _ in range(saloon.pending)]
        assert [(e.kind, e.call_sid) for e in seen_bakery] == [
            ("call_started", "CA1"),
            ("turn", "CA1"),
            ("call_ended", "CA1"),
        ]
        assert [(e.kind, e.call_sid) for e in seen_saloon] == [
            ("turn", "CA2"),
            ("call_ended", "CA2"),
        ]


async def test_slow_subscriber_gets_one_gap_and_stays_bounded(db: Database) -> None:
    total = SUBSCRIBER_QUEUE * 4 + 3
    async with (
        two_processes(db) as (publisher, watcher),
        watcher.subscribe(None) as slow,
        watcher.subscribe("bakery") as quick,
    ):
        # the quick watcher reads everything as it comes; the slow one reads nothing
        for i in range(total):
            publisher.publish(turn(f"CA{i}", "bakery", "x" * 100))
            if i % 50 == 49 or i == total - 1:  # let the quick one catch up on each batch
                while True:
                    event = await next_event(quick)
                    assert event.kind == "turn", "the quick watcher never fell behind"
                    if event.call_sid == f"CA{i}":
                        break
        assert slow.pending <= SUBSCRIBER_QUEUE  # bounded, whatever was published
        assert slow.gaps >= 1
        backlog = [await next_event(slow) for _ in range(slow.pending)]
        assert backlog[0].kind == "gap"
        assert all(e.kind == "turn" for e in backlog[1:])  # one gap, then what came since
        assert backlog[-1].call_sid == f"CA{total - 1}"


async def test_long_and_odd_turn_text_is_bounded_and_marked(db: Database) -> None:
    hindi = "मुझे एक किलो केक चाहिए। " * 1000  # ~60 KB of 3-byte characters
    async with two_processes(db) as (publisher, watcher), watcher.subscribe("bakery") as events:
        publisher.publish(turn("CA1", "bakery", hindi))
        publisher.publish(turn("CA2", "bakery", "nul \x00 and <script>alert(1)</script>"))
        publisher.publish(LiveEvent("no_such_kind", "CA3", "bakery", {}))  # dropped, no raise
        publisher.publish(ended("CA3", "bakery"))
        long_one = await next_event(events)
        assert long_one.data["truncated"] is True
        text = long_one.data["text"]
        assert hindi.startswith(text) and 0 < len(text.encode()) <= TEXT_MAX_BYTES
        assert len(encode(long_one).encode()) < PAYLOAD_MAX_BYTES
        odd = await next_event(events)
        assert odd.data["text"] == "nul \x00 and <script>alert(1)</script>"  # data, not markup
        assert "truncated" not in odd.data
        assert (await next_event(events)).call_sid == "CA3"
    assert publisher.dropped == 1


async def test_a_real_call_is_seen_live_in_order(db: Database, tmp_path: Path) -> None:
    turns = [
        ScriptedTurn(heard="Do you have eggless cakes?", reply="Yes, all our cakes."),
        ScriptedTurn(heard="One kilo truffle, please.", reply="Done, thank you!"),
    ]
    changes = Changes()
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
        contextlib.AsyncExitStack() as stack,
    ):
        elsewhere = bridge.ctx.live
        if db.dialect == "postgresql":  # a second server process, on its own Database
            other = Database(db.url)
            stack.push_async_callback(other.dispose)
            elsewhere = await stack.enter_async_context(started_feed(other))
        here = await stack.enter_async_context(bridge.ctx.live.subscribe("bakery"))
        there = await stack.enter_async_context(elsewhere.subscribe(None))
        other_tenant = await stack.enter_async_context(bridge.ctx.live.subscribe("saloon"))
        await connected(bridge.ctx.live)
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False, from_number="+919811112222"),
            CallerScript(utterances=[t.heard for t in turns]),
        )
        assert result.ok, result.error
        for events in (here, there):
            seen: list[LiveEvent] = []
            while not seen or seen[-1].kind != "call_ended":
                seen.append(await next_event(events))
            assert {(e.call_sid, e.tenant) for e in seen} == {(result.call_sid, "bakery")}
            assert seen[0].kind == "call_started"
            assert seen[0].data["from_number"] == "+919811112222"
            said = [(e.data["speaker"], e.data["text"]) for e in seen[1:-1]]
            assert said[1:] == [
                ("caller", "Do you have eggless cakes?"),
                ("agent", "Yes, all our cakes."),
                ("caller", "One kilo truffle, please."),
                ("agent", "Done, thank you!"),
            ]
            assert said[0][0] == "agent"  # the greeting
            assert seen[-1].data["status"] == "completed"
        assert other_tenant.pending == 0
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{bridge.port}/metrics")).text
        assert bridge.ctx.live.dropped == 0
        assert "receptionist_live_events_dropped_total" in {n for n, _ in parse(text)}
        assert changes("receptionist_live_events_dropped_total") == 0


async def test_refused_streams_publish_nothing(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=[])) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
        bridge.ctx.live.subscribe(None) as admin,
    ):
        for tenant in ("nosuchshop", "inactive"):
            async with connect(bridge.url(tenant)) as ws:
                call = RawCall(ws, sid())
                await call.start()
                with contextlib.suppress(ConnectionClosed):
                    await asyncio.wait_for(call._reader, GUARD_S)  # the bridge closes it
            assert ws.close_code == 1008
        assert (await row_for(sqlite_db, call.call_sid))["status"] == "rejected"
        bridge.ctx.live.publish(ended("CA-marker", "bakery"))
        assert (await next_event(admin)).call_sid == "CA-marker"  # nothing came before it


# --- PostgreSQL only -----------------------------------------------------------------------


async def test_two_processes_see_each_other(pg_db: Database) -> None:
    async with two_processes(pg_db) as (a, b), a.subscribe(None) as at_a, b.subscribe(None) as at_b:
        a.publish(turn("CA-A", "bakery", "from A"))
        b.publish(turn("CA-B", "bakery", "from B"))
        # each sees its own event (delivered in-process) and the other's (through the database),
        # and never its own twice
        got_a = {(await next_event(at_a)).call_sid for _ in range(2)}
        got_b = {(await next_event(at_b)).call_sid for _ in range(2)}
        assert got_a == got_b == {"CA-A", "CA-B"}
        a.publish(ended("CA-last", "bakery"))
        assert (await next_event(at_a)).call_sid == "CA-last"
        assert (await next_event(at_b)).call_sid == "CA-last"
        assert at_a.pending == at_b.pending == 0


async def test_hostile_notify_payloads_are_dropped(pg_db: Database) -> None:
    good = encode(turn("CA-ok", "bakery", "hello"))
    hostile = [
        "",
        "not json",
        "[1, 2, 3]",
        '{"v": 2, "k": "turn"}',
        '{"v": true, "k": "gap", "c": "", "t": null, "d": {}}',
        orjson.dumps({"v": 1, "k": "drop_tables", "c": "CA", "t": "bakery", "d": {}}).decode(),
        orjson.dumps({"v": 1, "k": "turn", "c": "CA", "t": "bakery", "d": []}).decode(),
        orjson.dumps({"v": 1, "k": "turn", "c": "CA", "t": 5, "d": {}}).decode(),
        orjson.dumps({"v": 1, "k": "turn", "c": "CA", "t": None, "d": {}}).decode(),
        good.replace('"start_ms":10', '"start_ms":-1'),
        good.replace('"start_ms":10', '"start_ms":1e300'),
        good.replace('"text":"hello"', '"text":{"$gt":""}'),
        good.replace('"CA-ok"', '"' + "C" * 5000 + '"'),
        good.replace('"hello"', '"' + "x" * 7000 + '"'),  # longer than we ever send
        orjson.dumps(
            {"v": 1, "k": "call_started", "c": "CA", "t": "bakery", "d": {"started_at": "soon"}}
        ).decode(),
        "[" * 3000 + "]" * 3000,  # deeper than the parser goes
    ]
    assert all(len(p.encode()) < 8000 for p in hostile)  # PostgreSQL refuses longer ones itself
    async with started_feed(pg_db) as feed, feed.subscribe(None) as events:
        await hand_notify(pg_db, *hostile, good)
        event = await next_event(events)  # the listener lived through them all
        assert (event.kind, event.call_sid, event.data["text"]) == ("turn", "CA-ok", "hello")
        assert feed.rejected == len(hostile)
        assert events.pending == 0
        assert isinstance(feed, PostgresLiveFeed) and feed.connected.is_set()


async def test_listener_survives_its_connection_being_killed(pg_db: Database) -> None:
    async def kill(feed: LiveFeed) -> None:
        assert isinstance(feed, PostgresLiveFeed) and feed.backend_pid is not None
        conn = await asyncpg.connect(pg_db.url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", feed.backend_pid)
        finally:
            await conn.close()

    async with two_processes(pg_db) as (a, b), a.subscribe(None) as at_a, b.subscribe(None) as at_b:
        # the watcher's connection dies: it reconnects and tells its watchers they missed things
        await kill(b)
        assert (await next_event(at_b)).kind == "gap"
        a.publish(turn("CA1", "bakery", "after the watcher came back"))
        assert (await next_event(at_a)).call_sid == "CA1"
        assert (await next_event(at_b)).call_sid == "CA1"

        # the publisher's connection dies: its events still reach the other process
        await kill(a)
        assert (await next_event(at_a)).kind == "gap"  # a has reconnected
        a.publish(turn("CA2", "bakery", "after the publisher came back"))
        assert (await next_event(at_a)).call_sid == "CA2"
        assert (await next_event(at_b)).call_sid == "CA2"
        assert isinstance(a, PostgresLiveFeed) and isinstance(b, PostgresLiveFeed)
        assert a.reconnects == b.reconnects == 1


async def test_publish_never_waits_for_a_database_that_is_down(tmp_path: Path) -> None:
    # nothing listens on this port: the feed keeps retrying, publish keeps returning at once,
    # the outbox stays bounded and the overflow is counted
    db = Database("postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    feed = PostgresLiveFeed(db, outbox_max=10, backoff_max_s=0.5)
    await feed.start()
    try:
        async with feed.subscribe("bakery") as events:
            for i in range(25):
                feed.publish(turn(f"CA{i}", "bakery", "hello"))
            assert events.pending == 25  # this process's watchers get them all the same
            assert feed.dropped == 15
            assert not feed.connected.is_set()
    finally:
        await feed.aclose()
        await db.dispose()
