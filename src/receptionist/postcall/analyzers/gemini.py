"""Post-call analysis with a Gemini model (``generateContent`` with structured JSON output).

:class:`GeminiAnalyzer` sends the tenant's analyzer prompt, its call-type schema, the call date
and the transcript, asks for JSON matching :func:`response_schema`, and holds the answer to the
same rules as the offline analyzer (the models of :mod:`.schema`).
An invalid answer gets ONE repair request (the invalid answer and its problems are sent back);
a second invalid answer raises :class:`AnalysisInvalid`, which carries the raw answers.

Errors, for the pipeline: those of :mod:`receptionist.gemini_rest` (the request failed:
``AnalyzerUnavailable`` retryable, ``AnalyzerRejected`` not), and :class:`AnalysisInvalid`
(``retryable`` False): the model answered twice with output that does not fit the tenant's
schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from google import genai
from google.genai import types

from receptionist.gemini_rest import AnalyzerError, generate_json
from receptionist.tenants.model import Tenant
from receptionist.usage import TokenUsage

from .schema import (
    FIELD_HINTS,
    NO_CONVERSATION,
    Analysis,
    answer_schema,
    check_fields,
    response_schema,
    validate_details,
)

__all__ = [
    "DEFAULT_MODEL",
    "AnalysisInvalid",
    "GeminiAnalyzer",
    "build_prompt",
    "build_repair_prompt",
    "check_answer",
    "render_transcript",
]

DEFAULT_MODEL = "gemini-2.5-flash"
PURPOSE = "analysis"

# --------------------------------------------------------------------------- errors


class AnalysisInvalid(AnalyzerError):
    """The model's answers (first try and repair) did not fit the tenant's schema.

    ``raw_answers`` holds the text of every answer, in order; ``problems`` those of the last
    one; ``usage`` the tokens the attempts spent (so they can still be costed).
    """

    retryable = False

    def __init__(
        self,
        message: str,
        raw_answers: Sequence[str],
        *,
        problems: Sequence[str] = (),
        usage: Sequence[TokenUsage] = (),
    ) -> None:
        super().__init__(message)
        self.raw_answers = list(raw_answers)
        self.problems = list(problems)
        self.usage = list(usage)


# --------------------------------------------------------------------------- prompt

_RULES = """\
## Rules
- Use only facts that were actually said in this call. Never guess or fill in defaults.
- Pick exactly one call type from the list below. If the caller never spoke or said nothing
  meaningful (only silence, noise or a greeting before hanging up), use "no_conversation"
  with empty details.
- In "details" put only fields of the chosen call type, and only those the call gave. Leave
  out every field that was not said: no nulls, no empty strings, no "unknown".
- When the caller corrected something, use the final, confirmed value.
- Dates as YYYY-MM-DD and times as HH:MM (24-hour). Work out relative words ("today",
  "tomorrow", "this Saturday", "next week Monday", "kal", "parson") from the current date and
  time given below, in the business's timezone.
- Phone numbers as digits with the country code and a leading +, no spaces.
- Lists are JSON arrays of short strings, one item each.
- "summary" is one line (no line breaks) in English.
- Answer with the JSON object only."""


def _describe_call_types(tenant: Tenant) -> str:
    lines = ["## Call types"]
    for ct in tenant.call_types:
        lines.append(f'- "{ct.name}": {ct.description.strip()}')
        for spec in ct.fields:
            hint = FIELD_HINTS.get(spec.type)
            kind = spec.type if hint is None else f"{spec.type}, {hint}"
            need = "required" if spec.required else "optional"
            lines.append(f"    - {spec.name} ({kind}; {need}): {spec.description.strip()}")
    lines.append(
        f'- "{NO_CONVERSATION}": the caller did not speak or the call had no real content '
        "(no details)."
    )
    lines.append(
        'A "required" field is one the business needs; still leave it out if it was not said.'
    )
    return "\n".join(lines)


def render_transcript(transcript: Sequence[dict[str, Any]]) -> str:
    """One ``speaker: text`` line per non-empty turn (speakers "caller" / "agent")."""
    lines = []
    for turn in transcript:
        text = " ".join(str(turn.get("text") or "").split())
        if not text:
            continue
        speaker = str(turn.get("speaker") or "unknown").strip().lower() or "unknown"
        lines.append(f"{speaker}: {text}")
    return "\n".join(lines)


def _local_now(tenant: Tenant, now: datetime) -> datetime:
    try:
        tz = ZoneInfo(tenant.timezone)
    except Exception:  # an unknown zone was rejected by the loader; be lenient anyway
        return now
    if now.tzinfo is None:
        return now.replace(tzinfo=tz)
    return now.astimezone(tz)


def build_prompt(
    tenant: Tenant, transcript: Sequence[dict[str, Any]], now: datetime
) -> tuple[str, str]:
    """(system instruction, user text) for analysing one call.

    The system instruction is the tenant's analyzer prompt, our rules, the call types with their
    fields, and the current local date/time; the user text is the transcript.
    """
    local = _local_now(tenant, now)
    when = (
        f"## Current date and time\n{local.strftime('%A')} {local.strftime('%Y-%m-%d %H:%M')} "
        f"({tenant.timezone}). The call took place at this time."
    )
    system = "\n\n".join(
        [
            tenant.analyzer_prompt.strip(),
            '# Output\nReturn a JSON object with "call_type", "summary" and "details".',
            _RULES,
            _describe_call_types(tenant),
            when,
        ]
    )
    user = (
        "Transcript of the call (caller = the person who phoned, agent = our receptionist):\n\n"
        f"{render_transcript(transcript)}\n\nReturn the JSON object for this call."
    )
    return system + "\n", user


def build_repair_prompt(problems: Sequence[str]) -> str:
    """The follow-up message asking the model to correct an invalid answer."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        "Your answer is not valid for this business's schema:\n"
        f"{listed}\n\n"
        "Reply again with the complete corrected JSON object only (call_type, summary, "
        "details). Keep only fields of the chosen call type, leave out anything not said in "
        "the call, and use the formats from the instructions."
    )


# --------------------------------------------------------------------------- answer checks


def _normalise_value(type_name: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if type_name == "phone":
            value = "".join(ch for ch in value if ch not in " -().")
    elif type_name == "list" and isinstance(value, list):
        value = [v.strip() if isinstance(v, str) else v for v in value]
        value = [v for v in value if v != ""]
    return value


def check_answer(tenant: Tenant, text: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse and check one model answer: (cleaned answer, problems).

    Cleaning only removes what means "not said" (null, "", []), trims strings and strips
    separators from phone numbers; everything else must already be right.
    """
    if text is None or not text.strip():
        return None, ["the answer was empty"]
    raw = text.strip()
    if raw.startswith("```"):  # tolerate a fenced block
        raw = raw.strip("`")
        raw = raw[4:] if raw.lower().startswith("json") else raw
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, [f"the answer is not valid JSON ({exc})"]
    if not isinstance(data, dict):
        return None, ["the answer must be a JSON object"]
    problems = check_fields(tenant, data)
    call_type = data.get("call_type")
    summary = data.get("summary")
    summary = " ".join(summary.split()) if isinstance(summary, str) else ""
    details = data.get("details") or {}
    if not isinstance(details, dict):
        details = {}
    ct = tenant.call_type(call_type) if isinstance(call_type, str) else None
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        spec = ct.field(key) if ct is not None else None
        value = _normalise_value(spec.type if spec else "", value)
        if value is None or value == "" or value == []:
            continue
        cleaned[key] = value
    if call_type in answer_schema(tenant).call_types:
        problems += validate_details(tenant, call_type, cleaned)
    if problems:
        return None, problems
    return {"call_type": call_type, "summary": summary, "details": cleaned}, []


# --------------------------------------------------------------------------- the analyzer


def _has_caller_speech(transcript: Sequence[dict[str, Any]]) -> bool:
    return any(
        str(t.get("speaker") or "") == "caller" and str(t.get("text") or "").strip()
        for t in transcript
    )


class GeminiAnalyzer:
    """Analyse call transcripts with a Gemini model.

    ``await analyzer(tenant, transcript, now)`` returns an :class:`Analysis` (the pipeline's
    ``Analyzer`` interface); :meth:`analyze` also returns the token usage.
    """

    def __init__(
        self,
        client: genai.Client,
        model: str = DEFAULT_MODEL,
        *,
        timeout_s: float | None = 60.0,
        temperature: float = 0.0,
    ) -> None:
        self.client = client
        self.model = model
        self.timeout_s = timeout_s
        self.temperature = temperature

    async def __call__(
        self, tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
    ) -> Analysis:
        analysis, _ = await self.analyze(tenant, transcript, now)
        return analysis

    async def analyze(
        self, tenant: Tenant, transcript: Sequence[dict[str, Any]], now: datetime
    ) -> tuple[Analysis, list[TokenUsage]]:
        """The call's analysis and the tokens spent (one entry per model request)."""
        if not _has_caller_speech(transcript):
            return (
                Analysis(
                    call_type=NO_CONVERSATION,
                    summary="No conversation: the caller did not speak.",
                    details={},
                    analyzer=self.model,
                    confidence=1.0,
                ),
                [],
            )
        system, user = build_prompt(tenant, transcript, now)
        contents: list[types.Content] = [types.Content(role="user", parts=[types.Part(text=user)])]
        usage: list[TokenUsage] = []
        raw_answers: list[str] = []
        problems: list[str] = []
        for attempt in range(2):
            text, tokens = await self._generate(tenant, system, contents)
            usage.append(tokens)
            raw_answers.append(text or "")
            answer, problems = check_answer(tenant, text)
            if answer is not None:
                analysis = Analysis(
                    call_type=answer["call_type"],
                    summary=answer["summary"],
                    details=answer["details"],
                    analyzer=self.model,
                    confidence=None,
                )
                return analysis, usage
            if attempt == 0:
                contents += [
                    types.Content(role="model", parts=[types.Part(text=text or "")]),
                    types.Content(
                        role="user", parts=[types.Part(text=build_repair_prompt(problems))]
                    ),
                ]
        raise AnalysisInvalid(
            f"model {self.model} gave no valid analysis after one repair: " + "; ".join(problems),
            raw_answers,
            problems=problems,
            usage=usage,
        )

    async def _generate(
        self, tenant: Tenant, system: str, contents: list[types.Content]
    ) -> tuple[str | None, TokenUsage]:
        return await generate_json(
            self.client,
            self.model,
            system=system,
            contents=contents,
            schema=response_schema(tenant),
            temperature=self.temperature,
            timeout_s=self.timeout_s,
            purpose=PURPOSE,
        )
