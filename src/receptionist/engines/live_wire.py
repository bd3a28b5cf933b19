"""Gemini Live per-frame wire format, pure: our audio frame out, server messages to events.

The google-genai SDK opens the session (URL, key, setup frame, errors) and sends the rare text
turns; but routing every 20–100 ms audio frame through its pydantic models cost ~40 % of the
bridge's CPU (bench/results, py-spy). So audio frames are serialised here once, and server
messages are parsed with orjson straight into engine events. The shapes are the documented
BidiGenerateContent JSON (server messages in lowerCamelCase), as PROTOCOLS.md records them.
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    EngineEvent,
    GoingAway,
    Interrupted,
    TurnComplete,
)
from receptionist.usage import TokenUsage

_AUDIO_HEAD = '{"realtime_input":{"audio":{"mime_type":"audio/pcm;rate=16000","data":"'
_AUDIO_TAIL = '"}}}'


def audio_frame(pcm: bytes) -> str:
    """One realtime_input audio message (16 kHz PCM), built by string joining."""
    return _AUDIO_HEAD + binascii.b2a_base64(pcm, newline=False).decode() + _AUDIO_TAIL


def _modalities(details: Any) -> tuple[int, int]:
    audio = text = 0
    for d in details or ():
        count = int(d.get("tokenCount") or 0)
        modality = d.get("modality")
        if modality == "AUDIO":
            audio += count
        elif modality == "TEXT":
            text += count
    return audio, text


def _seconds(value: Any) -> float | None:
    try:
        return float(str(value).rstrip("s"))
    except ValueError:
        return None


class ToolCall:
    """One function call of a `toolCall` message: the engine runs it and answers with its id."""

    __slots__ = ("args", "call_id", "name")

    def __init__(self, call_id: str, name: str, args: Any) -> None:
        self.call_id, self.name, self.args = call_id, name, args


class ServerMessage:
    """A parsed server message: its events plus the session-level facts the engine keeps."""

    __slots__ = ("cancelled_calls", "events", "resumption_handle", "tool_calls")

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.resumption_handle: str | None = None
        self.tool_calls: list[ToolCall] = []
        self.cancelled_calls: list[str] = []


MAX_TOOL_CALLS = 8  # per message; a real model sends one or two


def _tool_calls(out: ServerMessage, tc: Any, tcc: Any) -> None:
    """`toolCall.functionCalls[] {id, name, args}` and `toolCallCancellation.ids[]`; entries
    that are not of that shape are skipped (the arguments themselves are checked by the tool)."""
    calls = tc.get("functionCalls") if isinstance(tc, dict) else None
    for call in (calls if isinstance(calls, list) else ())[:MAX_TOOL_CALLS]:
        if not isinstance(call, dict):
            continue
        call_id, name = call.get("id"), call.get("name")
        if isinstance(call_id, str) and isinstance(name, str) and call_id and name:
            out.tool_calls.append(ToolCall(call_id[:128], name[:64], call.get("args")))
    ids = tcc.get("ids") if isinstance(tcc, dict) else None
    for call_id in (ids if isinstance(ids, list) else ())[:MAX_TOOL_CALLS]:
        if isinstance(call_id, str):
            out.cancelled_calls.append(call_id[:128])


def parse_server_message(raw: bytes | str, model: str) -> ServerMessage:
    """Raises ValueError for a message that is not a JSON object."""
    msg = orjson.loads(raw)
    if not isinstance(msg, dict):
        raise ValueError("Live message is not a JSON object")
    out = ServerMessage()
    events = out.events
    sc = msg.get("serverContent")
    if sc:
        if sc.get("interrupted"):
            events.append(Interrupted())
        it = sc.get("inputTranscription")
        if it and it.get("text"):
            events.append(CallerTranscript(it["text"]))
        mt = sc.get("modelTurn")
        if mt:
            for part in mt.get("parts") or ():
                blob = part.get("inlineData")
                if blob and blob.get("data"):
                    events.append(AgentAudio(binascii.a2b_base64(blob["data"])))
        ot = sc.get("outputTranscription")
        if ot and ot.get("text"):
            events.append(AgentTranscript(ot["text"]))
        if sc.get("turnComplete"):
            events.append(TurnComplete())
    um = msg.get("usageMetadata")
    if um:
        in_audio, in_text = _modalities(um.get("promptTokensDetails"))
        out_audio, out_text = _modalities(um.get("responseTokensDetails"))
        events.append(
            TokenUsage(
                model_name=model,
                input_tokens=int(um.get("promptTokenCount") or 0),
                output_tokens=int(um.get("responseTokenCount") or 0),
                total_tokens=int(um.get("totalTokenCount") or 0),
                input_audio_tokens=in_audio,
                input_text_tokens=in_text,
                output_audio_tokens=out_audio,
                output_text_tokens=out_text,
            )
        )
    sru = msg.get("sessionResumptionUpdate")
    if sru and sru.get("resumable") and sru.get("newHandle"):
        out.resumption_handle = sru["newHandle"]
    tc, tcc = msg.get("toolCall"), msg.get("toolCallCancellation")
    if tc is not None or tcc is not None:
        _tool_calls(out, tc, tcc)
    ga = msg.get("goAway")
    if ga is not None:
        events.append(GoingAway(_seconds(ga.get("timeLeft")) if ga.get("timeLeft") else None))
    return out
