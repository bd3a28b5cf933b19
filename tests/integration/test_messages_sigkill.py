"""Workers killed with SIGKILL around the send, over and over, against the MSG91 double: no
message reaches the provider twice, none is lost, each ends sent, failed or unknown.

The worker is the real `receptionist worker` process with the real MSG91 client; the double
posts a `sent` report for every message it accepts to our real webhook, which is what lets a
send cut short by a kill be resolved instead of resent.

Every kill is made to land while sends are in flight, whatever the machine's speed: the double
lets a seeded-random number of requests through, then holds the next ones until the test
releases them; the worker is killed only once one is held. Rounds alternate between a double
that took the held message and only keeps the answer back (the provider has it, the worker
cannot know) and one that holds it before taking it (the provider never saw it)."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from receptionist.bridge.server import serve_in_process
from receptionist.notify.webhook import msg91_webhook_route
from receptionist.sim.msg91 import FakeMsg91, RecordedRequest
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from receptionist.store.schema import notifications
from tests.integration.bridge_harness import REPO
from tests.integration.test_notifications import insert, new

SECRET = "hook-secret"
AUTH_KEY = "msg91-test-key"
N_MESSAGES = 150
# took the held message / held it before taking it: both cases, three kills each
ROUNDS = (True, False) * 3
FINAL = {"sent", "delivered", "read", "failed", "unknown"}


@pytest.fixture
async def msg91(db: Database) -> AsyncIterator[FakeMsg91]:
    app = Starlette(routes=[msg91_webhook_route(db, SECRET)])
    async with serve_in_process(app) as port, FakeMsg91(auth_key=AUTH_KEY) as fake:
        fake.webhook_url = f"http://127.0.0.1:{port}/webhooks/msg91"
        fake.webhook_secret = SECRET
        fake.auto_report = ["sent"]
        yield fake


def _env(db_url: str, fake: FakeMsg91) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "TENANTS_DIR": str(REPO / "tenants"),
        "LOG_LEVEL": "ERROR",
        "PIPELINE_LEASE_S": "1",  # a killed worker's sends are looked at again quickly
        "NOTIFY_PROVIDER": "msg91",
        "MSG91_AUTH_KEY": AUTH_KEY,
        "MSG91_BASE_URL": fake.base_url,
        "MSG91_INTEGRATED_NUMBER": "919800000009",
        "MSG91_WEBHOOK_SECRET": SECRET,
        "NOTIFY_CONFIRM_WINDOW_S": "3",
        "NOTIFY_CONCURRENCY": "4",
    }


def _key(request: RecordedRequest) -> str:
    """Which message a request to the double carries (its first variable, unique per row)."""
    [item] = request.json()["payload"]["template"]["to_and_components"]
    return str(item["components"]["body_1"]["value"])


async def _rows_by_key(db: Database) -> dict[str, dict[str, Any]]:
    rows = await list_notifications(db, limit=N_MESSAGES + 10)
    return {r["payload"]["variables"][0]: r for r in rows}


def _cut_short(row: dict[str, Any], request: RecordedRequest) -> bool:
    """The dead worker never learnt how this send went: its row still waits for the answer
    (`sending`, or `unknown` if its own lease ran out first), unless the double took the
    message and its report has resolved the row since."""
    if row["status"] in ("sending", "unknown"):
        return True
    return bool(request.request_id) and (row["status"], row["provider_ref"]) == (
        "sent",
        request.request_id,
    )


async def _unsettled(db: Database) -> int:
    """Rows still to be sent or resolved automatically."""
    n = notifications.c
    async with db.session() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(notifications)
                    .where(
                        sa.or_(
                            n.status.in_(["queued", "sending"]),
                            sa.and_(n.status == "unknown", n.next_attempt_at.is_not(None)),
                        )
                    )
                )
            ).scalar()
            or 0
        )


async def test_sigkill_around_the_send_sends_nothing_twice_and_loses_nothing(
    db: Database, msg91: FakeMsg91
) -> None:
    rows = []
    for i in range(N_MESSAGES):
        payload = {"variables": [f"msg-{i}", "x"]}  # tells the provider's copies apart
        # customers have their own numbers; every owner alert goes to the same number and
        # template, the hardest case for telling an ambiguous send apart
        if i % 3:
            to = {"to": "customer", "recipient": f"9198{i:08d}"}
            rows.append(new(f"CA{i:04d}", payload=payload, **to))
        else:
            rows.append(new(f"CA{i:04d}", to="owner", payload=payload))
    await insert(db, *rows)
    env = _env(db.url, msg91)
    cmd = [sys.executable, "-m", "receptionist.cli", "worker"]
    rng = random.Random(11)
    landed = 0
    seen = []  # per round, for the failure message
    for accept in ROUNDS:
        after = rng.randrange(12)
        msg91.hold(after=after, accept=accept)
        proc = await asyncio.create_subprocess_exec(*cmd, env=env, cwd=REPO)
        try:
            await msg91.wait_held(1, timeout_s=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        # still held, so unanswered, now that the worker is dead: the kill caught them in flight
        in_flight = list(msg91.held)
        by_key = await _rows_by_key(db)
        seen.append(
            (
                accept,
                after,
                proc.returncode,
                [(_key(r), by_key[_key(r)]["status"]) for r in in_flight],
            )
        )
        if (
            proc.returncode == -signal.SIGKILL
            and in_flight
            and all(r.status_code is None and _cut_short(by_key[_key(r)], r) for r in in_flight)
        ):
            landed += 1
        msg91.release()  # answered now, to a worker that is gone
        # MSG91 reports within seconds; here the reports of everything the double took reach
        # our webhook before the next worker runs, so a slow machine cannot stretch a report
        # past the confirm window (which would rightly get the message sent again)
        await msg91.reports_settled(timeout_s=60)
    assert landed == len(ROUNDS), f"every kill must land while sends are in flight: {seen}"
    # one last worker, left to finish: abandoned sends expire, reports resolve them, the ones
    # the provider never saw are sent after the confirm window
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, cwd=REPO)
    try:
        async with asyncio.timeout(120):
            while await _unsettled(db):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        # nothing more will be sent: wait for the reports of everything the double took
        await msg91.reports_settled(timeout_s=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert len(msg91.reports) == len(msg91.messages)
    assert {r.status_code for r in msg91.reports} == {200}, [
        (r.status_code, r.error) for r in msg91.reports if r.status_code != 200
    ]
    stored = await list_notifications(db, limit=N_MESSAGES + 10)
    accepted = collections.Counter(m.variables[0] for m in msg91.messages)
    statuses = collections.Counter(r["status"] for r in stored)
    print(f"statuses {dict(statuses)}; requests {len(msg91.requests)}")
    assert len(stored) == N_MESSAGES
    assert max(accepted.values()) == 1, "a message reached the provider twice"
    for row in stored:
        assert row["status"] in FINAL, row
        count = accepted.get(row["payload"]["variables"][0], 0)
        if row["status"] in ("sent", "delivered", "read"):
            assert count == 1, row
        if row["status"] == "unknown":
            assert row["next_attempt_at"] is None and row["error"], row
    # nothing was lost: every message but the ones a person must look at went out
    assert statuses["sent"] + statuses["unknown"] == N_MESSAGES
    assert statuses["unknown"] <= N_MESSAGES // 10
