"""WhatsApp's rules for template variables, applied wherever a variable is made or sent."""

from __future__ import annotations

import re

from receptionist.untrusted import clean

# WhatsApp refuses template parameters with new lines, tabs or more than four spaces in a row
# (https://www.twilio.com/docs/api/errors/63013), and a template body is at most 1024 characters.
MAX_VARIABLE_CHARS = 1024
_SPACES = re.compile(r"\s+")


def clean_variable(text: str, max_chars: int = MAX_VARIABLE_CHARS) -> str:
    """One line, single spaces, no control characters (a caller's number or a detail may carry
    escape codes), at most `max_chars` (cut at a word, with an ellipsis)."""
    text = clean(_SPACES.sub(" ", text), len(text))
    limit = min(max_chars, MAX_VARIABLE_CHARS)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,;:.") + "…"
