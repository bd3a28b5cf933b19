"""A call's recording as the owner's window sees it: its state on the call's page and JSON, and
the audio itself, served through the same key or session that may see the call (never a public
link: the recording store is private, and the dashboard's CSP allows media from itself only).

Byte ranges are served (`Range: bytes=a-b`, RFC 9110 section 14), so a browser seeks in the
audio without downloading all of it: without a Range (or with one we do not serve: several
ranges, another unit) the answer is 200 and the whole file, streamed MAX_RANGE bytes at a time;
a satisfiable range is 206 with its Content-Range (at most MAX_RANGE bytes of it, which the
Content-Range says); one that starts past the end is 416 with ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from receptionist.recordings.stores import RecordingStore, StoreError
from receptionist.store.recordings import STORED
from receptionist.store.schema import call_recordings
from receptionist.web.deps import WebDeps, WebError
from receptionist.web.models import Recording
from receptionist.web.scope import Scope

__all__ = ["MAX_RANGE", "parse_range", "recording_of", "recording_response"]

MAX_RANGE = 4 * 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


async def _row(s: Scope, deps: WebDeps, call_sid: str) -> Any:
    async with deps.db.session() as conn:
        stmt = s.recordings().where(call_recordings.c.call_sid == call_sid)
        return (await conn.execute(stmt)).first()


async def recording_of(s: Scope, deps: WebDeps, call_sid: str) -> Recording | None:
    """The call's recording state; None: the call was not recorded."""
    row = await _row(s, deps, call_sid)
    if row is None:
        return None
    stored = row.status == STORED
    return Recording(
        status=row.status,
        url=f"/api/v1/calls/{quote(call_sid, safe='')}/recording" if stored else None,
        content_type=row.content_type if stored else None,
        bytes=row.bytes,
        duration_ms=row.duration_ms,
        attempts=row.attempts,
        error=row.last_error,
        created_at=row.created_at,
        stored_at=row.stored_at,
        deleted_at=row.deleted_at,
    )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, capped at MAX_RANGE; None: the whole
    file. A range that cannot be served raises WebError 416."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: the whole file (allowed by RFC 9110)
    first_s, last_s = m.groups()
    if not first_s:  # the last n bytes
        n = int(last_s[:12])
        first, last = max(0, size - n), size - 1
    else:
        first = int(first_s[:12])
        last = min(int(last_s[:12]), size - 1) if last_s else size - 1
    if first >= size or last < first:
        raise WebError(
            416,
            "bad_range",
            f"range not satisfiable (size {size})",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return first, min(last, first + MAX_RANGE - 1)


async def recording_response(
    s: Scope, deps: WebDeps, call_sid: str, range_header: str | None
) -> Response:
    row = await _row(s, deps, call_sid)
    store = deps.recordings
    if row is None or row.status != STORED or not row.store_key or store is None:
        raise WebError(404, "not_found", "this call has no recording to play")
    key, content_type = row.store_key, row.content_type
    try:
        size = await asyncio.to_thread(store.size, key)
        span = parse_range(range_header, size)
        if span is not None:
            body = await asyncio.to_thread(store.read, key, span[0], span[1])
        elif size <= MAX_RANGE:
            body = await asyncio.to_thread(store.read, key, 0, size - 1) if size else b""
    except StoreError as exc:
        if exc.missing:
            raise WebError(404, "not_found", "the recording is gone from the store") from None
        raise WebError(503, "unavailable", "the recording store is not answering") from None
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    if span is not None:
        headers["Content-Range"] = f"bytes {span[0]}-{span[0] + len(body) - 1}/{size}"
        return Response(body, 206, headers=headers, media_type=content_type)
    if size <= MAX_RANGE:
        return Response(body, 200, headers=headers, media_type=content_type)
    headers["Content-Length"] = str(size)
    return StreamingResponse(
        _chunks(store, key, size), 200, headers=headers, media_type=content_type
    )


async def _chunks(store: RecordingStore, key: str, size: int) -> AsyncIterator[bytes]:
    """The whole file, MAX_RANGE bytes at a time (each read in a thread). A store failing half
    way ends the body short: the client sees fewer bytes than Content-Length said."""
    for first in range(0, size, MAX_RANGE):
        last = min(first + MAX_RANGE, size) - 1
        try:
            yield await asyncio.to_thread(store.read, key, first, last)
        except StoreError:
            return
