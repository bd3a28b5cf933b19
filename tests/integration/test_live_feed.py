"""The live feed of calls in progress: tenant scoping, slow watchers, hostile NOTIFYs, several
processes on one PostgreSQL, a lost connection, and a real call through the bridge."""

from __future__ import annotations

import asyncio

from receptionist.store.db import Database
from receptionist.store.live import (
    SUBSCRIBER_QUEUE,
    LiveEvent,
    LiveFeed,
    Subscription,
    live_feed_for,
)

GUARD_S = 15.0  # a bound on every wait: reaching it is a failure, never a timing assumption


def turn(call_sid: str, tenant: str, text: str) -> LiveEvent:
    return LiveEvent(
        "turn",
        call_sid,
        tenant,
        {"speaker": "caller", "text": text, "start_ms": 10, "end_ms": 900, "interrupted": False},
    )


def started(call_sid: str, tenant: str) -> LiveEvent:
    return LiveEvent(
        "call_started",
        call_sid,
        tenant,
        {"from_number": "+919800000001", "started_at": "2026-12-07T05:00:00+00:00"},
    )


async def next_event(events: Subscription) -> LiveEvent:
    return await asyncio.wait_for(anext(events), GUARD_S)


async def test_tenant_scope_and_admin(db: Database) -> None:
    feed = live_feed_for(db)
    await feed.start()
    try:
        async with (
            feed.subscribe("bakery") as bakery,
            feed.subscribe("saloon") as saloon,
            feed.subscribe(None) as admin,
        ):
            feed.publish(started("CA1", "bakery"))
            feed.publish(turn("CA2", "saloon", "haircut at four"))
            feed.publish(turn("CA1", "bakery", "one truffle cake"))
            # the last event is the saloon's: once the bakery watcher has it, the saloon's
            # earlier one would have arrived before it had it leaked
            feed.publish(LiveEvent("call_ended", "CA1", "bakery", {"status": "completed"}))
            feed.publish(LiveEvent("call_ended", "CA2", "saloon", {"status": "completed"}))

            seen_admin = [await next_event(admin) for _ in range(5)]
            assert [(e.kind, e.tenant) for e in seen_admin] == [
                ("call_started", "bakery"),
                ("turn", "saloon"),
                ("turn", "bakery"),
                ("call_ended", "bakery"),
                ("call_ended", "saloon"),
            ]
            seen_bakery = [await next_event(bakery) for _ in range(3)]
            assert {e.tenant for e in seen_bakery} == {"bakery"}
            assert seen_bakery[1].data["text"] == "one truffle cake"
            assert seen_bakery[2].data == {"status": "completed", "end_reason": ""}
            seen_saloon = [await next_event(saloon) for _ in range(2)]
            assert {e.tenant for e in seen_saloon} == {"saloon"}
            # nothing else is queued for the scoped watchers (bakery's stream ended with CA1)
            assert bakery.pending == 0
    finally:
        await feed.aclose()


async def test_slow_subscriber_gets_one_gap_and_stays_bounded() -> None:
    feed = LiveFeed()
    async with feed.subscribe(None) as slow, feed.subscribe("bakery") as quick:
        for i in range(SUBSCRIBER_QUEUE * 10 + 3):
            feed.publish(turn(f"CA{i}", "bakery", "x" * 100))
            if i % 10 == 0:  # the quick watcher keeps up
                while quick.pending:
                    await next_event(quick)
        assert slow.pending <= SUBSCRIBER_QUEUE
        first = await next_event(slow)
        assert first.kind == "gap"
        rest = [await next_event(slow) for _ in range(slow.pending)]
        assert all(e.kind == "turn" for e in rest)
        assert rest[-1].call_sid == f"CA{SUBSCRIBER_QUEUE * 10 + 2}"
    await feed.aclose()
