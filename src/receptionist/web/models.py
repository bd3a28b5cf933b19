"""What the REST API returns (pydantic models: the OpenAPI document is made from them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Problem(BaseModel):
    file: str = Field(description="Path inside the tenant, e.g. tenant.toml")
    line: int | None
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: unauthorized, not_found, ...")
    message: str
    problems: list[Problem] | None = Field(
        None, description="A refused tenant edit: every problem."
    )
    opens_at: datetime | None = Field(
        None, description="A callback refused outside the hours: when they next open."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


class Tenant(BaseModel):
    tenant_id: str
    name: str
    active: bool
    languages: list[str]
    timezone: str
    call_types: list[str]
    budget_warn_usd: float | None = None
    budget_limit_usd: float | None = None


class CallSummary(BaseModel):
    call_sid: str
    tenant: str | None
    from_number: str | None
    status: str
    end_reason: str | None
    call_type: str | None
    summary: str | None
    stage: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    turns: int


class Turn(BaseModel):
    speaker: str
    text: str
    start_ms: float | None = None
    end_ms: float | None = None
    interrupted: bool = False


class Usage(BaseModel):
    model_name: str
    purpose: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    total_cost_usd: float | None
    total_cost_inr: float | None


class Notification(BaseModel):
    id: int
    call_sid: str | None
    tenant: str | None
    recipient_type: str | None
    recipient: str | None = Field(description="Digits with country code.")
    template_name: str | None
    status: str
    urgent: bool
    text: str | None
    error: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None


class Booking(BaseModel):
    id: int
    tenant: str
    reference: str = Field(description="What the caller was told, e.g. 7KQ2MX.")
    kind: str = Field(description="slot (an appointment) or order.")
    resource: str = Field(description="The staff member or chair; empty for an order.")
    starts_at: datetime | None
    ends_at: datetime | None
    status: str = Field(description="pending (the call is on), confirmed, expired or cancelled.")
    call_sid: str | None
    customer_name: str | None
    customer_phone: str | None
    details: dict[str, Any] | None
    expires_at: datetime | None
    created_at: datetime


class CalendarSyncProblem(BaseModel):
    reference: str = Field(description="The booking whose Google Calendar push failed.")
    target: str = Field(description="event (being put in the calendar) or absent (removed).")
    attempts: int
    last_error: str = Field(description="Why the last attempt failed (never a credential).")
    next_attempt_at: datetime | None
    gave_up: bool = Field(description="No more attempts will be made until the booking changes.")


class CalendarFeed(BaseModel):
    url: str = Field(description="Subscribe to it in a phone's calendar; shown once.")
    message: str


class ExotelRecord(BaseModel):
    status: str | None
    duration_s: int | None
    price: float | None
    recording_url: str | None
    start_time: datetime | None
    end_time: datetime | None
    fetched_at: datetime | None


class Recording(BaseModel):
    status: str = Field(
        description="pending (being stored), stored, failed (see error), opted_out (the caller"
        " pressed the tenant's key: nothing kept), empty, deleted (past the retention)"
    )
    url: str | None = Field(
        description="The audio (stereo: caller left, agent right), with this same key; only"
        " when stored. Byte ranges are served."
    )
    content_type: str | None
    bytes: int | None
    duration_ms: int | None
    attempts: int
    error: str | None
    created_at: datetime | None
    stored_at: datetime | None
    deleted_at: datetime | None


class CallbackItem(BaseModel):
    reason: str = Field(description="requested, failed, dropped or unresolved (once each)")
    status: str = Field(
        description="scheduled (dialled at due_at, the business's next opening), placing,"
        " placed, answered, no_answer, failed, rate_limited"
    )
    to_number: str
    due_at: datetime | None = Field(None, description="When a scheduled callback is dialled")
    exotel_sid: str | None = Field(None, description="The new call's Exotel sid, once dialled")
    error: str | None = None
    created_at: datetime


class CallDetail(CallSummary):
    to_number: str | None
    engine: str | None
    model: str | None
    error: str | None
    answered_at: datetime | None
    transcript: list[Turn]
    details: dict[str, Any] | None = Field(description="What the analysis extracted.")
    events: list[dict[str, Any]]
    stats: dict[str, Any] | None
    usage: list[Usage]
    cost_usd: float | None
    cost_inr: float | None
    notifications: list[Notification]
    exotel: ExotelRecord | None
    attempts: int
    last_error: str | None
    handoff: dict[str, Any] | None = Field(
        None,
        description="Put through to a person: who, reason, at, outcome; person_leg (from"
        " Exotel's record after the call: status, talk_s, answered_by when one number rang)"
        " (none: never)",
    )
    recording: Recording | None = Field(None, description="None: the call was not recorded")
    callbacks: list[CallbackItem] = Field(
        default_factory=list, description="The AI's calls back to this caller, oldest first"
    )
    callbacks_open_at: datetime | None = Field(
        None,
        description="When the business's callback hours next open, if they are closed now"
        " (a callback asked for before then is refused; none: open, or no [callbacks])",
    )


class DayStats(BaseModel):
    day: date = Field(description="In the tenant's time zone")
    calls: int
    answered: int = Field(description="Completed calls that heard the agent")
    missed: int = Field(description="Rejected, or the caller left before the greeting")
    failed: int
    duration_s_avg: float | None
    cost_usd: float
    cost_inr: float


class TypeStats(BaseModel):
    call_type: str | None
    calls: int
    duration_s_avg: float | None


class Latency(BaseModel):
    turns: int = Field(description="Agent answers measured (caller's end → agent's start)")
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None


class Stats(BaseModel):
    date_from: date
    date_to: date
    days: list[DayStats]
    call_types: list[TypeStats]
    totals: DayStats
    response: Latency


class WebhookAttempt(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    id: int
    event_id: str = Field(description="The receiver de-duplicates by it.")
    event_type: str
    tenant: str
    call_sid: str | None
    url: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    tried: list[WebhookAttempt] = Field(
        default_factory=list, description="Every attempt, oldest first (one delivery only)."
    )


class Done(BaseModel):
    ok: bool = True
    message: str


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: Literal["now", "next_open"] = Field(
        "now",
        description="`now`: dial now, refused outside the hours; `next_open`: dial now inside"
        " them, else schedule for their next opening.",
    )


class CallbackDone(Done):
    status: Literal["placed", "scheduled"]
    due_at: datetime | None = Field(None, description="Scheduled: when the AI will dial.")


class TenantFiles(BaseModel):
    tenant_id: str
    version: int = Field(description="The version these files are; send it back as base_version.")
    files: dict[str, str] = Field(description="Path inside the tenant -> text.")


class TenantEdit(BaseModel):
    base_version: int | None = Field(
        description="The version the change was made from (null: a new tenant, admin keys only)."
    )
    files: dict[str, str] = Field(
        max_length=64, description="Every file of the tenant (a file left out is deleted)."
    )
    note: str | None = Field(None, max_length=200, description="What changed, for the history.")


class TenantSaved(BaseModel):
    tenant_id: str
    version: int
    created: bool = Field(description="False: the files were those in force, nothing saved.")


class TenantVersion(BaseModel):
    version: int
    author: str
    note: str | None
    created_at: datetime
    in_force: bool
