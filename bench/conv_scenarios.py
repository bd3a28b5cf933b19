"""Scenarios of `conversations.py` (data in bench/conversations/*.toml) and how a call is scored.

A scenario is what one caller says to one tenant, and what the call should come to: the call type,
some details (per field), the WhatsApp messages decided, and words the agent should have said.
Scoring reads only what the product stored: the call row (transcript, call type, details) and
the notifications rows, after the post-call pipeline is through.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SCENARIO_DIR = Path(__file__).resolve().parent / "conversations"
CLASSES = (
    "enquiry", "order", "change_of_mind", "booking", "cancellation", "complaint",
    "wrong_number", "silence", "barge_in", "mixed_language",
)  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Line:
    say: str
    #: silence after the line instead of the simulator's default
    pause_ms: int | None = None
    #: speak this many ms after the agent's current reply started, over it
    barge_in_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    tenant: str
    kind: str
    lines: tuple[Line, ...]
    call_type: str
    messages: frozenset[str]
    details: dict[str, Any] = field(default_factory=dict)
    agent_mentions: tuple[str, ...] = ()


def _line(raw: Any) -> Line:
    if isinstance(raw, str):
        return Line(raw)
    return Line(str(raw["say"]), raw.get("pause_ms"), raw.get("barge_in_ms"))


def load_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    """Every scenario, in file order per tenant (tenants by file name)."""
    out: list[Scenario] = []
    for path in sorted(directory.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        for raw in data["scenario"]:
            exp = raw["expect"]
            out.append(
                Scenario(
                    id=raw["id"],
                    tenant=data["tenant"],
                    kind=raw["class"],
                    lines=tuple(_line(x) for x in raw["lines"]),
                    call_type=exp["call_type"],
                    messages=frozenset(exp.get("messages", [])),
                    details=dict(exp.get("details", {})),
                    agent_mentions=tuple(exp.get("agent_mentions", [])),
                )
            )
    return out


def check_scenarios(scenarios: list[Scenario], tenants: dict[str, Any]) -> list[str]:
    """Problems with the data against the tenants' own files (unknown type, field, template)."""
    problems = []
    ids = [s.id for s in scenarios]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for s in scenarios:
        if s.kind not in CLASSES:
            problems.append(f"{s.id}: unknown class {s.kind}")
        tenant = tenants.get(s.tenant)
        if tenant is None:
            problems.append(f"{s.id}: no tenant {s.tenant}")
            continue
        if s.call_type != "no_conversation":
            ct = tenant.call_type(s.call_type)
            if ct is None:
                problems.append(f"{s.id}: {s.tenant} has no call type {s.call_type}")
            else:
                known = {f.name for f in ct.fields}
                problems += [f"{s.id}: no field {k}" for k in s.details if k not in known]
        templates = {t.name for t in tenant.templates}
        for m in s.messages:
            if m.split(":", 1)[-1] not in templates:
                problems.append(f"{s.id}: no template {m}")
    return problems


# --- details ---------------------------------------------------------------------------------


def expected_dates(spec: str, call_day: date) -> set[date]:
    """'today', 'tomorrow', 'weekday:<name>' (the next one; today's or a week on, both accepted:
    callers mean either) or an ISO date."""
    if spec == "today":
        return {call_day}
    if spec == "tomorrow":
        return {call_day + timedelta(days=1)}
    if spec.startswith("weekday:"):
        ahead = (WEEKDAYS.index(spec.split(":", 1)[1]) - call_day.weekday()) % 7
        first = call_day + timedelta(days=ahead)
        return {first, first + timedelta(days=7)}
    return {date.fromisoformat(spec)}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    return str(value)


def detail_ok(field_type: str, want: Any, got: Any, call_day: date) -> bool:
    """One detail against its expectation, by the schema's field type. Strings and lists: every
    expected word must appear (case-insensitive), and none prefixed with '!'."""
    if got is None or got == "" or got == []:
        return False
    if field_type == "phone":
        return re.sub(r"\D", "", str(got))[-10:] == str(want)[-10:]
    if field_type == "date":
        try:
            return date.fromisoformat(str(got)[:10]) in expected_dates(str(want), call_day)
        except ValueError:
            return False
    if field_type == "time":
        return str(got)[:5] == str(want)
    if field_type in ("number", "integer"):
        try:
            return abs(float(got) - float(want)) < 1e-6
        except (TypeError, ValueError):
            return False
    if field_type == "boolean":
        return bool(got) is bool(want)
    have = _text(got).lower()
    words = [want] if isinstance(want, str) else list(want)
    return all(
        (w[1:].lower() not in have) if w.startswith("!") else (w.lower() in have) for w in words
    )


def score_details(
    s: Scenario, tenant: Any, call_type: str, got: dict[str, Any], call_day: date
) -> dict[str, bool]:
    ct = tenant.call_type(s.call_type) if call_type == s.call_type else None
    types = {f.name: f.type for f in ct.fields} if ct is not None else {}
    return {
        name: ct is not None and detail_ok(types.get(name, "string"), want, got.get(name), call_day)
        for name, want in s.details.items()
    }


def call_day_of(row: dict[str, Any], tz: str) -> date:
    started = row.get("started_at") or datetime.now(ZoneInfo("UTC"))
    if started.tzinfo is None:
        started = started.replace(tzinfo=ZoneInfo("UTC"))
    return started.astimezone(ZoneInfo(tz)).date()


def decided_messages(rows: list[dict[str, Any]]) -> set[str]:
    """'<recipient type>:<template>' of every notification the pipeline decided to send."""
    return {f"{r['recipient_type']}:{r['template_name']}" for r in rows if r["status"] != "skipped"}


# --- facts the agent said --------------------------------------------------------------------

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split())}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())  # noqa: SIM905
}
_SCALES = {"hundred": 100, "thousand": 1000, "lakh": 100_000}
_ALT = "|".join([*_UNITS, *_TENS, *_SCALES])
#: a run of number words, "and" allowed inside ("seven hundred and fifty")
_RUN = re.compile(r"\b(?:(?:" + _ALT + r")(?:[\s-]+(?:and[\s-]+)?|\b))+")
_MONTHS = "january february march april may june july august september october november december"


def _run_value(words: list[str]) -> str:
    """'seven hundred and fifty' -> '750'; a run of bare digits ('nine eight four') is read as
    the digit string a caller or agent means by it ('984')."""
    if words and all(w in _UNITS and _UNITS[w] < 10 for w in words) and len(words) > 1:
        return "".join(str(_UNITS[w]) for w in words)
    total, cur = 0, 0
    for w in words:
        if w in _UNITS:
            cur += _UNITS[w]
        elif w in _TENS:
            cur += _TENS[w]
        elif w == "hundred":
            cur = max(cur, 1) * 100
        elif w in _SCALES:
            total += max(cur, 1) * _SCALES[w]
            cur = 0
    return str(total + cur)


def words_to_digits(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        words = [w for w in re.split(r"[\s-]+", m.group(0).strip()) if w and w != "and"]
        return " " + _run_value(words) + " " if words else m.group(0)

    return _RUN.sub(sub, text.lower())


def numbers_in(text: str) -> set[str]:
    """The numbers in a text, digits or words: '₹1,100' -> '1100', '8:30' -> '8', '30'."""
    t = words_to_digits(text)
    t = re.sub(r"(?<=\d),(?=\d{2,3}\b)", "", t)
    return {n.lstrip("0") or "0" for n in re.findall(r"\d+", t)}


def _strip_call_dates(text: str, call_day: date) -> str:
    """Dates near the call's (a reply reading back 'tomorrow, 8 December') are not facts the
    tenant's files must hold."""
    near = [call_day + timedelta(days=d) for d in range(-1, 60)]
    months = _MONTHS.split()
    for d in near:
        m = months[d.month - 1]
        for pat in (
            rf"\b{d.isoformat()}\b",
            rf"\b{d.day}(?:st|nd|rd|th)?\s+(?:of\s+)?{m}\b",
            rf"\b{m}\s+{d.day}(?:st|nd|rd|th)?\b",
        ):
            text = re.sub(pat, " ", text, flags=re.IGNORECASE)
    return re.sub(rf"\b{call_day.year}\b", " ", text)


def tenant_numbers(tenant_dir: Path) -> set[str]:
    texts = [p.read_text(errors="replace") for p in sorted(tenant_dir.rglob("*")) if p.is_file()]
    return set().union(*(numbers_in(t) for t in texts)) if texts else set()


def ungrounded_numbers(
    agent_text: str, allowed: set[str], caller_text: str, call_day: date
) -> list[str]:
    """Numbers the agent said that are in neither the tenant's files nor the caller's words."""
    said = numbers_in(_strip_call_dates(agent_text, call_day))
    caller = numbers_in(caller_text)
    # a phone number read back in groups ('98450 12345') is the caller's, not a new fact
    digits = "".join(re.findall(r"\d", words_to_digits(caller_text)))
    return sorted(n for n in said - allowed - caller if not (len(n) >= 3 and n in digits))


def mentions_ok(s: Scenario, agent_text: str) -> bool:
    low = agent_text.lower()
    nums = numbers_in(agent_text)
    for m in s.agent_mentions:
        plain = m.replace(",", "")
        if m.lower() not in low and not (plain.isdigit() and plain in nums):
            return False
    return True
