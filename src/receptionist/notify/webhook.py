"""`POST /webhooks/msg91`: MSG91's delivery reports move messages to delivered / read / failed.

MSG91's webhooks carry no signature of their own (its panel takes a URL; see
https://msg91.com/help/webhook-new/how-to-receive-whatsapp-delivery-reports-via-webhook-new), so
the secret is ours: `MSG91_WEBHOOK_SECRET`, presented as `?secret=` in the URL set in the panel,
or as an `X-Webhook-Secret` header, or as `X-Signature: <hex HMAC-SHA256 of the body>` from a
relay that signs. Anything else gets 401 and changes nothing; with no secret configured every
report is refused (a webhook anyone can post to would let anyone mark messages delivered).

Reports are idempotent: a status only moves forward (sent → delivered → read), so a replayed or
late report changes nothing. A report for a message we do not know is logged and ignored (200,
so MSG91 does not keep retrying it).
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
from receptionist.store.notifications import Report, apply_report

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


def authorised(request: Request, body: bytes, secret: str | None) -> bool:
    if not secret:
        return False
    given = request.query_params.get("secret") or request.headers.get("x-webhook-secret")
    if given is not None:
        return hmac.compare_digest(given.encode(), secret.encode())
    signature = request.headers.get("x-signature")
    if signature:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.removeprefix("sha256=").lower(), expected)
    return False


def _text(item: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        for k in (key, key.lower()):
            value = item.get(k)
            if value not in (None, ""):
                return str(value).strip()
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


def msg91_webhook_route(db: Database, secret: str | None) -> Route:
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not authorised(request, body, secret):
            log.warning("MSG91 webhook refused: bad or missing secret (from %s)", request.client)
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            reports = parse_reports(body)
        except ValueError as exc:
            log.warning("MSG91 webhook: unreadable body (%s): %r", exc, body[:200])
            return JSONResponse({"error": f"unreadable report: {exc}"}, status_code=400)
        counts: dict[str, int] = {}
        for report in reports:
            outcome = await apply_report(db, report)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "unknown_ref":
                log.warning(
                    "MSG91 report for an unknown message (request %s, status %s): ignored",
                    report.provider_ref,
                    report.status,
                )
        return JSONResponse(counts)

    return Route("/webhooks/msg91", webhook, methods=["POST"])
