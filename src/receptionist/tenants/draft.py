"""A draft tenant from a plain description of a small business (`receptionist tenants new`).

Pure: text in, :class:`BusinessDraft` out. The owner writes what they would tell a new employee
("Sweet Crumbs Bakery, Koramangala. Black Forest cake 1 kg - 750. Open 9 am to 9 pm ...") and
this reads the facts a receptionist needs out of it, line by line:

* prices: a line with an amount after ₹ / Rs / INR, or ending in "- 750" / ": 750";
* hours: a line with a clock time or words like open, closed, timings, a weekday;
* address: a line that says so ("Address: ..."), or has a PIN code or a road / nagar / cross;
* the owner's WhatsApp: the first Indian mobile number (one on an owner / WhatsApp line first);
* the kind of business, from its words, which chooses the call types (a food shop takes
  orders, a salon or a clinic appointments);
* what callers usually want, and everything else, kept as notes so nothing said is lost.

What is missing is said in `warnings` and, by draft_files.py, as a TODO in the files.
The same :class:`BusinessDraft` is what the Gemini drafter fills (onboarding.py), so both ways
end in the same files.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from receptionist.language.phones import extract_phones
from receptionist.language.times import extract_times

__all__ = [
    "KINDS",
    "MAX_DESCRIPTION_BYTES",
    "BusinessDraft",
    "DraftError",
    "parse_description",
    "plain_text",
    "read_description",
    "with_warnings",
]

#: a description is what an owner types about their shop, not a catalogue
MAX_DESCRIPTION_BYTES = 64 * 1024
MAX_NAME_CHARS = 80

#: kinds of business, each with the words that give it away (checked in this order)
KINDS: dict[str, tuple[str, ...]] = {
    "appointments": (
        "salon", "saloon", "parlour", "parlor", "spa", "clinic", "doctor", "dental", "dentist",
        "physio", "hospital", "haircut", "facial", "consultation", "tuition", "tutor", "yoga",
        "appointment", "massage", "beauty",
    ),
    "food": (
        "bakery", "cake", "sweets", "sweet shop", "mithai", "restaurant", "cafe", "café",
        "tiffin", "caterer", "catering", "biryani", "dosa", "pizza", "menu", "kitchen", "food",
        "snacks", "juice",
    ),
    "shop": (
        "pharmacy", "medical store", "chemist", "medicines", "kirana", "grocery", "store",
        "shop", "hardware", "stationery", "mobile", "electronics", "boutique", "tailor",
        "supplies",
    ),
}  # fmt: skip
GENERAL = "general"

_LANGUAGE_WORDS = {
    "hi-IN": ("hindi",), "kn-IN": ("kannada",), "ta-IN": ("tamil",), "te-IN": ("telugu",),
    "mr-IN": ("marathi",), "bn-IN": ("bengali", "bangla"), "ml-IN": ("malayalam",),
    "gu-IN": ("gujarati",), "pa-IN": ("punjabi",),
}  # fmt: skip

# Controls (tab and newline aside), DEL, C1, line separators, lone surrogates: none belongs in
# a tenant file, and TOML refuses most of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_BULLET = re.compile(r"^\s*(?:[-*+•>#]+\s*|\d{1,3}[.)]\s+)*")
_AMOUNT = r"(?P<price>\d[\d,]*(?:\.\d{1,2})?)"
_CURRENCY = r"(?:₹|rs\.?|inr|rupees)"
_PRICE_STRONG = re.compile(
    rf"^(?P<item>.*?\w.*?)\s*(?:[-–—:=|@]|\bat\b|\bfor\b)?\s*{_CURRENCY}\s*{_AMOUNT}"
    rf"\s*(?:/-)?(?P<tail>.*)$",
    re.IGNORECASE,
)
_PRICE_AFTER = re.compile(
    rf"^(?P<item>.*?\w.*?)\s*(?:[-–—:=|]\s*)?{_AMOUNT}\s*(?:/-|{_CURRENCY})(?P<tail>.*)$",
    re.IGNORECASE,
)
_PRICE_WEAK = re.compile(rf"^(?P<item>.*?[^\W\d].*?)\s*[-–—:=|]\s*{_AMOUNT}\s*(?P<tail>)$")
_HOURS = re.compile(
    r"\b(?:open|opens|closed|closes|timings?|hours|holiday|daily|everyday|every day|24x7|"
    r"mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:rs|rsday)?|fri(?:day)?|sat(?:urday)?|"
    r"sun(?:day)?)\b",
    re.IGNORECASE,
)
_ADDRESS_LEAD = re.compile(
    r"^(?:address|location|located|we are at|find us|shop no|landmark)\b\s*[:\-–]?\s*",
    re.IGNORECASE,
)
_ADDRESS_WORDS = re.compile(
    r"\b(?:\d{3}\s?\d{3}|road|rd|street|st|nagar|layout|cross|main|sector|colony|marg|"
    r"opposite|opp|near|behind|floor|bazaar|chowk)\b",
    re.IGNORECASE,
)
_CALLERS = re.compile(
    r"\b(?:callers?|people (?:usually |mostly )?(?:call|ask|want)|customers (?:usually|mostly|"
    r"often|call|ask|want)|usually (?:call|ask|want)|mostly (?:call|ask|want))\b",
    re.IGNORECASE,
)
_NAME_LEAD = re.compile(r"^(?:business|business name|name|shop name|shop)\s*[:\-–]\s*", re.I)
_OWNER_LINE = re.compile(r"\b(?:owner|whatsapp|proprietor|contact|call|mobile)\b", re.I)


class DraftError(ValueError):
    """The description cannot be drafted from (empty, too large, not UTF-8 text)."""


@dataclass(frozen=True, slots=True)
class BusinessDraft:
    """What a draft tenant is made of (draft_files.render_bundle writes the files)."""

    name: str
    kind: str  # one of KINDS, or "general"
    owner_phone: str | None
    languages: tuple[str, ...]
    prices: tuple[tuple[str, str], ...]  # (item, price as written, e.g. "750" or "300 onwards")
    hours: tuple[str, ...]
    address: str | None
    callers_want: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    greeting: str | None = None
    warnings: tuple[str, ...] = field(default=())


def plain_text(text: str, max_chars: int | None = None) -> str:
    """`text` without control characters (newlines and tabs kept), stripped, bounded."""
    out = _CONTROL.sub("", text).strip()
    return out if max_chars is None else out[:max_chars].strip()


def read_description(data: bytes) -> str:
    """The description's text, or DraftError saying what is wrong with the bytes."""
    if len(data) > MAX_DESCRIPTION_BYTES:
        raise DraftError(
            f"the description is {len(data)} bytes; at most {MAX_DESCRIPTION_BYTES} "
            "(describe the business in a page or two: a long price list can be added to "
            "input_files/ afterwards)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DraftError(
            f"the description is not UTF-8 text (bad byte 0x{data[exc.start]:02x} on line "
            f"{line}); save it as UTF-8"
        ) from exc
    text = plain_text(text.replace("\r\n", "\n").replace("\r", "\n"))
    if not text:
        raise DraftError("the description is empty: say what the business sells, its prices, "
                         "hours and address")  # fmt: skip
    return text


def _kind(text: str) -> str:
    low = text.lower()
    scores = {
        kind: sum(len(re.findall(rf"\b{re.escape(w)}", low)) for w in words)
        for kind, words in KINDS.items()
    }
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] else GENERAL


def _languages(text: str) -> tuple[str, ...]:
    low = text.lower()
    found = [code for code, words in _LANGUAGE_WORDS.items() if any(w in low for w in words)]
    return ("en-IN", *found)


def _price(line: str) -> tuple[str, str] | None:
    for pattern in (_PRICE_STRONG, _PRICE_AFTER, _PRICE_WEAK):
        m = pattern.match(line)
        if m:
            item = m.group("item").strip(" \t-–—:=|@,").strip()
            tail = m.group("tail").strip(" \t,;.")
            price = m.group("price") + (f" {tail}" if tail else "")
            # "Owner: 98450 12345" is a phone number, not a price
            digits = sum(c.isdigit() for c in m.group("price"))
            if item and not item.isdigit() and digits <= 7 and not extract_phones(line):
                return item, price
    return None


def _is_hours(line: str) -> bool:
    return bool(_HOURS.search(line)) or bool(extract_times(line))


def _owner_phone(lines: list[str]) -> str | None:
    owner_lines = [line for line in lines if _OWNER_LINE.search(line)]
    for chunk in (*owner_lines, "\n".join(lines)):
        phones = extract_phones(chunk)
        if phones:
            return phones[0]
    return None


def _name(lines: list[str], tenant_id: str) -> tuple[str, list[str]]:
    """The business name and the lines left; the first line is the name when it is short."""
    for i, line in enumerate(lines):
        lead = _NAME_LEAD.match(line)
        if lead:
            return line[lead.end() :].strip(), lines[:i] + lines[i + 1 :]
    first = lines[0]
    head = re.split(r"\s+(?:is|are)\s+|[,.!(]\s|\s[-–—|]\s", first, maxsplit=1)[0].strip()
    if head and len(head) <= MAX_NAME_CHARS and not _price(head) and not _is_hours(head):
        rest = lines[1:] if head == first.rstrip(".!") else lines
        return head, rest
    return tenant_id.replace("-", " ").replace("_", " ").title(), lines


def _classify(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"prices": [], "hours": [], "address": [], "callers": []}
    out["notes"] = []
    for line in lines:
        address = _ADDRESS_LEAD.match(line)
        if address:
            out["address"].append(line[address.end() :].strip() or line)
        elif _CALLERS.search(line):
            out["callers"].append(line)
        elif _PRICE_STRONG.match(line) or _PRICE_AFTER.match(line):
            out["prices"].append(line)
        elif _is_hours(line):
            out["hours"].append(line)
        elif _price(line):
            out["prices"].append(line)
        elif _ADDRESS_WORDS.search(line) and not extract_phones(line):
            out["address"].append(line)
        else:
            out["notes"].append(line)
    return out


def parse_description(text: str, tenant_id: str) -> BusinessDraft:
    """A draft from a description (see the module docstring for what is read from it)."""
    lines = [_BULLET.sub("", line).strip() for line in plain_text(text).splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("-=*_#")]
    if not lines:
        raise DraftError("the description is empty")
    name, rest = _name(lines, tenant_id)
    found = _classify(rest)
    prices = [p for p in (_price(line) for line in found["prices"]) if p is not None]
    draft = BusinessDraft(
        name=plain_text(name, MAX_NAME_CHARS) or tenant_id,
        kind=_kind(text),
        owner_phone=_owner_phone(lines),
        languages=_languages(text),
        prices=tuple(prices),
        hours=tuple(found["hours"]),
        address=", ".join(found["address"]) or None,
        callers_want=tuple(found["callers"]),
        notes=tuple(found["notes"]),
    )
    return with_warnings(draft)


def with_warnings(draft: BusinessDraft) -> BusinessDraft:
    """The draft with a warning for each thing a receptionist needs that it lacks."""
    warnings = []
    if not draft.prices:
        warnings.append("no prices found: add them to input_files/prices.md")
    if not draft.hours:
        warnings.append("no opening hours found: add them to input_files/hours.md")
    if not draft.address:
        warnings.append("no address found: add it to input_files/address.md")
    if not draft.owner_phone:
        warnings.append(
            "no owner's mobile number found: set owner_phone in tenant.toml (WhatsApp alerts "
            "go to it)"
        )
    return dataclasses.replace(draft, warnings=tuple(warnings))
