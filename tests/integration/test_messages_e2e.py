"""A simulated phone call through the real bridge ends with the right WhatsApp messages at the
MSG91 double, and its delivery reports reach our webhook: the whole loop over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.sim.gemini_rest import FakeGeminiRest
from receptionist.sim.msg91 import FakeMsg91
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from receptionist.store.schema import notifications, utcnow
from tests.integration.bridge_harness import Bridge, running_bridge

AUTH_KEY = "msg91-key"
SECRET = "hook-secret"
ORDER = "I'd like to order six chocolate brownies for pickup tomorrow at 5 pm. My name is Anita."
COMPLAINT = (
    "My name is Ravi. The cake I got yesterday was stale and the delivery was two hours late, "
    "I am very unhappy."
)


@pytest.fixture
async def msg91() -> AsyncIterator[FakeMsg91]:
    async with FakeMsg91(auth_key=AUTH_KEY) as fake:
        yield fake


@pytest.fixture
async def live() -> AsyncIterator[FakeGeminiLive]:
    turns = [ScriptedTurn(heard=ORDER, reply="Done, Anita!")]
    async with FakeGeminiLive(script=CallScript(turns=turns)) as fake:
        yield fake


def _msg91_settings(fake: FakeMsg91, **extra: Any) -> dict[str, Any]:
    return {
        "run_worker": True,
        "notify_provider": "msg91",
        "msg91_auth_key": AUTH_KEY,
        "msg91_base_url": fake.base_url,
        "msg91_webhook_secret": SECRET,
        "notify_ai": "off",
        "notify_backoff_s": 0.05,
        **extra,
    }


async def call_and_settle(
    bridge: Bridge, db: Database, utterance: str, *, from_number: str = "09812345678"
) -> list[dict[str, Any]]:
    result = await place_call(
        CallOptions(url=bridge.url("bakery"), realtime=False, from_number=from_number),
        CallerScript(utterances=[utterance]),
    )
    assert result.ok, result.error
    async with asyncio.timeout(60):  # a bound for a broken build, not a speed requirement
        while True:
            rows = await list_notifications(db, call_sid=result.call_sid)
            if rows and all(r["status"] not in ("queued", "sending") for r in rows):
                return sorted(rows, key=lambda r: r["recipient_type"])
            await asyncio.sleep(0.05)


def _wire_webhook(fake: FakeMsg91, bridge: Bridge) -> None:
    fake.webhook_url = f"http://127.0.0.1:{bridge.port}/webhooks/msg91"
    fake.webhook_secret = SECRET
    fake.auto_report = ["sent", "delivered"]


async def test_an_order_call_sends_the_customer_and_the_owner_one_message_each(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    async with running_bridge(db, tmp_path, live, **_msg91_settings(msg91)) as bridge:
        _wire_webhook(msg91, bridge)
        customer, owner = await call_and_settle(bridge, db, ORDER)
        async with asyncio.timeout(60):  # the delivery reports come back through our webhook
            while {r["status"] for r in await list_notifications(db)} != {"delivered"}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert customer["recipient"] == "919812345678" and owner["recipient"] == "919800000001"
    assert msg91.accepted_for("919812345678", "order_confirmation") == 1
    assert msg91.accepted_for("919800000001", "owner_new_order") == 1
    assert len(msg91.messages) == 2
    sent = {m.template: m for m in msg91.messages}
    confirmation = sent["order_confirmation"]
    assert confirmation.variables[0] == "Anita" and "brownie" in confirmation.variables[1]
    assert confirmation.integrated_number == "919800000009"  # the bakery's own sender
    assert sent["owner_new_order"].variables[1] == "+919812345678"
    assert customer["details"]["text"].startswith("Hi Anita, thank you for ordering")
    assert customer["details"]["ai"]["used"] is False  # NOTIFY_AI=off: the static line
    rows = await list_notifications(db)
    assert all(r["delivered_at"] and r["provider_ref"] for r in rows)


async def test_a_withheld_caller_number_skips_the_customer_but_not_the_owner(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    async with running_bridge(db, tmp_path, live, **_msg91_settings(msg91)) as bridge:
        customer, owner = await call_and_settle(bridge, db, ORDER, from_number="anonymous")
    assert customer["status"] == "skipped" and "withheld" in customer["error"]
    assert owner["status"] == "sent"
    assert owner["details"]["text"].count("hidden number") == 1
    assert len(msg91.messages) == 1


async def test_an_invalid_caller_number_is_skipped_with_the_reason(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    async with running_bridge(db, tmp_path, live, **_msg91_settings(msg91)) as bridge:
        customer, owner = await call_and_settle(bridge, db, ORDER, from_number="12345")
    assert customer["status"] == "skipped" and "12345" in customer["error"]
    assert owner["status"] == "sent"


async def test_a_complaint_only_alerts_the_owner_marked_urgent(
    db: Database, tmp_path: Path, msg91: FakeMsg91
) -> None:
    turns = [ScriptedTurn(heard=COMPLAINT, reply="I am so sorry, Ravi.")]
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as live,
        running_bridge(db, tmp_path, live, **_msg91_settings(msg91)) as bridge,
    ):
        (owner,) = await call_and_settle(bridge, db, COMPLAINT)
    assert owner["recipient_type"] == "owner" and owner["urgent"] is True
    assert owner["template_name"] == "owner_complaint" and owner["status"] == "sent"


async def test_a_wrong_auth_key_fails_visibly_and_is_not_retried(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    settings = _msg91_settings(msg91, msg91_auth_key="not-the-key")
    async with running_bridge(db, tmp_path, live, **settings) as bridge:
        rows = await call_and_settle(bridge, db, ORDER)
    assert {r["status"] for r in rows} == {"failed"}
    assert all("401" in r["error"] and r["attempts"] == 1 for r in rows)
    assert msg91.messages == []


async def test_a_provider_outage_is_retried_with_backoff_until_it_passes(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    """A long backoff (100 s, then 200 s), which the test skips by making each waiting message
    due at once (as the clock would, later) after checking the wait the dispatcher chose."""
    backoff_s = 100.0
    msg91.fail_next(500, count=3)
    settings = _msg91_settings(msg91, notify_backoff_s=backoff_s)
    n = notifications.c
    waits: dict[tuple[int, int], timedelta] = {}  # (message, attempts so far) -> wait chosen
    async with running_bridge(db, tmp_path, live, **settings) as bridge:
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False, from_number="09812345678"),
            CallerScript(utterances=[ORDER]),
        )
        assert result.ok, result.error
        assert bridge.ctx.worker is not None and bridge.ctx.worker.dispatcher is not None
        async with asyncio.timeout(60):  # a bound for a broken build, not a speed requirement
            while True:
                rows = await list_notifications(db, call_sid=result.call_sid)
                if len(rows) == 2 and {r["status"] for r in rows} == {"sent"}:
                    break
                for r in rows:
                    failed = (r["id"], r["attempts"])
                    if r["status"] != "queued" or not r["attempts"] or failed in waits:
                        continue
                    # failed, waiting: the wait is set when the failure is recorded
                    waits[failed] = r["next_attempt_at"] - r["updated_at"]
                    async with db.begin() as conn:
                        await conn.execute(
                            sa.update(notifications)
                            .where(n.id == r["id"], n.status == "queued")
                            .values(next_attempt_at=utcnow())
                        )
                    bridge.ctx.worker.dispatcher.wake.set()
                await asyncio.sleep(0.05)
    assert sum(r["attempts"] for r in rows) == 2 + 3  # three 500s spread over the two
    assert len(msg91.messages) == 2
    assert len(waits) == 3
    # the wait doubles; a little less than the backoff, for the time spent recording it
    for (_, attempts), wait in waits.items():
        expected = backoff_s * 2 ** (attempts - 1)
        assert timedelta(seconds=expected / 2) < wait <= timedelta(seconds=expected), waits


async def test_the_ai_writes_the_customers_line_through_gemini(
    db: Database, tmp_path: Path, live: FakeGeminiLive, msg91: FakeMsg91
) -> None:
    async with FakeGeminiRest(api_key="test-key") as rest:
        rest.script(json.dumps({"v5": "Lovely, Anita! Your brownies will wait for you."}))
        settings = _msg91_settings(msg91, notify_ai="auto", gemini_analysis_base_url=rest.base_url)
        async with running_bridge(db, tmp_path, live, **settings) as bridge:
            customer, _ = await call_and_settle(bridge, db, ORDER)
    assert customer["details"]["ai"]["used"] is True
    (message,) = [m for m in msg91.messages if m.template == "order_confirmation"]
    assert message.variables[4] == "Lovely, Anita! Your brownies will wait for you."
    async with db.session() as conn:
        import sqlalchemy as sa

        from receptionist.store.schema import ai_token_usage

        purposes = (await conn.execute(sa.select(ai_token_usage.c.purpose))).scalars().all()
    assert "message" in purposes
