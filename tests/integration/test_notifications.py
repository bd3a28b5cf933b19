"""The notifications state machine and the dispatcher, on SQLite and PostgreSQL.

The provider here is a scripted stand-in for the wire (the MSG91 client itself is tested against
its double in test_msg91.py and end to end in test_messages_e2e.py). Backoff, leases and confirm
windows are stepped through with a clock the test moves (:class:`Clock`), never waited for: no
outcome here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
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
    async with db.begin() as conn:
        return await insert_notifications(conn, db.dialect, rows)


async def status_of(db: Database, call_sid: str) -> dict[str, Any]:
    rows = await list_notifications(db, call_sid=call_sid)
    assert len(rows) == 1
    return rows[0]


class ScriptedProvider:
    """Answers each send with the next scripted result (ACCEPTED once the script runs out)."""

    name = "msg91"

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append(message)
        if self.results:
            return self.results.pop(0)
        return SendResult(ACCEPTED, provider_ref=f"req-{message.notification_id}")

    async def aclose(self) -> None:
        pass


class Clock:
    """The dispatcher's "now", moved by the test. Make it after inserting the rows: a row is due
    from its insertion (real) time."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


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
    clock = Clock()
    d = dispatcher(db, provider, max_attempts=3, backoff_base_s=5.0, clock=clock)
    assert await d.run_once() == 3
    ok, bad, flaky = [await status_of(db, s) for s in ("CAok", "CAbad", "CAflaky")]
    assert ok["status"] == "sent" and ok["provider_ref"] == "req-ok" and ok["sent_at"]
    assert bad["status"] == "failed" and "invalid template name" in bad["error"]
    assert flaky["status"] == "queued" and "503" in flaky["error"]
    assert flaky["next_attempt_at"] == clock.now + timedelta(seconds=5)
    # the flaky one is retried with backoff (5 s, then 10 s), never early, until it gives up
    for backoff in (5.0, 10.0):
        clock.advance(backoff - 0.001)
        assert await d.run_once() == 0, "retried before its backoff had passed"
        clock.advance(0.001)
        assert await d.run_once() == 1
    flaky = await status_of(db, "CAflaky")
    assert flaky["status"] == "failed" and flaky["attempts"] == 3
    assert flaky["error"].startswith("gave up after 3 attempts")
    assert sum(1 for m in provider.sent if m.variables[0] == "flaky") == 3


async def test_an_ambiguous_send_is_never_resent_without_a_confirm_window(db: Database) -> None:
    await insert(db, new("CA1"))
    provider = ScriptedProvider(SendResult(AMBIGUOUS, reason="read timeout after 10 s"))
    clock = Clock()
    d = dispatcher(db, provider, confirm_window_s=0, clock=clock)
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "unknown" and "read timeout" in row["error"]
    assert row["next_attempt_at"] is None
    clock.advance(7 * 24 * 3600)  # however long it waits
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
    clock = Clock()
    d = dispatcher(db, provider, confirm_window_s=60, clock=clock)
    await d.drain()
    assert (await status_of(db, "CA1"))["status"] == "unknown"
    # the provider's report has its request id, which we never learnt: matched by number+template
    report = Report("req-77", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "updated"
    row = await status_of(db, "CA1")
    assert row["status"] == "sent" and row["provider_ref"] == "req-77" and row["error"] is None
    clock.advance(61)
    await d.sweep()
    await d.drain()
    assert len(provider.sent) == 1  # the window passed, but the report had resolved it


async def test_an_ambiguous_send_with_no_report_in_the_window_is_sent_again(db: Database) -> None:
    await insert(db, new("CA1"))
    provider = ScriptedProvider(SendResult(AMBIGUOUS, reason="read timeout"))
    clock = Clock()
    d = dispatcher(db, provider, confirm_window_s=60, clock=clock)
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "unknown" and row["next_attempt_at"] == clock.now + timedelta(
        seconds=60
    )
    clock.advance(59.999)
    assert await requeue_unconfirmed(db, now=clock()) == [], "resent before the window passed"
    clock.advance(0.001)
    assert await requeue_unconfirmed(db, now=clock()) == [row["id"]]
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "sent" and len(provider.sent) == 2


async def test_a_send_abandoned_mid_flight_becomes_unknown(db: Database) -> None:
    await insert(db, new("CA1"))
    clock = Clock()
    (c,) = await claim_due(db, worker_id="dead", lease_s=30, limit=1, now=clock.now)
    provider = ScriptedProvider()
    d = dispatcher(db, provider, confirm_window_s=0, clock=clock)  # another worker, alive
    clock.advance(29.999)
    await d.sweep()
    await d.drain()
    assert (await status_of(db, "CA1"))["status"] == "sending", "taken before the lease ran out"
    clock.advance(0.002)
    await d.sweep()
    await d.drain()
    row = await status_of(db, "CA1")
    assert row["status"] == "unknown" and "stopped while sending" in row["error"]
    clock.advance(7 * 24 * 3600)  # and never sent again blindly, however long it waits
    await d.sweep()
    await d.drain()
    assert provider.sent == []
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


class AnswersOnceBothAreInFlight(ScriptedProvider):
    """Holds every send until two are in flight at once: sent one after the other, the first
    would never be answered."""

    def __init__(self) -> None:
        super().__init__()
        self.both = asyncio.Event()

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append(message)
        if len(self.sent) == 2:
            self.both.set()
        await self.both.wait()
        return SendResult(ACCEPTED, provider_ref=f"req-{message.notification_id}")


async def test_customer_and_owner_messages_go_out_in_parallel(db: Database) -> None:
    await insert(db, new("CA1", to="owner"), new("CA1", to="customer", template="order_ok"))
    provider = AnswersOnceBothAreInFlight()
    try:
        async with asyncio.timeout(10):  # only reached when the sends go one at a time
            await dispatcher(db, provider).drain()
    except TimeoutError:
        pytest.fail(f"{len(provider.sent)} of 2 sends started: they do not go out in parallel")
    rows = await list_notifications(db, call_sid="CA1")
    assert sorted(r["status"] for r in rows) == ["sent", "sent"] and len(provider.sent) == 2


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
    clock = Clock()
    d = dispatcher(db, provider, confirm_window_s=60, clock=clock)
    await d.drain()
    report = Report("req-x", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "ambiguous_match"
    clock.advance(61)  # the window has passed for both
    assert await requeue_unconfirmed(db, now=clock()) == []
    await d.sweep()
    await d.drain()
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
    now = utcnow()
    await claim_due(db, worker_id="dead", lease_s=30, limit=2, now=now)
    report = Report("req-x", "sent", recipient="919800000001", template_name="new_order")
    assert await apply_report(db, report) == "ambiguous_match"
    now += timedelta(seconds=31)  # the leases expire
    assert len(await expire_abandoned(db, confirm_window_s=60, now=now)) == 2
    now += timedelta(seconds=61)  # and the confirm window passes
    assert await requeue_unconfirmed(db, now=now) == []
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


async def test_a_report_racing_the_answer_of_an_identical_message_is_not_misplaced(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, read committed: CA2's own answer commits while the report on CA2 is being
    matched. The report must not land on CA1, an identical message the provider never took
    (seen in the SIGKILL test: CA1 ended `sent` with nothing at the provider)."""
    import receptionist.store.notifications as store

    db = pg_db
    await insert(db, new("CA1"), new("CA2"))
    claimed = {c.call_sid: c for c in await claim_due(db, worker_id="w", lease_s=30, limit=2)}
    unknown = {"status": "unknown", "next_attempt_at": utcnow() + timedelta(seconds=60)}
    assert await finish_send(db, claimed["CA1"].id, worker_id="w", values=unknown)
    real_apply = store._apply

    class AnswerLandsAfterTheFirstLook:
        def __init__(self, conn: Any) -> None:
            self.conn, self.calls = conn, 0

        async def execute(self, *args: Any, **kw: Any) -> Any:
            result = await self.conn.execute(*args, **kw)
            self.calls += 1
            if self.calls == 1:  # committed from another connection, as the worker would
                values = {"status": "sent", "provider_ref": "req-2"}
                assert await finish_send(db, claimed["CA2"].id, worker_id="w", values=values)
            return result

    async def apply(
        conn: Any, report: Report, match_window_s: float, events: Any
    ) -> tuple[str, int | None]:
        return await real_apply(AnswerLandsAfterTheFirstLook(conn), report, match_window_s, events)

    monkeypatch.setattr(store, "_apply", apply)
    report = Report("req-2", "sent", recipient="919800000001", template_name="new_order")
    await apply_report(db, report)
    assert (await status_of(db, "CA1"))["status"] == "unknown"
    assert (await status_of(db, "CA2"))["provider_ref"] == "req-2"
