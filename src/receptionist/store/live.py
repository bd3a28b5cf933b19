"""The live feed: calls in progress, their turns as they finish, and calls ending, pushed to
whoever watches (the owner's dashboard) without reloading.

Several server processes (or machines) share one database, so the feed goes through it:
PostgreSQL ``LISTEN/NOTIFY`` on one channel; on SQLite (one process by design) an in-process feed.
No other service.

Usage::

    feed = live_feed_for(db)
    await feed.start()
    feed.publish(LiveEvent("turn", call_sid, "bakery", {...}))   # never blocks, never raises
    async with feed.subscribe("bakery") as events:                # None: every tenant (admin)
        async for event in events:
            ...                                                   # "gap": reload the list
    await feed.aclose()

The publisher is the call bridge's hot path (hundreds of calls on two cores), so ``publish`` only
appends to bounded queues: a subscriber that falls behind loses its backlog and gets one ``gap``
event instead (memory stays bounded; the page reloads its list), and events the database cannot
take fast enough are dropped and counted. Every incoming NOTIFY is treated as hostile: anyone who
can connect to the database can send one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from receptionist.store.db import Database

log = logging.getLogger("receptionist.live")

CHANNEL = "receptionist_live"  # the one NOTIFY channel; a constant, never built from input
KINDS = frozenset({"call_started", "turn", "call_ended", "gap"})
PAYLOAD_MAX_BYTES = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
TEXT_MAX_BYTES = 6000  # a turn's text beyond this is cut (UTF-8 safe) and marked truncated
ID_MAX_CHARS = 128  # call_sid, tenant
FIELD_MAX_CHARS = 64  # from_number, started_at, status, end_reason, speaker
SUBSCRIBER_QUEUE = 256  # events one subscriber may have waiting before it gets a gap instead
OUTBOX_MAX = 10_000  # events waiting to be NOTIFYed before new ones are dropped
BATCH_MAX = 200  # NOTIFYs sent in one round trip
KEEPALIVE_S = 15.0  # an idle listener checks its connection this often (half-open sockets)
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One thing that happened on a live call.

    ``data`` by kind: call_started ``{from_number, started_at}`` (ISO 8601); turn ``{speaker,
    text, start_ms, end_ms, interrupted}`` plus ``truncated: True`` when the text was cut;
    call_ended ``{status, end_reason}``; gap ``{}`` (events were lost: reload).
    """

    kind: str
    call_sid: str
    tenant: str | None
    data: dict[str, Any] = field(default_factory=dict)


GAP = LiveEvent("gap", "", None, {})


# --- shape: bounding what goes out, validating what comes in ---------------------------------


def _cut(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _cut_utf8(text: str, limit: int) -> tuple[str, bool]:
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text, False
    # dropping a partial multi-byte character at the cut keeps the text valid UTF-8
    return raw[:limit].decode("utf-8", "ignore"), True


def _ms(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, min(int(value), 2**31))


def bounded(event: LiveEvent) -> LiveEvent:
    """``event`` with every field of the shape its kind promises, each within its bound (so its
    NOTIFY payload stays under PostgreSQL's limit). Unknown fields are left out."""
    if event.kind not in KINDS:
        raise ValueError(f"unknown live event kind {event.kind!r}")
    d = event.data
    data: dict[str, Any]
    if event.kind == "turn":
        raw_text = d.get("text")
        text, cut = _cut_utf8(raw_text if isinstance(raw_text, str) else "", TEXT_MAX_BYTES)
        data = {
            "speaker": _cut(d.get("speaker"), FIELD_MAX_CHARS),
            "text": text,
            "start_ms": _ms(d.get("start_ms")),
            "end_ms": _ms(d.get("end_ms")),
            "interrupted": d.get("interrupted") is True,
        }
        if cut or d.get("truncated") is True:
            data["truncated"] = True
    elif event.kind == "call_started":
        data = {
            "from_number": _cut(d.get("from_number"), FIELD_MAX_CHARS),
            "started_at": _cut(d.get("started_at"), FIELD_MAX_CHARS),
        }
    elif event.kind == "call_ended":
        data = {
            "status": _cut(d.get("status"), FIELD_MAX_CHARS),
            "end_reason": _cut(d.get("end_reason"), FIELD_MAX_CHARS),
        }
    else:
        data = {}
    tenant = event.tenant[:ID_MAX_CHARS] if isinstance(event.tenant, str) else None
    return LiveEvent(event.kind, _cut(event.call_sid, ID_MAX_CHARS), tenant, data)


def encode(event: LiveEvent) -> str:
    """The NOTIFY payload for a bounded event (compact JSON, non-ASCII kept as UTF-8)."""
    doc = {"v": 1, "k": event.kind, "c": event.call_sid, "t": event.tenant, "d": event.data}
    return orjson.dumps(doc).decode("utf-8")


class BadPayload(ValueError):
    """An incoming payload that is not an event of ours."""


def _str(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BadPayload(f"{what}: not a string of at most {limit} characters")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31:
        raise BadPayload(f"{what}: not a small non-negative integer")
    return value


def decode(payload: str) -> LiveEvent:
    """Parse and check one NOTIFY payload; raises :class:`BadPayload` for anything else."""
    if len(payload) > PAYLOAD_MAX_BYTES * 2:  # PostgreSQL bounds it; a check costs nothing
        raise BadPayload("payload too large")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadPayload("not JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise BadPayload("not a version-1 event object")
    kind, d = doc.get("k"), doc.get("d")
    if kind not in KINDS or not isinstance(d, dict):
        raise BadPayload("unknown kind or data not an object")
    call_sid = _str(doc.get("c"), ID_MAX_CHARS, "call_sid")
    tenant = doc.get("t")
    if tenant is not None:
        tenant = _str(tenant, ID_MAX_CHARS, "tenant")
    data: dict[str, Any]
    if kind == "turn":
        text = _str(d.get("text"), TEXT_MAX_BYTES, "text")
        data = {
            "speaker": _str(d.get("speaker"), FIELD_MAX_CHARS, "speaker"),
            "text": text,
            "start_ms": _int(d.get("start_ms"), "start_ms"),
            "end_ms": _int(d.get("end_ms"), "end_ms"),
            "interrupted": d.get("interrupted") is True,
        }
        if d.get("truncated") is True:
            data["truncated"] = True
    elif kind == "call_started":
        started_at = _str(d.get("started_at"), FIELD_MAX_CHARS, "started_at")
        if started_at:
            try:
                datetime.fromisoformat(started_at)
            except ValueError:
                raise BadPayload("started_at: not an ISO 8601 time") from None
        data = {
            "from_number": _str(d.get("from_number"), FIELD_MAX_CHARS, "from_number"),
            "started_at": started_at,
        }
    elif kind == "call_ended":
        data = {
            "status": _str(d.get("status"), FIELD_MAX_CHARS, "status"),
            "end_reason": _str(d.get("end_reason"), FIELD_MAX_CHARS, "end_reason"),
        }
    else:
        data = {}
    if kind != "gap" and (not call_sid or tenant is None):
        raise BadPayload("a call event needs a call_sid and a tenant")
    return LiveEvent(kind, call_sid, tenant, data)


# --- subscribers -----------------------------------------------------------------------------


class Subscription:
    """One watcher's bounded queue, read with ``async for``. Ends when the feed closes."""

    __slots__ = ("_closed", "_queue", "_ready", "_size", "gaps", "tenant")

    def __init__(self, tenant: str | None, size: int) -> None:
        self.tenant = tenant
        self.gaps = 0  # how many times this watcher fell behind
        self._size = size
        self._queue: deque[LiveEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, event: LiveEvent) -> None:
        if self._closed or (self.tenant is not None and event.tenant not in (None, self.tenant)):
            return
        if event.kind == "gap" and self._queue and self._queue[-1].kind == "gap":
            return  # one gap says it all
        if len(self._queue) >= self._size:
            # too slow: what it has not read is stale anyway once it reloads, so drop it all
            self._queue.clear()
            self.gaps += 1
            event = GAP
        self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LiveEvent:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class LiveFeed:
    """The in-process feed (SQLite, or tests); :class:`PostgresLiveFeed` adds the database."""

    def __init__(self, *, subscriber_queue: int = SUBSCRIBER_QUEUE) -> None:
        self._subscriber_queue = subscriber_queue
        self._subs: set[Subscription] = set()
        self.dropped = 0  # events lost before reaching the database (outbox full, send failed)
        self.rejected = 0  # incoming payloads that were not our events

    def publish(self, event: LiveEvent) -> None:
        """Hand ``event`` to every watcher (and other processes). Never blocks, never raises."""
        try:
            event = bounded(event)
            self._deliver(event)
            self._send(event)
        except Exception:  # the call must go on whatever happens here
            self.dropped += 1
            log.exception("live event dropped")

    def subscribe(self, tenant: str | None) -> AbstractAsyncContextManager[Subscription]:
        """Watch one tenant's calls (``None``: every tenant). Events published after this
        returns are seen; earlier ones are in the database."""
        return self._subscription(tenant)

    @contextlib.asynccontextmanager
    async def _subscription(self, tenant: str | None) -> AsyncIterator[Subscription]:
        sub = Subscription(tenant, self._subscriber_queue)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            sub.close()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        for sub in list(self._subs):
            sub.close()

    def _deliver(self, event: LiveEvent) -> None:
        for sub in self._subs:
            sub.offer(event)

    def _send(self, event: LiveEvent) -> None:
        return None  # in-process only


def live_feed_for(db: Database) -> LiveFeed:
    """The feed that reaches every process sharing ``db``: LISTEN/NOTIFY on PostgreSQL,
    in-process on SQLite (one process)."""
    # PostgreSQL transport lands next; until then every dialect gets the in-process feed
    return LiveFeed()


__all__ = [
    "CHANNEL",
    "GAP",
    "BadPayload",
    "LiveEvent",
    "LiveFeed",
    "Subscription",
    "bounded",
    "decode",
    "encode",
    "live_feed_for",
]
