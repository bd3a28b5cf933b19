"""The dashboard's pages and forms. Each handler gets the settled `Viewer` (app.py) and asks
web/queries.py; nothing here names a table."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from receptionist.store.api_keys import check_key
from receptionist.store.schema import CALL_STATUSES
from receptionist.store.web_sessions import (
    LANGUAGES,
    Ended,
    create_session,
    end_session,
    open_session,
    set_language,
)
from receptionist.web import bookings, figures, queries, recordings, webhooks
from receptionist.web.call_list import SORTS, CallFilters
from receptionist.web.dashboard.app import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_TEXT,
    NOTICE_TEXT,
    Dashboard,
    Viewer,
    clear_session_cookie,
    set_session_cookie,
)
from receptionist.web.dashboard.guard import (
    BadForm,
    cookie_secure,
    read_form,
    safe_next,
    same_token,
)
from receptionist.web.deps import MAX_PAGE, WebError, is_db_down, scope_for

PAGE_SIZE = 50
RECENT = 10
CHART_DAYS = 30
NOTIFY_STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "unknown",
                   "skipped", "logged")  # fmt: skip
RESENDABLE = ("failed", "unknown")
BOOKING_STATUSES = ("pending", "confirmed", "expired", "cancelled")


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dash
    return dash


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


async def posted(request: Request, viewer: Viewer) -> dict[str, str]:
    """The form of a signed-in POST, after its CSRF token matched the session's."""
    try:
        form = await read_form(request)
    except BadForm:  # no readable form: no token either
        raise WebError(403, "forbidden", "missing CSRF token") from None
    if not same_token(form.get("csrf"), viewer.session.csrf_token):
        raise WebError(403, "forbidden", "missing or wrong CSRF token")
    return form


def _notice(request: Request) -> str | None:
    return NOTICE_TEXT.get(request.query_params.get("m", ""))


# --- signing in and out -----------------------------------------------------------------------


def _login_page(
    request: Request,
    token: str,
    *,
    status: int = 200,
    error: str | None = None,
    message: str | None = None,
    next_url: str = "",
) -> Response:
    lang = request.query_params.get("lang", "en")
    response = _dash(request).render(
        request,
        "login.html",
        status=status,
        language=lang if lang in LANGUAGES else "en",
        login_csrf=token,
        error=error,
        message=message,
        next_url=next_url,
        insecure=not cookie_secure(request, _dash(request).options.cookie_secure),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=_prefix(request) or "/",
        secure=cookie_secure(request, _dash(request).options.cookie_secure),
        httponly=True,
        samesite="strict",
    )
    return response


async def login_form(request: Request) -> Response:
    dash = _dash(request)
    token = request.cookies.get(COOKIE)
    if token:  # already signed in: straight to the dashboard
        try:
            got = await open_session(dash.deps.db, token)
        except Exception as exc:
            if not is_db_down(exc):
                raise
            return dash.error(request, 503, "unavailable")
        if not isinstance(got, Ended):
            return RedirectResponse(_prefix(request) + "/", status_code=303)
    message = LOGIN_TEXT.get(request.query_params.get("m", ""))
    next_url = safe_next(request.query_params.get("next"), _prefix(request))
    existing = request.cookies.get(LOGIN_COOKIE, "")
    login_token = existing if 20 <= len(existing) <= 100 else secrets.token_urlsafe(32)
    return _login_page(request, login_token, message=message, next_url=next_url)


async def login(request: Request) -> Response:
    dash = _dash(request)
    brake = dash.options.brake
    client = request.client.host if request.client else "unknown"
    login_token = request.cookies.get(LOGIN_COOKIE, "")
    if brake.blocked(client):
        fresh = login_token or secrets.token_urlsafe(32)
        return _login_page(request, fresh, status=429, error="too_many")
    try:
        form = await read_form(request)
    except BadForm:
        return dash.error(request, 400, "bad_form")
    if not same_token(form.get("csrf"), login_token):
        return dash.error(request, 403, "forbidden")
    next_url = safe_next(form.get("next"), _prefix(request))
    key = form.get("key", "").strip()
    try:
        owner = await check_key(dash.deps.db, key) if key else None
        if owner is None:
            brake.failed(client)
            await asyncio.sleep(brake.delay_s)  # slows guessing; says nothing about why
            return _login_page(request, login_token, status=401, error="bad_key", next_url=next_url)
        try:
            scope_for(dash.deps, owner, None)
        except WebError as exc:
            return dash.error(request, exc.status, exc.code, exc.message)
        brake.succeeded(client)
        token, _session = await create_session(dash.deps.db, owner.key_id)
    except Exception as exc:
        if is_db_down(exc):
            return dash.error(request, 503, "unavailable")
        raise
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(request, response, token, dash.options)
    response.delete_cookie(LOGIN_COOKIE, path=_prefix(request) or "/")
    return response


async def logout(request: Request, viewer: Viewer) -> Response:
    await posted(request, viewer)
    await end_session(_dash(request).deps.db, viewer.token)
    response = RedirectResponse(_prefix(request) + "/login?m=signed_out", status_code=303)
    clear_session_cookie(request, response)
    return response


async def language(request: Request, viewer: Viewer) -> Response:
    form = await posted(request, viewer)
    chosen = form.get("lang", "")
    if chosen not in LANGUAGES:
        raise WebError(400, "bad_form", "unknown language")
    await set_language(_dash(request).deps.db, viewer.session.id, chosen)
    return RedirectResponse(safe_next(form.get("next"), _prefix(request)), status_code=303)


# --- today ------------------------------------------------------------------------------------


async def today(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    s, deps = viewer.scope, dash.deps
    summary = await figures.today(s, deps)
    stats = await figures.stats(s, deps)
    live = await queries.live_calls(s, deps)
    recent = await queries.calls_page(s, deps, CallFilters(), None, RECENT)
    fmt = dash.formats(viewer.language, s)
    chart = {  # x is the day's index; its label is written here, in the reader's language
        "labels": [fmt.day(d.day) for d in stats.days],
        "answered": [d.answered for d in stats.days],
        "missed": [d.missed for d in stats.days],
        "failed": [d.failed for d in stats.days],
    }
    return dash.render(
        request,
        "today.html",
        summary=summary,
        stats=stats,
        live=live,
        recent=recent.items,
        chart=chart,
        budget=_budget(summary),
    )


def _budget(summary: figures.TodaySummary) -> dict[str, Any]:
    """How much of the month's budget is spent, and whether the owner should worry."""
    limit = summary.budget_limit_usd or summary.budget_warn_usd
    share = (summary.month_cost_usd / limit) if limit else None
    state = "ok"
    if summary.budget_limit_usd and summary.month_cost_usd >= summary.budget_limit_usd:
        state = "over"
    elif summary.budget_warn_usd and summary.month_cost_usd >= summary.budget_warn_usd:
        state = "warn"
    return {"share": min(share, 1.0) if share is not None else None, "state": state}


async def live_fragment(request: Request, viewer: Viewer) -> Response:
    live = await queries.live_calls(viewer.scope, _dash(request).deps)
    return _dash(request).render(request, "_live.html", live=live)


# --- calls ------------------------------------------------------------------------------------


def parse_filters(params: QueryParams) -> tuple[CallFilters, str | None, str, list[str]]:
    """Filters from the query string, bounded; what cannot be used is named (by error code)
    and left out, so the page still answers."""
    problems: list[str] = []

    def day(name: str) -> date | None:
        raw = (params.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw[:10]) if len(raw) <= 10 else _bad_date()
        except ValueError:
            problems.append("bad_date")
            return None

    def text(name: str, limit: int) -> str | None:
        raw = (params.get(name) or "").strip()
        return raw[:limit] or None

    status = text("status", 32)
    if status is not None and status not in CALL_STATUSES:
        problems.append("bad_status")
        status = None
    filters = CallFilters(
        date_from=day("from"),
        date_to=day("to"),
        call_type=text("call_type", 64),
        status=status,
        caller=text("caller", 32),
        q=text("q", 200),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        problems.append("bad_range")
    cursor = text("cursor", 200)
    sort = text("sort", 16) or "newest"
    if sort not in SORTS:
        problems.append("bad_sort")
        sort = "newest"
    return filters, cursor, sort, problems


def _bad_date() -> date:
    raise ValueError("too long")


def _filter_params(filters: CallFilters, sort: str) -> dict[str, str]:
    values = {
        "sort": "" if sort == "newest" else sort,
        "from": filters.date_from.isoformat() if filters.date_from else "",
        "to": filters.date_to.isoformat() if filters.date_to else "",
        "call_type": filters.call_type or "",
        "status": filters.status or "",
        "caller": filters.caller or "",
        "q": filters.q or "",
    }
    return {k: v for k, v in values.items() if v}


def _call_types(dash: Dashboard, viewer: Viewer) -> list[str]:
    names: set[str] = set()
    for t in queries.tenants(viewer.scope, dash.deps):
        names.update(t.call_types)
    return sorted(names)


async def calls(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    filters, cursor, sort, problems = parse_filters(request.query_params)
    items: list[Any] = []
    next_cursor = None
    status = 200
    if problems:
        status = 400
    else:
        try:
            got = await queries.calls_page(
                viewer.scope, dash.deps, filters, cursor, PAGE_SIZE, sort
            )
            items, next_cursor = got.items, got.next_cursor
        except WebError as exc:
            if exc.status != 400:
                raise
            problems.append(exc.code)
            status = 400
    params = _filter_params(filters, sort)
    fragment = request.headers.get("hx-request") == "true" and request.query_params.get("fragment")
    return dash.render(
        request,
        "_call_rows.html" if fragment and not problems else "calls.html",
        status=status,
        filters=filters,
        params=params,
        items=items,
        next_cursor=next_cursor,
        problems=list(dict.fromkeys(problems)),
        call_types=_call_types(dash, viewer),
        statuses=sorted(CALL_STATUSES),
        filtered=bool(params),
        sort=sort,
    )


async def calls_csv(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    filters, _cursor, sort, problems = parse_filters(request.query_params)
    if problems:
        raise WebError(400, problems[0], "bad filters")
    body = queries.calls_csv(viewer.scope, dash.deps, filters, sort)  # a bad filter raises here
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


def response_times(transcript: list[Any]) -> list[float | None]:
    """Per turn: for an agent turn answering a caller turn, the wait in ms (else None)."""
    out: list[float | None] = []
    caller_end: float | None = None
    for turn in transcript:
        wait = None
        if turn.speaker == "caller":
            caller_end = turn.end_ms
        elif turn.speaker == "agent":
            if caller_end is not None and turn.start_ms is not None and turn.start_ms >= caller_end:
                wait = float(turn.start_ms - caller_end)
            caller_end = None
        out.append(wait)
    return out


def detail_fields(details: Any) -> list[tuple[str, str]]:
    """The analysis' extracted details as (label, text) pairs for a read-only form."""
    if not isinstance(details, dict):
        return []
    fields = []
    for name, value in list(details.items())[:100]:
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif value is None:
            text = ""
        else:
            text = str(value)
        fields.append((str(name).replace("_", " ")[:100], text[:2000]))
    return fields


def safe_url(url: str | None) -> str | None:
    """Only http(s) links become links (never `javascript:` from someone else's record)."""
    if url and url.lower().startswith(("https://", "http://")) and len(url) <= 2000:
        return url
    return None


async def call(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    sid = request.path_params["call_sid"]
    if len(sid) > 128:
        raise WebError(404, "not_found", "no such call")
    detail = await queries.call_detail(viewer.scope, dash.deps, sid)
    waits = response_times(detail.transcript)
    known = [w for w in waits if w is not None]
    return dash.render(
        request,
        "call.html",
        call=detail,
        turns=list(zip(detail.transcript, waits, strict=True)),
        wait_avg=sum(known) / len(known) if known else None,
        fields=detail_fields(detail.details),
        recording=safe_url(detail.exotel.recording_url if detail.exotel else None),
        resendable=RESENDABLE,
        notice=_notice(request),
    )


async def recording(request: Request, viewer: Viewer) -> Response:
    """The call's audio for the page's player (ranges served: the player seeks)."""
    sid = request.path_params["call_sid"]
    if len(sid) > 128:
        raise WebError(404, "not_found", "no such call")
    deps = _dash(request).deps
    return await recordings.recording_response(
        viewer.scope, deps, sid, request.headers.get("range")
    )


def _back(request: Request, form: dict[str, str], fallback: str, code: str) -> Response:
    target = safe_next(form.get("back"), _prefix(request))
    if target == _prefix(request) + "/":
        target = fallback
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}{urlencode({'m': code})}", status_code=303)


async def retry(request: Request, viewer: Viewer) -> Response:
    form = await posted(request, viewer)
    sid = request.path_params["call_sid"]
    page = f"{_prefix(request)}/calls/{sid}"
    try:
        await queries.retry_call(viewer.scope, _dash(request).deps, sid)
    except WebError as exc:
        if exc.status != 409:
            raise
        return _back(request, form, page, exc.code)
    return _back(request, form, page, "retried")


async def call_back(request: Request, viewer: Viewer) -> Response:
    form = await posted(request, viewer)
    sid = request.path_params["call_sid"]
    page = f"{_prefix(request)}/calls/{sid}"
    when_open = form.get("when") == "next_open"  # the button shown outside the hours
    try:
        done = await queries.call_back(viewer.scope, _dash(request).deps, sid, when_open=when_open)
    except WebError as exc:
        if exc.status not in (409, 502):
            raise
        code = exc.code if exc.code in NOTICE_TEXT else "callback_refused"
        return _back(request, form, page, code)
    return _back(
        request, form, page, "callback_scheduled" if done.status == "scheduled" else "calling_back"
    )


# --- messages ---------------------------------------------------------------------------------


async def messages(request: Request, viewer: Viewer) -> Response:
    dash = _dash(request)
    status = (request.query_params.get("status") or "").strip() or None
    problems = []
    if status is not None and status not in NOTIFY_STATUSES:
        problems.append("bad_status")
        status = None
    items = (
        []
        if problems
        else await queries.notification_list(viewer.scope, dash.deps, status, None, MAX_PAGE)
    )
    return dash.render(
        request,
        "messages.html",
        status=400 if problems else 200,
        items=items,
        chosen_status=status,
        statuses=NOTIFY_STATUSES,
        problems=problems,
        resendable=RESENDABLE,
        notice=_notice(request),
    )


async def calendar_link(request: Request, viewer: Viewer) -> Response:
    """A new secret .ics URL, shown on the page this once (only its hash is kept)."""
    await posted(request, viewer)
    tenant, token = await bookings.new_feed(viewer.scope, _dash(request).deps)
    base = str(request.base_url).rstrip("/")
    root = _prefix(request)
    if root and base.endswith(root):  # the feed is served at the server's root, not under /app
        base = base[: -len(root)]
    return await bookings_page(request, viewer, feed_url=base + bookings.feed_path(tenant, token))


async def bookings_page(request: Request, viewer: Viewer, feed_url: str | None = None) -> Response:
    dash = _dash(request)
    status = (request.query_params.get("status") or "").strip() or None
    problems = []
    if status is not None and status not in BOOKING_STATUSES:
        problems.append("bad_status")
        status = None
    items = [] if problems else await bookings.booking_list(viewer.scope, dash.deps, status)
    calendar = await bookings.calendar_sync_problems(viewer.scope, dash.deps)
    return dash.render(
        request,
        "bookings.html",
        calendar_problems=calendar,
        status=400 if problems else 200,
        items=items,
        chosen_status=status,
        statuses=BOOKING_STATUSES,
        problems=problems,
        feed_url=feed_url,
    )


async def resend(request: Request, viewer: Viewer) -> Response:
    form = await posted(request, viewer)
    notification_id = int(request.path_params["notification_id"])
    fallback = f"{_prefix(request)}/messages"
    try:
        await queries.resend_notification(viewer.scope, _dash(request).deps, notification_id)
    except WebError as exc:
        if exc.status != 409:
            raise
        return _back(request, form, fallback, exc.code)
    return _back(request, form, fallback, "resent")


# --- webhook deliveries -----------------------------------------------------------------------


async def webhook_deliveries(request: Request, viewer: Viewer) -> Response:
    """Each delivery of the business's webhook events with its attempts; replay one."""
    dash = _dash(request)
    status = (request.query_params.get("status") or "").strip() or None
    problems = []
    if status is not None and status not in webhooks.STATUSES:
        problems.append("bad_status")
        status = None
    items = (
        []
        if problems
        else await webhooks.deliveries_with_attempts(viewer.scope, dash.deps, status, PAGE_SIZE)
    )
    return dash.render(
        request,
        "webhooks.html",
        status=400 if problems else 200,
        items=items,
        chosen_status=status,
        statuses=webhooks.STATUSES,
        problems=problems,
        notice=_notice(request),
    )


async def replay_webhook(request: Request, viewer: Viewer) -> Response:
    """The same replay as the API's (web/webhooks.py): 404 for a delivery this viewer cannot
    see, whoever posts it."""
    form = await posted(request, viewer)
    delivery_id = int(request.path_params["delivery_id"])
    await webhooks.replay(viewer.scope, _dash(request).deps, delivery_id)
    return _back(request, form, f"{_prefix(request)}/webhooks", "replayed")
