"""Exotel voicebot (bidirectional stream) wire protocol: pure parse and emit.

Exotel sends JSON text frames (`connected`, `start`, `media`, `dtmf`, `mark`, `stop`), every value a
string; we answer with `media`, `mark` and `clear`. Nothing here touches a socket: frames in,
dataclasses out, so the module is tested against frames written from the documented format
(developer.exotel.com/docs/agentstream/websocket-protocol).

Outgoing audio follows Exotel's chunk rules (support article 3000108630): at least 100 ms per chunk,
at most 100 KB, always a multiple of 320 bytes; a short last piece makes Exotel wait 20 ms and
leaves a gap, so the tail of a turn is padded with silence instead. The article's minimum reads
"3.2k [100ms data]", which is 100 ms at 16 kHz but 200 ms at 8 kHz; we keep the time (100 ms
at the stream's rate, `EXOTEL_MIN_CHUNK_MS`), since every extra ms is waited by the caller.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from receptionist.untrusted import clean

SUPPORTED_RATES = (8000, 16000, 24000)
CHUNK_ALIGN_BYTES = 320
MAX_CHUNK_BYTES = 100_000
# Exotel's minimum is given as "3.2k [100ms data]" (support article 3000108630), which agree only
# at 16 kHz: at 8 kHz 16-bit, 3,200 bytes is 200 ms. What the minimum protects is the player's
# jitter margin, a matter of time, so we keep 100 ms of audio at the stream's rate (1,600 bytes
# at 8 kHz); `EXOTEL_MIN_CHUNK_MS=200` restores the 3,200-byte reading. Every 20 ms of minimum
# is another 20 ms the caller waits for the first frame of each answer.
DEFAULT_MIN_CHUNK_MS = 100


class ProtocolError(ValueError):
    """A frame we cannot use. `kind` is a short stable label used for counters and the call row."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    from_number: str
    to_number: str
    custom_parameters: dict[str, str]
    sample_rate: int
    encoding: str
    bit_rate: int


@dataclass(frozen=True, slots=True)
class Media:
    sequence: int
    chunk: int
    timestamp_ms: int
    pcm: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str
    reason: str


Event = Connected | Start | Media | Dtmf | Mark | Stop


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _body(msg: dict[str, Any], key: str) -> dict[str, Any]:
    body = msg.get(key)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ProtocolError("missing_field", f"{key} is not an object")
    return body


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


# Everything from Exotel is bounded and cleaned here, where it enters: ids are the keys of our
# rows and appear in every log line, so one with a control character or of absurd length is
# refused outright; free text (numbers, parameters, mark names) loses its control characters
# and is cut to a length no real value reaches. PostgreSQL refuses NUL in text and JSON.
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
MAX_NUMBER_CHARS = 32
MAX_PARAMS = 32
MAX_PARAM_KEY_CHARS = 64
MAX_PARAM_VALUE_CHARS = 512
MAX_LABEL_CHARS = 128


def _id(value: Any, field_name: str, *, required: bool) -> str:
    text = _str(value)
    if not text and not required:
        return ""
    if not _ID.fullmatch(text):
        kind = "missing_field" if not text else "bad_id"
        raise ProtocolError(kind, f"{field_name} {text[:40]!r}" if text else field_name)
    return text


def _text(value: Any, max_chars: int) -> str:
    return clean(_str(value), max_chars)


def parse_frame(data: str | bytes) -> Event:
    """Parse one text frame from Exotel. Raises ProtocolError for anything unusable."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("not_json", str(exc)[:120]) from None
    if not isinstance(msg, dict):
        raise ProtocolError("not_object", type(msg).__name__)
    event = msg.get("event")
    if event == "media":
        return _parse_media(msg)
    if event == "start":
        return _parse_start(msg)
    if event == "connected":
        return Connected()
    if event == "dtmf":
        body = _body(msg, "dtmf")
        digit = _text(body.get("digit"), 8)
        if not digit:
            raise ProtocolError("missing_field", "dtmf.digit")
        return Dtmf(digit=digit, duration_ms=_int(body.get("duration")))
    if event == "mark":
        body = _body(msg, "mark")
        return Mark(name=_text(body.get("name"), MAX_LABEL_CHARS))
    if event == "stop":
        body = _body(msg, "stop")
        return Stop(
            call_sid=_text(body.get("call_sid"), MAX_LABEL_CHARS),
            reason=_text(body.get("reason"), MAX_LABEL_CHARS),
        )
    raise ProtocolError("unknown_event", _text(event, 40) or "(none)")


def _parse_media(msg: dict[str, Any]) -> Media:
    body = msg.get("media")
    if not isinstance(body, dict):
        raise ProtocolError("missing_field", "media")
    payload = body.get("payload")
    if not isinstance(payload, str):
        raise ProtocolError("missing_field", "media.payload")
    try:
        pcm = binascii.a2b_base64(payload, strict_mode=True)
    except ValueError as exc:  # binascii.Error, and plain ValueError for a non-ASCII payload
        raise ProtocolError("bad_base64", str(exc)[:80]) from None
    if len(pcm) & 1:
        raise ProtocolError("odd_length_pcm", f"{len(pcm)} bytes")
    return Media(
        sequence=_int(msg.get("sequence_number")),
        chunk=_int(body.get("chunk")),
        timestamp_ms=_int(body.get("timestamp")),
        pcm=pcm,
    )


def _parse_start(msg: dict[str, Any]) -> Start:
    body = msg.get("start")
    if not isinstance(body, dict):
        raise ProtocolError("missing_field", "start")
    call_sid = _id(body.get("call_sid"), "start.call_sid", required=True)
    stream_sid = _id(
        body.get("stream_sid") or msg.get("stream_sid"), "start.stream_sid", required=False
    )
    fmt = _body(body, "media_format")
    raw_rate = fmt.get("sample_rate")
    rate = 8000 if raw_rate in (None, "") else _int(raw_rate, -1)
    if rate not in SUPPORTED_RATES:
        raise ProtocolError("bad_sample_rate", str(fmt.get("sample_rate")))
    params = body.get("custom_parameters") or {}
    if not isinstance(params, dict):
        params = {}
    custom: dict[str, str] = {}
    for key, value in params.items():
        name = _text(key, MAX_PARAM_KEY_CHARS)
        if name and len(custom) < MAX_PARAMS:  # the rest is dropped, not the call
            custom[name] = _text(value, MAX_PARAM_VALUE_CHARS)
    return Start(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=_text(body.get("account_sid"), MAX_LABEL_CHARS),
        from_number=_text(body.get("from"), MAX_NUMBER_CHARS),
        to_number=_text(body.get("to"), MAX_NUMBER_CHARS),
        custom_parameters=custom,
        sample_rate=rate,
        encoding=_text(fmt.get("encoding"), MAX_LABEL_CHARS) or "audio/x-raw",
        bit_rate=_int(fmt.get("bit_rate"), 16),
    )


# --- emit -------------------------------------------------------------------------------------


class Emitter:
    """Builds our outgoing frames for one stream. The stream_sid is JSON-escaped once, so a media
    frame costs one base64 encode and one string join."""

    __slots__ = ("_clear", "_media_head", "_sid_json")

    def __init__(self, stream_sid: str) -> None:
        self._sid_json = orjson.dumps(stream_sid).decode()
        self._media_head = (
            '{"event":"media","stream_sid":' + self._sid_json + ',"media":{"payload":"'
        )
        self._clear = '{"event":"clear","stream_sid":' + self._sid_json + "}"

    def media(self, pcm: bytes) -> str:
        return self._media_head + binascii.b2a_base64(pcm, newline=False).decode() + '"}}'

    def mark(self, name: str) -> str:
        return (
            '{"event":"mark","stream_sid":'
            + self._sid_json
            + ',"mark":{"name":'
            + orjson.dumps(name).decode()
            + "}}"
        )

    def clear(self) -> str:
        return self._clear


@dataclass(slots=True)
class OutboundChunker:
    """Accumulates agent PCM and releases chunks that satisfy Exotel's size rules.

    `push` returns the chunks ready now (each >= `min_ms` of audio and a multiple of 320 bytes);
    `flush` returns the remainder padded with silence to a multiple of 320 bytes (end of a turn);
    `reset` drops everything (barge-in).
    """

    sample_rate: int = 8000
    min_ms: int = DEFAULT_MIN_CHUNK_MS
    _buf: bytearray = field(default_factory=bytearray)

    @property
    def min_bytes(self) -> int:
        """`min_ms` of audio, rounded up to Exotel's 320-byte alignment."""
        raw = self.sample_rate * 2 * self.min_ms // 1000
        return max(CHUNK_ALIGN_BYTES, -(-raw // CHUNK_ALIGN_BYTES) * CHUNK_ALIGN_BYTES)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def push(self, pcm: bytes) -> list[bytes]:
        self._buf += pcm
        if len(self._buf) < self.min_bytes:
            return []
        usable = len(self._buf) - len(self._buf) % CHUNK_ALIGN_BYTES
        step = MAX_CHUNK_BYTES - MAX_CHUNK_BYTES % CHUNK_ALIGN_BYTES
        out: list[bytes] = []
        start = 0
        while usable - start > MAX_CHUNK_BYTES:
            out.append(bytes(self._buf[start : start + step]))
            start += step
        if usable - start >= self.min_bytes:
            out.append(bytes(self._buf[start:usable]))
            start = usable
        # A remainder under the minimum (only after a split) waits for more audio or flush().
        del self._buf[:start]
        return out

    def flush(self) -> list[bytes]:
        if not self._buf:
            return []
        pad = (-len(self._buf)) % CHUNK_ALIGN_BYTES
        if pad:
            self._buf += b"\x00" * pad
        out = self.push(b"")
        if self._buf:  # shorter than the minimum: still send it, padded and aligned
            out.append(bytes(self._buf))
            self._buf.clear()
        return out

    def reset(self) -> None:
        self._buf.clear()


# --- frames Exotel sends (used by the simulated caller and tests) -----------------------------


def connected_frame() -> str:
    return '{"event":"connected"}'


def start_frame(
    *,
    stream_sid: str,
    call_sid: str,
    from_number: str,
    to_number: str,
    account_sid: str = "ACsimulated",
    custom_parameters: dict[str, str] | None = None,
    sample_rate: int = 8000,
    sequence: int = 1,
) -> str:
    return orjson.dumps(
        {
            "event": "start",
            "sequence_number": str(sequence),
            "stream_sid": stream_sid,
            "start": {
                "stream_sid": stream_sid,
                "call_sid": call_sid,
                "account_sid": account_sid,
                "from": from_number,
                "to": to_number,
                "custom_parameters": custom_parameters or {},
                "media_format": {
                    "encoding": "audio/x-raw",
                    "sample_rate": str(sample_rate),
                    "bit_rate": "16",
                },
            },
        }
    ).decode()


def caller_media_frame(
    stream_sid: str, pcm: bytes, *, sequence: int, chunk: int, timestamp_ms: int
) -> str:
    return (
        '{"event":"media","sequence_number":"'
        + str(sequence)
        + '","stream_sid":'
        + orjson.dumps(stream_sid).decode()
        + ',"media":{"chunk":"'
        + str(chunk)
        + '","timestamp":"'
        + str(timestamp_ms)
        + '","payload":"'
        + binascii.b2a_base64(pcm, newline=False).decode()
        + '"}}'
    )


def dtmf_frame(stream_sid: str, digit: str, *, sequence: int, duration_ms: int = 100) -> str:
    return orjson.dumps(
        {
            "event": "dtmf",
            "sequence_number": str(sequence),
            "stream_sid": stream_sid,
            "dtmf": {"digit": digit, "duration": str(duration_ms)},
        }
    ).decode()


def mark_frame(stream_sid: str, name: str, *, sequence: int) -> str:
    return orjson.dumps(
        {
            "event": "mark",
            "sequence_number": str(sequence),
            "stream_sid": stream_sid,
            "mark": {"name": name},
        }
    ).decode()


def stop_frame(stream_sid: str, call_sid: str, *, sequence: int, reason: str = "callended") -> str:
    return orjson.dumps(
        {
            "event": "stop",
            "sequence_number": str(sequence),
            "stream_sid": stream_sid,
            "stop": {"call_sid": call_sid, "account_sid": "ACsimulated", "reason": reason},
        }
    ).decode()


def parse_outbound(data: str | bytes) -> dict[str, Any]:
    """Parse a frame we sent (for the simulated caller): returns the dict, with `media.payload`
    decoded to bytes under `pcm`."""
    msg = orjson.loads(data)
    if not isinstance(msg, dict):
        raise ProtocolError("not_object", type(msg).__name__)
    if msg.get("event") == "media":
        try:
            msg["pcm"] = binascii.a2b_base64(msg["media"]["payload"], strict_mode=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ProtocolError("bad_media", str(exc)[:80]) from None
    return msg
