"""A protocol-faithful double of Exotel's Call Details REST API (v1).

Serves ``GET /v1/Accounts/{account_sid}/Calls/{call_sid}[.json]`` over real HTTP (uvicorn on
127.0.0.1, an ephemeral port) so :mod:`receptionist.telephony.exotel_api` is tested through
httpx exactly as in production::

    async with FakeExotelApi() as fake:
        fake.add_call("c0ffee01", from_number="09876543210", to_number="08047112233",
                      duration_s=42, price="1.500", final_after_s=0.2)
        cfg = ExotelApiConfig("ACtest", "key", "token", base_url=fake.base_url)

Behaviour (see the docstring of :mod:`receptionist.telephony.exotel_api` for the sources):

* Body ``{"Call": {...}}`` with the documented keys only (``Sid``, ``ParentCallSid``,
  ``DateCreated``, ``DateUpdated``, ``AccountSid``, ``To``, ``From``, ``PhoneNumberSid``,
  ``Status``, ``StartTime``, ``EndTime``, ``Duration``, ``Price``, ``Direction``,
  ``AnsweredBy``, ``RecordingUrl``); numbers as strings, times ``YYYY-MM-DD HH:MM:SS`` in IST.
  With ``?details=true`` the JSON record also has ``Details`` (``ConversationDuration``,
  ``Leg1Status``, ``Leg2Status``, ``Legs``) as the v1 Call Details reference shows it.
  Without ``.json`` the same record comes back as XML (``<TwilioResponse><Call>…``).
* Asynchronous fill-in: until ``final_after_s`` has elapsed since :meth:`add_call`, the call
  reads as Exotel's record right after hang-up: ``Status`` is ``pending_status`` (default
  ``completed``) and ``Duration``, ``EndTime``, ``Price`` are ``null``. Exotel documents *that*
  these fields arrive late (~5 min) but not *how* they look before; ``null`` and the
  "completed but unpriced" shape are our assumption (the parser also accepts ``""``).
* ``POST /v1/Accounts/{account_sid}/Calls/connect[.json]`` (AgentStream "Connect Voice AI"):
  form fields read without regard to case (Exotel's own pages spell them both ways); ``From``,
  ``CallerId``, ``StreamUrl`` (ws:// or wss://, at most 600 characters) and ``StreamType``
  (``bidirectional``) required, ``CustomField`` at most 128 characters, ``TimeLimit`` at most
  14400; a 400 RestException otherwise. The answer is the new call's ``{"Call": {...}}`` record
  (``Status`` ``queued``). Then, as Exotel does: a number in :attr:`no_answer` rings out (its
  record reads ``no-answer``, no stream); any other is answered and Exotel opens the WebSocket to
  ``StreamUrl`` (its query's pairs as the start frame's ``custom_parameters``, this account's
  sid as its ``account_sid``, Basic auth from the URL's user info) and plays the callee:
  :attr:`callee_scripts` (per number, else silence until the agent has spoken and then a
  hang-up) through the simulated caller
  (:mod:`receptionist.sim.caller`). :meth:`stream_done` waits for that call to end.
* :meth:`run_connect_applet`: a flow's Connect applet with a dynamic URL (GET for the numbers,
  dialled in order) and its agent pass-through events (``Dial``, ``Answered``, ``Terminal``).
* Order of checks per request: record it, ``delay_s``, scripted faults (``fail_next``,
  ``garble_next``: like a load balancer, before auth), Basic auth (401), account sid in the
  path (403: valid credentials, another account), unknown call (404). Error bodies are
  ``{"RestException": {"Status": <code>, "Message": "..."}}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receptionist.sim.caller.call import place_call
from receptionist.sim.caller.script import CallerScript, CallOptions, CallResult, new_call_sid
from receptionist.sim.double import HttpDouble
from receptionist.telephony.exotel_api import IST

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_GARBLED = b'{"Call": {"Sid": "trunc'  # a body cut short mid-string: not valid JSON


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    auth_user: str | None
    at: float  # the double's clock (time.monotonic by default)
    status_code: int


@dataclass
class _FakeCall:
    sid: str
    from_number: str
    to_number: str
    status: str
    pending_status: str
    direction: str
    duration_s: int
    price: Decimal | None
    recording_url: str | None
    phone_number_sid: str
    start_time: datetime
    added_at: float
    final_after_s: float
    #: a second leg (a Connect applet's person): (Leg2Status, ConversationDuration)
    leg2: tuple[str, int] | None = None


def _fmt(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(IST).strftime(_TIME_FORMAT)


def _connect_problem(form: dict[str, str]) -> str | None:
    for key in ("from", "callerid", "streamurl", "streamtype"):
        if not form.get(key):
            return f"Missing parameter {key}"
    url = form["streamurl"]
    if not url.startswith(("ws://", "wss://")) or len(url) > 600:
        return "StreamUrl must be a ws:// or wss:// URL of at most 600 characters"
    if form["streamtype"] != "bidirectional":
        return "StreamType must be bidirectional"
    if len(form.get("customfield", "")) > 128:
        return "CustomField is longer than 128 characters"
    limit = form.get("timelimit", "0")
    if not limit.isdigit() or int(limit) > 14400:
        return "TimeLimit must be at most 14400"
    return None


def _error(status: int, message: str) -> Response:
    body = {"RestException": {"Status": status, "Message": message}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class FakeExotelApi(HttpDouble):
    serve_options: ClassVar[dict[str, Any]] = {"lifespan": "off", "timeout_graceful_shutdown": 1}

    def __init__(
        self,
        account_sid: str = "ACtest",
        api_key: str = "key",
        api_token: str = "token",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.api_key = api_key
        self.api_token = api_token
        self.clock = clock
        #: Seconds every response is held back (for client timeout tests).
        self.delay_s = 0.0
        self.requests: list[RecordedRequest] = []
        self._calls: dict[str, _FakeCall] = {}
        self._fail: list[int] = []
        self._garble = 0
        #: Numbers that ring out unanswered when dialled through the connect API.
        self.no_answer: set[str] = set()
        #: What the callee says, per number dialled (default: silence, then a hang-up).
        self.callee_scripts: dict[str, CallerScript] = {}
        #: Every connect request's form (keys as sent), in order.
        self.connects: list[dict[str, str]] = []
        self._streams: dict[str, asyncio.Task[CallResult]] = {}
        #: Every StatusCallback POST the double made: (CallSid, Status, our answer's HTTP code).
        self.status_posts: list[tuple[str, str, int]] = []
        self._posts: set[asyncio.Task[None]] = set()
        self._posted = asyncio.Event()
        #: When set, StatusCallback POSTs wait until the test sets this event (held answers).
        self.status_gate: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route(
                    "/v1/Accounts/{account_sid}/Calls/connect.json", self._connect, methods=["POST"]
                ),
                Route("/v1/Accounts/{account_sid}/Calls/connect", self._connect, methods=["POST"]),
                Route("/v1/Accounts/{account_sid}/Calls/{call_ref}", self._handle),
            ]
        )

    # ---- scripting

    def add_call(
        self,
        call_sid: str,
        *,
        from_number: str,
        to_number: str,
        status: str = "completed",
        direction: str = "inbound",
        duration_s: int = 30,
        price: Decimal | str | None = "1.000",
        recording_url: str | None = None,
        phone_number_sid: str | None = None,
        start_time: datetime | None = None,
        final_after_s: float = 0.0,
        pending_status: str = "completed",
        leg2: tuple[str, int] | None = None,
    ) -> None:
        """Register a call. Until ``final_after_s`` has passed it reads as "just hung up".
        ``leg2``: the call was connected on to a second party (a Connect applet), with that
        leg's status and how long both were connected (served with ``?details=true``)."""
        if start_time is None:
            start_time = datetime.now(IST).replace(microsecond=0) - timedelta(seconds=duration_s)
        self._calls[call_sid] = _FakeCall(
            sid=call_sid,
            from_number=from_number,
            to_number=to_number,
            status=status,
            pending_status=pending_status,
            direction=direction,
            duration_s=duration_s,
            price=None if price is None else Decimal(str(price)),
            recording_url=recording_url,
            phone_number_sid=phone_number_sid or to_number,
            start_time=start_time,
            added_at=self.clock(),
            final_after_s=final_after_s,
            leg2=leg2,
        )

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` requests get HTTP ``status`` with a RestException body."""
        self._fail.extend([status] * n)

    def garble_next(self, n: int = 1) -> None:
        """The next ``n`` requests get HTTP 200 with a body that is not valid JSON."""
        self._garble += n

    def call_record(self, call_sid: str) -> dict[str, Any]:
        """The ``Call`` object the double would serve now (for assertions)."""
        return self._record(self._calls[call_sid])

    async def stream_done(self, call_sid: str) -> CallResult:
        """The simulated callee's call on the stream Exotel opened for ``call_sid``."""
        return await self._streams[call_sid]

    async def _closing_down(self) -> None:
        for task in [*self._streams.values(), *self._posts]:
            task.cancel()
        await asyncio.gather(*self._streams.values(), *self._posts, return_exceptions=True)

    # ---- the connect API

    async def _connect(self, request: Request) -> Response:
        user, password = self._auth_user(request)
        response = await self._connect_response(request, user, password)
        self.requests.append(
            RecordedRequest(request.url.path, user, self.clock(), response.status_code)
        )
        return response

    async def _connect_response(
        self, request: Request, user: str | None, password: str | None
    ) -> Response:
        if self._fail:
            return _error(self._fail.pop(0), "Server error")
        if user != self.api_key or password != self.api_token:
            return _error(401, "Authentication failed")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(403, "Not allowed to access this account")
        # application/x-www-form-urlencoded, read by hand (no multipart parser needed)
        sent = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        self.connects.append(sent)
        form = {k.lower(): v for k, v in sent.items()}
        problem = _connect_problem(form)
        if problem is not None:
            return _error(400, problem)
        to, exophone, stream_url = form["from"], form["callerid"], form["streamurl"]
        sid = new_call_sid()
        answered = to not in self.no_answer
        self.add_call(
            sid,
            from_number=to,
            to_number=exophone,
            direction="outbound-api",
            status="completed" if answered else "no-answer",
            pending_status="in-progress" if answered else "ringing",
            duration_s=0,
        )
        callback = form.get("statuscallback")
        if answered:
            self._streams[sid] = asyncio.create_task(
                self._stream(sid, to, exophone, stream_url, callback)
            )
        elif callback:
            self._post_later(callback, sid, "no-answer")
        record = self._record(self._calls[sid]) | {"Status": "queued"}
        return Response(orjson.dumps({"Call": record}), media_type="application/json")

    def _post_later(self, url: str, sid: str, status: str) -> None:
        task = asyncio.create_task(self._post_status(url, sid, status))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post_status(self, url: str, sid: str, status: str) -> None:
        """Exotel's StatusCallback: a form POST once the call is over."""
        if self.status_gate is not None:
            await self.status_gate.wait()
        form = {
            "CallSid": sid,
            "Status": status,
            "DateUpdated": _fmt(datetime.now(IST)) or "",
            "RecordingUrl": "",
        }
        async with httpx.AsyncClient() as client:
            try:
                answer = await client.post(url, data=form, timeout=15.0)
                code = answer.status_code
            except httpx.HTTPError:
                code = 0
        self.status_posts.append((sid, status, code))
        self._posted.set()

    async def status_posted(self, count: int = 1) -> list[tuple[str, str, int]]:
        """Once ``count`` StatusCallback POSTs have been answered: all of them."""
        while len(self.status_posts) < count:
            self._posted.clear()
            await self._posted.wait()
        return self.status_posts

    async def _stream(
        self, sid: str, to: str, exophone: str, stream_url: str, callback: str | None = None
    ) -> CallResult:
        parts = urlsplit(stream_url)
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        script = self.callee_scripts.get(to) or CallerScript(hangup_after_ms=300)
        opts = CallOptions(
            url=url,
            call_sid=sid,
            from_number=to,
            to_number=exophone,
            account_sid=self.account_sid,
            custom_parameters=dict(parse_qsl(parts.query)),
            auth=auth,
            max_call_s=60.0,
        )
        result = await place_call(opts, script)
        if callback:
            await self._post_status(callback, sid, "completed")
        return result

    # ---- a flow's Connect applet (hand-off to a person)

    async def run_connect_applet(
        self,
        connect_url: str,
        *,
        call_sid: str,
        call_from: str,
        call_to: str,
        answered_by: str | None = None,
        passthru_url: str | None = None,
    ) -> list[tuple[str, str, int]]:
        """Run a flow's Connect applet with a dynamic URL, as Exotel does: GET ``connect_url``
        with the call's details (header ``Exotel-Version: 1.0``), then dial the numbers it
        answers one after the other until ``answered_by`` picks up (None: nobody does). With
        ``passthru_url`` (the applet's agent pass-through) each attempt is reported there by
        GET: ``Dial`` (Status ``busy``), ``Answered`` for the one who picks up, and
        ``Terminal`` (Status ``free``) when the attempt ends (support article 3000106308).
        Returns every pass-through request as (EventType, DialWhomNumber, our HTTP code); the
        numbers as the Connect URL gave them."""
        call = {"CallSid": call_sid, "CallFrom": call_from, "CallTo": call_to}
        sent: list[tuple[str, str, int]] = []
        async with httpx.AsyncClient() as client:
            # the URL's own query (its key) is kept, the call's details added to it
            answer = await client.get(
                httpx.URL(connect_url).copy_merge_params({**call, "Direction": "incoming"}),
                headers={"Exotel-Version": "1.0"},
            )
            numbers = answer.json().get("destination", {}).get("numbers", [])

            async def event(number: str, kind: str, status: str) -> None:
                if passthru_url is None:
                    return
                now = _fmt(datetime.now(IST)) or ""
                params = {
                    **call,
                    "From": call_from,
                    "To": call_to,
                    "Direction": "outbound-dial",
                    "Created": now,
                    "CurrentTime": now,
                    "DialWhomNumber": number,
                    "Status": status,
                    "EventType": kind,
                }
                got = await client.get(httpx.URL(passthru_url).copy_merge_params(params))
                sent.append((kind, number, got.status_code))

            for number in numbers:
                await event(number, "Dial", "busy")
                picked = number == answered_by
                if picked:
                    await event(number, "Answered", "busy")
                await event(number, "Terminal", "free")
                if picked:
                    break
        return sent

    # ---- the record

    def _record(self, call: _FakeCall) -> dict[str, Any]:
        final = self.clock() - call.added_at >= call.final_after_s
        end_time = call.start_time + timedelta(seconds=call.duration_s)
        updated = end_time + timedelta(minutes=5) if final else end_time
        return {
            "Sid": call.sid,
            "ParentCallSid": None,
            "DateCreated": _fmt(call.start_time),
            "DateUpdated": _fmt(updated),
            "AccountSid": self.account_sid,
            "To": call.to_number,
            "From": call.from_number,
            "PhoneNumberSid": call.phone_number_sid,
            "Status": call.status if final else call.pending_status,
            "StartTime": _fmt(call.start_time),
            "EndTime": _fmt(end_time) if final else None,
            "Duration": str(call.duration_s) if final else None,
            "Price": None if (call.price is None or not final) else f"{call.price:.3f}",
            "Direction": call.direction,
            "AnsweredBy": None,
            "RecordingUrl": call.recording_url,
        }

    @staticmethod
    def _xml(record: dict[str, Any]) -> Response:
        fields = "".join(
            f"<{k}>{escape(v) if v is not None else ''}</{k}>" for k, v in record.items()
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<TwilioResponse><Call>{fields}</Call></TwilioResponse>"
        )
        return Response(body, media_type="application/xml")

    # ---- HTTP

    def _auth_user(self, request: Request) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None, None
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else (user, None)

    async def _handle(self, request: Request) -> Response:
        user, password = self._auth_user(request)
        response = await self._respond(request, user, password)
        self.requests.append(
            RecordedRequest(request.url.path, user, self.clock(), response.status_code)
        )
        return response

    async def _respond(self, request: Request, user: str | None, password: str | None) -> Response:
        if self.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.delay_s)
        if self._fail:
            status = self._fail.pop(0)
            return _error(status, "Too many requests" if status == 429 else "Server error")
        if self._garble:
            self._garble -= 1
            return Response(_GARBLED, media_type="application/json")
        if user != self.api_key or password != self.api_token:
            return _error(401, "Authentication failed")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(403, "Not allowed to access this account")
        call_ref: str = request.path_params["call_ref"]
        as_json = call_ref.endswith(".json")
        call = self._calls.get(call_ref.removesuffix(".json"))
        if call is None:
            return _error(404, "Call not found")
        record = self._record(call)
        if not as_json:
            return self._xml(record)
        if request.query_params.get("details") == "true":
            record["Details"] = self._details(call)
        return Response(orjson.dumps({"Call": record}), media_type="application/json")

    def _details(self, call: _FakeCall) -> dict[str, Any]:
        """``Details`` as the voice v1 Call Details reference shows it with ``details=true``.
        Not documented, so our assumptions: before the record settles the durations are
        ``null`` (like ``Duration``); a call with no second leg has ``Leg2Status`` ``null``
        and one leg listed."""
        final = self.clock() - call.added_at >= call.final_after_s
        leg2_status, talk_s = call.leg2 if call.leg2 is not None else (None, 0)
        legs: list[dict[str, Any]] = [
            {"Leg": {"Id": 1, "OnCallDuration": call.duration_s if final else None}}
        ]
        if call.leg2 is not None:
            legs.append({"Leg": {"Id": 2, "OnCallDuration": talk_s if final else None}})
        return {
            "ConversationDuration": talk_s if final else None,
            "Leg1Status": call.status if final else call.pending_status,
            "Leg2Status": leg2_status,
            "Legs": legs,
        }
