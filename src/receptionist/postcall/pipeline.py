"""The post-call pipeline: after hang-up each call moves through its stages, one idempotent,
committed step at a time.

    transcript_saved ─analyse─▶ analysed ─decide messages─▶ messages_queued ─cost─▶
        exotel_details ─fetch Exotel's record (waits, with backoff, until final)─▶ done
    any step failing max_attempts times, or not retryable ──▶ failed (last_error kept)

Exotel fills a call's duration, price and end time minutes after hang-up, so its step comes
last: the analysis, the messages and the costs never wait for it. The messages are decided (and
written as `notifications` rows) in one transaction with the stage change; the dispatcher sends
them on its own (notify/dispatcher.py). Costing comes after them so the tokens spent writing
messages are costed too.

A step's own writes and the stage change commit in one transaction where they can (analysis), or
the step is idempotent on its own (costing fills only rows not yet costed), so a worker killed at
any instant leaves each call either before or after a step, never half-way, and a re-run writes
nothing twice. Rejected calls (never answered) go straight to `done`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from receptionist.callbacks import (
    CallbackDeps,
    CallbackRefused,
    Scheduled,
    follow_up,
    rule_reason,
    schedule_callback,
)
from receptionist.gemini_rest import AnalyzerError
from receptionist.hooks.events import call_events
from receptionist.notify.actions import ActionDeps, decide_messages
from receptionist.observe import metrics
from receptionist.postcall.analyzers.gemini import AnalysisInvalid
from receptionist.postcall.analyzers.schema import Analysis, validate_details
from receptionist.postcall.costs import CallCost, cost_call
from receptionist.postcall.pricing import PricingTable, UnknownModelPrice
from receptionist.store.calls import get_call, record_call_event, upsert_token_usage
from receptionist.store.db import Database
from receptionist.store.exotel_details import upsert_exotel_details
from receptionist.store.handoffs import record_handoff_leg
from receptionist.store.jobs import Claim, advance, defer
from receptionist.store.notifications import insert_notifications
from receptionist.store.schema import Stage, utcnow
from receptionist.store.search import search_document
from receptionist.store.webhook_deliveries import insert_deliveries
from receptionist.stored_tenants import StoredTenants
from receptionist.telephony.exotel_api import ExotelApiConfig, ExotelApiError, fetch_call_details
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantError, Tenants
from receptionist.usage import TokenUsage

log = logging.getLogger("receptionist.pipeline")

NEXT_STAGE = {
    Stage.TRANSCRIPT_SAVED: Stage.ANALYSED,
    Stage.ANALYSED: Stage.MESSAGES_QUEUED,
    Stage.MESSAGES_QUEUED: Stage.EXOTEL_DETAILS,
    Stage.EXOTEL_DETAILS: Stage.DONE,
}
PENDING_STAGES = tuple(NEXT_STAGE)

# An analyzer returns the analysis and the tokens it spent (none for the offline analyzer).
Analyzer = Callable[
    [Tenant, list[dict[str, Any]], datetime], Awaitable[tuple[Analysis, list[TokenUsage]]]
]


class StepError(Exception):
    """A step could not be done; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class ExotelDeps:
    config: ExotelApiConfig
    http: httpx.AsyncClient
    deadline_s: float = 900.0
    first_delay_s: float = 15.0
    max_delay_s: float = 120.0


@dataclass
class PipelineDeps:
    db: Database
    tenants: Tenants
    pricing: PricingTable
    analyzer: Analyzer
    exotel: ExotelDeps | None = None  # None: no Exotel account configured, the step is skipped
    actions: ActionDeps | None = None  # None: no messages are decided (tests of other steps)
    on_messages_queued: Callable[[], None] | None = None  # wakes the dispatcher
    callbacks: CallbackDeps | None = None  # None: the call-type rule `callback = true` is off


async def run_step(deps: PipelineDeps, claim: Claim, *, worker_id: str) -> str:
    """Do the claimed call's next step; returns its new stage ('' if the lease was lost)."""
    row = await get_call(deps.db, claim.call_sid)
    if row is None:
        raise StepError("call row vanished", retryable=False)
    if claim.stage == Stage.TRANSCRIPT_SAVED:
        if row["status"] == "rejected":
            return await _advance(deps, claim, worker_id, Stage.DONE, {})
        analysis, usage, tenant = await _analyse(deps, row)
        values = {
            "call_type": analysis.call_type,
            "summary": analysis.summary,
            "critical_call_details": {**analysis.details, "_analyzer": analysis.analyzer},
            "search_text": search_document(row["transcript"], analysis.summary, analysis.call_type),
        }
        # the analysis, its tokens and the business's webhook events: one commit
        events = call_events(tenant, {**row, **values}, ("call.ended", "call.analyzed"))
        async with deps.db.begin() as conn:
            if usage:
                await upsert_token_usage(conn, claim.call_sid, row["tenant"], usage)
            await insert_deliveries(conn, deps.db.dialect, events)
            ok = await advance(
                conn, claim, worker_id=worker_id, to_stage=Stage.ANALYSED, values=values
            )
        return Stage.ANALYSED if ok else ""
    if claim.stage == Stage.ANALYSED:
        stage = await _decide_messages(deps, claim, worker_id, row)
        if stage:
            await _rule_callback(deps, row)
        return stage
    if claim.stage == Stage.MESSAGES_QUEUED:
        try:
            cost = await cost_call(deps.db, claim.call_sid, deps.pricing)
        except UnknownModelPrice as exc:
            raise StepError(str(exc), retryable=False) from exc
        _count_cost(deps, row["tenant"], cost)
        return await _advance(deps, claim, worker_id, Stage.EXOTEL_DETAILS, {})
    if claim.stage == Stage.EXOTEL_DETAILS:
        return await _exotel_details(deps, claim, worker_id, row)
    raise StepError(f"no step for stage {claim.stage!r}", retryable=False)


def _count_cost(deps: PipelineDeps, tenant_id: str | None, cost: CallCost) -> None:
    """The cost this step wrote (rows costed before, by an earlier try, are not added again),
    by tenant: a tenant of the tenant files, or `unknown`."""
    new = sum((line.cost for line in cost.lines if line.newly_costed), Decimal(0))
    if not new:
        return
    known = bool(tenant_id) and tenant_id in deps.tenants.ids()
    metrics.COST_USD.labels(tenant_id if known else "unknown").inc(float(new))


async def _advance(
    deps: PipelineDeps, claim: Claim, worker_id: str, to_stage: str, values: dict[str, Any]
) -> str:
    async with deps.db.begin() as conn:
        ok = await advance(conn, claim, worker_id=worker_id, to_stage=to_stage, values=values)
    return to_stage if ok else ""


async def _decide_messages(
    deps: PipelineDeps, claim: Claim, worker_id: str, row: dict[str, Any]
) -> str:
    if deps.actions is None or row["status"] == "rejected":
        return await _advance(deps, claim, worker_id, Stage.MESSAGES_QUEUED, {})
    tenant = await _tenant_of_call(deps, row)
    messages, usage = await decide_messages(tenant, row, deps.actions)
    async with deps.db.begin() as conn:  # the messages and the stage: one commit
        await insert_notifications(conn, deps.db.dialect, messages)
        if usage:
            await upsert_token_usage(conn, claim.call_sid, row["tenant"], usage)
        ok = await advance(conn, claim, worker_id=worker_id, to_stage=Stage.MESSAGES_QUEUED)
    if ok and deps.on_messages_queued is not None and messages:
        deps.on_messages_queued()
    return Stage.MESSAGES_QUEUED if ok else ""


async def _rule_callback(deps: PipelineDeps, row: dict[str, Any]) -> None:
    """The tenant's per-call-type rule (`callback = true`): call the caller back when the call
    failed, dropped or ended unresolved (callbacks.py). At most once per call and reason (its
    unique key), whatever happens to this step; a refusal (outside hours, a withheld number,
    too many today) is noted on the call and not tried again; never for a call that was itself
    a callback."""
    if deps.callbacks is None or row["status"] == "rejected":
        return
    if (row.get("custom_parameters") or {}).get("callback"):
        return
    try:
        tenant = deps.tenants.get_any(row["tenant"] or "")
    except TenantError:
        return
    reason = rule_reason(tenant, row)
    if reason is None:
        return
    sid = row["call_sid"]
    try:
        # outside the hours it is scheduled for their next opening (the worker dials it then)
        placed = await schedule_callback(deps.callbacks, sid, reason)
    except CallbackRefused as exc:
        log.info("call %s: no callback (%s): %s", sid, exc.reason, exc.message)
        await record_call_event(deps.db, sid, "callback_refused", f"{reason}: {exc.reason}")
        return
    except ExotelApiError as exc:
        log.warning("call %s: callback not placed: %s", sid, exc)
        return
    if isinstance(placed, Scheduled):
        when = placed.due_at.isoformat(timespec="minutes")
        await record_call_event(deps.db, sid, "callback_scheduled", f"{reason}: {when}")
        return
    await record_call_event(deps.db, sid, "callback_placed", f"{reason}: {placed.exotel_sid}")
    follow_up(deps.callbacks, placed)


async def _tenant_of_call(deps: PipelineDeps, row: dict[str, Any]) -> Tenant:
    """The tenant as the version that answered the call had it: its call types analyse the
    call and its rules and templates send the messages, so both steps agree with each other
    (and with what the caller heard) whatever was edited since."""
    try:
        tenant = deps.tenants.get_any(row["tenant"] or "")
    except TenantError as exc:  # deleted or broken since the call: a person must look
        raise StepError(f"tenant unavailable: {exc}", retryable=False) from exc
    answered_by = row.get("tenant_version")
    if isinstance(deps.tenants, StoredTenants) and answered_by and answered_by != tenant.version:
        tenant = await deps.tenants.at_version(tenant.tenant_id, int(answered_by))
    return tenant


async def _analyse(
    deps: PipelineDeps, row: dict[str, Any]
) -> tuple[Analysis, list[TokenUsage], Tenant]:
    tenant = await _tenant_of_call(deps, row)
    try:
        analysis, usage = await deps.analyzer(tenant, row["transcript"] or [], utcnow())
    except AnalysisInvalid as exc:
        # The tokens were spent all the same, and the answers are kept for a person to read.
        if exc.usage:
            async with deps.db.begin() as conn:
                await upsert_token_usage(conn, row["call_sid"], row["tenant"], list(exc.usage))
        raw = " | ".join(a[:400] for a in exc.raw_answers)
        raise StepError(f"analysis invalid: {exc}; answers: {raw}", retryable=False) from exc
    except AnalyzerError as exc:
        raise StepError(f"analyzer: {exc}", retryable=exc.retryable) from exc
    problems = validate_details(tenant, analysis.call_type, analysis.details)
    if problems:
        raise StepError(f"analysis invalid: {'; '.join(problems)[:500]}", retryable=False)
    return analysis, usage, tenant


async def _exotel_details(
    deps: PipelineDeps, claim: Claim, worker_id: str, row: dict[str, Any]
) -> str:
    ex = deps.exotel
    if ex is None:
        return await _advance(deps, claim, worker_id, Stage.DONE, {})
    ended = row["ended_at"] or row["created_at"]
    past_deadline = (utcnow() - ended).total_seconds() >= ex.deadline_s
    delay = min(ex.max_delay_s, ex.first_delay_s * 2 ** min(claim.attempts, 10))
    handoff = row.get("handoff") or {}
    rang = handoff.get("outcome") == "ringing"  # the Connect applet rang the tenant's people
    try:
        details = await fetch_call_details(ex.http, ex.config, claim.call_sid, details=rang)
    except ExotelApiError as exc:
        if exc.kind == "not_found" and not past_deadline:  # not visible yet right after hang-up
            await defer(deps.db, claim, worker_id=worker_id, delay_s=delay, note="not found yet")
            return claim.stage
        raise StepError(f"Exotel {exc.kind}: {exc}", retryable=exc.retryable) from exc
    values = {
        "from_number": details.from_number,
        "to_number": details.to_number,
        "call_duration": details.duration_s,
        "call_status": details.status,
        "recording_url": details.recording_url,
        "price": details.price,
        "start_time": details.start_time,
        "end_time": details.end_time,
        "direction": details.direction,
        "exotel_data": details.raw,
    }
    final = details.is_final
    async with deps.db.begin() as conn:
        # What Exotel has so far is stored at once, complete or not, so it is visible.
        await upsert_exotel_details(
            conn, call_sid=claim.call_sid, tenant=row["tenant"], values=values
        )
        if final and rang and details.legs is not None:
            numbers = [n for n in str(handoff.get("outcome_detail") or "").split(", ") if n]
            await record_handoff_leg(
                conn,
                claim.call_sid,
                status=details.legs.leg2_status,
                talk_s=details.legs.conversation_s,
                number=numbers[0] if len(numbers) == 1 else None,
            )
        if final or past_deadline:
            note = (
                {}
                if final
                else {"last_error": f"Exotel record incomplete: {details.missing_fields}"}
            )
            ok = await advance(conn, claim, worker_id=worker_id, to_stage=Stage.DONE, values=note)
            return Stage.DONE if ok else ""
    missing = ", ".join(details.missing_fields) or details.status
    await defer(deps.db, claim, worker_id=worker_id, delay_s=delay, note=f"waiting for {missing}")
    return claim.stage
