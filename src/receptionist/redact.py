"""Redaction of what must not reach a log or a trace: phone numbers and secrets.

Pure text in, text out; `logs.py` applies it to every record (message, extra fields, traceback)
and `tracing.py` to span attributes. A log line is kept for days in places a caller's number and
our keys have no business being (a log shipper, a support ticket, a screenshot).

- Phone numbers: Indian mobiles (10 digits from 6-9), with +91 / 91 / 0091 / 0 in front, and
  any E.164 number (+ and 8-15 digits), with single spaces, dashes or dots between digit groups;
  all digits but the last 3 become "•" (enough to tell two callers apart in a log, not to dial).
  A run of digits inside a word (a hex call_sid, a UUID, a longer number) is left alone.
- Secrets: the values of the secret settings and of secret-named environment variables (given
  to `Redactor`), `Bearer`/`Basic` credentials, `user:password@` in URLs, key-like query
  parameters (`?key=`, `authkey=`, `token=`...), and our own API keys (`rk_<prefix>_<secret>`:
  the prefix names the key and stays, the secret goes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
KEEP_DIGITS = 3
MIN_SECRET_CHARS = 6  # shorter values ("1", "bt", "true") would mask ordinary words

# At most one space or dash between two digits: "98765 43210", "98-7654-3210", "+91 98765-43210".
_SEP = r"[ \-]?"
_NINE_MORE = rf"(?:{_SEP}\d){{9}}"

# Cheap tests first: most log text has no 7-digit run and no secret-looking word, and the full
# patterns cost ~20 µs a line where these cost ~1 µs.
_SEVEN_DIGITS = re.compile(r"\d(?:[ \-]?\d){6}")
_SECRET_WORDS = ("key", "token", "secret", "pass", "pwd", "sig", "bearer", "basic")

_PHONE = re.compile(
    r"(?=[+\d])(?<![\w+.])(?:"
    # E.164: + then 8 to 15 digits (the +91 forms are in here)
    rf"\+[1-9](?:{_SEP}\d){{7,14}}"
    # India with an international or trunk prefix, mobile or landline: 0091 / 91 / 0 + 10 digits
    rf"|(?:00{_SEP}91|91){_SEP}[6-9]{_NINE_MORE}"
    rf"|0{_SEP}\d{_NINE_MORE}"
    # a bare 10-digit mobile
    rf"|[6-9]{_NINE_MORE}"
    r")(?![\w])"
)

# HTTP credentials as in an Authorization header ("Basic" as written there: "basic" is a word)
_BEARER = re.compile(r"\b((?i:bearer)|Basic)(\s+)[A-Za-z0-9\-._~+/=]{6,}")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]*):[^\s/@]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;,\s\"'](?:key|api_?key|authkey|auth_?key|token|access_token|secret|password|"
    r"passwd|pwd|signature|sig)[\"']?\s*[=:]\s*[\"']?)[^\s&;,\"']+"
)
_OUR_KEY = re.compile(r"\b(rk_[0-9a-f]{8}_)[A-Za-z0-9_\-]{8,}")

# Environment variables whose value is a secret, by name.
_SECRET_NAME = re.compile(r"(?i)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS)$")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = [c for c in text if c.isdigit()]
    return (
        ("+" if text.startswith("+") else "")
        + "•" * (len(digits) - KEEP_DIGITS)
        + "".join(digits[-KEEP_DIGITS:])
    )


def mask_phones(text: str) -> str:
    """`text` with every phone number masked down to its last 3 digits."""
    return _PHONE.sub(_mask_phone, text) if _SEVEN_DIGITS.search(text) else text


class Redactor:
    """Masks phone numbers and secrets in text and in JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True
        )
        # longest first: a secret that contains another is masked whole
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    def text(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        if "://" in text:
            text = _URL_CREDENTIALS.sub(rf"\1:{MASK}@", text)
        lowered = text.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            text = _BEARER.sub(rf"\1\2{MASK}", text)
            text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
        if "rk_" in text:
            text = _OUR_KEY.sub(rf"\1{MASK}", text)
        return mask_phones(text)

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string in it (dict keys included) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k if isinstance(k, str) and k.isidentifier() else self.value(str(k)): self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return value


def secrets_in_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named environment variables (`*_KEY`, `*_TOKEN`, `*_SECRET`,
    `*_PASSWORD`...), the password in `DATABASE_URL`, and the header values in
    `OTEL_EXPORTER_OTLP_HEADERS` (a tracing vendor's API key)."""
    env = os.environ if environ is None else environ
    found = [v for k, v in env.items() if _SECRET_NAME.search(k)]
    url = env.get("DATABASE_URL", "")
    creds = re.match(r"[^:]+://[^:/@]*:([^@/]+)@", url)
    if creds:
        found.append(creds.group(1))
    for header in env.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        _, _, value = header.partition("=")
        found.append(value.strip())
    return found
