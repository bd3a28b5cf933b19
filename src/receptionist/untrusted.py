"""Text that came from outside (Exotel frames, webhook bodies, tenant files, API input).

Two jobs, kept apart on purpose:

- `clean(text, max_chars)` where a value *enters*: NUL and other control characters removed
  (PostgreSQL refuses NUL in text; newlines in an id or a phone number forge log lines and
  break terminals), surrounding space stripped, length bounded. What is stored is what a person
  can read.
- `printable(text)` where a value *leaves* for a terminal or a log line: every control
  character (ANSI escapes, CR/LF, the Unicode line separators) shown as a visible escape such
  as ``\\x1b``, so a stored value can neither forge a line nor drive the terminal.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators that some terminals and
# log viewers treat as a new line. Tab is a control too: in an id or a number it is noise.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: str, max_chars: int) -> str:
    """`text` without control characters, stripped, at most `max_chars` long."""
    return _CONTROL.sub("", text).strip()[:max_chars]


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (for terminals and logs)."""
    return _CONTROL.sub(_escape, text)


def without_nul(value: Any) -> Any:
    """A JSON-like value with NUL removed from every string, keys included: PostgreSQL refuses
    NUL in text and JSON, and one such character in a stored document loses the whole row."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value
