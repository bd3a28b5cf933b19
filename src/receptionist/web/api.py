"""The REST API under `/api/v1` (FastAPI: OpenAPI at `/openapi.json`).

Every route depends on `scope`, which turns `Authorization: Bearer <key>` into a `Scope` (or a
401), and answers through web/queries.py, the functions the dashboard uses too. Errors are JSON
`{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from receptionist.store.api_keys import KeyOwner, check_key
from receptionist.web import bookings, figures, queries, recordings, tenant_edit, webhooks
from receptionist.web.call_list import CallFilters, Sort
from receptionist.web.deps import (
    DEFAULT_PAGE,
    MAX_PAGE,
    WebDeps,
    WebError,
    is_db_down,
    scope_for,
    unexpected_text,
)
from receptionist.web.models import (
    Booking,
    CalendarFeed,
    CalendarSyncProblem,
    CallbackDone,
    CallbackRequest,
    CallDetail,
    CallSummary,
    Done,
    ErrorBody,
    Notification,
    Page,
    Stats,
    Tenant,
    TenantEdit,
    TenantFiles,
    TenantSaved,
    TenantVersion,
    WebhookDelivery,
)
from receptionist.web.scope import Scope


def _error(
    status: int,
    code: str,
    message: str,
    problems: list[dict[str, Any]] | None = None,
    opens_at: datetime | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if problems is not None:
        error["problems"] = problems
    if opens_at is not None:
        error["opens_at"] = opens_at.isoformat()
    return JSONResponse({"error": error}, status_code=status)


def _deps(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.api
    return deps


async def scope(
    request: Request,
    deps: Annotated[WebDeps, Depends(_deps)],
    tenant: Annotated[
        str | None, Query(description="Admin keys: the tenant to look at (default: all).")
    ] = None,
) -> Scope:
    """The one gate: a valid key, and the data it may see."""
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    owner: KeyOwner | None = None
    if scheme.lower() == "bearer" and presented:
        owner = await check_key(deps.db, presented.strip())
    if owner is None:
        raise WebError(401, "unauthorized", "a valid API key is required (Authorization: Bearer)")
    return scope_for(deps, owner, tenant)


ScopeDep = Annotated[Scope, Depends(scope)]
DepsDep = Annotated[WebDeps, Depends(_deps)]


def call_filters(
    date_from: Annotated[
        date | None, Query(alias="from", description="First day (YYYY-MM-DD, tenant's time zone)")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    call_type: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    caller: Annotated[
        str | None,
        Query(max_length=32, description="Digits the caller's number ends with, or the number"),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Words (or their starts) in the transcript or summary"),
    ] = None,
) -> CallFilters:
    return CallFilters(date_from, date_to, call_type, status, caller, q)


FiltersDep = Annotated[CallFilters, Depends(call_filters)]
SortDep = Annotated[Sort, Query(description="newest (default) or oldest first (the exact reverse)")]

router = APIRouter(prefix="/api/v1", responses={401: {"model": ErrorBody}})


@router.get("/tenants", response_model=list[Tenant], summary="Tenants this key may see")
async def list_tenants(s: ScopeDep, deps: DepsDep) -> list[Tenant]:
    return queries.tenants(s, deps)


@router.get("/calls", response_model=Page[CallSummary], summary="Calls, newest or oldest first")
async def list_calls(
    s: ScopeDep,
    deps: DepsDep,
    filters: FiltersDep,
    sort: SortDep = "newest",
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the page before (same sort)")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, description=f"Page size, at most {MAX_PAGE} (larger is capped)")
    ] = DEFAULT_PAGE,
) -> Page[CallSummary]:
    return await queries.calls_page(s, deps, filters, cursor, limit, sort)


@router.get(
    "/calls.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The filtered call list as CSV (streamed)",
)
async def export_calls(
    s: ScopeDep, deps: DepsDep, filters: FiltersDep, sort: SortDep = "newest"
) -> StreamingResponse:
    return StreamingResponse(
        queries.calls_csv(s, deps, filters, sort),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.get("/stats", response_model=Stats, summary="Per day and per call type, with costs")
async def stats(
    s: ScopeDep,
    deps: DepsDep,
    date_from: Annotated[
        date | None, Query(alias="from", description="Default: 30 days ago")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Default: today")] = None,
) -> Stats:
    return await figures.stats(s, deps, date_from, date_to)


@router.get("/calls/live", response_model=list[CallSummary], summary="Calls in progress")
async def live_calls(s: ScopeDep, deps: DepsDep) -> list[CallSummary]:
    return await queries.live_calls(s, deps)


@router.get(
    "/calls/{call_sid}",
    response_model=CallDetail,
    responses={404: {"model": ErrorBody}},
    summary="One call: transcript, analysis, cost, messages, Exotel's record, events",
)
async def get_call(call_sid: str, s: ScopeDep, deps: DepsDep) -> CallDetail:
    return await queries.call_detail(s, deps, call_sid)


@router.get(
    "/calls/{call_sid}/recording",
    response_class=Response,
    responses={
        200: {"content": {"audio/ogg": {}, "audio/mpeg": {}}},
        206: {"description": "The byte range asked for (Range: bytes=a-b)"},
        404: {"model": ErrorBody},
        416: {"model": ErrorBody},
    },
    summary="The call's recording: stereo audio, caller left, agent right",
)
async def get_recording(call_sid: str, request: Request, s: ScopeDep, deps: DepsDep) -> Response:
    return await recordings.recording_response(s, deps, call_sid, request.headers.get("range"))


@router.post(
    "/calls/{call_sid}/retry",
    response_model=Done,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Run a failed call's post-call work again",
)
async def retry_call(call_sid: str, s: ScopeDep, deps: DepsDep) -> Done:
    return await queries.retry_call(s, deps, call_sid)


@router.post(
    "/calls/{call_sid}/callback",
    response_model=CallbackDone,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 502: {"model": ErrorBody}},
    summary="Have the AI call the caller back now (within hours, once per reason, rate-limited)",
    description="Outside the hours a plain request is refused (409 `callback_outside_hours`,"
    ' with `opens_at`); with the body `{"when": "next_open"}` it is scheduled for that'
    " opening instead (`status` `scheduled`, `due_at`), and dialled at once inside them.",
)
async def call_back(
    call_sid: str, s: ScopeDep, deps: DepsDep, body: CallbackRequest | None = None
) -> CallbackDone:
    when_open = body is not None and body.when == "next_open"
    return await queries.call_back(s, deps, call_sid, when_open=when_open)


@router.get("/notifications", response_model=list[Notification], summary="WhatsApp messages")
async def list_notifications(
    s: ScopeDep,
    deps: DepsDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    call_sid: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE,
) -> list[Notification]:
    return await queries.notification_list(s, deps, status, call_sid, limit)


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=Done,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Send a failed or unknown message again (after checking it did not arrive)",
)
async def resend_notification(notification_id: int, s: ScopeDep, deps: DepsDep) -> Done:
    return await queries.resend_notification(s, deps, notification_id)


@router.get(
    "/webhooks/deliveries",
    response_model=list[WebhookDelivery],
    summary="Webhook deliveries to the business's own URLs, newest first",
)
async def list_webhook_deliveries(
    s: ScopeDep,
    deps: DepsDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE,
) -> list[WebhookDelivery]:
    return await webhooks.delivery_list(s, deps, status, limit)


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    response_model=WebhookDelivery,
    responses={404: {"model": ErrorBody}},
    summary="One webhook delivery with every attempt made at it",
)
async def get_webhook_delivery(delivery_id: int, s: ScopeDep, deps: DepsDep) -> WebhookDelivery:
    return await webhooks.delivery_detail(s, deps, delivery_id)


@router.post(
    "/webhooks/deliveries/{delivery_id}/replay",
    response_model=Done,
    responses={404: {"model": ErrorBody}},
    summary="Send a webhook delivery again now (same event id)",
)
async def replay_webhook_delivery(delivery_id: int, s: ScopeDep, deps: DepsDep) -> Done:
    return await webhooks.replay(s, deps, delivery_id)


@router.get(
    "/bookings",
    response_model=list[Booking],
    summary="Slots and orders the agent held during calls, latest start first",
)
async def list_bookings(
    s: ScopeDep,
    deps: DepsDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[
        datetime | None, Query(description="Only those starting at or after (ISO 8601)")
    ] = None,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE,
) -> list[Booking]:
    return await bookings.booking_list(s, deps, status, since, limit)


@router.get(
    "/bookings/calendar-sync",
    response_model=list[CalendarSyncProblem],
    summary="Bookings whose Google Calendar sync failed, with the reason and the next attempt",
)
async def list_calendar_sync_problems(s: ScopeDep, deps: DepsDep) -> list[CalendarSyncProblem]:
    return await bookings.calendar_sync_problems(s, deps)


@router.post(
    "/bookings/calendar",
    response_model=CalendarFeed,
    responses={400: {"model": ErrorBody}},
    summary="A new secret .ics URL of the tenant's bookings (the previous one stops working)",
)
async def new_calendar_feed(request: Request, s: ScopeDep, deps: DepsDep) -> CalendarFeed:
    tenant, token = await bookings.new_feed(s, deps)
    url = str(request.base_url).rstrip("/") + bookings.feed_path(tenant, token)
    return CalendarFeed(
        url=url, message="Subscribe to this URL in your phone's calendar; keep it private."
    )


# --- tenants kept in the database (TENANTS_SOURCE=database) --------------------------------------

#: A tenant edit's body: its files are bounded by the loader (512 KB of input files, 256 KB a
#: file); this bound stops a larger body before it is read whole.
MAX_EDIT_BYTES = 1024 * 1024
_EDITS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody},
    409: {"model": ErrorBody, "description": "tenants in folders, or changed meanwhile"},
}


def _author(s: Scope) -> str:
    return f"key:{s.owner.key_id}"


@router.get(
    "/tenants/{tenant_id}/files",
    response_model=TenantFiles,
    responses=_EDITS,
    summary="A tenant's files, as the version in force",
)
async def get_tenant_files(tenant_id: str, s: ScopeDep, deps: DepsDep) -> TenantFiles:
    return await tenant_edit.files_of(s, deps, tenant_id)


async def _edit_body(request: Request) -> TenantEdit:
    """The body, read after the key was checked and the tenant found, at most MAX_EDIT_BYTES."""
    if int(request.headers.get("content-length") or 0) > MAX_EDIT_BYTES:
        raise WebError(413, "too_large", f"a tenant edit is at most {MAX_EDIT_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_EDIT_BYTES:
            raise WebError(413, "too_large", f"a tenant edit is at most {MAX_EDIT_BYTES} bytes")
    try:
        return TenantEdit.model_validate_json(bytes(raw))
    except ValidationError as exc:  # answered like any other bad request (bad_request below)
        raise RequestValidationError(exc.errors()) from None


@router.put(
    "/tenants/{tenant_id}/files",
    response_model=TenantSaved,
    responses={**_EDITS, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TenantEdit.model_json_schema()}},
        }
    },
    summary="Save a tenant's files as its newest version (checked like `tenants validate`)",
)
async def put_tenant_files(
    tenant_id: str, request: Request, s: ScopeDep, deps: DepsDep
) -> TenantSaved:
    tenant_edit.reach(s, tenant_id)
    edit = await _edit_body(request)
    return await tenant_edit.save(s, deps, tenant_id, edit, author=_author(s))


@router.get(
    "/tenants/{tenant_id}/versions",
    response_model=list[TenantVersion],
    responses=_EDITS,
    summary="A tenant's saved versions, newest first",
)
async def get_tenant_versions(tenant_id: str, s: ScopeDep, deps: DepsDep) -> list[TenantVersion]:
    return await tenant_edit.versions_of(s, deps, tenant_id)


@router.post(
    "/tenants/{tenant_id}/versions/{version}/restore",
    response_model=TenantSaved,
    responses={**_EDITS, 422: {"model": ErrorBody}},
    summary="Put an earlier version back in force (saved again as the newest)",
)
async def restore_tenant_version(
    tenant_id: str, version: int, s: ScopeDep, deps: DepsDep
) -> TenantSaved:
    return await tenant_edit.restore(s, deps, tenant_id, version, author=_author(s))


# --- the app ------------------------------------------------------------------------------------


def create_api(deps: WebDeps) -> FastAPI:
    """The API as an ASGI app of its own (mounted at the root of the server's app)."""
    api = FastAPI(
        title="Receptionist API",
        version="1",
        description="Calls, analysis, costs and WhatsApp messages of the tenants a key may see.",
        docs_url=None,  # the stock page loads its scripts from a CDN; ours (below) is offline
        redoc_url=None,
    )
    api.state.api = deps
    api.include_router(router)

    @api.get(
        "/calendar/{tenant_id}/{token}.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, 404: {"model": ErrorBody}},
        summary="A tenant's bookings as iCalendar (the URL's secret token is the credential)",
    )
    async def calendar(
        tenant_id: Annotated[str, Path(max_length=63)],
        token: Annotated[str, Path(max_length=100)],
    ) -> Response:
        body = await bookings.calendar_ics(deps, tenant_id, token)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )

    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(api.openapi()))

    @api.exception_handler(WebError)
    async def api_error(request: Request, exc: WebError) -> JSONResponse:
        response = _error(exc.status, exc.code, exc.message, exc.problems, exc.opens_at)
        response.headers.update(exc.headers or {})
        return response

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return _error(400, "bad_request", f"{where}: {first.get('msg', 'invalid')}")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(503 if is_db_down(exc) else 500, "unavailable", unexpected_text(exc))

    return api


def docs_page(spec: dict[str, Any]) -> str:
    """The API's reference as one plain HTML page, made from its OpenAPI document on the server
    (the stock Swagger page fetches its scripts from a CDN, which an offline install cannot)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{e(spec['info']['title'])}</title>"
        "<style>body{font:16px/1.45 system-ui,sans-serif;max-width:52rem;margin:auto;padding:1rem}"
        # a route's path has no spaces: it may break anywhere, or a phone scrolls sideways
        "code{background:#f3f3f3;padding:0 .2em;overflow-wrap:anywhere}"
        "section{border-top:1px solid #ddd;padding:.5rem 0}"
        "td{padding:0 .6rem .2rem 0;vertical-align:top}</style>",
        f"<h1>{e(spec['info']['title'])}</h1><p>{e(spec['info'].get('description', ''))}</p>",
        "<p>Every request carries <code>Authorization: Bearer &lt;key&gt;</code> (made with "
        "<code>receptionist keys create</code>). Errors are "
        '<code>{"error": {"code": ..., "message": ...}}</code>. The machine-readable document '
        "is <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            parts.append(
                f"<section><h2><code>{e(method.upper())} {e(path)}</code></h2>"
                f"<p>{e(op.get('summary', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                parts.append("<table>")
                for prm in params:
                    kind = prm.get("schema", {}).get("type") or "value"
                    need = "required" if prm.get("required") else "optional"
                    parts.append(
                        f"<tr><td><code>{e(prm['name'])}</code></td><td>{e(prm['in'])}, "
                        f"{e(str(kind))}, {need}</td><td>{e(prm.get('description', ''))}</td></tr>"
                    )
                parts.append("</table>")
            codes = ", ".join(e(code) for code in op.get("responses", {}))
            parts.append(f"<p>Answers: {codes}</p></section>")
    return "".join(parts)
