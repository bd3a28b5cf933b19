"""A protocol-faithful double of MSG91's WhatsApp bulk template endpoint, and its webhook.

Serves ``POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`` over real HTTP (uvicorn on
127.0.0.1, an ephemeral port) so :class:`receptionist.notify.msg91.Msg91Provider` is tested
through httpx exactly as in production::

    async with FakeMsg91(auth_key="test-authkey") as fake:
        fake.approve("order_confirmation", language="en", variables=4)
        provider = Msg91Provider(Msg91Config("test-authkey", "918000000000",
                                             base_url=fake.base_url))
        ...
        assert fake.accepted_for("919800000001", "order_confirmation") == 1

One double can serve many tests: :meth:`FakeMsg91.reset` forgets everything scripted and
recorded without restarting the server.

A test that needs a request to be in flight at a given moment (a worker killed mid-send, a
client's own timeout, a pool kept busy) holds it instead of hoping a delay is long enough::

    fake.hold(after=3, accept=True)  # the next 3 requests pass, every later one is held
    ...                              # start the client
    await fake.wait_held(1)          # returns once a request is held (no sleeping)
    ...                              # kill the client, or let its timeout fire
    fake.release()                   # held requests are answered; later ones pass

With ``accept=True`` a held request is handled as usual (a valid message is taken: recorded in
:attr:`messages`, its automatic reports scheduled) and only its answer waits: the client cannot
know the message went. With ``accept=False`` it is held before anything is taken and, once
released, answered 503: as if it never reached MSG91. :attr:`FakeMsg91.held` lists the
requests being held now; :attr:`RecordedRequest.held` stays True on those that were.
:meth:`~FakeMsg91.reset` and :meth:`~FakeMsg91.stop` release them and remove the gate.

Behaviour (wire facts and their sources are in :mod:`receptionist.notify.msg91`):

* Per request, in this order: record it (:attr:`requests`), wait ``delay_s``, pass the hold
  gate if one is set (``hold(accept=False)`` holds it here), take the next scripted fault if
  any; ``fail_next`` faults answer at once (before auth, like MSG91's edge),
  ``hang_next(accept=False)`` waits and then answers 503 without taking the message. Then the
  ``authkey`` header (401), the JSON body and its shape (400), the approved templates when any
  are registered (400). Then the message is accepted: one :class:`AcceptedMessage` per
  recipient in :attr:`messages`, all under one fresh request id. Only then do the post-accept
  faults act: ``garble_next`` (HTTP 200, unreadable body), ``hang_next`` (answer late),
  ``drop_next`` (connection closed, no answer); last, ``hold(accept=True)`` holds the answer
  whatever it is. A post-accept fault taken by a request that is refused before acceptance is
  spent without effect. Only requests to the bulk endpoint count for the gate and the faults.
* Bodies: success ``{"status": "success", "hasError": false, "data": "...", "errors": null,
  "request_id": "<32 hex>"}``; errors ``{"status": "fail", "hasError": true, "errors": "...",
  "code": "<http status>"}``. The shapes follow public integrations of MSG91; the error texts
  are ours (MSG91's exact wording is not documented where we could read it).
* Shape checks are stricter than MSG91 is known to be, on purpose: digits-only numbers with a
  valid country code (libphonenumber), ``body_1..body_n`` consecutive, each ``{"type":
  "text", "value": <non-empty string>}`` of at most 1024 characters, without new lines, tabs
  or more than four consecutive spaces (WhatsApp refuses those; the real service may accept
  the request and report the failure later instead).
* Delivery reports: :meth:`report` posts one JSON report per recipient to ``webhook_url``,
  shaped like MSG91's WhatsApp "Webhook (New)" outbound report
  (https://msg91.com/help/webhook-new/how-to-receive-whatsapp-delivery-reports-via-webhook-new:
  one payload per recipient number, JSON, fields such as ``requestId``, ``uuid``, ``status``,
  ``customerNumber``, ``integratedNumber``, ``templateName``, ``reason``, ``requestedAt``,
  ``direction``, ``messageType``, ``companyId``). Field *values* are assumed: lower-case
  statuses (``sent``/``delivered``/``read``/``failed``), ``requestedAt`` as
  ``YYYY-MM-DD HH:MM:SS`` India time, ``requestId`` equal to the send answer's ``request_id``.
  MSG91 signs nothing; the secret is ours, sent as ``X-Webhook-Secret`` or ``?secret=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal

import httpx
import orjson
import phonenumbers
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from receptionist.notify.msg91 import BULK_PATH
from receptionist.sim.double import HttpDouble

__all__ = [
    "MAX_VARIABLE_CHARS",
    "AcceptedMessage",
    "FakeMsg91",
    "RecordedRequest",
    "SentReport",
    "msg91_error_body",
]

log = logging.getLogger("receptionist.sim.msg91")

MAX_VARIABLE_CHARS = 1024
_IST = timezone(timedelta(hours=5, minutes=30))
_GARBLED = b'{"status": "success", "hasError": fal'  # cut short: not JSON
_COMPONENT_KEY = re.compile(r"^(header|body|button)_(\d+)$")
_SUCCESS_TEXT = "Request accepted; delivery reports will follow"
_DEFAULT_ERRORS = {
    400: "Bad request",
    401: "Authentication failure",
    403: "Forbidden",
    404: "Not found",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def msg91_error_body(status: int, message: str | None = None) -> bytes:
    """An error body shaped like MSG91's."""
    text = message or _DEFAULT_ERRORS.get(status, "Request failed")
    return orjson.dumps({"status": "fail", "hasError": True, "errors": text, "code": str(status)})


def _error(status: int, message: str) -> Response:
    return Response(msg91_error_body(status, message), status, media_type="application/json")


@dataclass(frozen=True)
class AcceptedMessage:
    """One recipient of one accepted request."""

    request_id: str
    uuid: str  # per-recipient id, as in MSG91's reports
    to: str
    template: str
    language: str
    variables: tuple[str, ...]
    integrated_number: str
    namespace: str | None
    auth_key: str
    at: datetime  # UTC, when accepted


@dataclass
class RecordedRequest:
    """Every request the double received; ``status_code`` is None until answered (or never,
    for a dropped connection)."""

    method: str
    path: str
    auth_key: str | None
    body: bytes
    status_code: int | None = None
    request_id: str | None = None  # set when accepted
    outcome: str = "pending"  # accepted | refused | failed | garbled | hung | dropped | held
    held: bool = False  # held by the gate (see FakeMsg91.hold) at some point

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class SentReport:
    url: str  # without the secret
    payload: dict[str, Any]
    status_code: int | None  # the webhook's answer; None when it could not be reached
    error: str | None = None


@dataclass(frozen=True)
class _Template:
    variables: int
    namespace: str | None


@dataclass(frozen=True)
class _Fault:
    kind: Literal["fail", "garble", "hang", "drop"]
    status: int = 200
    body: bytes = b""
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    accept: bool = True


@dataclass
class _Gate:
    passes: int  # requests still let through before holding starts
    accept: bool
    opened: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Parsed:
    integrated_number: str
    template: str
    language: str
    namespace: str | None
    recipients: list[tuple[str, tuple[str, ...]]]


class _BadRequest(Exception):
    pass


# ---------------------------------------------------------------- validation


def _digits_number(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise _BadRequest(f"{what} must be a string of digits with country code, got {value!r}")
    try:
        number = phonenumbers.parse("+" + value, None)
    except phonenumbers.NumberParseException:
        raise _BadRequest(f"{what} {value} is not a valid number with country code") from None
    if not phonenumbers.is_valid_number(number):
        raise _BadRequest(f"{what} {value} is not a valid number with country code")
    return value


def _variables(components: Any, where: str) -> tuple[str, ...]:
    if components is None:
        return ()
    if not isinstance(components, dict):
        raise _BadRequest(f"{where}.components must be an object")
    body: dict[int, str] = {}
    for key, component in components.items():
        m = _COMPONENT_KEY.match(key)
        if m is None:
            raise _BadRequest(f"{where}.components: unknown component {key!r}")
        if not isinstance(component, dict):
            raise _BadRequest(f"{where}.components.{key} must be an object")
        if m[1] != "body":
            continue  # header/button parameters: not used by our templates, not checked
        if component.get("type") != "text":
            raise _BadRequest(f"{where}.components.{key}.type must be 'text'")
        value = component.get("value")
        if not isinstance(value, str) or not value.strip():
            raise _BadRequest(f"{where}.components.{key}.value must be a non-empty string")
        if len(value) > MAX_VARIABLE_CHARS:
            raise _BadRequest(
                f"{where}.components.{key}.value is longer than {MAX_VARIABLE_CHARS} characters"
            )
        if "\n" in value or "\t" in value or "     " in value:
            raise _BadRequest(
                f"{where}.components.{key}.value has new lines, tabs or more than 4 "
                "consecutive spaces"
            )
        body[int(m[2])] = value
    if sorted(body) != list(range(1, len(body) + 1)):
        raise _BadRequest(f"{where}.components: body variables must be body_1..body_n")
    return tuple(body[i] for i in range(1, len(body) + 1))


def _parse_request(data: Any) -> _Parsed:
    if not isinstance(data, dict):
        raise _BadRequest("request body must be a JSON object")
    integrated = _digits_number(data.get("integrated_number"), "integrated_number")
    if data.get("content_type") != "template":
        raise _BadRequest("content_type must be 'template' on this endpoint")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise _BadRequest("payload must be an object")
    if payload.get("messaging_product", "whatsapp") != "whatsapp":
        raise _BadRequest("payload.messaging_product must be 'whatsapp'")
    if payload.get("type", "template") != "template":
        raise _BadRequest("payload.type must be 'template'")
    template = payload.get("template")
    if not isinstance(template, dict):
        raise _BadRequest("payload.template must be an object")
    name = template.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _BadRequest("payload.template.name is required")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise _BadRequest("payload.template.language.code is required")
    if isinstance(language, dict) and language.get("policy", "deterministic") != "deterministic":
        raise _BadRequest("payload.template.language.policy must be 'deterministic'")
    namespace = template.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise _BadRequest("payload.template.namespace must be a string")
    items = template.get("to_and_components")
    if not isinstance(items, list) or not items:
        raise _BadRequest("payload.template.to_and_components must be a non-empty list")
    recipients: list[tuple[str, tuple[str, ...]]] = []
    for i, item in enumerate(items):
        where = f"to_and_components[{i}]"
        if not isinstance(item, dict):
            raise _BadRequest(f"{where} must be an object")
        to = item.get("to")
        if not isinstance(to, list) or not to:
            raise _BadRequest(f"{where}.to must be a non-empty list of numbers")
        variables = _variables(item.get("components"), where)
        for number in to:
            recipients.append((_digits_number(number, f"{where}.to"), variables))
    return _Parsed(integrated, name, code, namespace or None, recipients)


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
        self._gate: _Gate | None = None
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
        self._templates: dict[tuple[str, str], _Template] = {}
        self._faults: list[_Fault] = []
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
        self._templates[(name, language)] = _Template(variables, namespace)

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
        fault = _Fault("fail", status, raw, media_type or kind, dict(headers or {}))
        self._faults.extend([fault] * count)

    def garble_next(self, count: int = 1) -> None:
        """The next ``count`` requests are taken, then answered 200 with a body that is not
        JSON (the client cannot know the message went)."""
        self._faults.extend([_Fault("garble")] * count)

    def hang_next(self, seconds: float, count: int = 1, accept: bool = True) -> None:
        """The next ``count`` requests are answered ``seconds`` late. With ``accept`` the
        message is taken first (a client that gives up cannot know it went); without, the
        double waits and then answers 503 without taking it."""
        self._faults.extend([_Fault("hang", seconds=seconds, accept=accept)] * count)

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` requests are taken, then the connection is closed unanswered."""
        self._faults.extend([_Fault("drop")] * count)

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
        self._gate = _Gate(after, accept)

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

    def _gate_for(self) -> _Gate | None:
        """The gate that holds this request, if any (counts it against ``after``)."""
        gate = self._gate
        if gate is None:
            return None
        if gate.passes > 0:
            gate.passes -= 1
            return None
        return gate

    async def _held_until_released(self, gate: _Gate, rec: RecordedRequest) -> None:
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
            return _error(404, f"No such endpoint: {request.url.path}")
        if request.method != "POST":
            rec.outcome = "refused"
            return _error(405, f"Method {request.method} not allowed")
        gate = self._gate_for()
        if gate is not None and not gate.accept:
            rec.outcome = "held"
            await self._held_until_released(gate, rec)
            return _error(503, "Service unavailable")
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
            return _error(503, "Service unavailable")
        if rec.auth_key is None or rec.auth_key not in self.auth_keys:
            rec.outcome = "refused"
            return _error(401, "Authentication failure: invalid or missing authkey")
        try:
            parsed = self._check(_parse_request(_parse_json(rec.body)))
        except _BadRequest as exc:
            rec.outcome = "refused"
            return _error(400, str(exc))
        request_id = uuid.uuid4().hex
        accepted = self._accept(parsed, request_id, rec.auth_key)
        rec.request_id = request_id
        rec.outcome = "accepted"
        self._schedule_reports(accepted)
        if fault is not None and fault.kind == "garble":
            rec.outcome = "garbled"
            return Response(_GARBLED, 200, media_type="application/json")
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "hang":
            rec.outcome = "hung"
            await self._wait(fault.seconds)
        body = {
            "status": "success",
            "hasError": False,
            "data": _SUCCESS_TEXT,
            "errors": None,
            "request_id": request_id,
        }
        return Response(orjson.dumps(body), 200, media_type="application/json")

    def _check(self, parsed: _Parsed) -> _Parsed:
        if not self._templates:
            return parsed
        template = self._templates.get((parsed.template, parsed.language))
        if template is None:
            languages = sorted(lang for name, lang in self._templates if name == parsed.template)
            if languages:
                raise _BadRequest(
                    f"Template {parsed.template!r} is not approved in language "
                    f"{parsed.language!r} (approved: {', '.join(languages)})"
                )
            raise _BadRequest(f"Template {parsed.template!r} not found or not approved")
        if template.namespace and parsed.namespace and template.namespace != parsed.namespace:
            raise _BadRequest(f"Template {parsed.template!r}: wrong namespace")
        for to, variables in parsed.recipients:
            if len(variables) != template.variables:
                raise _BadRequest(
                    f"Template {parsed.template!r} expects {template.variables} body "
                    f"variables, got {len(variables)} for {to}"
                )
        return parsed

    def _accept(self, parsed: _Parsed, request_id: str, auth_key: str) -> list[AcceptedMessage]:
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
            "requestedAt": message.at.astimezone(_IST).strftime("%Y-%m-%d %H:%M:%S"),
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
        raise _BadRequest("request body is not valid JSON") from None
