"""The owner's dashboard over real HTTP, on both databases: signing in and out, sessions that
end, CSRF, every route walked for tenant isolation, hostile text escaped, Hindi, CSV, bad
filters, the database down, and the live stream."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from receptionist.bridge.server import serve_in_process
from receptionist.store.api_keys import create_key, revoke_key
from receptionist.store.bookings import SlotHold, hold_slot
from receptionist.store.callbacks import claim_callback
from receptionist.store.db import Database
from receptionist.store.live import LiveEvent, LiveFeed
from receptionist.store.schema import (
    call_details,
    utcnow,
    web_sessions,
    webhook_attempts,
    webhook_deliveries,
)
from receptionist.store.web_sessions import expire_session_now
from receptionist.store.webhook_deliveries import NewDelivery, insert_deliveries
from receptionist.tenants.hours import DAYS
from receptionist.tenants.repository import TenantRepository
from receptionist.web.api import create_api
from receptionist.web.dashboard import Options, create_dashboard
from receptionist.web.dashboard.guard import LoginBrake
from receptionist.web.deps import WebDeps
from tests.integration.bridge_harness import tenants_dir
from tests.integration.test_api import T0, notification_id, seed_call
from tests.integration.test_notifications import insert, new

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'; DROP TABLE call_details;--"


class Browser:
    """An httpx client that keeps the dashboard's cookies itself: they are Secure, and httpx
    (like Python's cookiejar) sends Secure cookies only over https, while browsers also send
    them to http://127.0.0.1."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url)
        self.jar: dict[str, str] = {}
        self.set_cookies: list[str] = []

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        got = await self.client.request(method, path, headers=headers, **kw)
        self.client.cookies.clear()
        for raw in got.headers.get_list("set-cookie"):
            self.set_cookies.append(raw)
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return got

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("POST", path, data=data or {})

    async def csrf(self) -> str:
        page = await self.get("/app/")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class Dash:
    url: str
    app: Starlette
    db: Database
    keys: dict[str, str]  # bakery, saloon, admin, revoked
    live: LiveFeed
    root: Path
    repo: TenantRepository
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        b = Browser(self.url)
        self.browsers.append(b)
        return b

    async def sign_in(self, who: str, *, expect: int = 303) -> Browser:
        b = self.browser()
        form = await b.get("/app/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token, form.text[:300]
        got = await b.post("/app/login", {"key": self.keys[who], "csrf": token.group(1)})
        assert got.status_code == expect, got.text[:500]
        return b


async def seed_delivery(
    db: Database, tenant: str, call_sid: str, url: str, *, codes: list[int | None]
) -> int:
    """A `call.ended` delivery of the call to `url`, attempted once per code (None: no answer);
    `failed` after them unless the last was a 2xx."""
    event = NewDelivery(f"ev-{call_sid}", "call.ended", tenant, call_sid, url, "HOOK_SECRET",
                        {"id": f"ev-{call_sid}", "data": {"call_sid": call_sid}})  # fmt: skip
    d = webhook_deliveries.c
    async with db.begin() as conn:
        await insert_deliveries(conn, db.dialect, [event])
        delivery_id = (
            await conn.execute(sa.select(d.id).where(d.event_id == event.event_id, d.url == url))
        ).scalar_one()
        for code in codes:
            error = None if code and code < 300 else f"HTTP {code}" if code else "ConnectTimeout"
            await conn.execute(
                sa.insert(webhook_attempts).values(
                    delivery_id=delivery_id, attempted_at=utcnow(), status_code=code,
                    error=error, duration_ms=12,
                )
            )  # fmt: skip
        ok = bool(codes) and codes[-1] is not None and 200 <= (codes[-1] or 0) < 300
        await conn.execute(
            sa.update(webhook_deliveries)
            .where(d.id == delivery_id)
            .values(status="delivered" if ok else "failed", attempts=len(codes),
                    last_status_code=codes[-1] if codes else None, next_attempt_at=None)
        )  # fmt: skip
    return int(delivery_id)


async def delivery_id(db: Database, call_sid: str) -> int:
    d = webhook_deliveries.c
    async with db.session() as conn:
        found = await conn.execute(sa.select(d.id).where(d.call_sid == call_sid))
        return int(found.scalar_one())


@pytest.fixture
async def dash(db: Database, tmp_path: Path) -> AsyncIterator[Dash]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(3):
        await seed_call(db, f"CAb{i}", "bakery", at=T0 + timedelta(minutes=i))
    await seed_call(db, "CAb-today", "bakery", at=now, summary="two brownies today")
    async with db.begin() as conn:  # the caller heard the agent: answered
        await conn.execute(
            sa.update(call_details)
            .where(call_details.c.call_sid == "CAb-today")
            .values(answered_at=now + timedelta(seconds=1))
        )
    await seed_call(
        db, "CAb-failed", "bakery", at=T0 - timedelta(days=2), stage="failed", call_type=None
    )
    await seed_call(
        db, "CAs0", "saloon", summary="haircut at 5", text="a haircut please",
        from_number="+917700000077", at=now,
    )  # fmt: skip
    await insert(
        db,
        new("CAb0", status="failed", error="400 bad template"),
        new("CAb-today", template="complaint", urgent=True, status="delivered"),
        new("CAs0", to="customer", template="booking", status="failed", tenant="saloon",
            recipient="917700000077", details={"text": "your haircut booking"}),
    )  # fmt: skip
    await seed_delivery(db, "bakery", "CAb0", "https://crm.bakery.example/hook", codes=[500])
    await seed_delivery(db, "saloon", "CAs0", "https://saloon.example/hook", codes=[404])
    await hold_slot(  # the saloon's booking: the walk below keeps it from the bakery
        db,
        SlotHold(
            "saloon", "Priya", now + timedelta(days=1), now + timedelta(days=1, hours=1),
            timedelta(minutes=10), call_sid="CAs0", customer_name="<b>Meena</b>",
            customer_phone="+917700000077",
        ),
    )  # fmt: skip
    keys = {
        "bakery": (await create_key(db, tenant="bakery"))[1],
        "saloon": (await create_key(db, tenant="saloon"))[1],
        "clinic": (await create_key(db, tenant="clinic"))[1],
        "admin": (await create_key(db, tenant=None, name="operator"))[1],
    }
    revoked_id, keys["revoked"] = await create_key(db, tenant="bakery")
    await revoke_key(db, revoked_id)
    root = tenants_dir(tmp_path)
    repo = TenantRepository(root, check_interval=0)
    deps = WebDeps(db=db, tenants=repo, usd_inr=Decimal("84"))
    live = LiveFeed()
    options = Options(brake=LoginBrake(delay_s=0, max_failures=5), session_recheck_s=0)
    dashboard = create_dashboard(deps, live, options)
    app = Starlette(routes=[Mount("/app", dashboard), Mount("/", create_api(deps))])
    async with serve_in_process(app) as port:
        d = Dash(f"http://127.0.0.1:{port}", dashboard, db, keys, live, root, repo)
        try:
            yield d
        finally:
            for b in d.browsers:
                await b.aclose()
            await live.aclose()


# --- signing in -------------------------------------------------------------------------------


async def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    cookie = next(c for c in b.set_cookies if c.startswith("rk_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "secure" in flags
    assert "path=/app" in flags
    token = b.jar["rk_session"]
    async with dash.db.session() as conn:
        stored = (await conn.execute(sa.select(web_sessions.c.token_hash))).scalars().all()
    assert token not in stored and len(stored) == 1  # only a hash is kept
    today = await b.get("/app/")
    assert today.status_code == 200 and 'data-testid="today-answered"' in today.text
    assert "two brownies today" in today.text
    assert today.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in today.headers["content-security-policy"]
    out = await b.post("/app/logout", {"csrf": await b.csrf()})
    assert out.status_code == 303 and out.headers["location"] == "/app/login?m=signed_out"
    b.jar["rk_session"] = token  # a copy of the old cookie opens nothing
    again = await b.get("/app/")
    assert again.status_code == 303 and again.headers["location"].startswith("/app/login")


@pytest.mark.parametrize("who", ["wrong", "revoked", "empty"])
async def test_a_bad_key_gets_the_same_answer(dash: Dash, who: str) -> None:
    b = dash.browser()
    form = await b.get("/app/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    key = {"wrong": "rk_00000000_" + "x" * 43, "revoked": dash.keys["revoked"], "empty": ""}[who]
    got = await b.post("/app/login", {"key": key, "csrf": csrf.group(1)})
    assert got.status_code == 401
    assert 'data-testid="login-error"' in got.text
    assert "That key did not work" in got.text  # the same words whatever was wrong
    assert "rk_session" not in b.jar


async def test_failed_sign_ins_are_braked_per_client(dash: Dash) -> None:
    b = dash.browser()
    form = await b.get("/app/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    for _ in range(5):
        got = await b.post("/app/login", {"key": "nope", "csrf": csrf.group(1)})
        assert got.status_code == 401
    blocked = await b.post("/app/login", {"key": dash.keys["bakery"], "csrf": csrf.group(1)})
    assert blocked.status_code == 429 and "rk_session" not in b.jar


async def test_a_revoked_key_ends_its_sessions_at_the_next_request(dash: Dash) -> None:
    key_id, key = await create_key(dash.db, tenant="bakery")
    dash.keys["later"] = key
    b = await dash.sign_in("later")
    assert (await b.get("/app/calls")).status_code == 200
    await revoke_key(dash.db, key_id)
    got = await b.get("/app/calls")
    assert got.status_code == 303
    assert got.headers["location"] == "/app/login?m=revoked&next=%2Fapp%2Fcalls"
    page = await b.get(got.headers["location"])
    assert 'data-testid="login-message"' in page.text and "no longer works" in page.text


async def test_an_expired_session_goes_back_to_sign_in_with_a_message(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    async with dash.db.session() as conn:
        session_id = (await conn.execute(sa.select(web_sessions.c.id))).scalar_one()
    await expire_session_now(dash.db, session_id)
    got = await b.get("/app/calls?status=missed")
    assert got.status_code == 303
    assert got.headers["location"] == "/app/login?m=expired&next=%2Fapp%2Fcalls%3Fstatus%3Dmissed"
    page = await b.get(got.headers["location"])
    assert "Your session has ended" in page.text
    # signing in again goes back to the page that was asked for
    assert 'name="next" value="/app/calls?status=missed"' in page.text
    async with dash.db.session() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(web_sessions))
        ).scalar() == 0


async def test_a_deleted_tenant_gets_a_clear_page(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    shutil.rmtree(dash.root / "bakery")
    got = await b.get("/app/")
    assert got.status_code == 403 and 'data-code="tenant_gone"' in got.text
    assert "no longer exists" in got.text
    assert (await b.get("/app/")).status_code == 303  # the session went with it


async def test_sign_in_returns_to_the_page_asked_for_and_never_elsewhere(dash: Dash) -> None:
    b = dash.browser()
    first = await b.get("/app/calls?status=failed")
    assert first.status_code == 303
    form = await b.get(first.headers["location"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    nxt = re.search(r'name="next" value="([^"]+)"', form.text)
    assert csrf and nxt and html.unescape(nxt.group(1)) == "/app/calls?status=failed"
    for target, expected in [
        ("/app/calls?status=failed", "/app/calls?status=failed"),
        ("https://evil.example/", "/app/"),
        ("//evil.example/app/", "/app/"),
    ]:
        got = await b.post(
            "/app/login", {"key": dash.keys["bakery"], "csrf": csrf.group(1), "next": target}
        )
        assert got.headers["location"] == expected
        form = await b.get("/app/login?lang=en")  # a fresh sign-in form (signed in: redirect)
        b.jar.pop("rk_session", None)
        form = await b.get("/app/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf


# --- CSRF -------------------------------------------------------------------------------------


async def test_forms_without_the_sessions_csrf_token_are_refused(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    other = await dash.sign_in("bakery")
    msg = await notification_id(dash.db, "CAb0")
    forms = [
        ("/app/logout", {}),
        ("/app/language", {"lang": "hi"}),
        ("/app/calls/CAb-failed/retry", {}),
        (f"/app/messages/{msg}/resend", {}),
        (f"/app/webhooks/{await delivery_id(dash.db, 'CAb0')}/replay", {}),
    ]
    for path, data in forms:
        for token in (None, "forged", await other.csrf()):  # missing, made up, another's
            sent = dict(data) if token is None else {**data, "csrf": token}
            got = await b.post(path, sent)
            assert got.status_code == 403, (path, token, got.text[:300])
            assert 'data-code="forbidden"' in got.text
    assert (await b.get("/app/")).status_code == 200  # still signed in, nothing changed
    async with dash.db.session() as conn:
        stage = (
            await conn.execute(
                sa.select(call_details.c.stage).where(call_details.c.call_sid == "CAb-failed")
            )
        ).scalar_one()
    assert stage == "failed"
    # the sign-in form has its own token too
    anon = dash.browser()
    await anon.get("/app/login")
    refused = await anon.post("/app/login", {"key": dash.keys["bakery"], "csrf": "forged"})
    assert refused.status_code == 403 and "rk_session" not in anon.jar


# --- isolation --------------------------------------------------------------------------------


def dashboard_routes(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every dashboard route, read from the app itself."""
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        else:
            assert isinstance(route, BaseRoute)
            assert isinstance(route, Mount) and route.path == "/static", route
    return sorted(found)


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids[m.group(1)], path)


SALOON_SECRETS = ("CAs0", "haircut", "7700000077", "saloon")


async def test_every_route_keeps_tenants_apart_and_needs_a_session(dash: Dash) -> None:
    routes = dashboard_routes(dash.app)
    assert len(routes) >= 12, routes
    saloon = {
        "call_sid": "CAs0",
        "notification_id": await notification_id(dash.db, "CAs0"),
        "delivery_id": str(await delivery_id(dash.db, "CAs0")),
        "tenant_id": "saloon",
        "version": "1",
    }
    b = await dash.sign_in("bakery")
    anon = dash.browser()
    for method, path in routes:
        url = "/app" + fill(path, saloon)
        if path == "/live/events":
            continue  # a stream: checked in the live tests
        data = {"csrf": await b.csrf()} if method == "POST" else None
        if path == "/language":
            assert data is not None
            data["lang"] = "en"
        for extra in ("", "?tenant=saloon"):  # an owner asking for another tenant gets its own
            got = await b.request(method, url + extra, data=data)
            if "{" in path:
                assert got.status_code == 404, (method, path, got.status_code, got.text[:300])
                assert 'data-code="not_found"' in got.text
            # the request's own URL is echoed (a form's "next"): that is not the saloon's data
            text = got.text.replace("tenant=saloon", "").replace(url, "")
            for secret in SALOON_SECRETS:
                assert secret not in text, (method, path, secret)
                assert secret not in got.headers.get("location", "").replace("tenant=saloon", "")
            if path == "/logout":
                b = await dash.sign_in("bakery")
        refused = await anon.request(method, url, data={"csrf": "x"} if method == "POST" else None)
        if path in ("/calls.csv", "/calls/{call_sid}/recording"):  # read by scripts, players
            assert refused.status_code == 401, path
        elif path == "/login":
            assert refused.status_code in (200, 403), path
        else:
            assert refused.status_code == 303, (method, path, refused.status_code)
            assert refused.headers["location"].startswith("/app/login")
    async with anon.client.stream("GET", "/app/live/events") as stream:
        assert stream.status_code == 401
    # nothing of the saloon's was changed through the bakery's session
    from receptionist.store.notifications import list_notifications

    [msg] = await list_notifications(dash.db, call_sid="CAs0")
    assert msg["status"] == "failed"
    async with dash.db.session() as conn:
        hook = (
            await conn.execute(
                sa.select(webhook_deliveries.c.status).where(
                    webhook_deliveries.c.call_sid == "CAs0"
                )
            )
        ).scalar_one()
    assert hook == "failed"  # not replayed


async def test_the_operator_switches_between_tenants(dash: Dash) -> None:
    b = await dash.sign_in("admin")
    everything = await b.get("/app/calls")
    assert "CAs0" in everything.text and "CAb0" in everything.text
    assert 'data-testid="tenant-select"' in everything.text
    only = await b.get("/app/calls?tenant=saloon")
    assert "CAs0" in only.text and "CAb0" not in only.text
    assert 'href="/app/calls/CAs0?tenant=saloon"' in only.text  # the choice is kept in links
    unknown = await b.get("/app/calls?tenant=nobody")
    assert unknown.status_code == 404 and 'data-code="bad_tenant"' in unknown.text
    owner = await dash.sign_in("saloon")
    assert 'data-testid="tenant-select"' not in (await owner.get("/app/calls")).text


# --- what the pages show ----------------------------------------------------------------------


async def test_hostile_text_is_shown_escaped_everywhere(dash: Dash) -> None:
    await seed_call(
        dash.db, "CAb-hostile", "bakery", summary=HOSTILE, text=HOSTILE,
        from_number=HOSTILE[:60], at=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    async with dash.db.begin() as conn:
        await conn.execute(
            sa.update(call_details)
            .where(call_details.c.call_sid == "CAb-hostile")
            .values(
                critical_call_details={HOSTILE: HOSTILE, "items": [HOSTILE]},
                transcript=[
                    {"speaker": HOSTILE, "text": HOSTILE, "start_ms": 1e30, "end_ms": 1e30},
                    {"speaker": "agent", "text": HOSTILE, "start_ms": -5, "end_ms": None},
                ],
            )
        )
    await insert(dash.db, new("CAb-hostile", status="failed", error=HOSTILE,
                              details={"text": HOSTILE}))  # fmt: skip
    b = await dash.sign_in("bakery")
    for path in ("/app/", "/app/calls", "/app/calls/CAb-hostile", "/app/messages",
                 "/app/calls?q=" + HOSTILE[:100]):  # fmt: skip
        got = await b.get(path)
        assert got.status_code in (200, 400), (path, got.status_code)
        assert "<script>alert" not in got.text and "<img src=x" not in got.text, path
        assert "&lt;script&gt;" in got.text, path  # shown, as text
    page = (await b.get("/app/calls/CAb-hostile")).text
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # bubble, summary, details
    found = await b.get("/app/calls", params={"q": "DROP TABLE"})
    assert 'data-call-sid="CAb-hostile"' in found.text
    assert (await b.get("/app/calls", params={"caller": "1 OR 1=1"})).status_code == 200


async def test_the_call_page_in_full_with_resend_and_retry(dash: Dash) -> None:
    from receptionist.store.exotel_details import upsert_exotel_details

    async with dash.db.begin() as conn:
        await upsert_exotel_details(
            conn, call_sid="CAb0", tenant="bakery",
            values={"call_status": "completed", "call_duration": 40,
                    "recording_url": "https://rec.example/1.mp3"},
        )  # fmt: skip
        await upsert_exotel_details(
            conn, call_sid="CAb1", tenant="bakery",
            values={"recording_url": "javascript:alert(1)"},
        )  # fmt: skip
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/calls/CAb0")).text
    assert page.count('data-testid="bubble"') == 2
    assert 'data-speaker="caller"' in page and "I want a cake" in page
    assert 'value="Anita"' in page and 'value="cake"' in page  # the details, read-only
    assert 'data-testid="recording-link"' in page and "https://rec.example/1.mp3" in page
    assert "₹1.01 ($0.012)" in page  # the cost, rupees first
    assert 'data-testid="resend-button"' in page
    assert "10:00" in page  # the call's time in Kolkata (04:30 UTC)
    assert 'href="javascript' not in (await b.get("/app/calls/CAb1")).text
    csrf = await b.csrf()
    msg = await notification_id(dash.db, "CAb0")
    sent = await b.post(f"/app/messages/{msg}/resend", {"csrf": csrf, "back": "/app/calls/CAb0"})
    assert sent.status_code == 303 and sent.headers["location"] == "/app/calls/CAb0?m=resent"
    assert "queued to be sent again" in (await b.get(sent.headers["location"])).text
    again = await b.post(f"/app/messages/{msg}/resend", {"csrf": csrf, "back": "https://x/"})
    assert again.headers["location"] == "/app/messages?m=not_resendable"
    failed = (await b.get("/app/calls/CAb-failed")).text
    assert 'data-testid="retry-button"' in failed
    retried = await b.post("/app/calls/CAb-failed/retry", {"csrf": csrf})
    assert retried.headers["location"] == "/app/calls/CAb-failed?m=retried"
    assert 'data-testid="retry-button"' not in (await b.get("/app/calls/CAb-failed")).text


async def test_the_call_back_button_posts_with_the_session_token(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    assert 'data-testid="callback-button"' in (await b.get("/app/calls/CAb0")).text
    forged = await b.post("/app/calls/CAb0/callback", {"csrf": "forged"})
    assert forged.status_code == 403
    # this server has no Exotel API configured: refused, and the page says so
    got = await b.post("/app/calls/CAb0/callback", {"csrf": await b.csrf()})
    assert got.status_code == 303
    assert got.headers["location"] == "/app/calls/CAb0?m=callback_refused"
    assert "could not be called back" in (await b.get(got.headers["location"])).text


async def test_today_counts_types_urgent_messages_and_spend(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/")).text
    assert re.search(r'data-testid="today-answered">\s*1<', page)
    assert 'data-testid="today-type" data-type="order"' in page
    assert 'data-testid="today-urgent"' in page and 'data-call-sid="CAb-today"' in page
    assert 'data-status="delivered"' in page
    assert 'data-testid="today-spend-amount">₹' in page
    assert 'id="chart-data"' in page and '"answered"' in page
    assert "/static/uPlot.iife.min.js" in page and "http://" not in page.replace(dash.url, "")
    messages = await b.get("/app/messages?status=failed")
    assert (
        'data-status="failed"' in messages.text and 'data-status="delivered"' not in messages.text
    )


async def test_the_pages_in_hindi(dash: Dash) -> None:
    clinic = await dash.sign_in("clinic")  # the clinic's first language is Hindi
    page = (await clinic.get("/app/")).text
    assert '<html lang="hi">' in page and "आज" in page
    b = await dash.sign_in("bakery")
    assert '<html lang="en">' in (await b.get("/app/")).text
    switched = await b.post(
        "/app/language", {"csrf": await b.csrf(), "lang": "hi", "next": "/app/calls"}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/app/calls"
    calls = (await b.get("/app/calls")).text
    assert '<html lang="hi">' in calls and "कॉल" in calls
    login = (await dash.browser().get("/app/login?lang=hi")).text
    assert "साइन इन" in login


async def test_csv_export_follows_the_filters_and_the_session(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/calls?call_type=order")).text
    link = re.search(r'href="(/app/calls\.csv[^"]*)" data-testid="calls-csv"', page)
    assert link, page[:200]
    got = await b.get(html.unescape(link.group(1)))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0][0] == "call_sid"
    assert {r[0] for r in rows[1:]} == {"CAb0", "CAb1", "CAb2", "CAb-today"}
    bad = await b.get("/app/calls.csv?from=soon")
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=yesterday", "bad_date"),
        ("to=2026-13-45", "bad_date"),
        ("from=2026-12-02&to=2026-12-01", "bad_range"),
        ("status=exploded", "bad_status"),
        ("sort=sideways", "bad_sort"),
        ("cursor=not-a-cursor", "bad_cursor"),
        ("cursor=WzEsMl0", "bad_cursor"),
        ("caller=abc", "bad_filter"),
        ("q=" + "x" * 5000, None),  # cut to 200 characters, answered
    ],
)
async def test_bad_filters_get_a_page_with_a_message(
    dash: Dash, query: str, code: str | None
) -> None:
    b = await dash.sign_in("bakery")
    got = await b.get("/app/calls?" + query)
    if code is None:
        assert got.status_code == 200
        return
    assert got.status_code == 400, got.text[:300]
    assert f'data-code="{code}"' in got.text and 'data-testid="calls-filters"' in got.text
    messages = await b.get("/app/messages?status=%3Cb%3E")
    assert messages.status_code == 400 and 'data-code="bad_status"' in messages.text


async def test_paging_with_the_cursor(dash: Dash) -> None:
    for i in range(60):
        await seed_call(dash.db, f"CAp{i:02d}", "bakery", at=T0 - timedelta(days=3, minutes=i))
    b = await dash.sign_in("bakery")
    first = (await b.get("/app/calls")).text
    more = re.search(r'data-testid="calls-more" href="(/app/calls\?cursor=[^"]+)"', first)
    assert more and first.count('data-testid="call-row"') == 50
    fragment = await b.get(
        html.unescape(more.group(1)) + "&fragment=rows", headers={"HX-Request": "true"}
    )
    assert "<html" not in fragment.text and fragment.text.count('data-testid="call-row"') == 15
    second = (await b.get(html.unescape(more.group(1)))).text
    assert "<html" in second and second.count('data-testid="call-row"') == 15


async def test_unknown_pages_and_other_tenants_calls_read_the_same(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    missing = await b.get("/app/calls/CAnope")
    theirs = await b.get("/app/calls/CAs0")
    assert missing.status_code == theirs.status_code == 404
    assert missing.text.replace("CAnope", "X") == theirs.text.replace("CAs0", "X")
    assert (await b.get("/app/nowhere")).status_code == 404


async def test_the_database_down_is_a_clear_page(tmp_path: Path) -> None:
    db = Database("postgresql://nobody@127.0.0.1:9/nowhere")
    repo = TenantRepository(tenants_dir(tmp_path))
    dashboard = create_dashboard(WebDeps(db, repo, Decimal("84")), None)
    app = Starlette(routes=[Mount("/app", dashboard)])
    async with serve_in_process(app) as port:
        b = Browser(f"http://127.0.0.1:{port}")
        b.jar["rk_session"] = "a" * 43
        got = await b.get("/app/calls")
        form = await b.get("/app/login")
        await b.aclose()
    await db.dispose()
    assert got.status_code == 503 and 'data-code="unavailable"' in got.text
    assert "Traceback" not in got.text and "nobody" not in got.text
    assert form.status_code == 503


# --- live -------------------------------------------------------------------------------------


class Events:
    """Reads one SSE response line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def opened(self) -> None:
        """The server's first bytes, written once it is subscribed to the feed."""
        async for line in self.lines:
            if line == ": open":
                return
        raise AssertionError("the stream closed before it opened")

    async def next(self, want: int) -> list[tuple[str, str]]:
        """The next `want` events (kind, data line); fewer if the stream ends first."""
        events: list[tuple[str, str]] = []
        kind = ""
        async for line in self.lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                events.append((kind, line[6:]))
                kind = ""
                if len(events) >= want:
                    break
        return events


def stream(b: Browser, path: str = "/app/live/events") -> Any:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in b.jar.items())}
    return b.client.stream("GET", path, headers=headers, timeout=30)


async def test_the_live_stream_reaches_the_right_tenant_only(dash: Dash) -> None:
    bakery = await dash.sign_in("bakery")
    saloon = await dash.sign_in("saloon")
    admin = await dash.sign_in("admin")
    async with stream(bakery) as bs, stream(saloon) as ss, stream(admin) as a_s:
        assert bs.status_code == 200 and bs.headers["content-type"].startswith("text/event-stream")
        b_ev, s_ev, a_ev = Events(bs), Events(ss), Events(a_s)
        for ev in (b_ev, s_ev, a_ev):
            await ev.opened()
        started = {"from_number": "+917700000077", "started_at": ""}
        dash.live.publish(LiveEvent("call_started", "CAs-live", "saloon", started))
        said = {"speaker": "caller", "text": HOSTILE + "\nevent: x"}
        dash.live.publish(LiveEvent("turn", "CAb-live", "bakery", said))
        dash.live.publish(LiveEvent("call_ended", "CAb-live", "bakery", {"status": "completed"}))
        got_b = await b_ev.next(2)
        got_s = await s_ev.next(1)
        got_a = await a_ev.next(3)
    assert [k for k, _ in got_b] == ["turn", "call_ended"]
    assert all("CAs-live" not in d and "7700000077" not in d for _, d in got_b)
    assert "\\nevent: x" in got_b[0][1]  # a newline in text stays inside the JSON
    assert [k for k, _ in got_s] == ["call_started"] and "CAb-live" not in got_s[0][1]
    assert [k for k, _ in got_a] == ["call_started", "turn", "call_ended"]


async def test_the_live_stream_ends_with_the_session_and_is_bounded(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    async with stream(b) as one, stream(b) as two, stream(b) as three:
        assert {one.status_code, two.status_code, three.status_code} == {200}
        async with stream(b) as four:
            assert four.status_code == 429
        first = Events(one)
        await first.opened()
        async with dash.db.session() as conn:
            session_id = (await conn.execute(sa.select(web_sessions.c.id))).scalar_one()
        await expire_session_now(dash.db, session_id)
        dash.live.publish(LiveEvent("turn", "CAb-live", "bakery", {"speaker": "agent"}))
        got = await first.next(5)
    assert got == [("ended", "{}")]  # re-checked before sending: the stream closed instead


async def test_oldest_first_and_its_own_cursor(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/calls?sort=oldest")).text
    sids = re.findall(r'data-testid="call-row" data-call-sid="([^"]+)"', page)
    assert sids[0] == "CAb-failed" and sids[-1] == "CAb-today"
    assert 'value="oldest" selected' in page
    csv_link = re.search(r'href="(/app/calls\.csv[^"]*)" data-testid="calls-csv"', page)
    assert csv_link and "sort=oldest" in csv_link.group(1)


async def test_sessions_slide_while_used_and_end_after_their_longest_life(db: Database) -> None:
    from receptionist.store.web_sessions import (
        IDLE,
        MAX_AGE,
        Ended,
        create_session,
        open_session,
    )

    key_id, _ = await create_key(db, tenant="bakery")
    token, made = await create_session(db, key_id)
    assert made.tenant == "bakery"
    then = datetime.now(UTC) - timedelta(hours=2)
    async with db.begin() as conn:  # last seen two hours ago, would end in ten
        await conn.execute(
            sa.update(web_sessions).values(last_seen_at=then, expires_at=then + IDLE)
        )
    opened = await open_session(db, token)
    assert not isinstance(opened, Ended)
    assert opened.expires_at > datetime.now(UTC) + IDLE - timedelta(minutes=1)  # slid forward
    async with db.begin() as conn:  # signed in eight days ago: too old, however busy
        await conn.execute(
            sa.update(web_sessions).values(
                created_at=datetime.now(UTC) - MAX_AGE - timedelta(days=1),
                last_seen_at=then,
            )
        )
    assert await open_session(db, token) is Ended.EXPIRED
    assert await open_session(db, token) is Ended.UNKNOWN  # and its row is gone
    assert await open_session(db, "x" * 500) is Ended.UNKNOWN


def test_the_sign_in_brake_lets_go_when_its_window_passes() -> None:
    now = [0.0]
    brake = LoginBrake(max_failures=3, window_s=60, delay_s=0, max_clients=2, clock=lambda: now[0])
    for _ in range(3):
        brake.failed("10.0.0.1")
    assert brake.blocked("10.0.0.1") and not brake.blocked("10.0.0.2")
    now[0] = 61.0
    assert not brake.blocked("10.0.0.1")
    for client in ("a", "b", "c"):  # bounded: the oldest client is forgotten
        brake.failed(client)
    assert len(brake._failures) == 2


async def test_a_gap_in_the_feed_reaches_the_page(dash: Dash) -> None:
    b = await dash.sign_in("bakery")
    async with stream(b) as s:
        events = Events(s)
        await events.opened()
        dash.live.publish(LiveEvent("gap", "", None, {}))
        assert [k for k, _ in await events.next(1)] == ["gap"]
    fragment = await b.get("/app/live")  # what the page reads again after a gap
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-testid="live-empty"' in fragment.text


async def test_the_daily_digest_is_on_the_messages_page(dash: Dash) -> None:
    from receptionist.store.notifications import NewNotification, insert_notifications

    digest = NewNotification(
        call_sid=None,
        tenant="bakery",
        idempotency_key="digest:bakery:2026-12-06",
        recipient="919800000001",
        recipient_type="owner",
        message_type="daily_digest",
        template_name="owner_daily_digest",
        language="en",
        status="delivered",
        provider="log",
        payload={"variables": ["Sweet Crumbs Bakery", "6 Dec 2026", "5"]},
        details={"text": "Sweet Crumbs Bakery on 6 Dec 2026: 5 calls <b>"},
    )
    async with dash.db.begin() as conn:
        await insert_notifications(conn, dash.db.dialect, [digest])
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/messages")).text
    assert "owner_daily_digest" in page and "on 6 Dec 2026: 5 calls &lt;b&gt;" in page
    assert "/calls/None" not in page  # no call to link to


async def test_webhook_deliveries_with_their_attempts_and_a_replay(dash: Dash) -> None:
    mine = await delivery_id(dash.db, "CAb0")
    theirs = await delivery_id(dash.db, "CAs0")
    b = await dash.sign_in("bakery")
    page = await b.get("/app/webhooks")
    assert page.status_code == 200
    text = page.text
    assert f'data-delivery-id="{mine}"' in text and "crm.bakery.example" in text
    assert f'data-delivery-id="{theirs}"' not in text and "saloon" not in text
    assert 'data-testid="attempt" data-code="500"' in text and "HTTP 500" in text
    assert (await b.get("/app/webhooks?status=delivered")).text.count("delivery-row") == 0
    assert (await b.get("/app/webhooks?status=failed")).text.count('"delivery-row"') == 1
    bad = await b.get("/app/webhooks?status=%3Cscript%3E")
    assert bad.status_code == 400 and 'data-code="bad_status"' in bad.text
    assert "<script>" not in bad.text
    csrf = await b.csrf()
    # another tenant's delivery: not found, and left alone
    refused = await b.post(f"/app/webhooks/{theirs}/replay", {"csrf": csrf})
    assert refused.status_code == 404 and 'data-code="not_found"' in refused.text
    sent = await b.post(f"/app/webhooks/{mine}/replay", {"csrf": csrf, "back": "/app/webhooks"})
    assert sent.status_code == 303 and sent.headers["location"] == "/app/webhooks?m=replayed"
    d = webhook_deliveries.c
    async with dash.db.session() as conn:
        rows = dict((await conn.execute(sa.select(d.id, d.status))).all())
    assert rows == {mine: "pending", theirs: "failed"}
    after = await b.get(sent.headers["location"])
    assert 'data-testid="notice"' in after.text and 'data-status="pending"' in after.text
    # the operator sees every tenant's and replays any
    admin = await dash.sign_in("admin")
    everything = (await admin.get("/app/webhooks")).text
    assert f'data-delivery-id="{mine}"' in everything
    assert f'data-delivery-id="{theirs}"' in everything
    only = (await admin.get("/app/webhooks?tenant=saloon")).text
    assert f'data-delivery-id="{mine}"' not in only
    done = await admin.post(f"/app/webhooks/{theirs}/replay", {"csrf": await admin.csrf()})
    assert done.status_code == 303
    async with dash.db.session() as conn:
        assert (await conn.execute(sa.select(d.status).where(d.id == theirs))).scalar() == (
            "pending"
        )


async def test_the_bookings_page(dash: Dash) -> None:
    saloon = await dash.sign_in("saloon")
    page = await saloon.get("/app/bookings")
    assert page.status_code == 200
    assert page.text.count('data-testid="booking"') == 1
    assert "&lt;b&gt;Meena&lt;/b&gt;" in page.text and "<b>Meena" not in page.text
    assert "Held during the call" in page.text and "/app/calls/CAs0" in page.text
    none = await saloon.get("/app/bookings?status=confirmed")
    assert 'data-testid="bookings-empty"' in none.text
    bad = await saloon.get("/app/bookings?status=<script>")
    assert bad.status_code == 400 and "<script>" not in bad.text
    bakery = await dash.sign_in("bakery")
    theirs = await bakery.get("/app/bookings")
    assert 'data-testid="bookings-empty"' in theirs.text and "Meena" not in theirs.text
    # the calendar link: made by a signed-in form, shown once, and it serves the saloon's feed
    made = await saloon.post("/app/bookings/calendar", {"csrf": await saloon.csrf()})
    assert made.status_code == 200, made.text[:300]
    found = re.search(r'value="(http://[^"]+/calendar/saloon/[^"]+\.ics)"', made.text)
    assert found, made.text[:2000]
    feed = await saloon.client.get(found.group(1))
    assert feed.status_code == 200 and b"BEGIN:VEVENT" in feed.content
    refused = await saloon.post("/app/bookings/calendar", {"csrf": "wrong"})
    assert refused.status_code == 403


async def test_calendar_sync_failures_on_the_bookings_page(dash: Dash) -> None:
    from receptionist.store import calendar_sync as sync
    from receptionist.store.bookings import confirm_call

    assert await confirm_call(dash.db, "CAs0") == 1
    now = utcnow()
    [due] = await sync.due(dash.db, ["saloon"], now=now, max_attempts=8)
    assert await sync.claim(dash.db, due, event_id="rcp1", calendar_id="c", now=now, lease_s=60)
    await sync.failed(dash.db, due.booking.id, "insert event: <HTTP 403>", now=now, base_s=30)
    saloon = await dash.sign_in("saloon")
    page = (await saloon.get("/app/bookings")).text
    assert page.count('data-testid="calendar-sync-problem"') == 1
    assert f"<code>{due.booking.reference}</code>" in page
    assert "insert event: &lt;HTTP 403&gt;" in page and "<HTTP 403>" not in page
    bakery = await dash.sign_in("bakery")
    assert 'data-testid="calendar-sync-problems"' not in (await bakery.get("/app/bookings")).text


async def test_the_call_page_shows_a_scheduled_callback_and_when_callbacks_open(
    dash: Dash,
) -> None:
    due = datetime(2030, 1, 7, 4, 30, tzinfo=UTC)  # 10:00 in Kolkata
    claimed = await claim_callback(
        dash.db, tenant="bakery", call_sid="CAb1", reason="dropped", to_number="+919800000001",
        token="tok-scheduled-0001", limit=2, since=due - timedelta(days=1), due_at=due,
    )  # fmt: skip
    assert claimed == "claimed"
    toml = dash.root / "bakery" / "tenant.toml"
    ist = ZoneInfo("Asia/Kolkata")
    closed = f"{DAYS[(datetime.now(ist).weekday() + 3) % 7]} 10:00-11:00"
    toml.write_text(
        toml.read_text().replace(
            'hours = ["mon-sat 10:00-20:00", "sun 10:00-14:00"]', f'hours = ["{closed}"]'
        )
    )
    b = await dash.sign_in("bakery")
    page = (await b.get("/app/calls/CAb1")).text
    assert 'data-testid="callback" data-status="scheduled"' in page
    assert 'data-testid="callback-scheduled"' in page and "7 Jan 2030" in page
    assert 'data-testid="callbacks-open-at"' in page
