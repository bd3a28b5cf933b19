"""The signature on every webhook request: HMAC-SHA256 over the timestamp and the body.

Header ``Receptionist-Signature: t=<unix seconds>,v1=<hex digest>``, where the digest is
``HMAC_SHA256(secret, f"{t}." + body)``. A receiver recomputes it over the raw body, compares in
constant time, and refuses a timestamp more than `TOLERANCE_S` from its own clock (a replayed
request is then useless); the event id (``Receptionist-Event-Id``) de-duplicates a retry.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_S", "sign", "verify"]

SIGNATURE_HEADER = "Receptionist-Signature"
TOLERANCE_S = 300


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: bytes, header: str, body: bytes, *, now: float, tolerance_s: int = TOLERANCE_S
) -> bool:
    """True if `header` signs `body` with `secret` within `tolerance_s` of `now`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _digest(secret, timestamp, body))
