"""`POST /webhooks/msg91` over real HTTP: authentication, idempotence, bad bodies."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from receptionist.bridge.server import serve_in_process
from receptionist.notify.webhook import msg91_webhook_route, parse_reports
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from tests.integration.test_notifications import ScriptedProvider, dispatcher, insert, new

SECRET = "s3cret-webhook"


@pytest.fixture
async def hook(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[msg91_webhook_route(db, SECRET)])
    async with (
        serve_in_process(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        yield client


async def sent_message(db: Database, ref: str = "req-1") -> dict:
    await insert(db, new("CA1"))
    from receptionist.notify.provider import ACCEPTED, SendResult

    await dispatcher(db, ScriptedProvider(SendResult(ACCEPTED, provider_ref=ref))).drain()
    return (await list_notifications(db, call_sid="CA1"))[0]


def report(ref: str = "req-1", status: str = "delivered", **extra: str) -> bytes:
    body = {
        "requestId": ref,
        "status": status,
        "customerNumber": "919800000001",
        "integratedNumber": "919800000009",
        "templateName": "new_order",
        **extra,
    }
    return orjson.dumps(body)


async def test_a_report_with_the_secret_updates_the_message(
    db: Database, hook: httpx.AsyncClient
) -> None:
    await sent_message(db)
    r = await hook.post("/webhooks/msg91", params={"secret": SECRET}, content=report())
    assert r.status_code == 200 and r.json() == {"updated": 1}
    row = (await list_notifications(db, call_sid="CA1"))[0]
    assert row["status"] == "delivered" and row["delivered_at"] is not None
    # the same report again (a replay, or MSG91 retrying) changes nothing
    r = await hook.post("/webhooks/msg91", headers={"X-Webhook-Secret": SECRET}, content=report())
    assert r.json() == {"unchanged": 1}


async def test_a_signed_report_is_accepted(db: Database, hook: httpx.AsyncClient) -> None:
    await sent_message(db)
    body = report(status="read")
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = await hook.post("/webhooks/msg91", headers={"X-Signature": f"sha256={sig}"}, content=body)
    assert r.status_code == 200
    assert (await list_notifications(db, call_sid="CA1"))[0]["status"] == "read"


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"params": {"secret": "wrong"}},
        {"headers": {"X-Webhook-Secret": SECRET + "x"}},
        {"headers": {"X-Signature": "sha256=" + "0" * 64}},
    ],
    ids=["none", "wrong-query", "wrong-header", "forged-signature"],
)
async def test_forged_reports_get_401_and_change_nothing(
    db: Database, hook: httpx.AsyncClient, auth: dict
) -> None:
    await sent_message(db)
    r = await hook.post("/webhooks/msg91", content=report(status="failed"), **auth)
    assert r.status_code == 401
    assert (await list_notifications(db, call_sid="CA1"))[0]["status"] == "sent"


async def test_no_secret_configured_refuses_everything(db: Database) -> None:
    await sent_message(db)
    app = Starlette(routes=[msg91_webhook_route(db, None)])
    async with serve_in_process(app) as port, httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{port}/webhooks/msg91", content=report())
    assert r.status_code == 401
    assert (await list_notifications(db, call_sid="CA1"))[0]["status"] == "sent"


async def test_garbled_and_unknown_reports(db: Database, hook: httpx.AsyncClient) -> None:
    await sent_message(db)
    auth = {"secret": SECRET}
    r = await hook.post("/webhooks/msg91", params=auth, content=b'{"requestId": "req-1", "sta')
    assert r.status_code == 400
    r = await hook.post("/webhooks/msg91", params=auth, content=b"[1, 2]")
    assert r.status_code == 400
    r = await hook.post("/webhooks/msg91", params=auth, content=report(ref="req-other"))
    assert r.status_code == 200 and r.json() == {"unknown_ref": 1}
    # a list of reports in one body
    body = orjson.dumps([orjson.loads(report(status="delivered")), orjson.loads(report("x"))])
    r = await hook.post("/webhooks/msg91", params=auth, content=body)
    assert r.json() == {"updated": 1, "unknown_ref": 1}


def test_parse_reports_reads_msg91_field_variants() -> None:
    (r,) = parse_reports(
        orjson.dumps(
            {
                "requestId": "abc",
                "status": "Failed",
                "mobile": "+91 98000 00001",
                "templateName": "t",
                "failureReason": "131026 receiver incapable",
                "requestedAt": "2026-11-25T10:00:00Z",
            }
        )
    )
    assert (r.provider_ref, r.status, r.recipient, r.reason) == (
        "abc",
        "failed",
        "919800000001",
        "131026 receiver incapable",
    )
    assert r.at is not None and r.at.year == 2026
    (r,) = parse_reports(b'{"uuid": "u1", "eventName": "delivered", "requestedAt": "1764064800"}')
    assert r.provider_ref == "u1" and r.status == "delivered" and r.at is not None
