"""The delivery-report webhook checks before it reads: no body is read without our secret, and
none beyond the limit. Proven with a raw socket that declares a huge body and never sends it:
an answer can only come if the server did not wait for the body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from receptionist.bridge.server import serve_in_process
from receptionist.notify.webhook import MAX_BODY_BYTES, MAX_FIELD_CHARS, msg91_webhook_route
from receptionist.store.db import Database
from receptionist.store.notifications import Report, apply_report, list_notifications
from receptionist.store.schema import notifications, utcnow
from tests.integration.test_notifications import insert, new

SECRET = "hook-secret"


@pytest.fixture
async def port(sqlite_db: Database) -> AsyncIterator[int]:
    app = Starlette(routes=[msg91_webhook_route(sqlite_db, SECRET)])
    async with serve_in_process(app, http="httptools") as bound:
        yield bound


async def raw_post(port: int, path: str, headers: dict[str, str], body_start: bytes) -> int:
    """POST with `headers`, send only `body_start`, and return the status the server answers
    with. The rest of the body is never sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body_start)
    await writer.drain()
    try:
        async with asyncio.timeout(20):  # generous: a server waiting for the body never answers
            status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_without_the_secret_a_huge_body_is_refused_unread(port: int) -> None:
    huge = {"Content-Length": str(100 * 1024 * 1024)}
    assert await raw_post(port, "/webhooks/msg91", huge, b"[" * 1024) == 401
    assert await raw_post(port, "/webhooks/msg91?secret=wrong", huge, b"[") == 401
    chunked = {"Transfer-Encoding": "chunked"}
    assert await raw_post(port, "/webhooks/msg91", chunked, b"400\r\n" + b"[" * 1024) == 401


async def test_with_the_secret_an_oversized_body_is_refused_unread(port: int) -> None:
    declared = {"Content-Length": str(MAX_BODY_BYTES + 1)}
    assert await raw_post(port, f"/webhooks/msg91?secret={SECRET}", declared, b"[") == 413


async def test_a_body_without_length_is_read_only_up_to_the_limit(port: int) -> None:
    chunk = b"[" * 65536
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY_BYTES // 65536 + 1)
    )
    status = await raw_post(
        port, f"/webhooks/msg91?secret={SECRET}", {"Transfer-Encoding": "chunked"}, body
    )
    assert status == 413  # answered though the body never ends


async def test_a_signed_body_is_checked_and_bounded(port: int) -> None:
    unsigned = {"X-Signature": "0" * 64, "Content-Length": str(MAX_BODY_BYTES + 1)}
    assert await raw_post(port, "/webhooks/msg91", unsigned, b"[") == 413
    wrong = {"X-Signature": "0" * 64, "Content-Length": "2"}
    assert await raw_post(port, "/webhooks/msg91", wrong, b"[]") == 401


async def test_report_values_are_cleaned_and_bounded(sqlite_db: Database, port: int) -> None:
    await insert(sqlite_db, new("CA1"))
    async with sqlite_db.begin() as conn:  # as the dispatcher leaves a message MSG91 accepted
        await conn.execute(sa.update(notifications).values(status="sent", provider_ref="req-1"))
    report = {"requestId": "req-1", "status": "failed", "reason": "\x1b[2J" + "x" * 5000 + "\x00"}
    body = orjson.dumps(report)
    headers = {"Content-Length": str(len(body))}
    assert await raw_post(port, f"/webhooks/msg91?secret={SECRET}", headers, body) == 200
    [row] = await list_notifications(sqlite_db, call_sid="CA1")
    assert row["status"] == "failed"
    assert row["error"].startswith("[2J") and len(row["error"]) <= MAX_FIELD_CHARS
    assert "\x1b" not in row["error"] and "\x00" not in row["error"]


async def _stored(db: Database, call_sid: str, **values: object) -> dict[str, object]:
    await insert(db, new(call_sid))
    async with db.begin() as conn:
        await conn.execute(
            sa.update(notifications).where(notifications.c.call_sid == call_sid).values(values)
        )
    [row] = await list_notifications(db, call_sid=call_sid)
    return row


async def test_a_report_cannot_make_a_refused_send_delivered(db: Database) -> None:
    # MSG91 answered 4xx: nothing went out (no sent_at), whatever a later report claims
    await _stored(db, "CA4xx", status="failed", provider_ref="req-4xx", error="400: bad template")
    outcome = await apply_report(db, Report(provider_ref="req-4xx", status="delivered"))
    [row] = await list_notifications(db, call_sid="CA4xx")
    assert outcome == "unchanged"
    assert row["status"] == "failed" and row["error"] == "400: bad template"


async def test_status_and_error_never_contradict(db: Database) -> None:
    await _stored(db, "CAok", status="sent", provider_ref="req-ok", sent_at=utcnow())
    await apply_report(db, Report(provider_ref="req-ok", status="failed", reason="131026"))
    [row] = await list_notifications(db, call_sid="CAok")
    assert row["status"] == "failed" and row["error"] == "131026"
    await apply_report(db, Report(provider_ref="req-ok", status="delivered"))
    [row] = await list_notifications(db, call_sid="CAok")
    assert row["status"] == "delivered" and row["error"] is None
