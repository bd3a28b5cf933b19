"""The owner's daily digest (SQLite and PostgreSQL): due once the local hour has passed, the
day's figures in the template's order, one row per tenant and day however many workers check,
a daylight-saving gap passed like any hour, and the dispatcher sending it once to MSG91."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from receptionist.notify.digest import day_bounds, digest_day, digest_key, due_digests
from receptionist.store.calls import FinishedCall, NewCall, create_call, finish_call
from receptionist.store.db import Database
from receptionist.store.schema import ai_token_usage, call_details, notifications
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.repository import TenantRepository

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
IST = ZoneInfo("Asia/Kolkata")
DIGEST_TOML = """
[templates.owner_daily_digest]
language = "en"
text = "{{1}} on {{2}}: {{3}} calls ({{4}}); missed {{5}}, failed {{6}}, complaints {{7}}; AI {{8}}"

[digest]
hour = 21
template = "owner_daily_digest"
variables = ["business.name", "digest.date", "digest.calls", "digest.by_type",
             "digest.missed", "digest.failed", "digest.complaints", "digest.cost"]
"""


def _tenants(tmp_path: Path, extra: str = DIGEST_TOML, tz: str | None = None) -> Path:
    root = tmp_path / "tenants"
    shutil.copytree(EXAMPLES / "bakery", root / "bakery")
    toml = root / "bakery" / "tenant.toml"
    text = toml.read_text()
    if tz:
        text = text.replace('timezone = "Asia/Kolkata"', f'timezone = "{tz}"')
    toml.write_text(text + extra)
    return root


def test_the_example_config_loads(tmp_path: Path) -> None:
    tenant, problems = load_tenant(_tenants(tmp_path), "bakery")
    assert problems == [] and tenant is not None and tenant.digest is not None
    assert tenant.digest.hour == 21 and len(tenant.digest.sources) == 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (DIGEST_TOML.replace("hour = 21", "hour = 24"), "digest.hour must be a whole hour"),
        (DIGEST_TOML.replace('template = "owner_daily_digest"', 'template = "nope"'), "nope"),
        (DIGEST_TOML.replace('"digest.cost"]', '"digest.cots"]'), "did you mean"),
        (DIGEST_TOML.replace(', "digest.cost"]', "]"), "one name per placeholder"),
        (DIGEST_TOML.replace("[digest]", "[digest]\nminute = 5"), "unknown key 'digest.minute'"),
    ],
)
def test_a_wrong_digest_is_reported(tmp_path: Path, extra: str, message: str) -> None:
    tenant, problems = load_tenant(_tenants(tmp_path, extra), "bakery")
    assert tenant is None
    assert any(message in p.message for p in problems), problems


def test_due_once_the_local_hour_has_passed() -> None:
    at = datetime(2026, 12, 7, 15, 29, tzinfo=UTC)  # 20:59 IST
    assert digest_day(at, IST, 21) is None
    assert digest_day(at + timedelta(minutes=1), IST, 21) == date(2026, 12, 6)
    assert digest_day(at + timedelta(hours=2), IST, 21) == date(2026, 12, 6)  # still, late
    # after midnight only the new yesterday counts: a day missed entirely is not sent later
    assert digest_day(at + timedelta(hours=5), IST, 21) is None
    assert digest_day(datetime(2026, 12, 7, 18, 31, tzinfo=UTC), IST, 0) == date(2026, 12, 7)


def test_a_daylight_saving_gap_is_passed_like_any_hour() -> None:
    ny = ZoneInfo("America/New_York")
    # 2027-03-14: clocks jump from 02:00 to 03:00; 02:xx never happens that day
    before = datetime(2027, 3, 14, 6, 59, tzinfo=UTC)  # 01:59 EST
    after = datetime(2027, 3, 14, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert digest_day(before, ny, 2) is None
    assert digest_day(after, ny, 2) == date(2027, 3, 13)
    start, end = day_bounds(date(2027, 3, 14), ny)
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2027, 11, 7), ny)
    assert end - start == timedelta(hours=25)


async def _call(db: Database, sid: str, at: datetime, *, call_type: str | None, status: str,
                answered: bool = True, cost: str | None = None) -> None:  # fmt: skip
    await create_call(db, NewCall(call_sid=sid, tenant="bakery", started_at=at))
    await finish_call(
        db,
        FinishedCall(
            call_sid=sid,
            status=status,
            tenant="bakery",
            started_at=at,
            answered_at=at + timedelta(seconds=2) if answered else None,
        ),
    )
    async with db.begin() as conn:
        await conn.execute(
            sa.update(call_details)
            .where(call_details.c.call_sid == sid)
            .values(call_type=call_type)
        )
        if cost is not None:
            await conn.execute(
                sa.insert(ai_token_usage).values(
                    call_sid=sid, tenant="bakery", model_name="m", total_cost=Decimal(cost)
                )
            )


async def _rows(db: Database) -> list[dict[str, object]]:
    async with db.session() as conn:
        result = await conn.execute(sa.select(notifications))
        return [dict(r) for r in result.mappings()]


async def test_one_digest_per_day_with_the_day_figures(db: Database, tmp_path: Path) -> None:
    tenants = TenantRepository(_tenants(tmp_path))
    day = datetime(2026, 12, 6, tzinfo=IST)
    await _call(
        db, "CA1", day + timedelta(hours=9), call_type="order", status="completed", cost="0.10"
    )
    await _call(
        db, "CA2", day + timedelta(hours=12), call_type="order", status="completed", cost="0.05"
    )
    await _call(db, "CA3", day + timedelta(hours=13), call_type="complaint", status="completed")
    await _call(
        db, "CA4", day + timedelta(hours=14), call_type=None, status="rejected", answered=False
    )
    await _call(db, "CA5", day + timedelta(hours=15), call_type="enquiry", status="failed")
    await _call(
        db, "CA6", day - timedelta(minutes=1), call_type="order", status="completed"
    )  # the 5th
    await _call(
        db, "CA7", day + timedelta(days=1), call_type="order", status="completed"
    )  # the 7th

    early = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 20:30 IST
    assert await due_digests(db, tenants, early, provider="log", usd_inr=Decimal("84")) == 0
    late = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 21:30 IST
    added = await asyncio.gather(  # three workers checking at once
        *(due_digests(db, tenants, late, provider="log", usd_inr=Decimal("84")) for _ in range(3))
    )
    assert sum(added) == 1
    assert (
        await due_digests(
            db, tenants, late + timedelta(hours=2), provider="log", usd_inr=Decimal("84")
        )
        == 0
    )
    (row,) = await _rows(db)
    assert row["idempotency_key"] == digest_key("bakery", date(2026, 12, 6))
    assert row["call_sid"] is None and row["recipient_type"] == "owner"
    assert row["status"] == "queued" and row["recipient"] == "919800000001"
    assert row["payload"]["variables"] == [
        "Sweet Crumbs Bakery",
        "6 Dec 2026",
        "5",
        "order 2, complaint 1, enquiry 1",
        "1",
        "1",
        "1",
        "Rs 12.60",
    ]
    assert row["details"]["text"].startswith("Sweet Crumbs Bakery on 6 Dec 2026: 5 calls")


async def test_no_digest_for_an_inactive_tenant_or_without_one(
    db: Database, tmp_path: Path
) -> None:
    root = _tenants(tmp_path)
    toml = root / "bakery" / "tenant.toml"
    toml.write_text(toml.read_text().replace("\nactive = true", "\nactive = false"))
    late = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    assert (
        await due_digests(db, TenantRepository(root), late, provider="log", usd_inr=Decimal(84))
        == 0
    )
    plain = TenantRepository(EXAMPLES)  # the examples have no [digest]
    assert await due_digests(db, plain, late, provider="log", usd_inr=Decimal(84)) == 0
    assert await _rows(db) == []


async def test_the_worker_sends_it_once_to_msg91(db: Database, tmp_path: Path) -> None:
    from receptionist.config import Settings
    from receptionist.postcall.wiring import worker_from_settings
    from receptionist.sim.msg91 import FakeMsg91

    async with FakeMsg91(auth_key="k") as msg91:
        settings = Settings(
            database_url=db.url,
            notify_provider="msg91",
            msg91_auth_key="k",
            msg91_base_url=msg91.base_url,
            notify_ai="off",
        )
        worker = worker_from_settings(settings, db, TenantRepository(_tenants(tmp_path)))
        worker.clock = lambda: datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 21:30 IST
        try:
            assert worker.dispatcher is not None
            assert await worker.queue_digests() == 1
            await worker.dispatcher.run_once()
            assert await worker.queue_digests() == 0  # a restart, another worker: still one
            await worker.dispatcher.run_once()
        finally:
            await worker.aclose()
        assert msg91.accepted_for("919800000001", "owner_daily_digest") == 1
        assert len(msg91.messages) == 1
        (row,) = await _rows(db)
        assert row["status"] in ("sent", "delivered")
