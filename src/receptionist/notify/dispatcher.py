"""Sends queued WhatsApp messages: claims them, sends them in parallel, records each outcome.

Runs beside the pipeline worker (same process, own loop), woken as soon as a call's messages are
queued, so a customer's confirmation and the owner's alert leave together seconds after hang-up.
See store/notifications.py for the states and why nothing is ever sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from receptionist import logctx, loops
from receptionist.notify.provider import (
    ACCEPTED,
    AMBIGUOUS,
    REJECTED,
    OutgoingMessage,
    Provider,
    SendResult,
)
from receptionist.observe import metrics
from receptionist.store.db import Database
from receptionist.store.jobs import backoff_s
from receptionist.store.notifications import (
    Claimed,
    StatusEvents,
    claim_due,
    expire_abandoned,
    finish_sends,
    requeue_unconfirmed,
)
from receptionist.store.schema import (
    NOTIFY_FAILED,
    NOTIFY_LOGGED,
    NOTIFY_QUEUED,
    NOTIFY_SENT,
    NOTIFY_UNKNOWN,
    utcnow,
)

log = logging.getLogger("receptionist.notify")


class Dispatcher:
    def __init__(
        self,
        db: Database,
        provider: Provider,
        *,
        worker_id: str,
        lease_s: float = 60.0,
        max_attempts: int = 5,
        backoff_base_s: float = 5.0,
        concurrency: int = 8,
        confirm_window_s: float = 0.0,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        events: StatusEvents | None = None,
    ) -> None:
        self.db = db
        self.events = events  # the business's message.status webhooks (hooks/events.py)
        self.provider = provider
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.concurrency = concurrency
        # With the log provider nothing left the machine, so a send cut short is safely redone.
        self.confirm_window_s = 1.0 if provider.name == "log" else confirm_window_s
        self.poll_s = poll_s
        # What "now" is for claims, backoff, leases and windows: tests pass their own to step
        # past a backoff or a window without waiting for it.
        self.clock = clock
        self.wake = asyncio.Event()
        self.outcomes: dict[str, int] = {}
        self._last_sweep = 0.0

    async def run_once(self) -> int:
        """Sweep abandoned sends now and then, claim a batch, send it; returns how many."""
        if time.monotonic() - self._last_sweep >= min(self.lease_s / 4, 15.0):
            self._last_sweep = time.monotonic()
            await self.sweep()
        claimed = await claim_due(
            self.db,
            worker_id=self.worker_id,
            lease_s=self.lease_s,
            limit=self.concurrency,
            now=self.clock(),
        )
        pending = {asyncio.create_task(self._send(c)) for c in claimed}
        while pending:
            # Record outcomes as they come, those finishing together in one transaction: one
            # commit per message was most of the cost, and waiting for the whole batch would
            # leave answered sends unrecorded behind a slow one.
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                more, pending = await asyncio.wait(pending, timeout=0.005)
                done |= more
            await self._record([t.result() for t in done])
        return len(claimed)

    async def sweep(self) -> None:
        now = self.clock()
        for nid in await expire_abandoned(self.db, confirm_window_s=self.confirm_window_s, now=now):
            log.error("message %s: worker stopped mid-send; marked unknown", nid)
        for nid in await requeue_unconfirmed(self.db, now=now):
            log.warning("message %s: no provider report within the window; queued again", nid)

    async def drain(self) -> int:
        total = 0
        while n := await self.run_once():
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        def failed(exc: Exception) -> None:  # database down: stay alive, back off, say so
            log.error("message dispatcher: cannot claim messages (%s); retrying", exc)

        await loops.poll(
            self.run_once, stop=stop, wake=self.wake, poll_s=self.poll_s, failed=failed
        )

    async def _send(self, c: Claimed) -> tuple[Claimed, SendResult, dict[str, Any]]:
        # a task of its own per message: what the provider and its HTTP client log names it
        logctx.bind(call_sid=c.call_sid, tenant=c.tenant, job="message", message_id=c.id)
        try:
            result = await self.provider.send(outgoing(c))
        except Exception as exc:  # a provider bug: the request may have gone out
            log.exception("message %s: provider %s raised", c.id, self.provider.name)
            result = SendResult(AMBIGUOUS, reason=f"{type(exc).__name__}: {exc}")
        return c, result, self._outcome_values(c, result)

    async def _record(self, outcomes: list[tuple[Claimed, SendResult, dict[str, Any]]]) -> None:
        recorded = await finish_sends(
            self.db,
            [(c.id, values) for c, _, values in outcomes],
            worker_id=self.worker_id,
            events=self.events,
        )
        for (c, result, values), ok in zip(outcomes, recorded, strict=True):
            status = values["status"]
            self.outcomes[status] = self.outcomes.get(status, 0) + 1
            metrics.NOTIFICATIONS.labels(status, metrics.bounded(self.provider.name)).inc()
            level = logging.INFO if status in (NOTIFY_SENT, NOTIFY_LOGGED) else logging.WARNING
            reason = f" ({result.reason})" if result.reason else ""
            with logctx.bound(call_sid=c.call_sid, tenant=c.tenant, job="message", message_id=c.id):
                log.log(
                    level,
                    "message %s (call %s, %s): %s%s",
                    c.id,
                    c.call_sid,
                    c.template_name,
                    status,
                    reason,
                )
                if not ok:
                    log.info("message %s: already resolved by a delivery report", c.id)

    def _outcome_values(self, c: Claimed, result: SendResult) -> dict[str, Any]:
        now = self.clock()
        if result.outcome == ACCEPTED:
            status = NOTIFY_LOGGED if self.provider.name == "log" else NOTIFY_SENT
            return {
                "status": status,
                "provider_ref": result.provider_ref,
                "sent_at": now,
                "error": None,
                "next_attempt_at": None,
            }
        reason = result.reason or result.outcome
        if result.outcome == REJECTED:
            return {"status": NOTIFY_FAILED, "error": reason, "next_attempt_at": None}
        if result.outcome == AMBIGUOUS:
            later = (
                now + timedelta(seconds=self.confirm_window_s) if self.confirm_window_s else None
            )
            note = "" if later else "; not resent: check with the provider, then resend or drop"
            return {"status": NOTIFY_UNKNOWN, "error": reason + note, "next_attempt_at": later}
        if c.attempts >= self.max_attempts:  # RETRY, out of attempts
            return {
                "status": NOTIFY_FAILED,
                "error": f"gave up after {c.attempts} attempts: {reason}",
                "next_attempt_at": None,
            }
        delay = backoff_s(c.attempts, base_s=self.backoff_base_s, cap_s=600.0)
        delay = max(delay, result.retry_after_s or 0.0)
        return {
            "status": NOTIFY_QUEUED,
            "error": f"attempt {c.attempts}: {reason}",
            "next_attempt_at": now + timedelta(seconds=delay),
        }


def outgoing(c: Claimed) -> OutgoingMessage:
    payload = c.payload
    key_env = payload.get("auth_key_env")
    return OutgoingMessage(
        notification_id=c.id,
        to=c.recipient or "",
        template=c.template_name or "",
        language=c.language or "",
        variables=tuple(payload.get("variables") or ()),
        text=str(c.details.get("text") or ""),
        integrated_number=payload.get("integrated_number"),
        namespace=payload.get("namespace"),
        auth_key=os.environ.get(key_env) if key_env else None,
    )
