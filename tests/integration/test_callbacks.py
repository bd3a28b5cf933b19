"""AI callbacks: Exotel's connect API (its double) dials the caller with a stream URL to our
bridge and opens that stream the way Exotel does; the bridge runs the call with the first call's
context. Each rule refuses before anything is dialled: a withheld number, outside the hours, too
many today, twice for one reason; a number that does not answer is recorded, never redialled."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from typer.testing import CliRunner

from receptionist.bridge.callback_context import context_text
from receptionist.callbacks import (
    CallbackDeps,
    CallbackRefused,
    Placed,
    Scheduled,
    place_callback,
    rule_reason,
    schedule_callback,
    settle_callback,
)
from receptionist.cli import app
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.postcall.pipeline import PipelineDeps
from receptionist.postcall.pricing import load_pricing
from receptionist.postcall.wiring import offline_analyzer
from receptionist.postcall.worker import Worker
from receptionist.sim.caller.call import place_call
from receptionist.sim.caller.script import CallerScript, CallOptions
from receptionist.sim.exotel_api import FakeExotelApi
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.api_keys import create_key
from receptionist.store.callbacks import callbacks_for_call
from receptionist.store.calls import FinishedCall, NewCall, create_call, finish_call, get_call
from receptionist.store.db import Database
from receptionist.store.schema import call_details
from receptionist.telephony.exotel_api import ExotelApiConfig
from receptionist.tenants.hours import DAYS
from receptionist.tenants.repository import TenantRepository
from tests.integration.bridge_harness import Bridge, row_for, running_bridge, tenants_dir
from tests.integration.test_dashboard import Browser

IST = ZoneInfo("Asia/Kolkata")
CALLER = "+919845012345"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_hours(root: Path, line: str, per_day: int = 2) -> None:
    toml = root / "bakery" / "tenant.toml"
    text = toml.read_text()
    text = text.replace('hours = ["mon-sat 10:00-20:00", "sun 10:00-14:00"]', f'hours = ["{line}"]')
    text = text.replace("per_number_per_day = 2", f"per_number_per_day = {per_day}")
    toml.write_text(text)


def not_today() -> str:
    return f"{DAYS[(datetime.now(IST).weekday() + 3) % 7]} 10:00-11:00"


async def a_call(db: Database, sid: str, from_number: str | None = CALLER) -> str:
    await create_call(
        db, NewCall(call_sid=sid, tenant="bakery", from_number=from_number, to_number="08047112233")
    )
    return sid


@pytest.fixture
async def exotel() -> AsyncIterator[FakeExotelApi]:
    async with FakeExotelApi(account_sid="ACrx", api_key="k", api_token="t") as fake:
        yield fake


def deps_for(
    db: Database, root: Path, fake: FakeExotelApi, client: httpx.AsyncClient
) -> CallbackDeps:
    cfg = ExotelApiConfig("ACrx", "k", "t", base_url=fake.base_url)
    return CallbackDeps(db, TenantRepository(root), cfg, client, "ws://127.0.0.1:9/exotel")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


# ---------------------------------------------------------------- the rules (no bridge needed)


async def test_withheld_number_is_refused(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    deps = deps_for(db, root, exotel, client)
    for n, withheld in enumerate(["", "anonymous", "0000000000", None]):
        sid = await a_call(db, f"CAwithheld{n}", from_number=withheld)
        with pytest.raises(CallbackRefused) as refused:
            await place_callback(deps, sid)
        assert refused.value.reason == "withheld"
    assert exotel.connects == []  # nothing was dialled


async def test_outside_hours_is_refused(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, not_today())
    sid = await a_call(db, "CAlate001")
    with pytest.raises(CallbackRefused) as refused:
        await place_callback(deps_for(db, root, exotel, client), sid)
    assert refused.value.reason == "outside_hours"
    opening = not_today().split()[0].capitalize()  # e.g. "Thu": when the hours open next
    assert f"they open {opening}" in refused.value.message and "10:00" in refused.value.message
    assert exotel.connects == [] and await callbacks_for_call(db, sid) == []  # key not taken


async def test_no_answer_is_recorded_and_never_redialled(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    deps = deps_for(db, root, exotel, client)
    exotel.no_answer.add(CALLER)
    sid = await a_call(db, "CAnoanswer1")
    placed = await place_callback(deps, sid, "dropped")

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    assert await settle_callback(deps, placed, sleep=no_wait) == "no_answer"
    (row,) = await callbacks_for_call(db, sid)
    assert (row.status, row.reason, row.exotel_sid) == ("no_answer", "dropped", placed.exotel_sid)
    with pytest.raises(CallbackRefused) as again:  # the same reason: never twice
        await place_callback(deps, sid, "dropped")
    assert again.value.reason == "already"
    assert len(exotel.connects) == 1
    sent = exotel.connects[0]
    assert (sent["From"], sent["CallerId"], sent["StreamType"]) == (
        CALLER,
        "08047112233",
        "bidirectional",
    )
    stream = urlsplit(sent["StreamUrl"])
    assert stream.path == "/exotel/bakery" and parse_qs(stream.query)["callback"] == [row.token]


async def test_twice_for_one_reason_at_once_dials_once(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    deps = deps_for(db, root, exotel, client)
    exotel.no_answer.add(CALLER)  # no stream: this test is about the dialling
    sid = await a_call(db, "CAtwice0001")
    results = await asyncio.gather(
        *(place_callback(deps, sid, "unresolved") for _ in range(5)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, CallbackRefused)]
    assert len(refused) == 4 and {r.reason for r in refused} == {"already"}
    assert len(exotel.connects) == 1


async def test_rate_limited_per_number(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00", per_day=2)
    deps = deps_for(db, root, exotel, client)
    exotel.no_answer.add(CALLER)
    for n in range(2):
        await place_callback(deps, await a_call(db, f"CArate000{n}"))
    with pytest.raises(CallbackRefused) as refused:
        await place_callback(deps, await a_call(db, "CArate0009"))
    assert refused.value.reason == "rate_limited"
    assert len(exotel.connects) == 2


async def test_requests_at_once_at_the_limit_dial_exactly_the_limit(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    """The count and the claim are one transaction per number: six requests at once for six
    calls of one caller, two a day allowed: two dial, four are refused as rate_limited."""
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00", per_day=2)
    deps = deps_for(db, root, exotel, client)
    exotel.no_answer.add(CALLER)
    sids = [await a_call(db, f"CAburst00{n}") for n in range(6)]
    results = await asyncio.gather(
        *(place_callback(deps, sid) for sid in sids), return_exceptions=True
    )
    placed = [r for r in results if isinstance(r, Placed)]
    refused = [r for r in results if isinstance(r, CallbackRefused)]
    assert len(placed) == 2 and len(refused) == 4, results
    assert {r.reason for r in refused} == {"rate_limited"}
    assert len(exotel.connects) == 2


async def test_exotel_refusing_the_call_is_recorded(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    deps = deps_for(db, root, exotel, client)
    exotel.api_token = "rotated"  # our token is refused (401)
    sid = await a_call(db, "CArefused01")
    with pytest.raises(Exception, match="auth"):
        await place_callback(deps, sid)
    (row,) = await callbacks_for_call(db, sid)
    assert row.status == "failed" and "auth" in (row.error or "")


def test_the_call_type_rule(tmp_path: Path) -> None:
    tenant = TenantRepository(tenants_dir(tmp_path)).get("bakery")
    complaint = {"call_type": "complaint", "status": "completed", "end_reason": "stop:callended"}
    assert rule_reason(tenant, {**complaint, "critical_call_details": {}}) == "dropped"
    assert rule_reason(tenant, {**complaint, "end_reason": "agent_ended"}) == "unresolved"
    assert rule_reason(tenant, {**complaint, "status": "failed"}) == "failed"
    done = {"name": "A", "phone": CALLER, "issue": "late"}
    assert rule_reason(tenant, {**complaint, "critical_call_details": done}) is None
    assert rule_reason(tenant, {"call_type": "order", "status": "failed"}) is None  # no rule


def test_the_context_names_the_first_call() -> None:
    text = context_text(
        {"summary": "Wanted a 1 kg chocolate cake; the line dropped.", "call_type": "order",
         "critical_call_details": {"items": ["chocolate cake 1 kg"]}, "started_at": None},
        CALLER,
    )  # fmt: skip
    assert "chocolate cake" in text and CALLER in text and "call back" in text


# ---------------------------------------------------------------- end to end, local engine


async def test_a_callback_end_to_end_with_the_local_engine(
    sqlite_db: Database, tmp_path: Path, exotel: FakeExotelApi
) -> None:
    try:
        check_local_models()
    except LocalModelsMissing as exc:  # pragma: no cover - CI installs the extra
        pytest.skip(f"local engine not installed: {exc}")
    port = free_port()
    settings = {
        "voice_engine": "local",
        "exotel_account_sid": "ACrx",
        "exotel_api_key": "k",
        "exotel_api_token": SecretStr("t"),
        "exotel_api_base_url": exotel.base_url,
        "callback_stream_url": f"ws://127.0.0.1:{port}/exotel",
    }
    async with (
        FakeGeminiLive() as unused,  # the harness wants one; the local engine answers
        running_bridge(sqlite_db, tmp_path, unused, port=port, **settings) as bridge,
    ):
        set_hours(bridge.ctx.settings.tenants_dir, "daily 00:00-24:00")
        bridge.ctx.tenants.invalidate("bakery")
        await callback_over_the_api(bridge, sqlite_db, exotel)


async def test_a_callback_end_to_end_with_gemini_live_knows_the_first_call(
    db: Database, tmp_path: Path, exotel: FakeExotelApi
) -> None:
    """The same through the Gemini Live engine (the double), on both databases: the model's
    instructions carry the first call's type and summary."""
    port = free_port()
    settings = {
        "exotel_account_sid": "ACrx",
        "exotel_api_key": "k",
        "exotel_api_token": SecretStr("t"),
        "exotel_api_base_url": exotel.base_url,
        "callback_stream_url": f"ws://127.0.0.1:{port}/exotel",
    }
    async with (
        FakeGeminiLive() as fake,
        running_bridge(db, tmp_path, fake, port=port, **settings) as bridge,
    ):
        set_hours(bridge.ctx.settings.tenants_dir, "daily 00:00-24:00")
        bridge.ctx.tenants.invalidate("bakery")
        await callback_over_the_api(bridge, db, exotel, summary="Wanted a cake for Friday.")
    told = fake.sessions[-1].system_instruction or ""
    assert "## This call is a call back" in told and "Wanted a cake for Friday." in told, told


async def test_a_tenant_with_its_own_exotel_account(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bakery has its own Exotel account (`[exotel]` key, token and account sid), the server
    another (and its own stream credentials): the callback is dialled through the bakery's
    account and its stream carries the bakery's key and token, which the bridge accepts for
    the bakery. A stream claiming that callback from another account, or another tenant's
    stream, gets none of its context and marks nothing."""
    port = free_port()
    monkeypatch.setenv("BAKERY_EXOTEL_KEY", "bk")
    monkeypatch.setenv("BAKERY_EXOTEL_TOKEN", "bt")
    async with (
        FakeExotelApi(account_sid="ACbakery", api_key="bk", api_token="bt") as own,
        FakeGeminiLive() as fake,
        running_bridge(
            db,
            tmp_path,
            fake,
            port=port,
            exotel_account_sid="ACserver",  # the server's account: not the bakery's
            exotel_api_key="sk",
            exotel_api_token=SecretStr("st"),
            exotel_api_base_url=own.base_url,
            exotel_ws_user="server-user",  # streams of tenants without their own account
            exotel_ws_password=SecretStr("server-pass"),
            callback_stream_url=f"ws://127.0.0.1:{port}/exotel",
        ) as bridge,
    ):
        root = bridge.ctx.settings.tenants_dir
        set_hours(root, "daily 00:00-24:00")
        toml = root / "bakery" / "tenant.toml"
        toml.write_text(
            toml.read_text().replace(
                '# [exotel]\n# auth_user_env = "BAKERY_EXOTEL_KEY"\n'
                '# auth_token_env = "BAKERY_EXOTEL_TOKEN"',
                '[exotel]\nauth_user_env = "BAKERY_EXOTEL_KEY"\n'
                'auth_token_env = "BAKERY_EXOTEL_TOKEN"\naccount_sid = "ACbakery"',
            )
        )
        bridge.ctx.tenants.invalidate("bakery")
        assert bridge.ctx.tenants.get("bakery").exotel_account_sid == "ACbakery"
        first = await a_call(db, "CAownacct001")
        _, key = await create_key(db, tenant="bakery")
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"http://127.0.0.1:{bridge.port}/api/v1/calls/{first}/callback",
                headers={"Authorization": f"Bearer {key}"},
            )
        assert answer.status_code == 200, answer.text
        (sent,) = own.connects
        assert urlsplit(sent["StreamUrl"]).username == "bk"  # the bakery's own credentials
        (row,) = await callbacks_for_call(db, first)
        assert row.account_sid == "ACbakery" and row.exotel_sid is not None
        heard = await own.stream_done(row.exotel_sid)
        assert heard.ok and heard.agent_audio_ms > 0, heard.error  # the bridge took the stream
        new = await row_for(db, row.exotel_sid)
        assert ("callback", f"of {first} (requested)") in [
            (e["kind"], e["detail"]) for e in new["events"]
        ]
        (row,) = await callbacks_for_call(db, first)
        assert row.status == "answered"

        async def claim(tenant: str, auth: tuple[str, str], account: str) -> dict[str, Any]:
            opts = CallOptions(
                url=bridge.url(tenant),
                from_number=CALLER,
                account_sid=account,
                custom_parameters={"callback": row.token},
                auth=auth,
                max_call_s=10.0,
            )
            result = await place_call(opts, CallerScript(hangup_after_ms=300))
            assert result.error is None or "agent" not in result.error
            return await row_for(db, opts.call_sid)

        other_account = await claim("bakery", ("bk", "bt"), "ACserver")
        kinds = [e["kind"] for e in other_account["events"]]
        assert "callback_wrong_account" in kinds and "callback" not in kinds
        other_tenant = await claim("saloon", ("server-user", "server-pass"), "ACserver")
        kinds = [e["kind"] for e in other_tenant["events"]]
        assert "callback_unknown" in kinds and "callback" not in kinds
        (after,) = await callbacks_for_call(db, first)
        assert after.exotel_sid == row.exotel_sid  # still the call we placed


async def callback_over_the_api(
    bridge: Bridge, db: Database, exotel: FakeExotelApi, summary: str | None = None
) -> None:
    first = await a_call(db, "CAfirst00001")
    if summary is not None:
        async with db.begin() as conn:
            await conn.execute(
                sa.update(call_details)
                .where(call_details.c.call_sid == first)
                .values(summary=summary, call_type="order")
            )
    _, owner_key = await create_key(db, tenant="bakery")
    _, other_key = await create_key(db, tenant="saloon")
    url = f"http://127.0.0.1:{bridge.port}/api/v1/calls/{first}/callback"
    async with httpx.AsyncClient() as http:
        other = await http.post(url, headers={"Authorization": f"Bearer {other_key}"})
        assert other.status_code == 404  # another tenant's call reads as missing
        assert exotel.connects == []
        answer = await http.post(url, headers={"Authorization": f"Bearer {owner_key}"})
        assert answer.status_code == 200, answer.text
        again = await http.post(url, headers={"Authorization": f"Bearer {owner_key}"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "callback_already"
    (row,) = await callbacks_for_call(db, first)
    assert row.exotel_sid is not None
    # Exotel answered and opened the stream to our bridge; the callee heard the agent
    heard = await exotel.stream_done(row.exotel_sid)
    assert heard.ok and heard.agent_audio_ms > 0, heard.error
    new = await row_for(db, row.exotel_sid)
    assert new["tenant"] == "bakery" and new["from_number"] == CALLER
    assert new["custom_parameters"] == {"callback": row.token}
    events = [(e["kind"], e["detail"]) for e in new["events"]]
    assert ("callback", f"of {first} (requested)") in events
    (row,) = await callbacks_for_call(db, first)
    assert row.status == "answered"
    assert await get_call(db, first) is not None


# ---------------------------------------------------------------- the call-type rule (pipeline)

COMPLAINT = [
    {"speaker": "agent", "text": "Sweet Crumbs Bakery, hello?", "start_ms": 0, "end_ms": 900},
    {"speaker": "caller", "text": "I want to complain, my cake delivery came two hours late and",
     "start_ms": 1000, "end_ms": 4000},
]  # fmt: skip


async def test_a_failed_complaint_is_called_back_by_the_rule_once(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    exotel.no_answer.add(CALLER)
    callbacks = deps_for(db, root, exotel, client)
    pipeline = PipelineDeps(
        db=db,
        tenants=TenantRepository(root),
        pricing=load_pricing(),
        analyzer=offline_analyzer,
        callbacks=callbacks,
    )
    for sid, status in (("CAruleFail01", "failed"), ("CAruleDone01", "completed")):
        await finish_call(
            db,
            FinishedCall(
                call_sid=sid,
                status=status,
                tenant="bakery",
                transcript=COMPLAINT,
                from_number=CALLER,
                end_reason="engine_error" if status == "failed" else "agent_ended",
            ),
        )
    await Worker(pipeline).drain()
    failed = await get_call(db, "CAruleFail01")
    assert failed is not None and failed["call_type"] == "complaint"
    (row,) = await callbacks_for_call(db, "CAruleFail01")
    assert row.reason == "failed" and row.to_number == CALLER
    assert any(e["kind"] == "callback_placed" for e in failed["events"])
    # an unresolved complaint (its required details missing) is called back too, once
    (other,) = await callbacks_for_call(db, "CAruleDone01")
    assert other.reason == "unresolved"
    assert len(exotel.connects) == 2
    await Worker(pipeline).drain()  # nothing left to do: nothing dialled again
    assert len(exotel.connects) == 2


async def test_the_rules_callback_outside_hours_is_scheduled_and_dialled_when_due(
    db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    """Outside the hours the rule's callback waits for the next opening (a `scheduled` row with
    its due time); the worker dials it once then, and only within the number's daily limit."""
    root = tenants_dir(tmp_path)
    set_hours(root, not_today(), per_day=2)
    exotel.no_answer.add(CALLER)
    callbacks = deps_for(db, root, exotel, client)
    pipeline = PipelineDeps(
        db=db,
        tenants=TenantRepository(root),
        pricing=load_pricing(),
        analyzer=offline_analyzer,
        callbacks=callbacks,
    )
    for sid in ("CAlateRule01", "CAlateRule02"):
        await finish_call(
            db,
            FinishedCall(
                call_sid=sid,
                status="failed",
                tenant="bakery",
                transcript=COMPLAINT,
                from_number=CALLER,
                end_reason="engine_error",
            ),
        )
    worker = Worker(pipeline)
    await worker.drain()
    (row,) = await callbacks_for_call(db, "CAlateRule01")
    opening = TenantRepository(root).get("bakery").callbacks.hours.next_open(callbacks.now())
    assert (row.status, row.due_at) == ("scheduled", opening), row
    assert opening is not None and opening.strftime("%H:%M") == "10:00"
    first = await get_call(db, "CAlateRule01")
    assert first is not None and any(e["kind"] == "callback_scheduled" for e in first["events"])
    assert exotel.connects == []  # nothing dialled outside the hours
    await worker.drain()
    assert exotel.connects == []  # not due yet

    # the opening comes, and the owner has lowered the limit to one a day meanwhile: the
    # limit is counted again when dialling, so one scheduled callback goes, the other not
    set_hours(root, not_today(), per_day=1)
    callbacks.tenants = TenantRepository(root)
    callbacks.now = lambda: opening + timedelta(minutes=1)
    await worker.drain()
    rows = [(await callbacks_for_call(db, s))[0] for s in ("CAlateRule01", "CAlateRule02")]
    assert sorted(r.status for r in rows) == ["placed", "rate_limited"], rows
    assert len(exotel.connects) == 1
    await worker.drain()  # nothing is dialled twice, nor the one over the limit
    assert len(exotel.connects) == 1


async def test_the_api_shows_a_scheduled_callback(
    db: Database, tmp_path: Path, exotel: FakeExotelApi
) -> None:
    port = free_port()
    settings = {
        "exotel_account_sid": "ACrx",
        "exotel_api_key": "k",
        "exotel_api_token": SecretStr("t"),
        "exotel_api_base_url": exotel.base_url,
        "callback_stream_url": f"ws://127.0.0.1:{port}/exotel",
    }
    async with (
        FakeGeminiLive() as fake,
        running_bridge(db, tmp_path, fake, port=port, **settings) as bridge,
    ):
        set_hours(bridge.ctx.settings.tenants_dir, not_today())
        bridge.ctx.tenants.invalidate("bakery")
        sid = await a_call(db, "CAshown00001")
        assert bridge.web is not None
        deps = bridge.web.callbacks
        assert deps is not None
        scheduled = await schedule_callback(deps, sid, "dropped")
        assert isinstance(scheduled, Scheduled)
        _, key = await create_key(db, tenant="bakery")
        auth = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{bridge.port}/api/v1/calls/{sid}"
        async with httpx.AsyncClient() as http:
            detail = (await http.get(base, headers=auth)).json()
            refused = await http.post(base + "/callback", headers=auth)
        (item,) = detail["callbacks"]
        assert item["status"] == "scheduled" and item["reason"] == "dropped"
        assert datetime.fromisoformat(item["due_at"]) == scheduled.due_at
        assert datetime.fromisoformat(detail["callbacks_open_at"]) == scheduled.due_at
        # asked by hand outside the hours: refused, saying when they open
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "callback_outside_hours"
        assert "they open" in refused.json()["error"]["message"]
    assert exotel.connects == []
    assert deps.client.is_closed  # the app's lifespan closed the callbacks' HTTP client


# ---------------------------------------------------------------- the command


async def test_the_calls_callback_command(tmp_path: Path, exotel: FakeExotelApi) -> None:
    root = tenants_dir(tmp_path)
    set_hours(root, "daily 00:00-24:00")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database(url)
    await db.upgrade()
    try:
        await a_call(db, "CAcli000001")
        await a_call(db, "CAcli000002", from_number="anonymous")
    finally:
        await db.dispose()
    env = {
        "DATABASE_URL": url,
        "TENANTS_DIR": str(root),
        "EXOTEL_ACCOUNT_SID": "ACrx",
        "EXOTEL_API_KEY": "k",
        "EXOTEL_API_TOKEN": "t",
        "EXOTEL_API_BASE_URL": exotel.base_url,
        "CALLBACK_STREAM_URL": "wss://rx.example.com/exotel",
    }
    exotel.no_answer.add(CALLER)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["calls", "callback", *args], env=env)
        return result.exit_code, result.output

    # the command runs its own event loop: in a thread, while the double answers on this one
    code, out = await asyncio.to_thread(run, "CAcli000001", "--no-wait")
    assert code == 0, out
    assert f"calling {CALLER} back" in out and "callback CAcli000001: placed" in out
    code, out = await asyncio.to_thread(run, "CAcli000001", "--no-wait")
    assert code == 1 and "not called back (already)" in out
    code, out = await asyncio.to_thread(run, "CAcli000002")
    assert code == 1 and "not called back (withheld)" in out
    code, out = await asyncio.to_thread(run, "CAcli000003")
    assert code == 1 and "not called back (not_found)" in out
    assert len(exotel.connects) == 1


# ---------------------------------------------------------------- Exotel's status callback

STATUS_KEY = "status-key-456"


async def test_exotels_status_callback_records_a_number_that_does_not_answer(
    sqlite_db: Database, tmp_path: Path, exotel: FakeExotelApi, client: httpx.AsyncClient
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(
            sqlite_db, tmp_path, fake, exotel_connect_secret=SecretStr(STATUS_KEY)
        ) as bridge,
    ):
        root = bridge.ctx.settings.tenants_dir
        set_hours(root, "daily 00:00-24:00")
        status_url = f"http://127.0.0.1:{bridge.port}/exotel/status"
        deps = deps_for(sqlite_db, root, exotel, client)
        deps.status_callback = f"{status_url}?key={STATUS_KEY}"
        exotel.no_answer.add(CALLER)
        exotel.status_gate = asyncio.Event()  # Exotel's push waits until the forgeries are in
        sid = await a_call(sqlite_db, "CAstatus001")
        placed = await place_callback(deps, sid)
        assert exotel.connects[0]["StatusCallback"] == deps.status_callback
        # forged and malformed pushes change nothing
        for params, form, code in (
            ({}, {"CallSid": placed.exotel_sid, "Status": "completed"}, 403),
            ({"key": "guess"}, {"CallSid": placed.exotel_sid, "Status": "failed"}, 403),
            ({"key": STATUS_KEY}, {"CallSid": placed.exotel_sid, "Status": "exploded"}, 400),
            ({"key": STATUS_KEY}, {"CallSid": "../x", "Status": "failed"}, 400),
        ):
            got = await client.post(status_url, params=params, data=form)
            assert got.status_code == code, (params, form, got.text)
        (row,) = await callbacks_for_call(sqlite_db, sid)
        assert row.status == "placed"
        # Exotel's own push once the number rang out (no polling here)
        exotel.status_gate.set()
        assert await exotel.status_posted(1) == [(placed.exotel_sid, "no-answer", 200)]
        (row,) = await callbacks_for_call(sqlite_db, sid)
        assert (row.status, row.error) == ("no_answer", "exotel: no-answer")
        unknown = await client.post(
            status_url, params={"key": STATUS_KEY}, json={"CallSid": "CAnobody", "Status": "busy"}
        )
        assert unknown.status_code == 200 and unknown.json() == {"ok": True, "known": False}


# ---------------------------------------------------------------- asked for "when open"


async def test_asked_outside_hours_it_is_refused_or_scheduled_for_the_opening(
    db: Database, tmp_path: Path, exotel: FakeExotelApi
) -> None:
    """Over real HTTP: a plain request outside the hours is refused with `opens_at`; asked
    "next_open" it is scheduled for that opening (nothing dialled), still once per reason,
    counted against the number's daily limit, and never for a withheld number. The dashboard's
    button says when and schedules it the same way."""
    port = free_port()
    settings = {
        "exotel_account_sid": "ACrx",
        "exotel_api_key": "k",
        "exotel_api_token": SecretStr("t"),
        "exotel_api_base_url": exotel.base_url,
        "callback_stream_url": f"ws://127.0.0.1:{port}/exotel",
    }
    async with (
        FakeGeminiLive() as fake,
        running_bridge(db, tmp_path, fake, port=port, **settings) as bridge,
    ):
        set_hours(bridge.ctx.settings.tenants_dir, not_today(), per_day=2)
        bridge.ctx.tenants.invalidate("bakery")
        rules = bridge.ctx.tenants.get("bakery").callbacks
        assert rules is not None
        for sid in ("CAopen000001", "CAopen000002", "CAopen000003", "CAopen000004"):
            await a_call(db, sid)
        await a_call(db, "CAhidden0001", from_number="anonymous")
        _, key = await create_key(db, tenant="bakery")
        auth = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{bridge.port}/api/v1/calls"
        later = {"when": "next_open"}
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{base}/CAopen000001/callback", headers=auth)
            opening = rules.hours.next_open(datetime.now(IST))
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "callback_outside_hours"
            assert datetime.fromisoformat(error["opens_at"]) == opening
            now_asked = await http.post(
                f"{base}/CAopen000001/callback", headers=auth, json={"when": "now"}
            )
            assert now_asked.json()["error"]["code"] == "callback_outside_hours"

            got = await http.post(f"{base}/CAopen000001/callback", headers=auth, json=later)
            assert got.status_code == 200, got.text
            assert got.json()["status"] == "scheduled"
            assert datetime.fromisoformat(got.json()["due_at"]) == opening
            (row,) = await callbacks_for_call(db, "CAopen000001")
            assert (row.status, row.reason, row.due_at) == ("scheduled", "requested", opening)

            again = await http.post(f"{base}/CAopen000001/callback", headers=auth, json=later)
            assert again.json()["error"]["code"] == "callback_already"
            second = await http.post(f"{base}/CAopen000002/callback", headers=auth, json=later)
            assert second.json()["status"] == "scheduled"
            third = await http.post(f"{base}/CAopen000003/callback", headers=auth, json=later)
            assert third.status_code == 409
            assert third.json()["error"]["code"] == "callback_rate_limited"  # 2 a day
            hidden = await http.post(f"{base}/CAhidden0001/callback", headers=auth, json=later)
            assert hidden.json()["error"]["code"] == "callback_withheld"
            for bad in ({"when": "later"}, {"when": "next_open", "extra": 1}, {"when": 1}):
                got = await http.post(f"{base}/CAopen000004/callback", headers=auth, json=bad)
                assert got.status_code == 400, (bad, got.text)
            assert await callbacks_for_call(db, "CAopen000004") == []

        # the dashboard: outside the hours the button offers the opening, and schedules
        set_hours(bridge.ctx.settings.tenants_dir, not_today(), per_day=5)
        bridge.ctx.tenants.invalidate("bakery")
        async with db.begin() as conn:  # over: the page offers a callback
            await conn.execute(
                sa.update(call_details)
                .where(call_details.c.call_sid == "CAopen000004")
                .values(status="completed")
            )
        b = Browser(f"http://127.0.0.1:{bridge.port}")
        try:
            form = await b.get("/app/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            assert (await b.post("/app/login", {"key": key, "csrf": token.group(1)})).is_redirect
            page = (await b.get("/app/calls/CAopen000004")).text
            label = f"Call back when open ({opening.astimezone(IST).strftime('%a %H:%M')})"
            assert label in page, page
            assert 'name="when" value="next_open"' in page
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None
            sent = await b.post(
                "/app/calls/CAopen000004/callback", {"csrf": csrf.group(1), "when": "next_open"}
            )
            assert sent.headers["location"] == "/app/calls/CAopen000004?m=callback_scheduled"
            shown = (await b.get(sent.headers["location"])).text
            assert "will call the caller back when the business opens" in shown
            assert 'data-testid="callback" data-status="scheduled"' in shown
        finally:
            await b.aclose()
        (row,) = await callbacks_for_call(db, "CAopen000004")
        assert (row.status, row.due_at) == ("scheduled", opening)
    assert exotel.connects == []  # nothing dialled outside the hours


async def test_the_calls_callback_command_when_open(tmp_path: Path, exotel: FakeExotelApi) -> None:
    """The command in its own process: refused outside the hours, scheduled with --when-open,
    not twice, never for a withheld number."""
    root = tenants_dir(tmp_path)
    set_hours(root, not_today())
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database(url)
    await db.upgrade()
    try:
        await a_call(db, "CAcliopen01")
        await a_call(db, "CAcliopen02", from_number="anonymous")
    finally:
        await db.dispose()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "DATABASE_URL": url,
        "TENANTS_DIR": str(root),
        "EXOTEL_ACCOUNT_SID": "ACrx",
        "EXOTEL_API_KEY": "k",
        "EXOTEL_API_TOKEN": "t",
        "EXOTEL_API_BASE_URL": exotel.base_url,
        "CALLBACK_STREAM_URL": "wss://rx.example.com/exotel",
    }

    async def run(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "receptionist.cli", "calls", "callback", *args,
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    code, out = await run("CAcliopen01", "--no-wait")
    assert code == 1 and "not called back (outside_hours)" in out and "they open" in out, out
    code, out = await run("CAcliopen01", "--when-open")
    assert code == 0, out
    assert f"{CALLER} will be called back at" in out and "callback CAcliopen01: scheduled" in out
    code, out = await run("CAcliopen01", "--when-open")
    assert code == 1 and "not called back (already)" in out, out
    code, out = await run("CAcliopen02", "--when-open")
    assert code == 1 and "not called back (withheld)" in out, out
    db = Database(url)
    try:
        (row,) = await callbacks_for_call(db, "CAcliopen01")
    finally:
        await db.dispose()
    assert row.status == "scheduled" and row.due_at is not None
    assert exotel.connects == []
