"""Post-call analysis with a Gemini model (``generateContent`` with structured JSON output).

:class:`GeminiAnalyzer` sends the tenant's analyzer prompt, its call-type schema, the call date
and the transcript, asks for JSON matching :func:`response_schema`, and holds the answer to the
same rules as the offline analyzer (:func:`~receptionist.postcall.analysis.validate_details`).
An invalid answer gets ONE repair request (the invalid answer and its problems are sent back);
a second invalid answer raises :class:`AnalysisInvalid`, which carries the raw answers.

Errors, for the pipeline:

- :class:`AnalyzerUnavailable` (``retryable`` True): 5xx, 408, 429, connection errors,
  timeouts, unparseable HTTP responses.
- :class:`AnalyzerRejected` (``retryable`` False): other 4xx, e.g. a wrong API key (HTTP 400
  ``INVALID_ARGUMENT`` "API key not valid"), a missing key (403), an unknown model (404).
- :class:`AnalysisInvalid` (``retryable`` False): the model answered twice with output that
  does not fit the tenant's schema.

SDK facts (google-genai 3.6.1): without ``HttpOptions.retry_options`` the SDK does not retry
HTTP errors (tenacity stops after one attempt), but with aiohttp installed it silently retries
connection errors once after sleeping 1-10 s; :func:`make_client` therefore sets
``HttpRetryOptions(attempts=1)`` so the pipeline owns all retries. The SDK's async transport is
aiohttp when importable, else its httpx2 (or httpx) client; both work over plain ``http://``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from receptionist.tenants.model import FieldSpec, Tenant
from receptionist.usage import TokenUsage

from .analysis import NO_CONVERSATION, Analysis, validate_details

__all__ = [
    "DEFAULT_MODEL",
    "AnalysisInvalid",
    "AnalyzerError",
    "AnalyzerRejected",
    "AnalyzerUnavailable",
    "GeminiAnalyzer",
    "build_prompt",
    "build_repair_prompt",
    "check_answer",
    "make_client",
    "render_transcript",
    "response_schema",
]

DEFAULT_MODEL = "gemini-2.5-flash"
PURPOSE = "analysis"

# --------------------------------------------------------------------------- errors


class AnalyzerError(Exception):
    """The model analysis failed; ``retryable`` says whether trying again later may help."""

    retryable = False


class AnalyzerUnavailable(AnalyzerError):
    """The model could not be reached or was overloaded (5xx, 429, network, timeout)."""

    retryable = True


class AnalyzerRejected(AnalyzerError):
    """The API refused the request (bad key, unknown model, bad request): do not retry."""

    retryable = False


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


# --------------------------------------------------------------------------- schema

_FIELD_SCHEMA: dict[str, tuple[str, str | None]] = {
    # field type -> (Gemini schema type, format hint appended to the description)
    "string": ("STRING", None),
    "integer": ("INTEGER", None),
    "number": ("NUMBER", None),
    "boolean": ("BOOLEAN", None),
    "date": ("STRING", "date as YYYY-MM-DD"),
    "time": ("STRING", "time as HH:MM, 24-hour"),
    "datetime": ("STRING", "date and time as YYYY-MM-DDTHH:MM, 24-hour"),
    "phone": ("STRING", "phone number as digits with country code, e.g. +919812345678"),
    "list": ("ARRAY", None),
}


def _field_schema(specs: list[tuple[str, FieldSpec]]) -> dict[str, Any]:
    """Schema of one ``details`` property, from every call type that declares that field."""
    types_seen = {spec.type for _, spec in specs}
    kind = specs[0][1].type if len(types_seen) == 1 else "string"
    gemini_type, hint = _FIELD_SCHEMA.get(kind, ("STRING", None))
    if len(specs) == 1:
        desc = specs[0][1].description.strip()
    else:
        desc = "; ".join(f"{ct}: {spec.description.strip()}" for ct, spec in specs)
    if hint:
        desc = f"{desc} ({hint})" if desc else hint
    out: dict[str, Any] = {"type": gemini_type, "nullable": True}
    if gemini_type == "ARRAY":
        out["items"] = {"type": "STRING"}
    if desc:
        out["description"] = desc
    return out


def response_schema(tenant: Tenant) -> dict[str, Any]:
    """The ``responseSchema`` (Gemini's OpenAPI subset, as a plain dict) for ``tenant``.

    ``call_type`` is an enum of the tenant's call types plus ``no_conversation``; ``details``
    has the union of all call types' fields, none required (a call may not have said them).
    Returns a fresh dict each time (the SDK edits schemas in place).
    """
    by_name: dict[str, list[tuple[str, FieldSpec]]] = {}
    for ct in tenant.call_types:
        for spec in ct.fields:
            by_name.setdefault(spec.name, []).append((ct.name, spec))
    details_props = {name: _field_schema(specs) for name, specs in by_name.items()}
    return {
        "type": "OBJECT",
        "properties": {
            "call_type": {
                "type": "STRING",
                "enum": [*tenant.call_type_names, NO_CONVERSATION],
                "description": "The one call type that fits the call best.",
            },
            "summary": {
                "type": "STRING",
                "description": "One line an owner can read at a glance.",
            },
            "details": {
                "type": "OBJECT",
                "description": (
                    "Only the fields of the chosen call type that were said in the call; "
                    "leave every other field out."
                ),
                "properties": details_props,
                "property_ordering": list(details_props),
            },
        },
        "required": ["call_type", "summary", "details"],
        "property_ordering": ["call_type", "summary", "details"],
    }


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
            _, hint = _FIELD_SCHEMA.get(spec.type, ("STRING", None))
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
    problems: list[str] = []
    call_type = data.get("call_type")
    known = [*tenant.call_type_names, NO_CONVERSATION]
    if not isinstance(call_type, str) or call_type not in known:
        problems.append(f"call_type must be one of {', '.join(known)}; got {call_type!r}")
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        problems.append("summary must be a non-empty one-line string")
        summary = ""
    summary = " ".join(summary.split())
    details = data.get("details", {})
    if details is None:
        details = {}
    if not isinstance(details, dict):
        problems.append("details must be a JSON object")
        details = {}
    extra = sorted(set(data) - {"call_type", "summary", "details"})
    if extra:
        problems.append(f"unexpected top-level keys: {', '.join(extra)}")
    ct = tenant.call_type(call_type) if isinstance(call_type, str) else None
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        spec = ct.field(key) if ct is not None else None
        value = _normalise_value(spec.type if spec else "", value)
        if value is None or value == "" or value == []:
            continue
        cleaned[key] = value
    if isinstance(call_type, str) and call_type in known:
        problems += validate_details(tenant, call_type, cleaned)
    if problems:
        return None, problems
    return {"call_type": call_type, "summary": summary, "details": cleaned}, []


# --------------------------------------------------------------------------- the analyzer


def make_client(
    api_key: str,
    *,
    base_url: str | None = None,
    timeout_s: float | None = None,
    async_client_args: dict[str, Any] | None = None,
) -> genai.Client:
    """A ``genai.Client`` for analysis: SDK retries off (the pipeline retries), optional
    ``base_url`` (e.g. the REST double's ``http://127.0.0.1:PORT``)."""
    opts = types.HttpOptions(
        base_url=base_url,
        timeout=None if timeout_s is None else math.ceil(timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
        async_client_args=async_client_args,
    )
    return genai.Client(api_key=api_key, http_options=opts)


def _transport_errors() -> tuple[type[BaseException], ...]:
    out: list[type[BaseException]] = [TimeoutError, ConnectionError, OSError]
    for mod_name, cls_name in (
        ("httpx", "HTTPError"),
        ("httpx2", "HTTPError"),
        ("aiohttp", "ClientError"),
    ):
        try:
            mod = __import__(mod_name)
        except ImportError:
            continue
        cls = getattr(mod, cls_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            out.append(cls)
    return tuple(out)


_TRANSPORT_ERRORS = _transport_errors()
_RETRYABLE_4XX = frozenset({408, 429})


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


async def generate_json(
    client: genai.Client,
    model: str,
    *,
    system: str,
    contents: list[types.Content],
    schema: dict[str, Any],
    temperature: float,
    timeout_s: float | None,
    purpose: str,
) -> tuple[str | None, TokenUsage]:
    """One ``generateContent`` request for a JSON answer: (its text, the tokens it cost).

    Failures are sorted for the pipeline: AnalyzerUnavailable (try later) or AnalyzerRejected
    (trying again cannot help). Also used to write the WhatsApp messages' free text."""
    config = types.GenerateContentConfig(
        system_instruction=system,
        response_mime_type="application/json",
        response_schema=schema,
        temperature=temperature,
    )
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.aio.models.generate_content(
                model=model, contents=list(contents), config=config
            )
    except genai_errors.ClientError as exc:
        if exc.code in _RETRYABLE_4XX:
            raise AnalyzerUnavailable(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
        raise AnalyzerRejected(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
    except genai_errors.APIError as exc:
        raise AnalyzerUnavailable(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
    except genai_errors.UnknownApiResponseError as exc:
        raise AnalyzerUnavailable(f"Gemini sent an unreadable response: {exc}") from exc
    except _TRANSPORT_ERRORS as exc:
        kind = "timed out" if isinstance(exc, TimeoutError) else "unreachable"
        raise AnalyzerUnavailable(f"Gemini {kind}: {type(exc).__name__}: {exc}") from exc
    return _answer_text(response), _usage(response, model, purpose)


def _usage(response: types.GenerateContentResponse, model: str, purpose: str) -> TokenUsage:
    meta = response.usage_metadata
    if meta is None:
        return TokenUsage(model_name=model, purpose=purpose)
    prompt = meta.prompt_token_count or 0
    candidates = meta.candidates_token_count or 0
    thoughts = meta.thoughts_token_count or 0
    text_in = sum(
        d.token_count or 0
        for d in meta.prompt_tokens_details or []
        if d.modality == types.MediaModality.TEXT
    )
    details: dict[str, Any] = {}
    if thoughts:
        details["thoughts_tokens"] = thoughts
    if meta.cached_content_token_count:
        details["cached_tokens"] = meta.cached_content_token_count
    if response.model_version:
        details["model_version"] = response.model_version
    return TokenUsage(
        model_name=model,
        purpose=purpose,
        input_tokens=prompt,
        output_tokens=candidates + thoughts,  # thinking tokens are billed as output
        input_text_tokens=text_in or prompt,
        output_text_tokens=candidates + thoughts,
        total_tokens=meta.total_token_count,
        details=details or None,
    )


def _answer_text(response: types.GenerateContentResponse) -> str | None:
    """The text of the first candidate (thought parts skipped), or None if there is none."""
    if not response.candidates:
        return None
    content = response.candidates[0].content
    if content is None or not content.parts:
        return None
    texts = [p.text for p in content.parts if p.text and not p.thought]
    return "".join(texts) if texts else None
