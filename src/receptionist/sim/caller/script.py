"""What a simulated caller is told (script, options) and what it reports (result, transcript
events)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

#: Silence after a voiced frame that ends a caller turn when a WAV is split into turns.
TURN_GAP_MS = 500
#: A frame is voiced if any window of this length in it is: the Gemini Live double's VAD window,
#: so the caller and the double agree on which frame ends a turn.
VOICE_WINDOW_MS = 10


@dataclass(slots=True)
class CallerScript:
    """What the simulated caller says and when."""

    utterances: list[str] = field(default_factory=list)
    #: Silence sent right after each utterance (the voice model needs ~500 ms to end a turn).
    pause_ms: int = 700
    #: Before each utterance, wait until the agent's reply is over (quiet for `agent_quiet_ms`
    #: after some agent audio since the caller's previous turn) or `turn_timeout_s` passed.
    wait_for_agent: bool = True
    agent_quiet_ms: int = 600
    turn_timeout_s: float = 15.0
    #: After the final agent reply is over, keep the line open this long, then send `stop`.
    hangup_after_ms: int = 800
    #: Utterance index -> ms after the agent's current reply (greeting for index 0) *started*:
    #: speak over the agent instead of waiting for it to finish.
    barge_in: dict[int, int] = field(default_factory=dict)
    #: Utterance index -> DTMF digits pressed just before that utterance.
    dtmf: dict[int, str] = field(default_factory=dict)
    #: Utterance index -> silence after it, instead of `pause_ms`.
    pause_after_ms: dict[int, int] = field(default_factory=dict)


def new_call_sid() -> str:
    return "CAsim" + uuid.uuid4().hex[:24]


def new_stream_sid() -> str:
    return "MZsim" + uuid.uuid4().hex[:24]


@dataclass(slots=True)
class CallOptions:
    #: ws://host:port/exotel/<tenant>, possibly with a query (e.g. `?sample-rate=16000`).
    url: str
    call_sid: str = field(default_factory=new_call_sid)
    stream_sid: str = field(default_factory=new_stream_sid)
    from_number: str = "+919800000099"
    to_number: str = "+918000000001"
    #: the Exotel account the start frame names (the REST double sends its own)
    account_sid: str = "ACsimulated"
    custom_parameters: dict[str, str] = field(default_factory=dict)
    sample_rate: int = 8000
    frame_ms: int = 100
    #: Pace media at real time on a monotonic schedule. When False, scripted audio (utterances,
    #: DTMF and the pause after each utterance) goes out as fast as the socket takes it; the
    #: silence sent while *waiting* for the agent is still paced, since waiting is real time.
    realtime: bool = True
    #: (user, token) -> `Authorization: Basic base64(user:token)`.
    auth: tuple[str, str] | None = None
    #: Stream this WAV (16-bit PCM; resampled to `sample_rate`) instead of scripted utterances.
    wav_in: Path | None = None
    #: Save all agent audio received (concatenated, at `sample_rate`) to this WAV.
    wav_out: Path | None = None
    connect_timeout_s: float = 10.0
    max_call_s: float = 120.0
    on_event: Callable[[TranscriptEvent], None] | None = None
    #: Speak the utterances with this voice, (text, sample_rate) -> PCM16 mono, e.g. the local
    #: engine's text-to-speech (see `sim.voice`); None: the deterministic tone-speech.
    voice: Callable[[str, int], Awaitable[bytes]] | None = None


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """Something that happened on the call, `t_ms` after the start frame was sent.

    Kinds: connected, caller_said, dtmf, agent_audio_start, agent_audio_end, clear, mark,
    bad_frame, turn_timeout, hangup, closed, error.
    """

    t_ms: float
    kind: str
    text: str = ""


@dataclass(slots=True)
class CallResult:
    call_sid: str
    ok: bool = False
    error: str | None = None
    close_code: int | None = None
    close_reason: str = ""
    #: "caller" when we sent `stop` first, "server" when the server closed before that.
    closed_by: str = ""
    greeting_ms: float | None = None
    response_ms: list[float] = field(default_factory=list)
    agent_audio_ms: float = 0.0
    #: All WebSocket messages sent / received (any event).
    frames_sent: int = 0
    frames_received: int = 0
    media_sent: int = 0
    media_received: int = 0
    clears: int = 0
    #: Agent audio still queued for playback when a `clear` arrived (dropped), in ms.
    cleared_ms: float = 0.0
    marks_echoed: int = 0
    bad_frames: int = 0
    turn_timeouts: int = 0
    #: Caller turns that got no agent reply before the caller spoke again or hung up.
    unanswered_turns: int = 0
    #: Worst lateness of a paced media frame behind its schedule (client overload), in ms.
    max_send_lag_ms: float = 0.0
    duration_s: float = 0.0
    events: list[TranscriptEvent] = field(default_factory=list)
    #: The call's clock (`time.monotonic` by default: system-wide on Linux, so comparable with
    #: a double's records in another process) when the `start` frame was sent; every `*_ms`
    #: figure and event time here counts from it.
    start_sent_at: float | None = None
    #: Per caller turn: ms after start at which the frame carrying the end of its speech was sent.
    turn_end_ms: list[float] = field(default_factory=list)
    #: Per answered turn (parallel to `response_ms`): ms after start at which the first agent
    #: audio of the reply arrived; `response_ms[i] == reply_start_ms[i] - <its turn_end_ms>`.
    reply_start_ms: list[float] = field(default_factory=list)


def exotel_url(
    base: str, tenant: str, *, sample_rate: int = 8000, params: dict[str, str] | None = None
) -> str:
    """`base` (ws://host:port) + `/exotel/<tenant>` with `sample-rate` and custom parameters in
    the query, the way an Exotel Voicebot applet URL is configured."""
    query: dict[str, str] = {}
    if sample_rate != 8000:
        query["sample-rate"] = str(sample_rate)
    query.update(params or {})
    url = base.rstrip("/") + "/exotel/" + tenant
    return url + ("?" + urlencode(query) if query else "")
