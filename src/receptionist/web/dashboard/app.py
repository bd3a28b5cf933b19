"""The owner's dashboard: server-rendered pages over the same questions and the same tenant scope
as the REST API (web/queries.py, web/scope.py). Mounted at `/app` by the server.

Who is looking is settled once per request by `Dashboard.viewer` (session cookie → key → scope);
every page handler receives the result and asks web/queries.py, never the tables. Failures become
pages: a problem with the request is shown with a message, the database down is a 503 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from receptionist.store.api_keys import KeyOwner
from receptionist.store.live import LiveFeed
from receptionist.store.web_sessions import Ended, WebSession, end_session, open_session
from receptionist.tenants.repository import TenantError
from receptionist.web import queries
from receptionist.web.dashboard.guard import LoginBrake, StreamSlots, cookie_secure
from receptionist.web.dashboard.i18n import HERE, N_, Formats, default_language, environments
from receptionist.web.deps import DEFAULT_TZ, WebDeps, WebError, is_db_down, scope_for, tenant_tz
from receptionist.web.scope import Scope
from receptionist.web.test_call import TestCallBrake

log = logging.getLogger("receptionist.dashboard")

COOKIE = "rk_session"
LOGIN_COOKIE = "rk_login"  # the sign-in form's own CSRF token (double submit): no session yet

# What the owner reads for each stable error code (the API's English text is for developers).
ERROR_TEXT = {
    "bad_cursor": N_("That page link is no longer valid. Start again from the first page."),
    "bad_filter": N_("Check the filters: the caller's number needs some digits."),
    "bad_range": N_("The first day must be on or before the last day."),
    "bad_date": N_("Dates look like 2026-12-31."),
    "bad_status": N_("There is no such status."),
    "bad_sort": N_("Calls can be sorted newest or oldest first."),
    "bad_tenant": N_("There is no such business."),
    "not_found": N_("There is no such call or message here."),
    "tenant_gone": N_("This business no longer exists on this server. Ask your operator."),
    "not_failed": N_("Only a call whose processing failed can be retried."),
    "not_resendable": N_("Only a failed message, or one whose delivery is unknown, can be resent."),
    "forbidden": N_(
        "This form has expired or did not come from this dashboard. Go back, "
        "reload the page and try again."
    ),
    "bad_form": N_("This form could not be read."),
    "too_many": N_("Too many attempts. Wait a few minutes and try again."),
    "unavailable": N_("The database is not answering. Try again in a minute."),
    "internal": N_("Something went wrong on our side. It has been logged."),
    "streams": N_("Too many live views are open. Close one and reload."),
    "tenants_in_folders": N_(
        "On this server the businesses are kept in folders: edit the folder, or run the "
        "server with TENANTS_SOURCE=database to edit them here."
    ),
    "admin_only": N_("Only the operator can do this."),
    "too_large": N_("That is too much text for one save."),
    "version_conflict": N_("Someone else saved this business meanwhile. Reload and try again."),
    "invalid_tenant": N_("These settings have problems; nothing was saved."),
}
# Messages the sign-in page shows after a redirect (`?m=`); only these keys are shown.
LOGIN_TEXT = {
    "expired": N_("Your session has ended. Sign in again."),
    "signed_out": N_("You are signed out."),
    "revoked": N_("That key no longer works. Ask your operator for a new one."),
}
# Notices after an action (`?m=` on the page it returns to).
NOTICE_TEXT = {
    "retried": N_("The call will be processed again."),
    "resent": N_("The message is queued to be sent again."),
    "replayed": N_("The event will be sent again in a moment."),
    "not_failed": ERROR_TEXT["not_failed"],
    "not_resendable": ERROR_TEXT["not_resendable"],
    "saved": N_("Saved as a new version."),
    "unchanged": N_("Nothing was changed."),
    "restored": N_("That version is in force again, saved as a new version."),
    "activated": N_("The business answers calls again."),
    "deactivated": N_("The business no longer answers calls. Calls in progress finish."),
    "created": N_("The new business is saved."),
    "calling_back": N_("The caller is being called back now."),
    "callback_scheduled": N_("The AI will call the caller back when the business opens."),
    "callback_refused": N_("The caller could not be called back."),
    "callback_withheld": N_("The caller's number is withheld: it cannot be called back."),
    "callback_outside_hours": N_(
        "It is outside the business's hours: the page says when the AI can call back."
    ),
    "callback_rate_limited": N_("This number was called back enough today."),
    "callback_already": N_("This call was already called back."),
}
STATUS_LABEL = {
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
    "rejected": N_("Rejected"),
    "queued": N_("Queued"),
    "sending": N_("Sending"),
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "read": N_("Read"),
    "unknown": N_("Unknown"),
    "skipped": N_("Skipped"),
    "logged": N_("Logged only"),
    "pending": N_("Pending"),
}
SPEAKER_LABEL = {"caller": N_("Caller"), "agent": N_("Assistant")}
BOOKING_LABEL = {
    "pending": N_("Held during the call"),
    "confirmed": N_("Confirmed"),
    "expired": N_("Expired"),
    "cancelled": N_("Cancelled"),
}


class Redirect(Exception):
    def __init__(self, location: str, *, clear_cookie: bool = False) -> None:
        super().__init__(location)
        self.location, self.clear_cookie = location, clear_cookie


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of this request and what they may see."""

    token: str
    session: WebSession
    scope: Scope
    language: str
    chosen: str | None  # the tenant an admin picked (None: every tenant)

    @property
    def is_admin(self) -> bool:
        return self.session.tenant is None


async def _template_draft(tenant_id: str, description: str) -> Any:
    """A draft without Gemini (onboarding.draft_tenant with no client)."""
    from receptionist.onboarding import draft_tenant

    return await draft_tenant(tenant_id, description)


@dataclass
class Options:
    """Knobs with safe defaults; tests shorten the waits."""

    cookie_secure: bool | None = None  # None: Secure over HTTPS and on loopback (guard.py)
    brake: LoginBrake = field(default_factory=LoginBrake)
    slots: StreamSlots = field(default_factory=StreamSlots)
    session_recheck_s: float = 30.0  # a live stream re-checks its session this often
    keepalive_s: float = 15.0  # a comment line on an idle live stream
    test_calls: TestCallBrake = field(default_factory=TestCallBrake)
    test_call_s: float = 10.0  # a test call (typed lines) is cut off after this long
    drafter: Callable[[str, str], Awaitable[Any]] = field(default=_template_draft)


class Dashboard:
    def __init__(self, deps: WebDeps, live: LiveFeed | None, options: Options) -> None:
        self.deps, self.live, self.options = deps, live, options
        self.envs: dict[str, Environment] = environments()

    # --- who is looking ---------------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer:
        prefix = request.scope.get("root_path", "")
        token = request.cookies.get(COOKIE, "")
        if not token:
            raise Redirect(f"{prefix}/login?" + urlencode({"next": _here(request)}))
        got = await open_session(self.deps.db, token)
        if isinstance(got, Ended):
            why = "revoked" if got is Ended.KEY_REVOKED else "expired"
            if got is Ended.UNKNOWN:
                why = "expired"
            # back to the page asked for after signing in again, as for a first visit
            query = urlencode({"m": why, "next": _here(request)})
            raise Redirect(f"{prefix}/login?{query}", clear_cookie=True)
        owner = KeyOwner(key_id=got.key_id, tenant=got.tenant)
        chosen = None
        if owner.tenant is None:
            asked = request.query_params.get("tenant") or None
            if asked is not None and asked not in self.deps.tenants.ids():
                raise WebError(404, "bad_tenant", f"no tenant {asked[:64]!r}")
            chosen = asked
        try:
            scope = scope_for(self.deps, owner, chosen)
        except WebError as exc:
            if exc.code == "tenant_gone":  # the key is dead: so is the session
                await end_session(self.deps.db, token)
            raise
        language = got.language or self._tenant_language(scope)
        viewer = Viewer(token, got, scope, language, chosen)
        request.state.viewer = viewer
        return viewer

    def _tenant_language(self, scope: Scope) -> str:
        if scope.tenant is None:
            return "en"
        try:
            return default_language(self.deps.tenants.get_any(scope.tenant).languages)
        except TenantError:
            return "en"

    # --- rendering --------------------------------------------------------------------------

    def formats(self, language: str, scope: Scope | None) -> Formats:
        tz = tenant_tz(self.deps, scope) if scope is not None else None
        return Formats(
            language=language,
            tz=tz or ZoneInfo(DEFAULT_TZ),
            usd_inr=float(self.deps.usd_inr),
        )

    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        language: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        viewer: Viewer | None = getattr(request.state, "viewer", None)
        lang = language or (viewer.language if viewer else "en")
        prefix = request.scope.get("root_path", "")
        env = self.envs.get(lang, self.envs["en"])
        chosen = viewer.chosen if viewer else None

        def link(path: str, **params: Any) -> str:
            """A dashboard URL that keeps the admin's chosen tenant."""
            if chosen and "tenant" not in params:
                params["tenant"] = chosen
            query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
            return f"{prefix}{path}" + (f"?{query}" if query else "")

        tenants = (
            # the switcher lists every tenant: the admin's own key, nothing chosen
            queries.tenants(Scope.of(KeyOwner(viewer.session.key_id, None), None), self.deps)
            if viewer is not None and viewer.is_admin
            else []
        )
        html = env.get_template(template).render(
            request=request,
            prefix=prefix,
            viewer=viewer,
            lang=lang,
            fmt=self.formats(lang, viewer.scope if viewer else None),
            link=link,
            here=_here(request),
            csrf=viewer.session.csrf_token if viewer else "",
            all_tenants=tenants,
            status_label=STATUS_LABEL,
            speaker_label=SPEAKER_LABEL,
            booking_label=BOOKING_LABEL,
            error_text=ERROR_TEXT,
            tenant_name=self._tenant_name(viewer),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def _tenant_name(self, viewer: Viewer | None) -> str | None:
        if viewer is None or viewer.scope.tenant is None:
            return None
        try:
            return self.deps.tenants.get_any(viewer.scope.tenant).name
        except TenantError:
            return viewer.scope.tenant

    def error(
        self, request: Request, status: int, code: str, message: str | None = None
    ) -> HTMLResponse:
        text = ERROR_TEXT.get(code)
        return self.render(
            request,
            "error.html",
            status=status,
            code=code,
            status_code=status,
            message=text,
            detail=None if text else message,
        )


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


Handler = Callable[[Request, Viewer], Awaitable[Response]]


def page(
    handler: Handler, *, anonymous: str = "redirect"
) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in route: the viewer settled first; failures become pages, never tracebacks.
    `anonymous="401"` for what a script or a download reads (no redirect to a form)."""

    async def endpoint(request: Request) -> Response:
        dash: Dashboard = request.app.state.dash
        try:
            viewer = await dash.viewer(request)
            return await handler(request, viewer)
        except Redirect as r:
            if anonymous == "401":
                response: Response = Response("sign in first\n", 401, media_type="text/plain")
            else:
                response = RedirectResponse(r.location, status_code=303)
            if r.clear_cookie:
                clear_session_cookie(request, response)
            return response
        except WebError as exc:
            response = dash.error(request, exc.status, exc.code, exc.message)
            response.headers.update(exc.headers or {})
            if exc.code == "tenant_gone":
                clear_session_cookie(request, response)
            return response
        except Exception as exc:
            if is_db_down(exc):
                log.warning("dashboard: database not answering: %s", type(exc).__name__)
                return dash.error(request, 503, "unavailable")
            log.exception("dashboard: %s %s failed", request.method, request.url.path)
            return dash.error(request, 500, "internal")

    return endpoint


def set_session_cookie(request: Request, response: Response, token: str, options: Options) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=7 * 24 * 3600,  # the browser may keep it; the server decides when it ends
        path=request.scope.get("root_path", "") or "/",
        secure=cookie_secure(request, options.cookie_secure),
        httponly=True,
        samesite="lax",  # Lax: a link to a call from WhatsApp opens signed in; POSTs need CSRF
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=request.scope.get("root_path", "") or "/")


# --- headers on every answer ----------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class Hardened:
    """Pure ASGI middleware: a strict Content-Security-Policy (our scripts only, no inline
    script), no framing, no sniffing; pages are private, so nothing is cached on the way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_dashboard(
    deps: WebDeps, live: LiveFeed | None, options: Options | None = None
) -> Starlette:
    """The dashboard as an ASGI app of its own; the server mounts it at `/app`."""
    from receptionist.web.dashboard import pages, stream, tenant_pages

    dash = Dashboard(deps, live, options or Options())
    routes = [
        Route("/", page(pages.today), name="today"),
        Route("/login", pages.login_form, methods=["GET"], name="login"),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", page(pages.logout), methods=["POST"], name="logout"),
        Route("/language", page(pages.language), methods=["POST"], name="language"),
        Route("/calls", page(pages.calls), name="calls"),
        Route("/calls.csv", page(pages.calls_csv, anonymous="401"), name="calls_csv"),
        Route("/calls/{call_sid}", page(pages.call), name="call"),
        Route("/calls/{call_sid}/retry", page(pages.retry), methods=["POST"], name="retry"),
        Route(
            "/calls/{call_sid}/callback",
            page(pages.call_back),
            methods=["POST"],
            name="call_back",
        ),
        Route(
            "/calls/{call_sid}/recording",
            page(pages.recording, anonymous="401"),
            name="recording",
        ),
        Route("/messages", page(pages.messages), name="messages"),
        Route("/bookings", page(pages.bookings_page), name="bookings"),
        Route(
            "/bookings/calendar",
            page(pages.calendar_link),
            methods=["POST"],
            name="calendar_link",
        ),
        Route(
            "/messages/{notification_id:int}/resend",
            page(pages.resend),
            methods=["POST"],
            name="resend",
        ),
        Route("/webhooks", page(pages.webhook_deliveries), name="webhooks"),
        Route(
            "/webhooks/{delivery_id:int}/replay",
            page(pages.replay_webhook),
            methods=["POST"],
            name="replay_webhook",
        ),
        Route("/tenants", page(tenant_pages.tenants_list), name="tenants"),
        Route("/tenants/{tenant_id}", page(tenant_pages.settings), name="tenant"),
        Route("/tenants/{tenant_id}/save", page(tenant_pages.save), methods=["POST"]),
        Route("/tenants/{tenant_id}/active", page(tenant_pages.set_active_state), methods=["POST"]),
        Route("/tenants/{tenant_id}/versions", page(tenant_pages.versions), name="versions"),
        Route(
            "/tenants/{tenant_id}/versions/{version:int}/restore",
            page(tenant_pages.restore),
            methods=["POST"],
        ),
        Route(
            "/tenants/{tenant_id}/test-call",
            page(tenant_pages.test_call),
            methods=["GET", "POST"],
            name="test_call",
        ),
        Route("/new-tenant", page(tenant_pages.new_tenant), name="new_tenant"),
        Route("/new-tenant/draft", page(tenant_pages.draft), methods=["POST"]),
        Route("/new-tenant/accept", page(tenant_pages.accept), methods=["POST"]),
        Route("/live", page(pages.live_fragment), name="live_fragment"),
        Route("/live/events", page(stream.events, anonymous="401"), name="live_events"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.dash = dash

    async def not_found(request: Request, exc: Exception) -> Response:
        return dash.error(request, 404, "not_found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return dash.error(request, 405, "bad_form")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    app.add_middleware(Hardened)
    return app
