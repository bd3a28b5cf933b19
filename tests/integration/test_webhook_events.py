"""The `call.started` and `message.status` webhook events (SQLite and PostgreSQL): each written
in the transaction that makes it true, then posted signed to a real local receiver.

- `call.started` is in the database while the call is still live (its row's start), carries the
  caller's number as the call's row does, and is written late, with the row, for a call that
  started while the database was away (from the spool);
- `message.status` follows a WhatsApp message: the dispatcher's send outcome (sent, failed) and
  MSG91's reports through our real webhook (delivered, read), one event per change, none for a
  replayed report, an unknown message or a retry still queued; and an event that cannot be
  written leaves the status unwritten too (one transaction);
- and the whole loop: one simulated call through the real bridge, its worker and the MSG91
  double reaches the receiver as every kind of event, each once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from receptionist.bridge.recorder import CallRecorder
from receptionist.bridge.server import serve_in_process
from receptionist.hooks.events import status_events_of
from receptionist.hooks.signing import SIGNATURE_HEADER, verify
from receptionist.notify.provider import ACCEPTED, REJECTED, RETRY, SendResult
from receptionist.notify.webhook import msg91_webhook_route
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.sim.msg91 import FakeMsg91
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.notifications import Report, StatusChange, apply_report
from receptionist.store.schema import notifications, webhook_deliveries
from receptionist.store.webhook_deliveries import NewDelivery
from receptionist.tenants.repository import TenantRepository
from tests.integration.bridge_harness import running_bridge
from tests.integration.test_messages_e2e import (
    AUTH_KEY,
    ORDER,
    _msg91_settings,
    _wire_webhook,
    call_and_settle,
)
from tests.integration.test_notifications import (
    Clock,
    ScriptedProvider,
    dispatcher,
    insert,
    new,
    status_of,
)
from tests.integration.test_webhooks import SECRET, Receiver, _deliverer, _tenants
from tests.integration.test_webhooks import Clock as HookClock
from tests.pg import free_port

HOOK_SECRET = "report-secret"
WEBHOOK_TOML = '\n[[webhooks]]\nurl = "{url}"\nsecret_env = "BAKERY_HOOK_SECRET"\n{events}\n'


async def _rows(db: Database, event_type: str) -> list[dict[str, Any]]:
    d = webhook_deliveries.c
    async with db.session() as conn:
        rows = await conn.execute(
            sa.select(webhook_deliveries).where(d.event_type == event_type).order_by(d.id)
        )
        return [dict(r) for r in rows.mappings()]


def _hook_tenant(tenants_dir: Path, url: str, events: str) -> None:
    toml = tenants_dir / "bakery" / "tenant.toml"
    toml.write_text(toml.read_text() + WEBHOOK_TOML.format(url=url, events=events))


# --- call.started -------------------------------------------------------------------------------


async def test_call_started_is_written_with_the_calls_row_while_it_is_live(
    db: Database, tmp_path: Path
) -> None:
    hold = Hold()
    script = CallScript(turns=[ScriptedTurn("Open today?", "Yes, till nine.", hold=hold)])
    async with (
        Receiver() as receiver,
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        _hook_tenant(bridge.ctx.settings.tenants_dir, f"{receiver.base_url}/hook",
                     'events = ["call.started"]')  # fmt: skip
        bridge.ctx.tenants.invalidate("bakery")
        options = CallOptions(url=bridge.url("bakery"), realtime=False, from_number="+919811122233")
        call = asyncio.create_task(place_call(options, CallerScript(utterances=["Open today?"])))
        try:
            await hold.wait_reached(30)  # the call is live, its reply held
            (row,) = await _rows(db, "call.started")
            live = await get_call(db, options.call_sid)
            assert live is not None and live["status"] == "in_progress"
            deliverer = _deliverer(db, HookClock())
            try:
                assert await deliverer.run_once() == 1  # sent while the caller still talks
            finally:
                await deliverer.aclose()
        finally:
            hold.release()
            result = await call
        assert result.ok, result.error
    assert row["call_sid"] == options.call_sid and row["tenant"] == "bakery"
    (event,) = receiver.events()
    assert event["type"] == "call.started" and event["id"] == row["event_id"]
    data = event["data"]
    assert data["from"] == "+919811122233" and data["call_sid"] == options.call_sid
    assert data["started_at"] == live["started_at"].isoformat()
    headers, body = receiver.got[0]
    assert verify(SECRET.encode(), headers[SIGNATURE_HEADER.lower()], body, now=time.time())
    assert len(await _rows(db, "call.started")) == 1  # the call's end wrote no second one


async def test_a_call_started_while_the_database_was_away_gets_its_event_late(
    sqlite_db: Database, tmp_path: Path
) -> None:
    away = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere")  # nothing listens
    try:
        async with (
            FakeGeminiLive(script=CallScript(turns=[ScriptedTurn("Open today?", "Yes.")])) as fake,
            running_bridge(away, tmp_path, fake) as bridge,
        ):
            _hook_tenant(bridge.ctx.settings.tenants_dir, "http://127.0.0.1:9/hook", "")
            bridge.ctx.tenants.invalidate("bakery")
            options = CallOptions(url=bridge.url("bakery"), realtime=False,
                                  from_number="+919811122244")  # fmt: skip
            result = await place_call(options, CallerScript(utterances=["Open today?"]))
            assert result.ok, result.error
            spool = bridge.ctx.settings.spool_dir
        assert await CallRecorder(sqlite_db, spool).replay_spool() == 1
        assert await CallRecorder(sqlite_db, spool).replay_spool() == 0
    finally:
        await away.dispose()
    (row,) = await _rows(sqlite_db, "call.started")
    call = await get_call(sqlite_db, options.call_sid)
    assert call is not None
    assert row["payload"]["data"]["from"] == "+919811122244"
    assert row["payload"]["data"]["started_at"] == call["started_at"].isoformat()


# --- message.status -----------------------------------------------------------------------------


async def _statuses(db: Database) -> list[tuple[str, str]]:
    return [
        (r["payload"]["data"]["status"], r["event_type"]) for r in await _rows(db, "message.status")
    ]


async def test_send_outcomes_are_message_status_events(db: Database, tmp_path: Path) -> None:
    root = _tenants(tmp_path, "http://127.0.0.1:9/hook", 'events = ["message.status"]')
    await insert(db, new("CAok", to="customer", recipient="919800000042"), new("CAno"), new("CAre"))
    refusals = {"CAno": SendResult(REJECTED, reason="400: bad template"),
                "CAre": SendResult(RETRY, reason="503")}  # fmt: skip
    by_id = {}
    for sid in ("CAok", "CAno", "CAre"):
        by_id[(await status_of(db, sid))["id"]] = sid

    class Provider(ScriptedProvider):
        async def send(self, message: Any) -> SendResult:
            self.sent.append(message)
            sid = by_id[message.notification_id]
            return refusals.get(sid) or SendResult(ACCEPTED, provider_ref=f"req-{sid}")

    events = status_events_of(TenantRepository(root))
    await dispatcher(db, Provider(), clock=Clock(), events=events).run_once()
    rows = {r["payload"]["data"]["message_id"]: r for r in await _rows(db, "message.status")}
    assert set(rows) == {i for i, s in by_id.items() if s != "CAre"}  # a retry is no event
    ok = next(r for i, r in rows.items() if by_id[i] == "CAok")["payload"]
    assert ok["data"] == {
        "message_id": ok["data"]["message_id"], "call_sid": "CAok", "recipient": "customer",
        "to": "919800000042", "template": "new_order", "status": "sent",
        "at": ok["data"]["at"], "error": None,
    }  # fmt: skip
    assert ok["type"] == "message.status" and ok["tenant"] == "bakery"
    failed = next(r for i, r in rows.items() if by_id[i] == "CAno")["payload"]["data"]
    assert failed["status"] == "failed" and failed["error"] == "400: bad template"


@pytest.fixture
async def reports(db: Database, tmp_path: Path) -> Any:
    root = _tenants(tmp_path, "http://127.0.0.1:9/hook", 'events = ["message.status"]')
    route = msg91_webhook_route(db, HOOK_SECRET, events=status_events_of(TenantRepository(root)))
    async with (
        serve_in_process(Starlette(routes=[route])) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):

        async def post(report: dict[str, Any]) -> dict[str, int]:
            r = await client.post(f"/webhooks/msg91?secret={HOOK_SECRET}", json=report)
            assert r.status_code == 200, r.text
            return dict(r.json())

        yield post


async def test_provider_reports_are_message_status_events(db: Database, reports: Any) -> None:
    await insert(db, new("CA1"))
    async with db.begin() as conn:  # as the dispatcher leaves a message MSG91 accepted
        await conn.execute(sa.update(notifications).values(status="sent", provider_ref="req-1"))
    assert await reports({"requestId": "req-1", "status": "delivered"}) == {"updated": 1}
    assert await reports({"requestId": "req-1", "status": "delivered"}) == {"unchanged": 1}
    assert await reports({"requestId": "req-1", "status": "sent"}) == {"unchanged": 1}  # late
    assert await reports({"requestId": "req-9", "status": "read"}) == {"unknown_ref": 1}
    assert await reports({"requestId": "req-1", "status": "read"}) == {"updated": 1}
    assert await _statuses(db) == [("delivered", "message.status"), ("read", "message.status")]
    ids = {r["event_id"] for r in await _rows(db, "message.status")}
    assert len(ids) == 2  # a status change each, each its own event
    await insert(db, new("CA2", to="customer", recipient="919800000042"))
    async with db.begin() as conn:
        await conn.execute(
            sa.update(notifications)
            .where(notifications.c.call_sid == "CA2")
            .values(status="sent", provider_ref="req-2")
        )
    failed = {"requestId": "req-2", "status": "failed", "reason": "131026 not on WhatsApp",
              "timestamp": "2026-12-07T10:00:00Z"}  # fmt: skip
    assert await reports(failed) == {"updated": 1}
    last = (await _rows(db, "message.status"))[-1]["payload"]["data"]
    assert (last["call_sid"], last["recipient"], last["to"]) == ("CA2", "customer", "919800000042")
    assert (last["status"], last["error"]) == ("failed", "131026 not on WhatsApp")
    assert last["at"] == "2026-12-07T10:00:00+00:00"  # when the provider says it happened


async def test_an_event_that_cannot_be_written_leaves_the_status_unwritten(db: Database) -> None:
    await insert(db, new("CA1"))
    async with db.begin() as conn:
        await conn.execute(sa.update(notifications).values(status="sent", provider_ref="req-1"))
    seen: list[StatusChange] = []

    def events(change: StatusChange) -> list[NewDelivery]:
        seen.append(change)
        raise RuntimeError("the event could not be made")

    with pytest.raises(RuntimeError):
        await apply_report(db, Report(provider_ref="req-1", status="delivered"), events=events)
    assert [c.status for c in seen] == ["delivered"]  # asked inside the change's transaction
    assert (await status_of(db, "CA1"))["status"] == "sent"
    assert await _rows(db, "message.status") == []


# --- the whole loop -----------------------------------------------------------------------------


async def test_one_call_end_to_end_reaches_the_receiver_as_every_kind_of_event(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulated call through the real bridge, its in-process worker (pipeline, dispatcher,
    deliverer), the MSG91 double reporting to our real webhook, and the business's receiver:
    every event arrives signed, each once (ids), in its type's shape."""
    monkeypatch.setenv("BAKERY_HOOK_SECRET", SECRET)
    turns = [ScriptedTurn(heard=ORDER, reply="Done, Anita!")]
    async with (
        Receiver() as receiver,
        FakeMsg91(auth_key=AUTH_KEY) as msg91,
        FakeGeminiLive(script=CallScript(turns=turns)) as live,
        running_bridge(db, tmp_path, live, **_msg91_settings(msg91)) as bridge,
    ):
        _wire_webhook(msg91, bridge)
        _hook_tenant(bridge.ctx.settings.tenants_dir, f"{receiver.base_url}/hook", "")
        bridge.ctx.tenants.invalidate("bakery")
        await call_and_settle(bridge, db, ORDER)
        # started, ended, analysed; two messages each sent then delivered
        wanted = {"call.started": 1, "call.ended": 1, "call.analyzed": 1, "message.status": 4}
        async with asyncio.timeout(60):  # a bound for a broken build, not a speed requirement
            while _counts(receiver) != wanted:
                receiver.arrived.clear()
                if _counts(receiver) != wanted:
                    await receiver.arrived.wait()
    events = receiver.events()
    assert len({e["id"] for e in events}) == len(events) == 7
    for headers, body in receiver.got:
        assert verify(SECRET.encode(), headers[SIGNATURE_HEADER.lower()], body, now=time.time())
    sids = {e["data"]["call_sid"] for e in events}
    assert len(sids) == 1
    statuses = sorted(
        (e["data"]["recipient"], e["data"]["status"]) for e in events
        if e["type"] == "message.status"
    )  # fmt: skip
    assert statuses == [("customer", "delivered"), ("customer", "sent"),
                        ("owner", "delivered"), ("owner", "sent")]  # fmt: skip
    analysed = next(e for e in events if e["type"] == "call.analyzed")["data"]
    assert analysed["call_type"] == "order" and analysed["details"]["name"] == "Anita"


def _counts(receiver: Receiver) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in receiver.events():
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    return counts
