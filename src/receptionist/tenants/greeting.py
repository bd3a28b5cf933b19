"""The first words the caller hears, taken from the tenant's own assistant prompt.

The owner marks one line of ``prompts/assistant.txt`` as the greeting, in any script::

    GREETING: "Hello, Sweet Crumbs Bakery! How can I help you?"
    Greeting: Vanakkam, Glow Unisex Saloon, sollunga!
    greeting = «Namaste ji, kaise madad karun?»
    अभिवादन: "नमस्ते, शर्मा फ़ैमिली क्लिनिक में आपका स्वागत है।"
    [greeting] Hello and welcome!

Rules:

* The marker word is ``greeting`` (any case) or its equivalent in an Indian language
  (अभिवादन, வாழ்த்து, ಶುಭಾಶಯ, అభివాదం, অভিবাদন), followed by ``:`` or ``=`` -- or written in
  square brackets, ``[greeting]``. Markdown decoration around it (``- **Greeting:**``) is fine.
* At the start of a line (after any bullet), the text may be quoted with "…", “…”, '…', ‘…’ or
  «…», or left unquoted up to the end of the line.
* Inside a sentence (``... and open with greeting: "Namaste!"``) the text must be quoted, so
  ordinary prose such as "keep the greeting: short and warm" is not taken for a greeting.
* The first marked line with non-empty text wins.
* With no marked line, a polite greeting naming the business in the primary language is used.
"""

from __future__ import annotations

import hashlib
import re
import threading

from .messages import fallback_greeting

__all__ = ["cached_greeting", "clear_greeting_cache", "extract_greeting", "find_marked_greeting"]

_MARKER_WORDS = (
    "greeting",
    "अभिवादन",  # Hindi / Marathi
    "வாழ்த்து",  # Tamil
    "ಶುಭಾಶಯ",  # Kannada
    "అభివాదం",  # Telugu
    "অভিবাদন",  # Bengali
)
_WORD = "(?:" + "|".join(re.escape(w) for w in _MARKER_WORDS) + ")"
_DECOR = r"(?:\*\*|__|\*|_)?"  # markdown bold/italic around the marker

# Marker at the start of a line: optional bullet / heading / numbering, then the marker.
_LINE_START = re.compile(
    r"^\s*(?:[-*+•>#]+\s*)*(?:\d{1,3}[.)]\s*)?"
    + _DECOR
    + r"(?:\[\s*"
    + _WORD
    + r"\s*\]|"
    + _WORD
    + r"\s*"
    + _DECOR
    + r"\s*[:=：]"
    + r")\s*"
    + _DECOR
    + r"\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
# Marker inside a line: must be preceded by a non-letter and followed by a quoted text.
_IN_LINE = re.compile(
    r"(?:^|(?<=[\s(\[{,;|\-*_]))"
    + r"(?:\[\s*"
    + _WORD
    + r"\s*\]|"
    + _WORD
    + r"\s*"
    + _DECOR
    + r"\s*[:=：])\s*"
    + _DECOR
    + r"\s*(?P<rest>[\"“'‘«„].*)$",
    re.IGNORECASE,
)

_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "‘": "’", "'": "'"}
# A straight single quote closes only when followed by a non-letter (so "I'm" stays inside).
_SINGLE_CLOSE = re.compile(r"'(?=$|[\s.,;:!?)\]}])")
_STRIP_CHARS = " \t\r\n\"'“”‘’«»„*_`"


def _take_text(rest: str, *, require_quotes: bool) -> str | None:
    """The greeting text from what follows a marker, or None if there is none."""
    rest = rest.strip()
    if not rest:
        return None
    opening = rest[0]
    closing = _QUOTES.get(opening)
    if closing is None:
        return None if require_quotes else rest.strip(_STRIP_CHARS) or None
    body = rest[1:]
    if opening == "'":
        m = _SINGLE_CLOSE.search(body)
        end = m.start() if m else -1
    else:
        end = body.find(closing)
        if end < 0 and closing == "”":  # people mix “ with a straight closing quote
            end = body.find('"')
    text = body if end < 0 else body[:end]  # unbalanced quote: the rest of the line
    text = text.strip(_STRIP_CHARS)
    return text or None


def find_marked_greeting(prompt: str) -> str | None:
    """The text of the first marked greeting line in ``prompt``, or None if there is none."""
    for line in prompt.splitlines():
        if not line.strip():
            continue
        m = _LINE_START.match(line)
        if m:
            text = _take_text(m.group("rest"), require_quotes=False)
            if text:
                return " ".join(text.split())
            continue
        for m in _IN_LINE.finditer(line):
            text = _take_text(m.group("rest"), require_quotes=True)
            if text:
                return " ".join(text.split())
    return None


def extract_greeting(prompt: str, *, tenant_name: str, language: str) -> str:
    """The greeting to speak first: the prompt's marked line, else a polite default.

    ``language`` is the tenant's primary BCP-47 language ("hi-IN"); it only matters for the
    default, which falls back to English for languages without a wording.
    """
    return find_marked_greeting(prompt) or fallback_greeting(tenant_name, language)


_CACHE: dict[tuple[str, str, str], str] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 1024


def cached_greeting(prompt: str, *, tenant_name: str, language: str) -> str:
    """:func:`extract_greeting` memoised on (sha256 of the prompt, tenant name, language)."""
    key = (hashlib.sha256(prompt.encode("utf-8")).hexdigest(), tenant_name, language)
    found = _CACHE.get(key)
    if found is not None:
        return found
    greeting = extract_greeting(prompt, tenant_name=tenant_name, language=language)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = greeting
    return greeting


def clear_greeting_cache() -> None:
    """Forget every cached greeting (tests, or after bulk tenant edits)."""
    with _CACHE_LOCK:
        _CACHE.clear()
