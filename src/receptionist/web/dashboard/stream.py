"""The live view's event stream (Server-Sent Events): the live feed of the viewer's scope, as
`event: <kind>` + one JSON line each. The session is re-checked while the stream is open, so
signing out (or a revoked key) ends it; a session may hold only a few streams at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from receptionist.store.live import LiveEvent
from receptionist.store.web_sessions import Ended, open_session
from receptionist.web.dashboard.app import Dashboard, Viewer
from receptionist.web.deps import WebError


def sse(event: LiveEvent) -> str:
    """One SSE message. JSON escapes every newline, so hostile text cannot start a new field."""
    body = {"call_sid": event.call_sid, "tenant": event.tenant, **event.data}
    return f"event: {event.kind}\ndata: {orjson.dumps(body).decode()}\n\n"


async def events(request: Request, viewer: Viewer) -> Response:
    dash: Dashboard = request.app.state.dash
    if dash.live is None:
        return Response("the live feed is not running\n", 503, media_type="text/plain")
    slots = dash.options.slots
    if not slots.take(viewer.session.id):
        raise WebError(429, "streams", "too many live streams for this session")
    return StreamingResponse(
        _stream(dash, viewer),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _still_signed_in(dash: Dashboard, viewer: Viewer) -> bool:
    try:
        got = await open_session(dash.deps.db, viewer.token)
    except Exception:
        return True  # a database hiccup is not a sign-out; the next check decides
    return not isinstance(got, Ended)


async def _stream(dash: Dashboard, viewer: Viewer) -> AsyncIterator[str]:
    assert dash.live is not None
    options = dash.options
    try:
        async with dash.live.subscribe(viewer.scope.tenant) as feed:
            # the first bytes tell the browser the stream is open (and how soon to reconnect)
            yield "retry: 5000\n: open\n\n"
            checked = time.monotonic()
            while True:
                event: LiveEvent | None
                try:
                    async with asyncio.timeout(options.keepalive_s):
                        event = await anext(feed, None)
                    if event is None:  # the feed closed (server shutting down)
                        return
                except TimeoutError:
                    event = None
                if time.monotonic() - checked >= options.session_recheck_s:
                    if not await _still_signed_in(dash, viewer):
                        yield "event: ended\ndata: {}\n\n"
                        return
                    checked = time.monotonic()
                if event is None:
                    yield ": keep-alive\n\n"
                elif event.kind == "gap" or viewer.scope.sees(event.tenant):
                    # the feed filters by tenant already; a second look costs nothing
                    yield sse(event)
    finally:
        options.slots.give_back(viewer.session.id)
