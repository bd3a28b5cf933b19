"""Webhooks out (SQLite and PostgreSQL): a call's `call.ended` and `call.analyzed` written with
its analysis, posted signed to a real local receiver, retried after a 500, a timeout or a
redirect (never followed), every attempt recorded, a worker killed mid-delivery losing nothing,
a replay sending it again with the same event id."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receptionist.hooks.deliverer import WebhookDeliverer
from receptionist.hooks.signing import SIGNATURE_HEADER, sign, verify
from receptionist.postcall.pipeline import PipelineDeps
from receptionist.postcall.pricing import load_pricing
from receptionist.postcall.wiring import offline_analyzer
from receptionist.postcall.worker import Worker
from receptionist.sim.double import HttpDouble
from receptionist.store.db import Database
from receptionist.store.schema import utcnow, webhook_deliveries
from receptionist.store.webhook_deliveries import (
    claim_deliveries,
    list_attempts,
    replay_delivery,
)
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.repository import TenantRepository
from tests.integration.bridge_harness import REPO
from tests.integration.test_pipeline import ORDER, saved_call

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
SECRET = "whsec-test-1"


class Receiver(HttpDouble):
    """The business's endpoint: answers each POST with the next scripted status (then 200);
    "hold" keeps the answer until the test releases it (a receiver that times out)."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int | str] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()  # set at each request, before any hold
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        self.got.append((dict(request.headers), body))
        self.arrived.set()
        step = self.script.pop(0) if self.script else 200
        if step == "hold":
            await _first(self.release.wait(), self.closing.wait())
            return Response(status_code=200)
        if step == 302:
            return Response(status_code=302, headers={"location": "https://elsewhere.example/"})
        return Response(status_code=int(step))

    async def _closing_down(self) -> None:
        self.release.set()

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.got]


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _tenants(tmp_path: Path, url: str, events: str = "") -> Path:
    root = tmp_path / "tenants"
    shutil.copytree(EXAMPLES / "bakery", root / "bakery")
    toml = root / "bakery" / "tenant.toml"
    toml.write_text(
        toml.read_text()
        + f'\n[[webhooks]]\nurl = "{url}"\nsecret_env = "BAKERY_HOOK_SECRET"\n{events}'
    )
    return root


def _deliverer(db: Database, clock: Clock, **kw: Any) -> WebhookDeliverer:
    return WebhookDeliverer(
        db, worker_id=kw.pop("worker_id", "w1"), clock=clock,
        environ={"BAKERY_HOOK_SECRET": SECRET}, backoff_base_s=30, **kw,
    )  # fmt: skip


async def _analysed_call(db: Database, root: Path, sid: str = "CAhook1") -> None:
    await saved_call(db, sid, ORDER)
    deps = PipelineDeps(
        db=db, tenants=TenantRepository(root), pricing=load_pricing(), analyzer=offline_analyzer
    )
    await Worker(deps).drain()


async def _deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.session() as conn:
        rows = await conn.execute(sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id))
        return [dict(r) for r in rows.mappings()]


def test_signatures() -> None:
    body = b'{"id":"e1"}'
    header = sign(b"k", 1_700_000_000, body)
    assert verify(b"k", header, body, now=1_700_000_100)
    assert not verify(b"k", header, body + b" ", now=1_700_000_100)  # tampered
    assert not verify(b"other", header, body, now=1_700_000_100)
    assert not verify(b"k", header, body, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify(b"k", "v1=abc", body, now=1_700_000_000)


@pytest.mark.parametrize(
    ("url", "extra", "message"),
    [
        ("http://example.com/hook", "", "must use https://"),
        ("https://user:pw@example.com/hook", "", "must not carry a user or password"),
        ("ftp://example.com/", "", "must start with https://"),
        ("https://example.com/hook", 'events = ["call.endd"]', "did you mean"),
    ],
)
def test_a_wrong_webhook_is_reported(tmp_path: Path, url: str, extra: str, message: str) -> None:
    tenant, problems = load_tenant(_tenants(tmp_path, url, extra), "bakery")
    assert tenant is None and any(message in p.message for p in problems), problems


def test_a_secret_written_in_place_of_its_name_is_refused(tmp_path: Path) -> None:
    root = _tenants(tmp_path, "https://example.com/hook")
    toml = root / "bakery" / "tenant.toml"
    toml.write_text(toml.read_text().replace('"BAKERY_HOOK_SECRET"', '"s3cr3t-value!"'))
    tenant, problems = load_tenant(root, "bakery")
    assert tenant is None and any(
        "must NAME an environment variable" in p.message for p in problems
    )


async def test_events_delivered_signed_once(db: Database, tmp_path: Path) -> None:
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook")
        await _analysed_call(db, root)
        await _analysed_call(db, root)  # the step ran again: no second event
        rows = await _deliveries(db)
        assert sorted(r["event_type"] for r in rows) == ["call.analyzed", "call.ended"]
        deliverer = _deliverer(db, Clock())
        try:
            assert await deliverer.run_once() == 2
            assert await deliverer.run_once() == 0
        finally:
            await deliverer.aclose()
        assert len(receiver.got) == 2
        for headers, body in receiver.got:
            assert verify(SECRET.encode(), headers[SIGNATURE_HEADER.lower()], body, now=time.time())
        by_type = {e["type"]: e for e in receiver.events()}
        assert by_type["call.ended"]["data"]["status"] == "completed"
        analysed = by_type["call.analyzed"]
        assert analysed["data"]["call_type"] == "order" and analysed["tenant"] == "bakery"
        assert {h["receptionist-event-id"] for h, _ in receiver.got} == {
            e["id"] for e in receiver.events()
        }
        assert all(r["status"] == "delivered" for r in await _deliveries(db))


async def test_failures_are_retried_with_backoff_and_recorded(db: Database, tmp_path: Path) -> None:
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook", 'events = ["call.analyzed"]')
        await _analysed_call(db, root)
        receiver.script = [500, 302, "hold"]
        clock = Clock()
        deliverer = _deliverer(db, clock, timeout_s=0.3)
        try:
            assert await deliverer.run_once() == 1  # 500
            assert await deliverer.run_once() == 0  # not due: backing off 30 s
            clock.now += timedelta(seconds=31)
            assert await deliverer.run_once() == 1  # 302: not followed
            clock.now += timedelta(seconds=61)
            assert await deliverer.run_once() == 1  # held past the client's timeout
            receiver.release.set()
            clock.now += timedelta(seconds=121)
            assert await deliverer.run_once() == 1  # 200
        finally:
            await deliverer.aclose()
        (row,) = await _deliveries(db)
        assert row["status"] == "delivered" and row["attempts"] == 4
        attempts = await list_attempts(db, row["id"])
        assert [a["status_code"] for a in attempts] == [500, 302, None, 200]
        assert "not followed" in attempts[1]["error"] and "Timeout" in attempts[2]["error"]
        assert len(receiver.got) == 4  # the redirect's target was never asked


async def test_given_up_after_max_attempts_then_replayed(db: Database, tmp_path: Path) -> None:
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook", 'events = ["call.ended"]')
        await _analysed_call(db, root)
        receiver.script = [503, 503]
        clock = Clock()
        deliverer = _deliverer(db, clock, max_attempts=2)
        try:
            await deliverer.run_once()
            clock.now += timedelta(seconds=31)
            await deliverer.run_once()
            (row,) = await _deliveries(db)
            assert row["status"] == "failed" and row["last_status_code"] == 503
            assert await replay_delivery(db, row["id"], tenant="someone-else") is False
            assert await replay_delivery(db, row["id"], tenant="bakery") is True
            assert await deliverer.run_once() == 1
        finally:
            await deliverer.aclose()
        (row,) = await _deliveries(db)
        assert row["status"] == "delivered"
        ids = {e["id"] for e in receiver.events()}
        assert len(receiver.got) == 3 and len(ids) == 1  # one event, however often sent


async def test_a_worker_killed_mid_delivery_loses_nothing(db: Database, tmp_path: Path) -> None:
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook", 'events = ["call.ended"]')
        await _analysed_call(db, root)
        clock = Clock()
        # a worker claims it and dies before any answer is recorded
        (lost,) = await claim_deliveries(db, worker_id="dead", lease_s=60, limit=8, now=clock.now)
        deliverer = _deliverer(db, clock, worker_id="w2")
        try:
            assert await deliverer.run_once() == 0  # its lease still holds
            clock.now += timedelta(seconds=61)
            assert await deliverer.run_once() == 1
        finally:
            await deliverer.aclose()
        (row,) = await _deliveries(db)
        assert row["status"] == "delivered" and row["attempts"] == 2 and row["id"] == lost.id


async def test_a_worker_process_killed_with_sigkill_mid_request_loses_nothing(
    db: Database, tmp_path: Path
) -> None:
    """The real `receptionist worker` posts the event; the receiver holds its answer; the
    worker is killed (SIGKILL) while the request is open. Its claim runs out and the next worker
    sends the event again, with the same id: the receiver sees it twice and keeps it once."""
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook", 'events = ["call.ended"]')
        await _analysed_call(db, root)
        receiver.script = ["hold"]
        env = {
            **os.environ,
            "DATABASE_URL": db.url,
            "TENANTS_DIR": str(root),
            "LOG_LEVEL": "ERROR",
            "NOTIFY_PROVIDER": "log",
            "BAKERY_HOOK_SECRET": SECRET,
        }
        cmd = [sys.executable, "-m", "receptionist.cli", "worker"]
        proc = await asyncio.create_subprocess_exec(*cmd, env=env, cwd=REPO)
        try:
            async with asyncio.timeout(60):  # a bound on the start-up: reaching it fails
                await receiver.arrived.wait()
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(receiver.got) == 1  # killed with the request open, its answer held
        (row,) = await _deliveries(db)
        assert row["status"] == "pending" and row["lease_owner"] and row["attempts"] == 1
        assert await list_attempts(db, row["id"]) == []  # the dead worker recorded nothing
        clock = Clock()
        deliverer = _deliverer(db, clock, worker_id="next")
        try:
            assert await deliverer.run_once() == 0  # the dead worker's claim still holds
            clock.now += timedelta(seconds=61)  # the claim (60 s) has run out
            assert await deliverer.run_once() == 1
        finally:
            await deliverer.aclose()
    (row,) = await _deliveries(db)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert [a["status_code"] for a in await list_attempts(db, row["id"])] == [200]
    first, second = receiver.events()
    assert first == second  # the same event, body for body: de-duplicated by its id
    ids = {h["receptionist-event-id"] for h, _ in receiver.got}
    assert ids == {first["id"]}


async def test_a_missing_secret_is_a_visible_failed_attempt(db: Database, tmp_path: Path) -> None:
    async with Receiver() as receiver:
        root = _tenants(tmp_path, f"{receiver.base_url}/hook", 'events = ["call.ended"]')
        await _analysed_call(db, root)
        deliverer = WebhookDeliverer(db, worker_id="w", clock=Clock(), environ={})
        try:
            await deliverer.run_once()
        finally:
            await deliverer.aclose()
        (row,) = await _deliveries(db)
        assert row["status"] == "pending" and "BAKERY_HOOK_SECRET is not set" in row["last_error"]
        assert receiver.got == []  # nothing unsigned ever leaves


def test_the_readme_verification_snippet_accepts_our_signature() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```python\nimport hashlib, hmac, time")
    code = readme[start + len("```python\n") : readme.index("```", start + 10)]
    scope: dict[str, Any] = {}
    exec(code, scope)  # the snippet as a receiver would paste it
    body = b'{"id": "ev-1"}'
    header = sign(b"s3cret", int(time.time()), body)
    assert scope["verified"](b"s3cret", header, body)
    assert not scope["verified"](b"s3cret", header, body + b"x")
    assert not scope["verified"](b"s3cret", sign(b"s3cret", int(time.time()) - 301, body), body)
    for broken in ("v1=abc", "t=soon,v1=abc", "garbage", ""):  # refused, never an exception
        assert not scope["verified"](b"s3cret", broken, body)
