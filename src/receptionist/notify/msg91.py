"""MSG91 WhatsApp provider: one approved template message per request, outcome classified.

Wire format (``POST {base_url}/api/v5/whatsapp/whatsapp-outbound-message/bulk/``, headers
``authkey`` and ``Content-Type: application/json``)::

    {"integrated_number": "9180...", "content_type": "template",
     "payload": {"messaging_product": "whatsapp", "type": "template",
                 "template": {"name": "...", "language": {"code": "en", "policy": "deterministic"},
                              "namespace": "...",          # only when the tenant has one
                              "to_and_components": [{"to": ["9198..."],
                                                     "components": {"body_1": {"type": "text",
                                                                               "value": "..."}}}]}}}

Sources, and what is assumed:

* Endpoint, headers and body: /work/shared/PROTOCOLS.md ("MSG91 WhatsApp"), which matches the
  seed's production code and many public integrations. MSG91's own API reference for this
  endpoint was not reachable from here; nothing below comes from it.
* Success body: public integrations show ``{"status": "success", "hasError": false, "data":
  "Your request is in process, check delivery reports for status", "errors": null,
  "request_id": "<32 hex>"}`` with HTTP 200, and check ``status == "success"``. Failures are
  seen as ``{"status": "fail", "hasError": true, "errors": "...", "code": "401"}`` (also with
  HTTP 200 on some MSG91 endpoints) and, in older code, ``{"message": "error", "msg": "..."}``.
  Because no authoritative reference was available the reading is lenient: success is
  ``status``/``type`` "success" (or ``hasError: false`` with a request id); failure is
  ``status``/``type`` "fail"/"error", ``hasError: true`` or ``message == "error"``; the request
  id is taken from ``request_id``/``requestId`` at the top level or inside ``data``.
* Delivery reports (the request id links them to our row) are handled in
  :mod:`receptionist.notify.webhook`; see
  https://msg91.com/help/webhook-new/how-to-receive-whatsapp-delivery-reports-via-webhook-new.
* Template parameters: WhatsApp refuses an empty variable, new lines / tabs, or more than four
  consecutive spaces in one (https://www.twilio.com/docs/api/errors/63013 lists these as
  channel policy violations), so :func:`template_components` flattens whitespace and sends "-"
  for an empty value rather than lose the message.

Outcomes (see :mod:`receptionist.notify.provider`), and the choices behind them:

* 2xx with a success body -> ``accepted`` (``provider_ref`` = MSG91's request id).
* 2xx whose body says it failed -> ``rejected`` with MSG91's words.
* 2xx with a body we cannot read (not JSON, or JSON that says neither) -> ``ambiguous``: MSG91
  answered, so the message may well be queued.
* 429 -> ``retry`` (``retry_after_s`` from ``Retry-After``), 408 -> ``retry`` (the server gave
  up waiting for our request, so it did not process it).
* other 4xx (bad key, bad number, unknown template...) and 3xx -> ``rejected``, the reason names
  the HTTP status and MSG91's message.
* 5xx -> ``retry``, whether the body is MSG91's own JSON error or a gateway's HTML page.
  Choice: a 502/503 page means the request did not reach MSG91's application. A 504 from a
  gateway is, strictly, uncertain (the application may have received the request and be
  slow); we still count it as ``retry`` as agreed for this project, accepting a small risk of
  a duplicate over losing the message. Change :func:`classify_response` to make it
  ``ambiguous`` if duplicates turn out worse.
* Connection refused / DNS failure / connect or pool timeout -> ``retry``: nothing was sent.
* Read or write timeout, connection closed or reset while waiting for the answer -> ``ambiguous``:
  the request may have been processed.

The auth key is never logged and never put in a reason; numbers are masked in logs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import orjson

from receptionist.notify.log_provider import mask_number
from receptionist.notify.provider import (
    ACCEPTED,
    AMBIGUOUS,
    REJECTED,
    RETRY,
    OutgoingMessage,
    SendResult,
)
from receptionist.notify.whatsapp import clean_variable

__all__ = [
    "BULK_PATH",
    "Msg91Config",
    "Msg91Provider",
    "build_request_body",
    "classify_response",
    "classify_transport_error",
    "template_components",
]

log = logging.getLogger("receptionist.notify")

BULK_PATH: Final = "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"
_MAX_REASON: Final = 300
_PHONE_LIKE: Final = re.compile(r"(?<![0-9A-Za-z])\+?\d{8,15}(?![0-9A-Za-z])")
_SUCCESS_WORDS: Final = frozenset({"success", "ok", "accepted", "queued"})
_FAILURE_WORDS: Final = frozenset({"fail", "failed", "failure", "error"})


@dataclass(frozen=True, slots=True)
class Msg91Config:
    auth_key: str = field(repr=False)  # never in a repr, so never in a log line
    integrated_number: str | None = None  # the business's WhatsApp sender number, digits
    base_url: str = "https://api.msg91.com"
    timeout_s: float = 10.0  # read / write
    connect_timeout_s: float = 5.0  # connect / wait for a pooled connection


# ---------------------------------------------------------------- request


def template_components(variables: tuple[str, ...] | list[str]) -> dict[str, dict[str, str]]:
    """``{{1}}..{{n}}`` as MSG91's ``body_1..body_n`` text components."""
    return {
        f"body_{i}": {"type": "text", "value": clean_variable(v) or "-"}  # never empty
        for i, v in enumerate(variables, start=1)
    }


def build_request_body(message: OutgoingMessage, integrated_number: str) -> dict[str, Any]:
    """The bulk-endpoint body for one message to one number."""
    template: dict[str, Any] = {
        "name": message.template,
        "language": {"code": message.language, "policy": "deterministic"},
    }
    if message.namespace:
        template["namespace"] = message.namespace
    template["to_and_components"] = [
        {"to": [message.to], "components": template_components(message.variables)}
    ]
    return {
        "integrated_number": integrated_number,
        "content_type": "template",
        "payload": {"messaging_product": "whatsapp", "type": "template", "template": template},
    }


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


# ---------------------------------------------------------------- response


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _flatten(value: Any) -> list[str]:
    """Strings inside an ``errors``-like value (string, list, or dict of either)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [s for item in value for s in _flatten(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _flatten(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _provider_message(body: dict[str, Any]) -> str:
    """MSG91's own words for what went wrong, from whichever field holds them."""
    found: list[str] = []
    for key in ("errors", "msg", "message", "error", "reason", "description", "data"):
        for text in _flatten(body.get(key)):
            if text.strip().lower() in _FAILURE_WORDS or text in found:
                continue
            found.append(text.strip())
    return _short("; ".join(found))


def _word(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value.strip().lower() if isinstance(value, str) else ""


def _request_id(body: dict[str, Any]) -> str | None:
    places: list[dict[str, Any]] = [body]
    if isinstance(body.get("data"), dict):
        places.append(body["data"])
    for place in places:
        for key in ("request_id", "requestId", "requestID", "request_ids"):
            value = place.get(key)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
    # the older v5 APIs answer {"type": "success", "message": "<request id>"}
    message = body.get("message")
    if _word(body, "type") == "success" and isinstance(message, str) and message.isalnum():
        return message
    return None


def _says_failure(body: dict[str, Any]) -> bool:
    return (
        body.get("hasError") is True
        or _word(body, "status") in _FAILURE_WORDS
        or _word(body, "type") in _FAILURE_WORDS
        or _word(body, "message") == "error"
    )


def _says_success(body: dict[str, Any]) -> bool:
    if _word(body, "status") in _SUCCESS_WORDS or _word(body, "type") in _SUCCESS_WORDS:
        return True
    return body.get("hasError") is False and _request_id(body) is not None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_response(status: int, content: bytes, headers: httpx.Headers) -> SendResult:
    """The outcome of one answered request (see the module docstring for the rules)."""
    body = _json_object(content)
    said = _provider_message(body) if body is not None else ""
    if 200 <= status < 300:
        if body is None:
            return SendResult(
                AMBIGUOUS,
                reason=f"MSG91 answered HTTP {status} with a body that is not JSON: "
                "the message may or may not have been queued",
                http_status=status,
            )
        if _says_failure(body):
            return SendResult(
                REJECTED,
                reason=f"MSG91 refused the message (HTTP {status}): {said or 'no reason given'}",
                http_status=status,
            )
        if _says_success(body):
            ref = _request_id(body)
            note = "" if ref else "MSG91 took the message but gave no request id"
            return SendResult(ACCEPTED, provider_ref=ref, reason=note, http_status=status)
        return SendResult(
            AMBIGUOUS,
            reason=f"MSG91 answered HTTP {status} without saying whether it took the message",
            http_status=status,
        )
    detail = said or ("no reason given" if body is not None else "the answer was not JSON")
    if status == 429:
        return SendResult(
            RETRY,
            reason=f"MSG91 is rate limiting (HTTP 429): {detail}",
            http_status=status,
            retry_after_s=_retry_after(headers.get("retry-after")),
        )
    if status == 408:
        return SendResult(
            RETRY,
            reason=f"MSG91 timed out reading the request (HTTP 408): {detail}",
            http_status=408,
        )
    if status >= 500:
        where = "MSG91" if body is not None else "MSG91 or a gateway in front of it"
        return SendResult(
            RETRY,
            reason=f"{where} failed (HTTP {status}): {detail}",
            http_status=status,
            retry_after_s=_retry_after(headers.get("retry-after")),
        )
    if 300 <= status < 400:
        target = headers.get("location") or "elsewhere"
        return SendResult(
            REJECTED,
            reason=f"MSG91 redirected the request (HTTP {status} to {target}): check the MSG91 "
            "base URL setting",
            http_status=status,
        )
    return SendResult(
        REJECTED, reason=f"MSG91 refused the message (HTTP {status}): {detail}", http_status=status
    )


def classify_transport_error(exc: httpx.HTTPError | httpx.InvalidURL) -> SendResult:
    """Transport trouble: could MSG91 have seen the request? (see the module docstring)"""
    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError):
        return SendResult(RETRY, reason=f"could not reach MSG91 ({name}: {text}); nothing was sent")
    if isinstance(exc, httpx.ProxyError | httpx.UnsupportedProtocol | httpx.InvalidURL):
        return SendResult(RETRY, reason=f"could not send to MSG91 ({name}: {text})")
    if isinstance(exc, httpx.TimeoutException):
        return SendResult(
            AMBIGUOUS,
            reason=f"MSG91 did not answer in time ({name}); the message may have been queued",
        )
    return SendResult(
        AMBIGUOUS,
        reason=f"the connection to MSG91 failed after the request was sent ({name}: {text}); "
        "the message may have been queued",
    )


# ---------------------------------------------------------------- provider


class Msg91Provider:
    """Sends template messages through MSG91; never raises for network or provider trouble."""

    name = "msg91"

    def __init__(self, config: Msg91Config, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        # waiting for a free pooled connection is like connecting: nothing has been sent yet
        self._timeout = httpx.Timeout(
            config.timeout_s, connect=config.connect_timeout_s, pool=config.connect_timeout_s
        )
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self.url = config.base_url.rstrip("/") + BULK_PATH

    async def send(self, message: OutgoingMessage) -> SendResult:
        integrated = _digits(message.integrated_number or self.config.integrated_number)
        if not integrated:
            return SendResult(
                REJECTED,
                reason="no WhatsApp sender number (MSG91 integrated number) is configured",
            )
        key = message.auth_key or self.config.auth_key
        if not key:
            return SendResult(REJECTED, reason="no MSG91 auth key is configured")
        if not (message.to.isascii() and message.to.isdigit()):
            return SendResult(
                REJECTED,
                reason=f"{message.to!r} is not a number in international form "
                "(digits with country code)",
            )
        body = orjson.dumps(build_request_body(message, integrated))
        headers = {"authkey": key, "content-type": "application/json", "accept": "application/json"}
        try:
            response = await self._client.post(
                self.url, content=body, headers=headers, timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a bad base_url
            result = classify_transport_error(exc)
        else:
            result = classify_response(response.status_code, response.content, response.headers)
        self._log(message, result)
        return result

    def _log(self, message: OutgoingMessage, result: SendResult) -> None:
        level = logging.INFO if result.outcome == ACCEPTED else logging.WARNING
        # MSG91's reasons may quote the number: mask phone-number-like digit runs in the log
        reason = _PHONE_LIKE.sub(lambda m: mask_number(m.group()), result.reason)
        log.log(
            level,
            "MSG91 WhatsApp %s to %s (notification %s): %s%s",
            message.template,
            mask_number(message.to),
            message.notification_id,
            result.outcome,
            f" request {result.provider_ref}" if result.provider_ref else f": {reason}",
        )

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
