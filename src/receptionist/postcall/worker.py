"""A pipeline worker: claims calls with work due, runs their next step, repeats.

Runs inside `receptionist serve` (woken the moment a call is saved, so the owner hears about an
order seconds after hang-up) or standalone as `receptionist worker`, several at once against the
same database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from receptionist import logctx, loops, tracing
from receptionist.callbacks import aclose_callbacks, dial_due
from receptionist.gcal.sync import CalendarSync
from receptionist.hooks.deliverer import WebhookDeliverer
from receptionist.notify import digest
from receptionist.notify.dispatcher import Dispatcher
from receptionist.observe import metrics
from receptionist.postcall.pipeline import PENDING_STAGES, PipelineDeps, StepError, run_step
from receptionist.recordings.uploader import RecordingUploader
from receptionist.store.backlog import pipeline_backlog
from receptionist.store.jobs import Claim, claim, retry_later
from receptionist.store.schema import Stage, utcnow

log = logging.getLogger("receptionist.worker")

#: How often a running worker counts the backlog for its gauge (one aggregate query).
BACKLOG_REFRESH_S = 5.0
#: How often it looks for scheduled callbacks now due (callbacks.dial_due).
CALLBACKS_DUE_EVERY_S = 30.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        deps: PipelineDeps,
        *,
        worker_id: str | None = None,
        lease_s: float = 60.0,
        max_attempts: int = 5,
        backoff_base_s: float = 5.0,
        poll_s: float = 1.0,
        batch: int = 4,
        dispatcher: Dispatcher | None = None,
        clock: Callable[[], datetime] = utcnow,
        usd_inr: Decimal = Decimal("84"),
        webhooks: WebhookDeliverer | None = None,
        recordings: RecordingUploader | None = None,
        calendar: CalendarSync | None = None,
    ) -> None:
        self.deps = deps
        self.worker_id = worker_id or new_worker_id()
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.poll_s = poll_s
        self.batch = batch
        self.dispatcher = dispatcher  # sends the messages the pipeline queues
        self.usd_inr = usd_inr  # the daily digest shows costs in rupees
        self.webhooks = webhooks  # posts the business's webhook events the pipeline writes
        self.recordings = recordings  # stores this machine's call recordings, and retention
        self.calendar = calendar  # bookings out to the owners' Google Calendars
        # "now" when deciding which work is due: tests set it to make a retry due at once,
        # instead of sleeping through the backoff
        self.clock = clock
        self.wake = asyncio.Event()
        self.steps_done = 0
        self.steps_failed = 0
        self._backlog_at = -BACKLOG_REFRESH_S  # monotonic time of the last count

    async def run_once(self) -> int:
        """Claim a batch and carry its calls through their due steps, side by side; returns the
        steps run.

        Side by side, not one after another: every claimed call is leased to this worker, so
        a call waiting behind a slow analysis could be taken by no idle worker either, and once
        its lease ran out while it waited another worker took it and both asked the model."""
        claims = await claim(
            self.deps.db,
            worker_id=self.worker_id,
            stages=PENDING_STAGES,
            lease_s=self.lease_s,
            limit=self.batch,
            now=self.clock(),
        )
        carried = await asyncio.gather(
            *(self._carry(dataclasses.replace(c, hold_s=self.lease_s)) for c in claims),
            return_exceptions=True,  # each call's carry ends on its own; a failure is raised after
        )
        for outcome in carried:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(n for n in carried if isinstance(n, int))

    async def _carry(self, c: Claim) -> int:
        """Run the call's steps one after another while it holds the lease (no new claim per
        step: the owner's messages go out right after the analysis). Returns the steps run."""
        # each carry is a task of its own (gather): the fields name this call on every line
        logctx.bind(call_sid=c.call_sid, tenant=c.tenant, job="pipeline")
        steps = 0
        while True:
            stage = await self._step(c)
            steps += 1
            if stage == c.stage or stage not in PENDING_STAGES:
                return steps  # waiting (deferred, retry later), lease lost, done or failed
            c = dataclasses.replace(c, stage=stage, attempts=0)

    async def _step(self, c: Claim) -> str:
        with logctx.bound(stage=c.stage):
            return await self._step_in_context(c)

    async def _step_in_context(self, c: Claim) -> str:
        started = time.perf_counter()
        try:
            with tracing.pipeline_step(c.call_sid, c.tenant, c.stage) as span:
                stage = await run_step(self.deps, c, worker_id=self.worker_id)
                if span is not None:
                    span.set_attribute("pipeline.next_stage", stage or "lease_lost")
        except Exception as exc:  # every failure is recorded on the row, never lost
            retryable = exc.retryable if isinstance(exc, StepError) else True
            reason = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
            stage = await retry_later(
                self.deps.db,
                c,
                worker_id=self.worker_id,
                error=reason,
                max_attempts=self.max_attempts,
                base_s=self.backoff_base_s,
                retryable=retryable,
            )
            self.steps_failed += 1
            outcome = "failed" if stage == Stage.FAILED else "retry"
            metrics.PIPELINE_STAGE.labels(c.stage, outcome).observe(time.perf_counter() - started)
            level = logging.ERROR if stage == Stage.FAILED else logging.WARNING
            log.log(level, "call %s: %s failed (%s) -> %s", c.call_sid, c.stage, reason, stage)
            return stage
        self.steps_done += 1
        metrics.PIPELINE_STAGE.labels(c.stage, "ok").observe(time.perf_counter() - started)
        if stage == Stage.DONE:
            log.info("call %s: post-call pipeline done", c.call_sid)
        elif not stage:
            log.warning(
                "call %s: lease lost during %s; another worker owns it", c.call_sid, c.stage
            )
        return stage

    async def drain(self) -> int:
        """Run until nothing is due (tests, `receptionist worker --once`), messages, this
        machine's recordings and the calendar sync included; returns the work done."""
        total = 0
        while True:
            n = await self.run_once()
            if self.dispatcher is not None:
                n += await self.dispatcher.run_once()
            if self.recordings is not None:
                n += await self.recordings.run_once()
            if self.calendar is not None:
                n += await self.calendar.run_once()
            n += await self.dial_due_callbacks()
            if not n:
                return total
            total += n

    async def run(self, stop: asyncio.Event) -> None:
        """The pipeline loop, and beside it the message dispatcher with the daily digests and
        the webhook deliverer, until `stop` is set."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._run_pipeline(stop))
            if self.dispatcher is not None:
                tg.create_task(self.dispatcher.run(stop))
                tg.create_task(loops.every(digest.CHECK_EVERY_S, stop, self.queue_digests))
            if self.webhooks is not None:
                tg.create_task(self.webhooks.run(stop))
            if self.recordings is not None:
                tg.create_task(self.recordings.run(stop))
            if self.calendar is not None:
                tg.create_task(self.calendar.run(stop))
            if self.deps.callbacks is not None:
                tg.create_task(loops.every(CALLBACKS_DUE_EVERY_S, stop, self.dial_due_callbacks))

    async def dial_due_callbacks(self) -> int:
        """The rules' callbacks scheduled for an opening that has come (callbacks.py)."""
        if self.deps.callbacks is None:
            return 0
        try:
            return len(await dial_due(self.deps.callbacks))
        except Exception as exc:  # database down: the next round tries again
            log.error("worker %s: scheduled callbacks not dialled (%s)", self.worker_id, exc)
            return 0

    async def queue_digests(self) -> int:
        """The owners' daily digests now due (notify/digest.py); the dispatcher sends them."""
        actions = self.deps.actions
        if self.dispatcher is None or actions is None:
            return 0
        try:
            added = await digest.due_digests(
                self.deps.db,
                self.deps.tenants,
                self.clock(),
                provider=actions.provider,
                usd_inr=self.usd_inr,
            )
        except Exception as exc:  # database down: the next check tries again
            log.error("worker %s: daily digests not checked (%s)", self.worker_id, exc)
            return 0
        if added:
            self.dispatcher.wake.set()
        return added

    async def aclose(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.provider.aclose()
        if self.webhooks is not None:
            await self.webhooks.aclose()
        await aclose_callbacks(self.deps.callbacks)
        if self.deps.exotel is not None:
            await self.deps.exotel.http.aclose()

    async def _run_pipeline(self, stop: asyncio.Event) -> None:
        log.info("pipeline worker %s started", self.worker_id)

        async def work() -> int:
            await self.refresh_backlog()
            return await self.run_once()

        def failed(exc: Exception) -> None:  # database down: stay alive, back off, say so
            log.error("worker %s: cannot claim work (%s); retrying", self.worker_id, exc)

        await loops.poll(work, stop=stop, wake=self.wake, poll_s=self.poll_s, failed=failed)
        log.info("pipeline worker %s stopped", self.worker_id)

    async def refresh_backlog(self, *, force: bool = False) -> None:
        """Count the pipeline's backlog into its gauge, every BACKLOG_REFRESH_S at most."""
        if not force and time.monotonic() - self._backlog_at < BACKLOG_REFRESH_S:
            return
        self._backlog_at = time.monotonic()
        backlog = await pipeline_backlog(self.deps.db, PENDING_STAGES, self.clock())
        metrics.PIPELINE_BACKLOG.labels("due").set(backlog.due)
        metrics.PIPELINE_BACKLOG.labels("claimed").set(backlog.claimed)
