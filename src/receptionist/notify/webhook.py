"""`POST /webhooks/msg91`: MSG91's delivery reports move messages to delivered / read / failed.

MSG91's webhooks carry no signature of their own (its panel takes a URL; see
https://msg91.com/help/webhook-new/how-to-receive-whatsapp-delivery-reports-via-webhook-new), so
the secret is ours: `MSG91_WEBHOOK_SECRET`, presented as `?secret=` in the URL set in the panel,
or as an `X-Webhook-Secret` header, or as `X-Signature: <hex HMAC-SHA256 of the body>` from a
relay that signs. Anything else gets 401 and changes nothing; with no secret configured every
report is refused (a webhook anyone can post to would let anyone mark messages delivered).

Nothing is read before it is checked: a request without our secret is refused before its body
is read, a Content-Length over the limit is refused unread, and a body without one is read only
up to the limit (an unauthenticated 100 MB POST costs us nothing). A relay that signs the body
(`X-Signature`) is the one case where the body must be read to check it, and then only up to the
limit. Every value taken from a report is cleaned and bounded before it is stored.

Reports are idempotent: a status only moves forward (sent → delivered → read), so a replayed or
late report changes nothing. A report for a message we do not know is logged and ignored (200,
so MSG91 does not keep retrying it). A status that moves forward is also a `message.status`
webhook event for the business, written in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from receptionist.store.db import Database
from receptionist.store.notifications import Report, StatusEvents, apply_report
from receptionist.untrusted import clean

log = logging.getLogger("receptionist.notify")

MAX_BODY_BYTES = 256 * 1024
_STATUSES = {
    "sent": "sent",
    "submitted": "sent",
    "delivered": "delivered",
    "read": "read",
    "seen": "read",
    "failed": "failed",
    "rejected": "failed",
    "undelivered": "failed",
}


def secret_matches(request: Request, secret: str | None) -> bool | None:
    """True/False when the request presents our secret itself (URL or header); None when it
    can only be checked against the body (a signature), or presents nothing."""
    if not secret:
        return False
    given = request.query_params.get("secret") or request.headers.get("x-webhook-secret")
    if given is not None:
        return hmac.compare_digest(given.encode(), secret.encode())
    return None


def signature_matches(request: Request, body: bytes, secret: str | None) -> bool:
    signature = request.headers.get("x-signature")
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.removeprefix("sha256=").lower(), expected)


class BodyTooLarge(Exception):
    pass


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, refusing (BodyTooLarge) a declared or actual length over `limit` without
    reading more than `limit` + one chunk."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


MAX_FIELD_CHARS = 300
MAX_REPORTS = 1000


def _text(item: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        for k in (key, key.lower()):
            value = item.get(k)
            if value not in (None, ""):
                return clean(str(value), MAX_FIELD_CHARS) or None
    return None


def _digits(value: str | None) -> str | None:
    digits = "".join(ch for ch in value or "" if ch.isdigit())
    return digits or None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        if value.isdigit():  # epoch seconds or milliseconds
            n = int(value)
            return datetime.fromtimestamp(n / 1000 if n > 10**11 else n, UTC)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return at if at.tzinfo else None  # a time without a zone is not trusted: use our clock


def parse_reports(body: bytes) -> list[Report]:
    """MSG91 report(s) in a body: one object or a list; ValueError when it is not JSON objects."""
    data = orjson.loads(body)
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_REPORTS:
        raise ValueError(f"more than {MAX_REPORTS} reports in one body")
    reports = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a report is not a JSON object")
        raw_status = (_text(item, "status", "eventName") or "").lower()
        reports.append(
            Report(
                provider_ref=_text(item, "requestId", "request_id", "uuid"),
                status=_STATUSES.get(raw_status, raw_status),
                recipient=_digits(_text(item, "customerNumber", "mobile", "number")),
                template_name=_text(item, "templateName", "template_name"),
                reason=_text(item, "reason", "failureReason", "failedReason"),
                at=_when(_text(item, "timestamp", "deliveredAt", "requestedAt")),
            )
        )
    return reports


def msg91_webhook_route(
    db: Database, secret: str | None, events: StatusEvents | None = None
) -> Route:
    """`events`: the business's message.status webhooks, written with each status a report
    moves forward (hooks/events.py)."""

    async def webhook(request: Request) -> JSONResponse:
        refused = JSONResponse({"error": "unauthorised"}, status_code=401)
        presented = secret_matches(request, secret)
        if presented is False or (presented is None and "x-signature" not in request.headers):
            log.warning("MSG91 webhook refused: bad or missing secret (from %s)", request.client)
            return refused
        try:
            body = await read_bounded(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            log.warning("MSG91 webhook refused: body over %d bytes", MAX_BODY_BYTES)
            return JSONResponse({"error": "body too large"}, status_code=413)
        if presented is None and not signature_matches(request, body, secret):
            log.warning("MSG91 webhook refused: bad signature (from %s)", request.client)
            return refused
        try:
            reports = parse_reports(body)
        except ValueError as exc:
            log.warning("MSG91 webhook: unreadable body (%s): %r", exc, body[:200])
            return JSONResponse({"error": f"unreadable report: {exc}"}, status_code=400)
        counts: dict[str, int] = {}
        for report in reports:
            outcome = await apply_report(db, report, events=events)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "unknown_ref":
                log.warning(
                    "MSG91 report for an unknown message (request %s, status %s): ignored",
                    report.provider_ref,
                    report.status,
                )
        return JSONResponse(counts)

    return Route("/webhooks/msg91", webhook, methods=["POST"])
