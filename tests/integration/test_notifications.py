"""The notifications state machine and the dispatcher, on SQLite and PostgreSQL.

The provider here is a scripted stand-in for the wire (the MSG91 client itself is tested against
its double in test_msg91.py and end to end in test_messages_e2e.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from receptionist.notify.dispatcher import Dispatcher
from receptionist.notify.provider import (
    ACCEPTED,
    AMBIGUOUS,
    REJECTED,
    RETRY,
    OutgoingMessage,
    SendResult,
)
from receptionist.store.db import Database
from receptionist.store.notifications import (
    UNEXPLAINED_REPORT,
    NewNotification,
    Report,
    apply_report,
    claim_due,
    expire_abandoned,
    finish_send,
    insert_notifications,
    list_notifications,
    requeue,
    requeue_unconfirmed,
)
from receptionist.store.schema import notifications, utcnow


def new(
    call_sid: str, to: str = "owner", template: str = "new_order", **kw: Any
) -> NewNotification:
    values: dict[str, Any] = {
        "call_sid": call_sid,
        "tenant": "bakery",
        "idempotency_key": f"{call_sid}:{to}:{template}",
        "recipient": "919800000001",
        "recipient_type": to,
        "message_type": "order",
        "template_name": template,
        "language": "en",
        "status": "queued",
        "provider": "msg91",
        "payload": {"variables": ["Anita", "2 brownies"]},
        "details": {"text": "Anita ordered 2 brownies"},
    }
    values.update(kw)
    return NewNotification(**values)


async def insert(db: Database, *rows: NewNotification) -> int:
    async with db.begin(immediate=True) as conn:
        return await insert_notifications(conn, db.dialect, rows)


async def status_of(db: Database, call_sid: str) -> dict[str, Any]:
    rows = await list_notifications(db, call_sid=call_sid)
    assert len(rows) == 1
    return rows[0]


class ScriptedProvider:
    """Answers each send with the next scripted result (ACCEPTED once the script runs out)."""

    name = "msg91"

    def __init__(self, *results: SendResult, delay_s: float = 0.0) -> None:
        self.results = list(results)
        self.sent: list[OutgoingMessage] = []
        self.delay_s = delay_s

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append(message)
        await asyncio.sleep(self.delay_s)
        if self.results:
            return self.results.pop(0)
        return SendResult(ACCEPTED, provider_ref=f"req-{message.notification_id}")

    async def aclose(self) -> None:
        pass


def dispatcher(db: Database, provider: Any, **kw: Any) -> Dispatcher:
    kw.setdefault("backoff_base_s", 0.01)
    return Dispatcher(db, provider, worker_id="w1", **kw)


async def test_a_message_is_decided_once_however_often_it_is_inserted(db: Database) -> None:
    assert await insert(db, new("CA1")) == 1
    assert await insert(db, new("CA1", details={"text": "other"})) == 0
    row = await status_of(db, "CA1")
    assert row["details"] == {"text": "Anita ordered 2 brownies"} and row["status"] == "queued"


async def test_two_workers_never_claim_the_same_message(db: Database) -> None:
    await insert(db, *(new(f"CA{i}") for i in range(20)))
    a, b = await asyncio.gather(
        claim_due(db, worker_id="a", lease_s=30, limit=15),
        claim_due(db, worker_id="b", lease_s=30, limit=15),
    )
    ids_a, ids_b = {c.id for c in a}, {c.id for c in b}
    assert not ids_a & ids_b and len(ids_a | ids_b) == 20
    assert all(c.attempts == 1 for c in a + b)


async def test_a_claim_takes_no_more_than_its_limit(db: Database) -> None:
    await insert(db, *(new(f"CA{i}") for i in range(20)))
    assert len(await claim_due(db, worker_id="a", lease_s=30, limit=4)) == 4
    rows = await list_notifications(db)
    assert sum(r["status"] == "sending" for r in rows) == 4


async def test_urgent_messages_are_claimed_first(db: Database) -> None:
    await insert(db, new("CA1"), new("CA2", urgent=True))
    (first,) = await claim_due(db, worker_id="w", lease_s=30, limit=1)
    assert first.call_sid == "CA2"


async def test_accepted_rejected_and_retried_sends(db: Database) -> None:
    await insert(db, new("CAok"), new("CAbad"), new("CAflaky"))
    provider = ScriptedProvider()

    async def answer(message: OutgoingMessage) -> SendResult:
        provider.sent.append(message)
        by_text = {
            "ok": SendResult(ACCEPTED, provider_ref="req-ok"),
            "bad": SendResult(REJECTED, reason="HTTP 400: invalid template name", http_status=400),
            "flaky": SendResult(RETRY, reason="HTTP 503: try later", http_status=503),
        }
        return by_text[message.variables[0]]

    provider.send = answer  # type: ignore[method-assign]
    for sid, key in (("CAok", "ok"), ("CAbad", "bad"), ("CAflaky", "flaky")):
        async with db.begin() as conn:
            await conn.execute(
                sa.update(notifications)
                .where(notifications.c.call_sid == sid)
                .values(payload={"variables": [key]})
            )
    d = dispatcher(db, provider, max_attempts=3)
    assert await d.run_once() == 3
    ok, bad, flaky = [await status_of(db, s) for s in ("CAok", "CAbad", "CAflaky")]
    assert ok["status"] == "sent" and ok["provider_ref"] == "req-ok" and ok["sent_at"]
    assert bad["status"] == "failed" and "invalid template name" in bad["error"]
    assert flaky["status"] == "queued" and "503" in flaky["error"]
    assert flaky["next_attempt_at"] > utcnow() - timedelta(seconds=1)
    # the flaky one is retried with backoff until it gives up
    for _ in range(10):
        await asyncio.sleep(0.05)
        await d.run_once()
    flaky = await status_of(db, "CAflaky")
    assert flaky["status"] == "failed" and flaky["attempts"] == 3
    assert flaky["error"].startswith("gave up after 3 attempts")
    assert sum(1 for m in provider.sent if m.variables[0] == "flaky") == 3


async def test_an_ambiguous_send_is_never_resent_without_a_confirm_window(db: Database) -> None:
    await insert(db, new("CA1"))
    provider = ScriptedProvider(SendResult(AMBIGUOUS, reason="read timeout after 10 s"))
    d = dispatcher(db, provider, confirm_window_s=0)
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "unknown" and "read timeout" in row["error"]
    assert row["next_attempt_at"] is None
    await d.sweep()
    await d.drain()
    assert len(provider.sent) == 1
    # a person decides to resend
    assert await requeue(db, row["id"])
    await d.drain()
    assert (await status_of(db, "CA1"))["status"] == "sent" and len(provider.sent) == 2


async def test_an_ambiguous_send_is_resolved_by_the_providers_report(db: Database) -> None:
    await insert(db, new("CA1"))
    provider = ScriptedProvider(SendResult(AMBIGUOUS, reason="connection dropped"))
    d = dispatcher(db, provider, confirm_window_s=0.2)
    await d.drain()
    assert (await status_of(db, "CA1"))["status"] == "unknown"
    # the provider's report has its request id, which we never learnt: matched by number+template
    report = Report("req-77", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "updated"
    row = await status_of(db, "CA1")
    assert row["status"] == "sent" and row["provider_ref"] == "req-77" and row["error"] is None
    await asyncio.sleep(0.3)
    await d.sweep()
    await d.drain()
    assert len(provider.sent) == 1  # the window passed, but the report had resolved it


async def test_an_ambiguous_send_with_no_report_in_the_window_is_sent_again(db: Database) -> None:
    await insert(db, new("CA1"))
    provider = ScriptedProvider(SendResult(AMBIGUOUS, reason="read timeout"))
    d = dispatcher(db, provider, confirm_window_s=0.2)
    await d.drain()
    await asyncio.sleep(0.3)
    assert await requeue_unconfirmed(db)
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "sent" and len(provider.sent) == 2


async def test_a_send_abandoned_mid_flight_becomes_unknown(db: Database) -> None:
    await insert(db, new("CA1"))
    (c,) = await claim_due(db, worker_id="dead", lease_s=0.05, limit=1)
    await asyncio.sleep(0.1)
    assert await expire_abandoned(db, confirm_window_s=0) == [c.id]
    row = await status_of(db, "CA1")
    assert row["status"] == "unknown" and "stopped while sending" in row["error"]
    # the dead worker's late answer cannot overwrite it
    assert not await finish_send(db, c.id, worker_id="dead", values={"status": "sent"})


async def test_reports_only_move_forward_and_replays_change_nothing(db: Database) -> None:
    await insert(db, new("CA1"))
    d = dispatcher(db, ScriptedProvider(SendResult(ACCEPTED, provider_ref="req-1")))
    await d.drain()
    assert await apply_report(db, Report("req-1", "delivered")) == "updated"
    assert await apply_report(db, Report("req-1", "delivered")) == "unchanged"
    assert await apply_report(db, Report("req-1", "read")) == "updated"
    assert await apply_report(db, Report("req-1", "sent")) == "unchanged"
    assert await apply_report(db, Report("req-1", "failed", reason="late")) == "unchanged"
    row = await status_of(db, "CA1")
    assert row["status"] == "read" and row["delivered_at"] and row["read_at"]
    assert await apply_report(db, Report("req-nope", "delivered")) == "unknown_ref"


async def test_a_failed_delivery_report_keeps_the_reason(db: Database) -> None:
    await insert(db, new("CA1"))
    await dispatcher(db, ScriptedProvider(SendResult(ACCEPTED, provider_ref="r9"))).drain()
    report = Report("r9", "failed", reason="131026: receiver is not on WhatsApp")
    assert await apply_report(db, report) == "updated"
    row = await status_of(db, "CA1")
    assert row["status"] == "failed" and "not on WhatsApp" in row["error"]


async def test_customer_and_owner_messages_go_out_in_parallel(db: Database) -> None:
    await insert(db, new("CA1", to="owner"), new("CA1", to="customer", template="order_ok"))
    provider = ScriptedProvider(delay_s=0.3)
    started = asyncio.get_running_loop().time()
    await dispatcher(db, provider).drain()
    assert asyncio.get_running_loop().time() - started < 0.55
    assert len(provider.sent) == 2


async def test_a_provider_that_raises_leaves_the_message_unknown(db: Database) -> None:
    await insert(db, new("CA1"))

    class Broken(ScriptedProvider):
        async def send(self, message: OutgoingMessage) -> SendResult:
            raise RuntimeError("bug")

    await dispatcher(db, Broken()).drain()
    assert (await status_of(db, "CA1"))["status"] == "unknown"


async def test_a_report_matching_several_ambiguous_sends_resends_none(db: Database) -> None:
    """Two identical owner alerts (same number, same template) both timed out: the provider's
    report proves one went out but not which, so neither is sent again automatically."""
    await insert(db, new("CA1"), new("CA2"))
    provider = ScriptedProvider(
        SendResult(AMBIGUOUS, reason="read timeout"), SendResult(AMBIGUOUS, reason="read timeout")
    )
    d = dispatcher(db, provider, confirm_window_s=0.2)
    await d.drain()
    report = Report("req-x", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "ambiguous_match"
    await asyncio.sleep(0.3)
    assert await requeue_unconfirmed(db) == []
    for sid in ("CA1", "CA2"):
        row = await status_of(db, sid)
        assert row["status"] == "unknown" and row["error"] == UNEXPLAINED_REPORT
        assert row["next_attempt_at"] is None
    assert len(provider.sent) == 2


async def test_a_report_arriving_while_identical_sends_are_in_flight_blocks_resending(
    db: Database,
) -> None:
    """The report comes while both senders are still `sending` (then die): once they expire
    into `unknown`, neither is resent after the window, since one of them went out."""
    await insert(db, new("CA1"), new("CA2"))
    await claim_due(db, worker_id="dead", lease_s=0.05, limit=2)
    report = Report("req-x", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "ambiguous_match"
    await asyncio.sleep(0.1)
    assert len(await expire_abandoned(db, confirm_window_s=0.1)) == 2
    await asyncio.sleep(0.2)
    assert await requeue_unconfirmed(db) == []
    assert {(await status_of(db, s))["error"] for s in ("CA1", "CA2")} == {UNEXPLAINED_REPORT}


async def test_an_unmatched_report_later_explained_does_not_block_the_others(
    db: Database,
) -> None:
    """CA2's own answer arrives after its report: the report is explained, so CA1 (which the
    provider never saw) is sent again after the window."""
    await insert(db, new("CA1"), new("CA2"))
    claimed = await claim_due(db, worker_id="w", lease_s=30, limit=2)
    by_sid = {c.call_sid: c for c in claimed}
    report = Report("req-2", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "ambiguous_match"
    values = {"status": "sent", "provider_ref": "req-2"}
    assert await finish_send(db, by_sid["CA2"].id, worker_id="w", values=values)
    unknown = {"status": "unknown", "next_attempt_at": utcnow()}
    assert await finish_send(db, by_sid["CA1"].id, worker_id="w", values=unknown)
    assert await requeue_unconfirmed(db) == [by_sid["CA1"].id]
