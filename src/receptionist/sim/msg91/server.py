"""The MSG91 double's HTTP server (`FakeMsg91`): the bulk endpoint, faults, and delivery reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from receptionist.notify.msg91 import BULK_PATH
from receptionist.sim.double import HttpDouble
from receptionist.sim.msg91.model import (
    GARBLED,
    IST,
    SUCCESS_TEXT,
    AcceptedMessage,
    BadRequest,
    Fault,
    Gate,
    Parsed,
    RecordedRequest,
    SentReport,
    Template,
    error_response,
    msg91_error_body,
)
from receptionist.sim.msg91.validation import parse_request

log = logging.getLogger("receptionist.sim.msg91")

# ---------------------------------------------------------------- connection tricks


def _abort_connection() -> bool:
    """Close this request's TCP connection at once, without any answer.

    ASGI has no way to say "drop the connection", so this finds uvicorn's request cycle (the
    ``self`` of the ``run_asgi`` coroutine that runs this handler in the current task) and
    aborts its transport. False when that is not possible (then the caller falls back).
    """
    task = asyncio.current_task()
    coro = task.get_coro() if task is not None else None
    frame = getattr(coro, "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    transport = getattr(owner, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        return False
    transport.abort()
    return True


class _CutShort(Response):
    """Fallback drop: headers promising a body that never comes, then the connection closes."""

    def __init__(self) -> None:
        super().__init__(b"", 200, headers={"content-length": "64"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        raise ConnectionAbortedError("FakeMsg91: connection dropped on purpose")


# ---------------------------------------------------------------- the double


class FakeMsg91(HttpDouble):
    serve_options: ClassVar[dict[str, Any]] = {"lifespan": "off", "timeout_graceful_shutdown": 1}

    def __init__(
        self,
        auth_key: str = "test-authkey",
        *,
        company_id: str = "100001",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.company_id = company_id
        self.now = now
        self._first_key = auth_key
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate: Gate | None = None
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything scripted and recorded; the server keeps running (so one double
        can serve many tests). Pending automatic reports are cancelled; held requests are
        released and the hold gate removed."""
        for task in list(self._tasks):
            task.cancel()
        #: Keys accepted in the ``authkey`` header (add more for per-tenant keys).
        self.auth_keys: set[str] = {self._first_key}
        #: Seconds every answer is held back.
        self.delay_s = 0.0
        self.requests: list[RecordedRequest] = []
        self.messages: list[AcceptedMessage] = []
        self.reports: list[SentReport] = []
        #: Where delivery reports go, and our shared secret (None: no secret sent).
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.secret_in_query = False
        #: Statuses posted automatically after each accepted message, in order.
        self.auto_report: list[str] = []
        self.auto_report_delay_s = 0.0
        self._templates: dict[tuple[str, str], Template] = {}
        self._faults: list[Fault] = []
        #: Requests being held by the gate right now, in arrival order.
        self.held: list[RecordedRequest] = []
        # a request held for an earlier test must not stay held (nor be held by its gate)
        self.release()
        self._held_changed = asyncio.Condition()

    # ------------------------------------------------------------ scripting

    def approve(
        self, name: str, *, language: str = "en", variables: int = 0, namespace: str | None = None
    ) -> None:
        """Register an approved template. Once any is registered, only those can be sent."""
        self._templates[(name, language)] = Template(variables, namespace)

    def fail_next(
        self,
        status: int,
        body: bytes | str | dict[str, Any] | None = None,
        count: int = 1,
        *,
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The next ``count`` requests get HTTP ``status`` and are not taken.

        ``body`` None: an MSG91-shaped error; a dict: that JSON; str/bytes: sent as is (a str
        starting with "<" is served as text/html, like a gateway's error page)."""
        if body is None:
            raw, kind = msg91_error_body(status), "application/json"
        elif isinstance(body, dict):
            raw, kind = orjson.dumps(body), "application/json"
        else:
            raw = body.encode() if isinstance(body, str) else body
            kind = "text/html" if raw.lstrip().startswith(b"<") else "text/plain"
        fault = Fault("fail", status, raw, media_type or kind, dict(headers or {}))
        self._faults.extend([fault] * count)

    def garble_next(self, count: int = 1) -> None:
        """The next ``count`` requests are taken, then answered 200 with a body that is not
        JSON (the client cannot know the message went)."""
        self._faults.extend([Fault("garble")] * count)

    def hang_next(self, seconds: float, count: int = 1, accept: bool = True) -> None:
        """The next ``count`` requests are answered ``seconds`` late. With ``accept`` the
        message is taken first (a client that gives up cannot know it went); without, the
        double waits and then answers 503 without taking it."""
        self._faults.extend([Fault("hang", seconds=seconds, accept=accept)] * count)

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` requests are taken, then the connection is closed unanswered."""
        self._faults.extend([Fault("drop")] * count)

    def hold(self, *, after: int = 0, accept: bool = True) -> None:
        """Let the next ``after`` requests through, then hold every later one until
        :meth:`release`.

        ``accept=True``: a held request is handled (a valid message is taken and its reports
        scheduled) and only its answer waits. ``accept=False``: it waits before anything is
        taken and is answered 503 once released. See the module docstring."""
        if after < 0:
            raise ValueError("after must be >= 0")
        if self._gate is not None:
            raise RuntimeError("FakeMsg91: a hold is already set; release() it first")
        self._gate = Gate(after, accept)

    async def wait_held(self, n: int = 1, timeout_s: float = 30.0) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests are being held; returns them (a copy of
        :attr:`held`). TimeoutError after ``timeout_s`` (a test that waits for a request which
        never comes should fail, not hang)."""
        try:
            async with asyncio.timeout(timeout_s), self._held_changed:
                await self._held_changed.wait_for(lambda: len(self.held) >= n)
        except TimeoutError:
            raise TimeoutError(
                f"FakeMsg91: {len(self.held)} request(s) held, waited {timeout_s} s for {n}"
            ) from None
        return list(self.held)

    def release(self) -> None:
        """Answer every held request and remove the gate: later requests are not held."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.opened.set()
        # no longer held from this moment, even before their handlers get to run again
        self.held = []

    # ------------------------------------------------------------ assertions

    def accepted_for(self, to: str, template: str | None = None) -> int:
        """How many messages to ``to`` (of ``template``, when given) were accepted."""
        return sum(
            1 for m in self.messages if m.to == to and (template is None or m.template == template)
        )

    def messages_for(self, request_id: str) -> list[AcceptedMessage]:
        return [m for m in self.messages if m.request_id == request_id]

    # ------------------------------------------------------------ HTTP

    async def _handle(self, request: Request) -> Response:
        try:
            raw = await request.body()
        except ClientDisconnect:  # a client killed while sending: nothing arrived, no answer
            log.debug("FakeMsg91: client went away before its request body arrived")
            return Response(b"", 400)
        rec = RecordedRequest(request.method, request.url.path, request.headers.get("authkey"), raw)
        self.requests.append(rec)
        response = await self._respond(request, rec)
        if response is None:  # dropped
            rec.outcome = "dropped"
            if _abort_connection():
                await asyncio.sleep(0.01)  # let uvicorn see the disconnect before we return
                return Response(b"", 200)  # never sent: the connection is gone
            return _CutShort()
        rec.status_code = response.status_code
        return response

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), seconds)

    def _gate_for(self) -> Gate | None:
        """The gate that holds this request, if any (counts it against ``after``)."""
        gate = self._gate
        if gate is None:
            return None
        if gate.passes > 0:
            gate.passes -= 1
            return None
        return gate

    async def _held_until_released(self, gate: Gate, rec: RecordedRequest) -> None:
        if gate.opened.is_set():  # released while this request was being handled
            return
        rec.held = True
        self.held.append(rec)
        async with self._held_changed:
            self._held_changed.notify_all()
        try:
            await gate.opened.wait()
        finally:
            with contextlib.suppress(ValueError):  # gone already if released
                self.held.remove(rec)

    async def _respond(self, request: Request, rec: RecordedRequest) -> Response | None:
        await self._wait(self.delay_s)
        if request.url.path.rstrip("/") != BULK_PATH.rstrip("/"):
            rec.outcome = "refused"
            return error_response(404, f"No such endpoint: {request.url.path}")
        if request.method != "POST":
            rec.outcome = "refused"
            return error_response(405, f"Method {request.method} not allowed")
        gate = self._gate_for()
        if gate is not None and not gate.accept:
            rec.outcome = "held"
            await self._held_until_released(gate, rec)
            return error_response(503, "Service unavailable")
        response = await self._handle_bulk(rec)
        if gate is not None:
            await self._held_until_released(gate, rec)
        return response

    async def _handle_bulk(self, rec: RecordedRequest) -> Response | None:
        fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault.kind == "fail":
            rec.outcome = "failed"
            return Response(
                fault.body, fault.status, headers=dict(fault.headers), media_type=fault.media_type
            )
        if fault is not None and fault.kind == "hang" and not fault.accept:
            rec.outcome = "hung"
            await self._wait(fault.seconds)
            return error_response(503, "Service unavailable")
        if rec.auth_key is None or rec.auth_key not in self.auth_keys:
            rec.outcome = "refused"
            return error_response(401, "Authentication failure: invalid or missing authkey")
        try:
            parsed = self._check(parse_request(_parse_json(rec.body)))
        except BadRequest as exc:
            rec.outcome = "refused"
            return error_response(400, str(exc))
        request_id = uuid.uuid4().hex
        accepted = self._accept(parsed, request_id, rec.auth_key)
        rec.request_id = request_id
        rec.outcome = "accepted"
        self._schedule_reports(accepted)
        if fault is not None and fault.kind == "garble":
            rec.outcome = "garbled"
            return Response(GARBLED, 200, media_type="application/json")
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "hang":
            rec.outcome = "hung"
            await self._wait(fault.seconds)
        body = {
            "status": "success",
            "hasError": False,
            "data": SUCCESS_TEXT,
            "errors": None,
            "request_id": request_id,
        }
        return Response(orjson.dumps(body), 200, media_type="application/json")

    def _check(self, parsed: Parsed) -> Parsed:
        if not self._templates:
            return parsed
        template = self._templates.get((parsed.template, parsed.language))
        if template is None:
            languages = sorted(lang for name, lang in self._templates if name == parsed.template)
            if languages:
                raise BadRequest(
                    f"Template {parsed.template!r} is not approved in language "
                    f"{parsed.language!r} (approved: {', '.join(languages)})"
                )
            raise BadRequest(f"Template {parsed.template!r} not found or not approved")
        if template.namespace and parsed.namespace and template.namespace != parsed.namespace:
            raise BadRequest(f"Template {parsed.template!r}: wrong namespace")
        for to, variables in parsed.recipients:
            if len(variables) != template.variables:
                raise BadRequest(
                    f"Template {parsed.template!r} expects {template.variables} body "
                    f"variables, got {len(variables)} for {to}"
                )
        return parsed

    def _accept(self, parsed: Parsed, request_id: str, auth_key: str) -> list[AcceptedMessage]:
        at = self.now()
        accepted = [
            AcceptedMessage(
                request_id=request_id,
                uuid=str(uuid.uuid4()),
                to=to,
                template=parsed.template,
                language=parsed.language,
                variables=variables,
                integrated_number=parsed.integrated_number,
                namespace=parsed.namespace,
                auth_key=auth_key,
                at=at,
            )
            for to, variables in parsed.recipients
        ]
        self.messages.extend(accepted)
        return accepted

    # ------------------------------------------------------------ delivery reports

    def report_payload(
        self, message: AcceptedMessage, status: str, reason: str | None = None
    ) -> dict[str, Any]:
        """One outbound report as MSG91's Webhook (New) would post it (see module doc)."""
        if reason is None and status == "failed":
            reason = "Message undeliverable"
        return {
            "companyId": self.company_id,
            "requestId": message.request_id,
            "uuid": message.uuid,
            "status": status,
            "customerNumber": message.to,
            "integratedNumber": message.integrated_number,
            "templateName": message.template,
            "direction": "outbound",
            "messageType": "template",
            "reason": reason or "",
            "requestedAt": message.at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S"),
        }

    async def report(
        self,
        request_id: str,
        status: str,
        *,
        to: str | None = None,
        reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
        secret_in_query: bool | None = None,
    ) -> int:
        """Post report(s) for an accepted request to :attr:`webhook_url`; the webhook's status.

        One POST per recipient (only ``to`` when given), as MSG91 does; the returned status is
        the first non-2xx answer, else the last. ``extra`` adds or replaces fields (a None value
        removes one). An unknown ``request_id`` still gets one report, without recipient
        details. Transport errors are raised (a test should see them).
        """
        targets = [m for m in self.messages_for(request_id) if to is None or m.to == to]
        payloads = [self.report_payload(m, status, reason) for m in targets]
        if not payloads:
            payloads = [{"requestId": request_id, "status": status, "reason": reason or ""}]
        answer = 0
        for payload in payloads:
            for key, value in (extra or {}).items():
                if value is None:
                    payload.pop(key, None)
                else:
                    payload[key] = value
            code = await self._post_report(payload, secret_in_query)
            if answer == 0 or 200 <= answer < 300:
                answer = code
        return answer

    async def _post_report(self, payload: dict[str, Any], secret_in_query: bool | None) -> int:
        if self.webhook_url is None:
            raise RuntimeError("FakeMsg91.webhook_url is not set")
        if self._http is None:
            raise RuntimeError("FakeMsg91 is not started")
        in_query = self.secret_in_query if secret_in_query is None else secret_in_query
        headers = {"content-type": "application/json"}
        params: dict[str, str] = {}
        if self.webhook_secret:
            if in_query:
                params["secret"] = self.webhook_secret
            else:
                headers["x-webhook-secret"] = self.webhook_secret
        try:
            response = await self._http.post(
                self.webhook_url, content=orjson.dumps(payload), headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            self.reports.append(SentReport(self.webhook_url, payload, None, repr(exc)))
            raise
        self.reports.append(SentReport(self.webhook_url, payload, response.status_code))
        return response.status_code

    def _schedule_reports(self, messages: list[AcceptedMessage]) -> None:
        if not self.auto_report or self.webhook_url is None:
            return
        statuses = list(self.auto_report)
        task = asyncio.create_task(self._auto(messages, statuses))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auto(self, messages: list[AcceptedMessage], statuses: list[str]) -> None:
        for status in statuses:
            await self._wait(self.auto_report_delay_s)
            if self.closing.is_set():
                return
            for message in messages:
                try:
                    await self._post_report(self.report_payload(message, status), None)
                except (httpx.HTTPError, RuntimeError) as exc:
                    log.warning("FakeMsg91: report %s for %s failed: %r", status, message.to, exc)

    async def reports_settled(self, timeout_s: float = 5.0) -> None:
        """Wait until every automatic report has been posted."""
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*list(self._tasks)), timeout_s)

    # ------------------------------------------------------------ lifecycle

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        # A fresh connection per report: a kept-alive one can be closed by the webhook's server
        # (uvicorn's idle timeout) just as the next report is written, losing that report.
        self._http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
        )

    async def _closing_down(self) -> None:
        # wake hung handlers and report waits so shutdown is quick
        self.release()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._http = None


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
