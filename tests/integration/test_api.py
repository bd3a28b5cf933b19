"""The REST API over real HTTP, on both databases: keys, the tenant scope on every route,
filters, search, cursors, a call's whole record, retry and resend, and bad input."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.routing import Mount

from receptionist.bridge.app import create_app
from receptionist.bridge.server import serve_in_process
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.engines.base import EngineError, EngineRequest, VoiceEngine
from receptionist.store import bookings
from receptionist.store.api_keys import create_key, revoke_key
from receptionist.store.calls import FinishedCall, finish_call
from receptionist.store.db import Database
from receptionist.store.exotel_details import upsert_exotel_details
from receptionist.store.schema import ai_token_usage, call_details, webhook_deliveries
from receptionist.store.search import caller_key, search_document
from receptionist.usage import TokenUsage
from receptionist.web.figures import _bucket
from tests.integration.bridge_harness import tenants_dir
from tests.integration.test_notifications import insert, new

T0 = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)  # 10:00 in Kolkata


def no_engine(request: EngineRequest) -> VoiceEngine:
    raise EngineError("these tests place no calls")


@dataclass
class Api:
    url: str
    app: FastAPI
    keys: dict[str, str]  # bakery, saloon, admin, revoked
    db: Database

    def client(self, who: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers)


async def seed_call(
    db: Database,
    sid: str,
    tenant: str,
    *,
    at: datetime = T0,
    call_type: str | None = "order",
    summary: str = "ordered a cake",
    text: str = "I want a cake",
    stage: str | None = None,
    from_number: str = "+919800000042",
) -> None:
    await finish_call(
        db,
        FinishedCall(
            call_sid=sid,
            status="completed",
            tenant=tenant,
            started_at=at,
            ended_at=at + timedelta(seconds=40),
            transcript=[
                {"speaker": "agent", "text": "Hello!", "start_ms": 0, "end_ms": 900},
                {"speaker": "caller", "text": text, "start_ms": 1000, "end_ms": 2500},
            ],
            usage=[TokenUsage(model_name="gemini-live", input_tokens=1000, output_tokens=500)],
        ),
    )
    async with db.begin() as conn:
        await conn.execute(
            sa.update(call_details)
            .where(call_details.c.call_sid == sid)
            .values(
                call_type=call_type,
                summary=summary,
                critical_call_details={"name": "Anita", "items": ["cake"]},
                stage=stage or "done",
                from_number=from_number,
                # what create_call and the analysis step derive from the same values
                caller_key=caller_key(from_number),
                search_text=search_document(
                    [{"text": "Hello!"}, {"text": text}], summary, call_type
                ),
            )
        )
        await conn.execute(
            sa.update(ai_token_usage)
            .where(ai_token_usage.c.call_sid == sid)
            .values(total_cost=Decimal("0.012"), currency="USD")
        )


@pytest.fixture
async def api(db: Database, tmp_path: Path) -> AsyncIterator[Api]:
    for i in range(3):
        await seed_call(db, f"CAb{i}", "bakery", at=T0 + timedelta(minutes=i))
    await seed_call(
        db, "CAb-failed", "bakery", at=T0 - timedelta(days=2), stage="failed", call_type=None
    )
    await seed_call(db, "CAs0", "saloon", summary="haircut at 5", text="a haircut please")
    await insert(
        db,
        new("CAb0", status="failed", error="400 bad template"),
        new("CAs0", to="customer", template="booking", status="failed", tenant="saloon"),
    )
    # a saloon booking: the bakery's key must never see it (the isolation walk below)
    await bookings.hold_slot(
        db,
        bookings.SlotHold(
            "saloon", "Priya", T0, T0 + timedelta(hours=1), timedelta(days=1), call_sid="CAs0"
        ),
        now=T0,
    )
    async with db.begin() as conn:
        await upsert_exotel_details(
            conn,
            call_sid="CAb0",
            tenant="bakery",
            values={"call_status": "completed", "call_duration": 40, "recording_url": "https://r"},
        )
    keys = {
        "bakery": (await create_key(db, tenant="bakery"))[1],
        "saloon": (await create_key(db, tenant="saloon"))[1],
        "admin": (await create_key(db, tenant=None, name="operator"))[1],
    }
    revoked_id, keys["revoked"] = await create_key(db, tenant="bakery")
    await revoke_key(db, revoked_id)
    cfg = load_settings(
        database_url=db.url,
        tenants_dir=tenants_dir(tmp_path),
        spool_dir=tmp_path / "spool",
        run_worker=False,
    )
    app = create_app(build_context(cfg, db=db, engine_factory=no_engine))
    api_app = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "")
    async with serve_in_process(app) as port:
        yield Api(f"http://127.0.0.1:{port}", api_app, keys, db)


def api_paths(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/v1, read from the app itself (included routers
    walked too), and the same list as the OpenAPI document: no route is hidden from either."""
    found = []
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        inner = getattr(route, "routes", None) or getattr(
            getattr(route, "original_router", None), "routes", None
        )
        if inner:
            pending += inner
            continue
        path = getattr(route, "path", "")
        if path.startswith("/api/v1"):
            found += [(m, path) for m in sorted(getattr(route, "methods", ())) if m != "HEAD"]
    paths = app.openapi()["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/api/")}
    assert set(found) == documented
    # the one route outside /api/v1: the calendar feed, whose URL's token is its credential
    # (tests/integration/test_bookings_api.py)
    assert {p for p in paths if not p.startswith("/api/")} == {"/calendar/{tenant_id}/{token}.ics"}
    return sorted(found)


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


async def notification_id(db: Database, call_sid: str) -> str:
    from receptionist.store.notifications import list_notifications

    return str((await list_notifications(db, call_sid=call_sid))[0]["id"])


async def webhook_delivery_id(db: Database, tenant: str, call_sid: str) -> str:
    """A webhook event of the tenant's call, written as the pipeline writes one."""
    from receptionist.store.webhook_deliveries import NewDelivery, insert_deliveries

    payload = {"id": f"ev-{call_sid}", "type": "call.ended", "data": {"call_sid": call_sid}}
    row = NewDelivery(
        f"ev-{call_sid}", "call.ended", tenant, call_sid, "https://example.com/h", "S", payload
    )
    async with db.begin() as conn:
        await insert_deliveries(conn, db.dialect, [row])
    async with db.session() as conn:
        found = await conn.execute(
            sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.call_sid == call_sid)
        )
        return str(found.scalar_one())


async def test_every_route_keeps_tenants_apart_and_refuses_bad_keys(api: Api) -> None:
    routes = api_paths(api.app)
    assert len(routes) >= 7, routes  # a new route is walked here without being listed
    saloon_ids = {
        "call_sid": "CAs0",
        "notification_id": await notification_id(api.db, "CAs0"),
        "delivery_id": await webhook_delivery_id(api.db, "saloon", "CAs0"),
        "tenant_id": "saloon",
        "version": "1",
    }
    async with api.client("bakery") as bakery, api.client("admin") as admin:
        for method, path in routes:
            url = fill(path, saloon_ids)
            got = await bakery.request(method, url)
            if "{" in path:  # the saloon's own record: the bakery's key must not reach it
                assert got.status_code == 404, (method, path, got.text)
                assert got.json()["error"]["code"] == "not_found"
            else:
                assert got.status_code == 200, (method, path, got.text)
                assert "saloon" not in got.text and "CAs0" not in got.text, (method, path)
            # asking for another tenant explicitly changes nothing for an owner's key
            other = await bakery.request(method, url, params={"tenant": "saloon"})
            if "{" in path:
                assert other.status_code == 404, (method, path, other.text)
            else:
                assert "CAs0" not in other.text and "haircut" not in other.text, (method, path)
            for who in (None, "revoked"):
                async with api.client(who) as anon:
                    refused = await anon.request(method, url)
                assert refused.status_code == 401, (who, method, path)
                assert refused.json()["error"]["code"] == "unauthorized"
            for header in ("Bearer rk_00000000_" + "x" * 43, "Basic abc", "Bearer"):
                refused = await bakery.request(method, url, headers={"Authorization": header})
                assert refused.status_code == 401, (header, method, path)
        calls = (await admin.get("/api/v1/calls")).json()["items"]
        assert {c["tenant"] for c in calls} == {"bakery", "saloon"}
        only = (await admin.get("/api/v1/calls", params={"tenant": "saloon"})).json()["items"]
        assert [c["call_sid"] for c in only] == ["CAs0"]
    # the resend above went to the saloon's message through no key but the saloon's: untouched
    from receptionist.store.notifications import list_notifications

    [msg] = await list_notifications(api.db, call_sid="CAs0")
    assert msg["status"] == "failed"


async def test_list_filters_search_and_stable_cursor(api: Api) -> None:
    async with api.client("bakery") as c:
        everything = (await c.get("/api/v1/calls")).json()
        assert [x["call_sid"] for x in everything["items"]] == [
            "CAb2",
            "CAb1",
            "CAb0",
            "CAb-failed",
        ]
        assert everything["next_cursor"] is None
        first = (await c.get("/api/v1/calls", params={"limit": 2})).json()
        assert [x["call_sid"] for x in first["items"]] == ["CAb2", "CAb1"]
        await seed_call(api.db, "CAb-new", "bakery", at=T0 + timedelta(hours=1))  # a new call
        second = (
            await c.get("/api/v1/calls", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        assert [x["call_sid"] for x in second["items"]] == ["CAb0", "CAb-failed"]
        day = {"from": "2026-12-01", "to": "2026-12-01"}  # Kolkata days
        assert len((await c.get("/api/v1/calls", params=day)).json()["items"]) == 4
        before = {"to": "2026-11-30"}  # 29 Nov 10:00 in Kolkata: the failed call only
        assert [
            x["call_sid"] for x in (await c.get("/api/v1/calls", params=before)).json()["items"]
        ] == ["CAb-failed"]
        typed = (await c.get("/api/v1/calls", params={"call_type": "order"})).json()
        assert "CAb-failed" not in [x["call_sid"] for x in typed["items"]]
        assert (await c.get("/api/v1/calls", params={"q": "CAKE"})).json()["items"]
        assert not (await c.get("/api/v1/calls", params={"q": "haircut"})).json()["items"]
        assert not (await c.get("/api/v1/calls", params={"q": "%"})).json()["items"]
        assert (await c.get("/api/v1/calls", params={"caller": "98000 000 42"})).json()["items"]
        capped = await c.get("/api/v1/calls", params={"limit": 10**9})
        assert capped.status_code == 200 and len(capped.json()["items"]) <= 200


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "yesterday"}, "bad_request"),
        ({"to": "2026-13-45"}, "bad_request"),
        ({"cursor": "not-a-cursor"}, "bad_cursor"),
        ({"cursor": "WzEsMl0"}, "bad_cursor"),  # valid base64 of [1,2]: not ours
        ({"limit": "0"}, "bad_request"),
        ({"limit": "many"}, "bad_request"),
        ({"caller": "abc"}, "bad_filter"),
        ({"q": "x" * 500}, "bad_request"),
    ],
)
async def test_malformed_filters_get_a_clear_400(
    api: Api, params: dict[str, str], code: str
) -> None:
    async with api.client("bakery") as c:
        got = await c.get("/api/v1/calls", params=params)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["code"] == code


async def test_sql_looking_input_is_only_data(api: Api) -> None:
    hostile = "'; DROP TABLE call_details; --<script>alert(1)</script>"
    await seed_call(api.db, "CAb-hostile", "bakery", summary=hostile, text=hostile)
    async with api.client("bakery") as c:
        found = (await c.get("/api/v1/calls", params={"q": "DROP TABLE"})).json()["items"]
        assert [x["call_sid"] for x in found] == ["CAb-hostile"]
        assert found[0]["summary"] == hostile  # returned as data, JSON-escaped
        assert (await c.get("/api/v1/calls", params={"caller": "1 OR 1=1"})).status_code == 200


async def test_a_call_in_full(api: Api) -> None:
    async with api.client("bakery") as c:
        call = (await c.get("/api/v1/calls/CAb0")).json()
    assert [t["speaker"] for t in call["transcript"]] == ["agent", "caller"]
    assert call["details"] == {"name": "Anita", "items": ["cake"]}
    assert call["cost_usd"] == pytest.approx(0.012) and call["cost_inr"] == pytest.approx(1.01)
    assert call["usage"][0]["model_name"] == "gemini-live"
    assert [n["status"] for n in call["notifications"]] == ["failed"]
    assert call["exotel"]["recording_url"] == "https://r"


async def test_retry_and_resend_follow_the_rules(api: Api) -> None:
    async with api.client("bakery") as c:
        done = await c.post("/api/v1/calls/CAb0/retry")
        assert done.status_code == 409 and done.json()["error"]["code"] == "not_failed"
        retried = await c.post("/api/v1/calls/CAb-failed/retry")
        assert retried.status_code == 200, retried.text
        call = (await c.get("/api/v1/calls/CAb-failed")).json()
        assert call["stage"] == "transcript_saved"
        msg = await notification_id(api.db, "CAb0")
        assert (await c.post(f"/api/v1/notifications/{msg}/resend")).status_code == 200
        again = await c.post(f"/api/v1/notifications/{msg}/resend")  # queued now: not failed
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_resendable"
        listed = (await c.get("/api/v1/notifications", params={"status": "queued"})).json()
        assert [n["call_sid"] for n in listed] == ["CAb0"]


async def test_openapi_and_docs_describe_the_api_offline(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as c:
        doc = (await c.get("/openapi.json")).json()
        page = await c.get("/docs")
    assert {"/api/v1/calls", "/api/v1/calls/{call_sid}", "/api/v1/tenants"} <= set(doc["paths"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<code>GET /api/v1/calls/{call_sid}</code>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched online


async def test_the_database_down_is_a_clear_error(tmp_path: Path) -> None:
    db = Database("postgresql://nobody@127.0.0.1:9/nowhere")
    cfg = load_settings(database_url=db.url, tenants_dir=tenants_dir(tmp_path), run_worker=False)
    app = create_app(build_context(cfg, db=db, engine_factory=no_engine))
    async with serve_in_process(app) as port, httpx.AsyncClient() as c:
        got = await c.get(
            f"http://127.0.0.1:{port}/api/v1/calls",
            headers={"Authorization": "Bearer rk_0123abcd_" + "x" * 43},
        )
    await db.dispose()
    assert got.status_code == 503
    assert got.json()["error"]["code"] == "unavailable" and "Traceback" not in got.text


async def test_csv_export_streams_the_filtered_list_safely(api: Api) -> None:
    await seed_call(api.db, "CAb-formula", "bakery", summary='=HYPERLINK("http://x")')
    async with api.client("bakery") as c:
        got = await c.get("/api/v1/calls.csv", params={"call_type": "order"})
        bad = await c.get("/api/v1/calls.csv", params={"from": "nope"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0][:3] == ["call_sid", "tenant", "started_at"]
    sids = [r[0] for r in rows[1:]]
    assert set(sids) == {"CAb0", "CAb1", "CAb2", "CAb-formula"}  # order calls, bakery's only
    formula = next(r for r in rows if r[0] == "CAb-formula")
    assert formula[8].startswith("'=") and formula[4] == "+919800000042"
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


async def test_csv_export_pages_through_long_lists(api: Api) -> None:
    for i in range(1203):  # more than two of the export's internal pages
        await seed_call(api.db, f"CAmany{i:04d}", "saloon", at=T0 - timedelta(seconds=i))
    async with api.client("saloon") as c:
        got = await c.get("/api/v1/calls.csv")
    sids = [r[0] for r in csv.reader(io.StringIO(got.text))][1:]
    assert len(sids) == 1204 and len(set(sids)) == 1204  # each call once (and CAs0)


async def test_stats_per_day_type_cost_and_response(api: Api) -> None:
    timed = [
        {"speaker": "caller", "text": "Hi", "start_ms": 0, "end_ms": 1000},
        {"speaker": "agent", "text": "Hello", "start_ms": 1800, "end_ms": 2500},
        {"speaker": "caller", "text": "Bye", "start_ms": 3000, "end_ms": 3500},
        {"speaker": "agent", "text": "Bye", "start_ms": 4700, "end_ms": 5000},
    ]
    await finish_call(
        api.db,
        FinishedCall(
            call_sid="CAb-timed",
            status="completed",
            tenant="bakery",
            started_at=T0 - timedelta(days=1),
            ended_at=T0 - timedelta(days=1) + timedelta(seconds=40),
            transcript=timed,
        ),
    )
    async with api.client("bakery") as c:
        got = await c.get("/api/v1/stats", params={"from": "2026-11-29", "to": "2026-12-01"})
        bad = await c.get("/api/v1/stats", params={"from": "2026-12-02", "to": "2026-12-01"})
    assert got.status_code == 200, got.text
    stats = got.json()
    by_day = {d["day"]: d for d in stats["days"]}
    assert list(by_day) == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert by_day["2026-12-01"]["calls"] == 3 and by_day["2026-11-29"]["calls"] == 1
    assert by_day["2026-12-01"]["cost_usd"] == pytest.approx(0.036)
    assert by_day["2026-12-01"]["cost_inr"] == pytest.approx(3.02)
    assert by_day["2026-11-30"]["missed"] == 1  # the timed call never heard the agent
    assert {t["call_type"]: t["calls"] for t in stats["call_types"]} == {"order": 3, None: 2}
    assert stats["totals"]["calls"] == 5 and stats["totals"]["duration_s_avg"] == 40.0
    # only the timed call has answers to caller turns: 800 ms and 1200 ms
    assert stats["response"]["turns"] == 2
    assert stats["response"]["p50_ms"] == 1200.0 and stats["response"]["p99_ms"] == 1200.0
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_range"


async def test_a_deactivated_tenant_reads_its_history_a_deleted_one_is_refused(
    api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "tenants"
    toml = root / "bakery" / "tenant.toml"
    toml.write_text(toml.read_text().replace("active = true", "active = false", 1))
    api.app.state.api.tenants.invalidate("bakery")  # as after its 1 s re-check interval
    async with api.client("bakery") as c:
        tenants = (await c.get("/api/v1/tenants")).json()
        assert [(t["tenant_id"], t["active"]) for t in tenants] == [("bakery", False)]
        assert (await c.get("/api/v1/calls")).status_code == 200
        shutil.rmtree(root / "bakery")
        api.app.state.api.tenants.invalidate("bakery")  # as after its 1 s re-check interval
        gone = await c.get("/api/v1/calls")
    assert gone.status_code == 403 and gone.json()["error"]["code"] == "tenant_gone"


async def _all_pages(c: httpx.AsyncClient, sort: str, limit: int) -> list[str]:
    sids: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"sort": sort, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = (await c.get("/api/v1/calls", params=params)).json()
        sids += [x["call_sid"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return sids


async def test_sort_newest_or_oldest_with_a_cursor_per_sort(api: Api) -> None:
    for sid in ("CAb-nostart1", "CAb-nostart2"):  # finished with no known start time
        await finish_call(
            api.db, FinishedCall(call_sid=sid, status="failed", tenant="bakery", started_at=None)
        )
    await seed_call(api.db, "CAb-tie", "bakery", at=T0 + timedelta(minutes=1))  # same as CAb1
    newest = ["CAb2", "CAb-tie", "CAb1", "CAb0", "CAb-failed", "CAb-nostart2", "CAb-nostart1"]
    async with api.client("bakery") as c:
        for limit in (1, 2, 3, 50):
            assert await _all_pages(c, "newest", limit) == newest, limit
            assert await _all_pages(c, "oldest", limit) == newest[::-1], limit
        default = (await c.get("/api/v1/calls")).json()
        assert [x["call_sid"] for x in default["items"]] == newest
        # turns are counted by the database (the list reads no transcript)
        assert [x["turns"] for x in default["items"]] == [2, 2, 2, 2, 2, 0, 0]
        first = (await c.get("/api/v1/calls", params={"sort": "oldest", "limit": 3})).json()
        crossed = await c.get(
            "/api/v1/calls", params={"sort": "newest", "cursor": first["next_cursor"]}
        )
        assert crossed.status_code == 400 and crossed.json()["error"]["code"] == "bad_cursor"
        bogus = await c.get("/api/v1/calls", params={"sort": "random"})
        assert bogus.status_code == 400 and bogus.json()["error"]["code"] == "bad_request"
        exported = await c.get("/api/v1/calls.csv", params={"sort": "oldest"})
        assert [r[0] for r in csv.reader(io.StringIO(exported.text))][1:] == newest[::-1]
        typed = await c.get("/api/v1/calls", params={"sort": "oldest", "call_type": "order"})
        assert [x["call_sid"] for x in typed.json()["items"]] == ["CAb0", "CAb1", "CAb-tie", "CAb2"]


async def test_stats_count_by_quarter_hour_in_the_database(api: Api) -> None:
    """The calls of one quarter hour are one group (not one row per call, which true division
    of the epoch seconds would give): the rows stats read are bounded by the range."""

    c = call_details.c
    bucket = _bucket(api.db.dialect, c.started_at)
    async with api.db.session() as conn:  # CAb0..2: 10:00, 10:01, 10:02 in Kolkata
        rows = (
            await conn.execute(
                sa.select(bucket, sa.func.count())
                .where(c.call_sid.in_(["CAb0", "CAb1", "CAb2"]))
                .group_by(bucket)
            )
        ).all()
    assert [(int(b) * 900, n) for b, n in rows] == [(int(T0.timestamp()), 3)]


async def test_a_stored_turn_with_odd_times_does_not_fail_the_call(api: Api) -> None:
    """A transcript written by hand or an older version: offsets that are not finite numbers
    read as unknown instead of failing the whole call with a 500."""
    odd = [
        {"speaker": "agent", "text": "Hello", "start_ms": "soon", "end_ms": None},
        {"speaker": "caller", "text": "Hi", "start_ms": True, "end_ms": [1]},
        {"speaker": "agent", "text": "Yes", "start_ms": {"at": 1}, "end_ms": 2500},
    ]
    async with api.db.begin() as conn:
        await conn.execute(
            sa.update(call_details).where(call_details.c.call_sid == "CAb1").values(transcript=odd)
        )
    async with api.client("bakery") as c:
        got = await c.get("/api/v1/calls/CAb1")
    assert got.status_code == 200, got.text
    turns = got.json()["transcript"]
    assert [(t["text"], t["start_ms"], t["end_ms"]) for t in turns] == [
        ("Hello", None, None),
        ("Hi", None, None),
        ("Yes", None, 2500.0),
    ]


async def test_webhook_deliveries_listed_detailed_and_replayed(api: Api) -> None:
    delivery = await webhook_delivery_id(api.db, "saloon", "CAs0")
    async with api.client("saloon") as saloon:
        listed = (await saloon.get("/api/v1/webhooks/deliveries")).json()
        assert [d["id"] for d in listed] == [int(delivery)]
        assert listed[0]["status"] == "pending" and listed[0]["event_type"] == "call.ended"
        one = (await saloon.get(f"/api/v1/webhooks/deliveries/{delivery}")).json()
        assert one["event_id"] == "ev-CAs0" and one["tried"] == []
        replayed = await saloon.post(f"/api/v1/webhooks/deliveries/{delivery}/replay")
        assert replayed.status_code == 200 and replayed.json()["ok"] is True
        assert (
            await saloon.get("/api/v1/webhooks/deliveries", params={"status": "x" * 17})
        ).status_code == 400
