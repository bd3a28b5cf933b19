"""WhatsApp messages after calls: how soon the owner's alert is accepted, and how many messages a
process sends per second, through the real MSG91 client and its double at zero latency.

Two measurements, each with its floor measured in the same run:

1. Latency. Bakery order calls hang up one after another at `--rate` per second (the bridge's
   hang-up is reproduced: the call row is finished, then the in-process worker is woken). The
   worker analyses each call (offline analyzer), decides its messages, costs it, and its
   dispatcher sends them. `hangup_to_owner_message_accepted_ms` = the owner message's `sent_at`
   (written right after MSG91's 200) minus the call's `ended_at`; both from this machine's
   clock. Floor: one bare HTTP POST of the same body to the double, from an idle client.
2. Throughput. `--messages` queued messages are drained by one dispatcher with the default
   concurrency. Floor: the same number of bare POSTs, with the same concurrency, from httpx.

    python bench/notify.py [--calls 200] [--rate 20] [--messages 1000] [--db sqlite]
                           [--json bench/results/notify.json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, git_commit, machine_info, percentile, write_json

from receptionist.config import Settings
from receptionist.notify.msg91 import build_request_body
from receptionist.notify.provider import OutgoingMessage
from receptionist.postcall.wiring import worker_from_settings
from receptionist.sim.msg91 import FakeMsg91
from receptionist.store.calls import (
    FinishedCall,
    NewCall,
    create_call,
    finish_call,
    get_call,
)
from receptionist.store.db import Database
from receptionist.store.notifications import (
    NewNotification,
    insert_notifications,
    list_notifications,
)
from receptionist.tenants.repository import TenantRepository
from receptionist.usage import TokenUsage

AUTH_KEY = "bench-key"
SENDER = "919800000009"
NAMES = ["Anita", "Ravi", "Meena", "Farhan", "Lakshmi", "Joseph", "Priya", "Arjun"]
ITEMS = ["six chocolate brownies", "a milk bread", "one kilo black forest cake", "ten cupcakes"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def order_transcript(i: int) -> list[dict[str, Any]]:
    name, item = NAMES[i % len(NAMES)], ITEMS[i % len(ITEMS)]
    return [
        {"speaker": "agent", "text": "Sweet Crumbs Bakery, how can I help?", "start_ms": 0},
        {
            "speaker": "caller",
            "text": f"I want to order {item} for pickup tomorrow at 5 pm. My name is {name}.",
            "start_ms": 1000,
        },
        {"speaker": "agent", "text": f"Done, {name}!", "start_ms": 6500},
    ]


def settings_for(url: str, fake: FakeMsg91) -> Settings:
    return Settings(
        database_url=url,
        tenants_dir=REPO_ROOT / "tenants",
        notify_provider="msg91",
        msg91_auth_key=AUTH_KEY,  # type: ignore[arg-type]
        msg91_base_url=fake.base_url,
        msg91_integrated_number=SENDER,
        analyzer="offline",
        gemini_api_key=None,
    )


async def measure_latency(url: str, fake: FakeMsg91, args: Any) -> dict[str, Any]:
    settings = settings_for(url, fake)
    db = Database(url)
    await db.upgrade()
    worker = worker_from_settings(settings, db, TenantRepository(settings.tenants_dir))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    sids = [f"CAbench{i:05d}" for i in range(args.calls)]
    usage = [TokenUsage(model_name=settings.gemini_live_model, input_tokens=900, output_tokens=200)]
    t0 = time.monotonic()
    for i, sid in enumerate(sids):
        await asyncio.sleep(max(0.0, t0 + i / args.rate - time.monotonic()))
        caller = f"09{(812000000 + i):09d}"  # what Exotel's start frame gives
        await create_call(db, NewCall(call_sid=sid, tenant="bakery", from_number=caller))
        await finish_call(
            db,
            FinishedCall(
                call_sid=sid,
                status="completed",
                tenant="bakery",
                transcript=order_transcript(i),
                usage=usage,
            ),
        )
        worker.wake.set()
    deadline = time.monotonic() + args.timeout
    owner_ms: list[float] = []
    customer_ms: list[float] = []
    pending = set(sids)
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        for sid in list(pending):
            rows = await list_notifications(db, call_sid=sid)
            if rows and all(r["status"] not in ("queued", "sending") for r in rows):
                call = await get_call(db, sid)
                assert call is not None
                ended = call["ended_at"]
                for r in rows:
                    if r["sent_at"] is None:
                        continue
                    ms = (r["sent_at"] - ended).total_seconds() * 1000
                    (owner_ms if r["recipient_type"] == "owner" else customer_ms).append(ms)
                pending.discard(sid)
    stop.set()
    await task
    await worker.aclose()
    statuses: dict[str, int] = {}
    for r in await list_notifications(db, limit=10 * args.calls):
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    await db.dispose()
    return {
        "calls": args.calls,
        "calls_unfinished": len(pending),
        "message_statuses": statuses,
        "hangup_to_owner_message_accepted_ms_p50": _r(percentile(owner_ms, 50)),
        "hangup_to_owner_message_accepted_ms_p99": _r(percentile(owner_ms, 99)),
        "hangup_to_customer_message_accepted_ms_p50": _r(percentile(customer_ms, 50)),
        "hangup_to_customer_message_accepted_ms_p99": _r(percentile(customer_ms, 99)),
    }


def _message(i: int) -> OutgoingMessage:
    return OutgoingMessage(
        notification_id=i,
        to=f"9198{i:08d}",
        template="owner_new_order",
        language="en",
        variables=("order", "Anita", "25 Nov, 4:05 PM", "6 brownies for pickup tomorrow"),
        text="",
        integrated_number=SENDER,
    )


async def bare_posts(fake: FakeMsg91, n: int, concurrency: int) -> tuple[float, list[float]]:
    """The floor: n POSTs of a real body with `concurrency` in flight; (seconds, latencies)."""
    url = f"{fake.base_url}/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
    headers = {"authkey": AUTH_KEY, "content-type": "application/json"}
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:

        async def one(i: int) -> None:
            async with sem:
                t = time.perf_counter()
                r = await client.post(
                    url, headers=headers, json=build_request_body(_message(i), SENDER)
                )
                lat.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0, lat


async def measure_throughput(url: str, fake: FakeMsg91, args: Any) -> dict[str, Any]:
    settings = settings_for(url, fake)
    db = Database(url)
    await db.upgrade()
    rows = [
        NewNotification(
            call_sid=f"CAtp{i:06d}",
            tenant="bakery",
            idempotency_key=f"CAtp{i:06d}:owner:owner_new_order",
            recipient=_message(i).to,
            recipient_type="owner",
            message_type="order",
            template_name="owner_new_order",
            language="en",
            status="queued",
            provider="msg91",
            payload={"variables": list(_message(i).variables), "integrated_number": SENDER},
            details={"text": "bench"},
        )
        for i in range(args.messages)
    ]
    async with db.begin() as conn:
        for k in range(0, len(rows), 500):
            await insert_notifications(conn, db.dialect, rows[k : k + 500])
    worker = worker_from_settings(settings, db, TenantRepository(settings.tenants_dir))
    assert worker.dispatcher is not None
    before = len(fake.messages)
    t0 = time.perf_counter()
    sent = await worker.dispatcher.drain()
    seconds = time.perf_counter() - t0
    accepted = len(fake.messages) - before
    await worker.aclose()
    await db.dispose()
    floor_s, _ = await bare_posts(fake, args.messages, settings.notify_concurrency)
    return {
        "messages": args.messages,
        "sent": sent,
        "accepted_by_double": accepted,
        "concurrency": settings.notify_concurrency,
        "messages_per_second": round(sent / seconds, 1),
        "floor_bare_posts_per_second": round(args.messages / floor_s, 1),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


async def run(args: Any, tmp: Path) -> dict[str, Any]:
    pg = None
    results: dict[str, Any] = {}
    try:
        for kind in args.db:
            if kind == "sqlite":
                url_lat, url_tp = f"sqlite:///{tmp}/lat.db", f"sqlite:///{tmp}/tp.db"
            else:
                if pg is None:
                    from tests.pg import ThrowawayPostgres

                    pg = await asyncio.to_thread(ThrowawayPostgres().start)
                url_lat, url_tp = await pg.create_database_async(), await pg.create_database_async()
            async with FakeMsg91(auth_key=AUTH_KEY) as fake:
                _, single = await bare_posts(fake, 50, 1)  # the latency floor, idle
                log(f"{kind}: latency run, {args.calls} calls at {args.rate}/s")
                latency = await measure_latency(url_lat, fake, args)
                log(f"{kind}: throughput run, {args.messages} messages")
                throughput = await measure_throughput(url_tp, fake, args)
            floor_ms = percentile(single, 50)
            p50 = latency["hangup_to_owner_message_accepted_ms_p50"]
            results[kind] = {
                **latency,
                "floor_single_post_ms_p50": _r(floor_ms),
                **throughput,
                "ratios": {
                    "owner_message_p50_over_single_post": _r(p50 / floor_ms)
                    if p50 and floor_ms
                    else None,
                    "messages_per_second_over_bare_posts": round(
                        throughput["messages_per_second"]
                        / throughput["floor_bare_posts_per_second"],
                        2,
                    ),
                },
            }
    finally:
        if pg is not None:
            await asyncio.to_thread(pg.stop)
    return {
        "bench": "notify",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": git_commit(),
        "parameters": {
            "calls": args.calls,
            "rate_per_s": args.rate,
            "messages": args.messages,
            "db": args.db,
            "doubles": "FakeMsg91 at zero latency on loopback; offline analyzer; bakery tenant "
            "(order: customer confirmation + owner alert, static text: no AI key)",
        },
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0, help="hang-ups per second")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite and/or postgresql")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    args.db = [x.strip() for x in args.db.split(",") if x.strip()]
    if set(args.db) - {"sqlite", "postgresql"}:
        ap.error("--db takes sqlite and/or postgresql")
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    try:
        res = asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for kind, figures in res["results"].items():
        print(f"\n{kind}")
        for key, value in figures.items():
            print(f"  {key:<46} {value}")
    if args.json:
        write_json(args.json, res)
    ok = all(f["calls_unfinished"] == 0 for f in res["results"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
