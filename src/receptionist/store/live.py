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
    if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] != 1:
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


class PostgresLiveFeed(LiveFeed):
    """The feed across processes: ``publish`` delivers to this process's watchers at once and
    queues the event; one task owns one connection of its own (not the pool's), sends the queue
    as ``pg_notify`` in batches and LISTENs for the other processes' events.

    A database outage never reaches the publisher: the queue is bounded (new events are dropped
    and counted when full), the task reconnects with backoff, and after a reconnect every watcher
    here gets a ``gap`` (it may have missed the others' events) and, if this process dropped
    events, a ``gap`` goes to the other processes as well.

    Direct connections only: a transaction-mode pooler (Supabase's port 6543, ``pgbouncer=true``)
    does not keep a LISTEN; point ``DATABASE_URL`` at the session-mode address (port 5432).
    """

    def __init__(
        self,
        db: Database,
        *,
        subscriber_queue: int = SUBSCRIBER_QUEUE,
        outbox_max: int = OUTBOX_MAX,
        keepalive_s: float = KEEPALIVE_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        super().__init__(subscriber_queue=subscriber_queue)
        self._dsn, self._connect_args = _asyncpg_target(db)
        self._safe_url = db.safe_url
        self._outbox: deque[LiveEvent] = deque()
        self._outbox_max = outbox_max
        self._keepalive_s = keepalive_s
        self._backoff_max_s = backoff_max_s
        self._wake = asyncio.Event()
        self._lost = False
        self._stopping = False
        self._owe_gap = False  # events were dropped: tell the other processes once connected
        self._pid: int | None = None  # our own backend: its NOTIFYs were delivered already
        self._conn: Any = None  # the connection in use (asyncpg.Connection)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while LISTENing (tests and /readyz may look)
        self.reconnects = 0

    @property
    def backend_pid(self) -> int | None:
        """The server process of the feed's connection while connected (for operators' and
        tests' eyes: ``pg_stat_activity``, ``pg_terminate_backend``)."""
        return self._pid

    def _send(self, event: LiveEvent) -> None:
        if len(self._outbox) >= self._outbox_max:
            self.dropped += 1
            self._owe_gap = True
            return
        self._outbox.append(event)
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-feed")

    async def aclose(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            # a send stuck on a hung database is not worth waiting for at shutdown
            try:
                async with asyncio.timeout(5.0):
                    await task
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await super().aclose()

    # --- the connection's task --------------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF_MIN_S
        first = True
        while not self._stopping:
            conn = None
            try:
                conn = await self._connect()
                delay = BACKOFF_MIN_S
                if not first:
                    self.reconnects += 1
                    log.info("live feed reconnected to %s", self._safe_url)
                    self._deliver(GAP)  # whatever the others said meanwhile is lost
                first = False
                self.connected.set()
                await self._serve(conn)
            except Exception as exc:
                if not self._stopping:
                    log.warning(
                        "live feed connection to %s lost: %s: %s; retrying in %.1fs",
                        self._safe_url,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
            finally:
                self.connected.clear()
                self._pid = self._conn = None
                if conn is not None:
                    await _close_quietly(conn)
            if self._stopping:
                return
            # sleep, unless stopped meanwhile; events keep queueing (bounded) in the outbox
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    while not self._stopping:
                        self._wake.clear()
                        await self._wake.wait()
            delay = min(delay * 2, self._backoff_max_s)

    async def _connect(self) -> Any:
        import asyncpg

        self._lost = False
        conn = await asyncpg.connect(self._dsn, **self._connect_args)
        try:
            self._conn = conn
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(CHANNEL, self._on_notify)
            self._pid = conn.get_server_pid()
        except BaseException:
            await _close_quietly(conn)
            raise
        if self._owe_gap:
            self._outbox.appendleft(GAP)
            self._owe_gap = False
        return conn

    async def _serve(self, conn: Any) -> None:
        """Send what is queued, LISTEN meanwhile; check an idle connection now and then.
        Returns when the feed stops; raises when the connection fails."""
        while not self._stopping:
            if self._lost:
                raise ConnectionError("connection closed")
            if self._outbox:
                await self._send_batch(conn)
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self._keepalive_s):
                    await self._wake.wait()
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=self._keepalive_s)
        # stopping: what is queued goes out if the database takes it promptly
        if self._outbox and not self._lost:
            with contextlib.suppress(Exception):
                await self._send_batch(conn)

    async def _send_batch(self, conn: Any) -> None:
        batch = [self._outbox.popleft() for _ in range(min(BATCH_MAX, len(self._outbox)))]
        args = []
        for event in batch:
            payload = encode(event)
            if len(payload.encode("utf-8")) > PAYLOAD_MAX_BYTES:  # cannot happen when bounded
                self.dropped += 1
                log.error("live event for %s too large to send; dropped", event.call_sid)
                continue
            args.append((CHANNEL, payload))
        if not args:
            return
        try:
            await conn.executemany("SELECT pg_notify($1, $2)", args, timeout=self._keepalive_s)
        except BaseException:
            # the batch may or may not have gone out: count it lost and tell the others
            self.dropped += len(args)
            self._owe_gap = True
            raise

    def _on_terminated(self, conn: Any) -> None:
        # asyncpg calls this soon after any close, ours included: only the current one counts
        if conn is self._conn:
            self._lost = True
            self._wake.set()

    def _on_notify(self, _conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid == self._pid or channel != CHANNEL:
            return  # our own events reached our watchers when published
        try:
            event = decode(payload)
        except BadPayload as exc:
            self.rejected += 1
            # anyone with database access can NOTIFY: log a flood sparingly
            if self.rejected <= 10 or self.rejected % 1000 == 0:
                log.warning(
                    "live feed: dropped a bad payload from backend %s (%s; %d so far)",
                    pid,
                    exc,
                    self.rejected,
                )
            return
        except Exception:
            self.rejected += 1
            log.exception("live feed: could not read a payload from backend %s", pid)
            return
        self._deliver(event)


def _asyncpg_target(db: Database) -> tuple[str, dict[str, Any]]:
    """asyncpg's DSN and keyword arguments for ``db`` (its URL handling, SSL and timeouts)."""
    from sqlalchemy.engine import make_url

    dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    args = db.connect_args
    # a SQLAlchemy dialect option, not asyncpg's; the others are asyncpg.connect's own
    args.pop("prepared_statement_cache_size", None)
    args.setdefault("timeout", 10.0)
    return dsn, args


async def _close_quietly(conn: Any) -> None:
    try:
        async with asyncio.timeout(2.0):
            await conn.close()
    except Exception:
        conn.terminate()
    except BaseException:  # cancelled meanwhile: still leave no socket behind
        conn.terminate()
        raise


def live_feed_for(db: Database) -> LiveFeed:
    """The feed that reaches every process sharing ``db``: LISTEN/NOTIFY on PostgreSQL,
    in-process on SQLite (one process)."""
    if db.dialect == "postgresql":
        return PostgresLiveFeed(db)
    return LiveFeed()


__all__ = [
    "CHANNEL",
    "GAP",
    "BadPayload",
    "LiveEvent",
    "LiveFeed",
    "PostgresLiveFeed",
    "Subscription",
    "bounded",
    "decode",
    "encode",
    "live_feed_for",
]
