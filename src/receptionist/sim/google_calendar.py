"""A Google Calendar API double (plain HTTP on 127.0.0.1): the few endpoints the booking sync
uses, so Google's own client (`google-api-python-client` with `google-auth`) talks to it
unchanged, its root URL pointed here (client_options api_endpoint) and the service account's
`token_uri` set to :attr:`FakeGoogleCalendar.token_uri`::

    async with FakeGoogleCalendar() as fake:
        key = fake.service_account_key()   # a fresh RSA key, token_uri pointing here
        os.environ["SALOON_GOOGLE_CREDENTIALS"] = json.dumps(key)

What the double does:

* ``POST /token``: the OAuth 2.0 JWT-bearer exchange of a service account
  (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, ``assertion=<RS256 JWT>``). The
  JWT's signature is checked against the public key of a key the double made; ``aud`` must be
  Google's token URL (google-auth sends it whatever the key's ``token_uri``) or this one, and
  ``scope`` must name the calendar; then ``{"access_token", "expires_in", "token_type":
  "Bearer"}``. Anything else: 400 ``{"error": "invalid_grant"}``.
* ``/calendar/v3/calendars/{calendarId}/events``: ``POST`` inserts (the client's ``id`` kept;
  an id already used, even by a deleted event, is 409 as Google answers), ``GET`` lists the
  events overlapping ``timeMin``..``timeMax`` (``singleEvents``; deleted ones left out);
  ``/events/{eventId}``: ``PUT`` replaces (restoring a deleted one when the body says
  ``"status": "confirmed"``), ``DELETE`` deletes (204; 410 when already deleted, 404 when
  unknown).
* Every calendar request needs ``Authorization: Bearer <a token it issued>``; else 401.
* :attr:`down` set: every calendar request is 503. :meth:`hold` makes calendar requests wait
  until :meth:`release` (a slow calendar, on the test's own timing).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receptionist.sim.double import HttpDouble

__all__ = ["FakeEvent", "FakeGoogleCalendar"]

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: the audience google-auth puts in the JWT whatever the key's token_uri (Google's token URL)
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class FakeEvent:
    calendar_id: str
    body: dict[str, Any]
    deleted: bool = False

    @property
    def id(self) -> str:
        return str(self.body["id"])


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _when(side: dict[str, Any]) -> datetime:
    if "dateTime" in side:
        return datetime.fromisoformat(side["dateTime"])
    return datetime.fromisoformat(side["date"] + "T00:00:00+00:00")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": status, "message": message, "errors": [{"message": message}]}},
        status_code=status,
    )


@dataclass
class _Key:
    email: str
    private: rsa.RSAPrivateKey
    requests: list[str] = field(default_factory=list)


class FakeGoogleCalendar(HttpDouble):
    def __init__(self) -> None:
        super().__init__()
        self.events: dict[tuple[str, str], FakeEvent] = {}
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.calls: list[tuple[str, str]] = []  # (method, path) of each calendar request
        self.down = False
        self._held: asyncio.Event | None = None
        self._keys: dict[str, _Key] = {}
        self._n = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route(
                    "/calendar/v3/calendars/{calendar_id}/events",
                    self._events,
                    methods=["GET", "POST"],
                ),
                Route(
                    "/calendar/v3/calendars/{calendar_id}/events/{event_id}",
                    self._event,
                    methods=["GET", "PUT", "DELETE"],
                ),
            ]
        )

    # --- for tests --------------------------------------------------------------------------

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def api_url(self) -> str:
        """The client's api_endpoint: Google's rootUrl + servicePath, here."""
        return f"{self.base_url}/calendar/v3/"

    def service_account_key(self, email: str = "booking@shop.iam.gserviceaccount.com") -> dict:
        """A service account's JSON key (as Google's console gives it) the double accepts."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = f"k{next(self._n)}"
        self._keys[key_id] = _Key(email, private)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "shop",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": self.token_uri,
        }

    def add_owner_event(
        self, calendar_id: str, start: datetime, end: datetime, **extra: Any
    ) -> str:
        """An event the owner put in the calendar themselves."""
        event_id = f"owner{next(self._n)}"
        body = {
            "id": event_id,
            "summary": "Owner busy",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()},
            **extra,
        }
        self.events[(calendar_id, event_id)] = FakeEvent(calendar_id, body)
        return event_id

    def live(self, calendar_id: str | None = None) -> list[FakeEvent]:
        return [
            e
            for e in self.events.values()
            if not e.deleted and (calendar_id is None or e.calendar_id == calendar_id)
        ]

    def hold(self) -> None:
        self._held = asyncio.Event()

    def release(self) -> None:
        if self._held is not None:
            self._held.set()
            self._held = None

    async def _closing_down(self) -> None:
        self.release()

    # --- OAuth -------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        assertion = str(form.get("assertion", ""))
        if form.get("grant_type") != JWT_BEARER or not self._jwt_ok(assertion):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = f"ya29.fake-{next(self._n)}"
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _jwt_ok(self, assertion: str) -> bool:
        try:
            head_b, body_b, sig_b = assertion.split(".")
            head, claims = json.loads(_b64(head_b)), json.loads(_b64(body_b))
            key = self._keys[head["kid"]]
            key.private.public_key().verify(
                _b64(sig_b), f"{head_b}.{body_b}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:  # malformed, unknown key, bad signature: all the same refusal
            return False
        return (
            head.get("alg") == "RS256"
            and claims.get("iss") == key.email
            and claims.get("aud") in (GOOGLE_TOKEN_AUDIENCE, self.token_uri)
            and CALENDAR_SCOPE in str(claims.get("scope", "")).split()
        )

    # --- the calendar ------------------------------------------------------------------------

    async def _gate(self, request: Request) -> Response | None:
        self.calls.append((request.method, request.url.path))
        if self._held is not None:
            held = self._held
            await asyncio.wait(
                [asyncio.ensure_future(held.wait()), asyncio.ensure_future(self.closing.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        if self.down:
            return _error(503, "The service is currently unavailable.")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _error(401, "Request had invalid authentication credentials.")
        return None

    async def _events(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        calendar_id = request.path_params["calendar_id"]
        if request.method == "POST":
            body = await request.json()
            if not isinstance(body, dict) or "start" not in body or "end" not in body:
                return _error(400, "Missing start or end.")
            body.setdefault("id", f"gen{next(self._n)}")
            if (calendar_id, body["id"]) in self.events:
                return _error(409, "The requested identifier already exists.")
            body["status"] = "confirmed"
            self.events[(calendar_id, body["id"])] = FakeEvent(calendar_id, body)
            return JSONResponse(body)
        try:
            lo = datetime.fromisoformat(request.query_params["timeMin"])
            hi = datetime.fromisoformat(request.query_params["timeMax"])
        except (KeyError, ValueError):
            return _error(400, "timeMin and timeMax are required.")
        items = [
            e.body
            for e in self.live(calendar_id)
            if _when(e.body["start"]) < hi and _when(e.body["end"]) > lo
        ]
        items.sort(key=lambda b: _when(b["start"]))
        return JSONResponse({"kind": "calendar#events", "items": items})

    async def _event(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        key = (request.path_params["calendar_id"], request.path_params["event_id"])
        event = self.events.get(key)
        if request.method == "PUT":
            if event is None:
                return _error(404, "Not Found")
            body = await request.json()
            body["id"] = key[1]
            # as Google: a deleted event comes back only when the update says it is confirmed
            event.deleted = event.deleted and body.get("status") != "confirmed"
            body["status"] = "cancelled" if event.deleted else "confirmed"
            event.body = body
            return JSONResponse(body)
        if event is None:
            return _error(404, "Not Found")
        if request.method == "GET":
            return JSONResponse(
                {**event.body, "status": "cancelled" if event.deleted else "confirmed"}
            )
        if event.deleted:
            return _error(410, "Resource has been deleted")
        event.deleted = True
        return Response(status_code=204)
