"""The Gemini Live double's constants and data model: scripts, failures, what a session recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PATH_SUFFIX = "GenerativeService.BidiGenerateContent"
AGENT_SAMPLE_RATE = 24000
AGENT_MIME = "audio/pcm;rate=24000"
AUDIO_TOKENS_PER_S = 25
INVALID_KEY_CLOSE_CODE = 1007
INVALID_KEY_REASON = "API key not valid. Please pass a valid API key."
HISTORY_CONFIG_REFUSED = (
    "Invalid JSON payload received. Unknown name \"historyConfig\" at 'setup': Cannot find field."
)
INTERNAL_ERROR_CODE = 1011
INTERNAL_ERROR_REASON = "Internal error encountered."
#: What the double answers a setup whose resumption handle it does not honour (close 1007, like
#: the real service's invalid-argument closes; the wording is ours).
INVALID_HANDLE_REASON = "Session resumption handle is invalid or has expired."
#: The close the real service sends when a connection's time is up after a goAway.
DEADLINE_REASON = "Deadline expired before operation could complete."
DEFAULT_REPLY = "Sure, I can help with that."
MAX_STORED_FRAMES = 2000  # per session; audio frames are never stored, only counted

#: Energy VAD window. 10 ms windows on the continuous received stream: the decision that the
#: caller stopped moves by at most one window, never by a bridge's chunk size.
VAD_WINDOW_MS = 10


# --------------------------------------------------------------------------- data model


class Hold:
    """A gate the test opens: the double stops at it, reports that, and goes on once released.

    On a reply the double first sends ``after_ms`` of the reply's audio (with the transcription
    that goes with it), or the whole audio if it is shorter, then sets ``reached`` and sends
    the rest (and ``turnComplete``) only after :meth:`release`. Until then the reply is still
    being generated, so caller speech interrupts it however long the wait. A test that never
    releases the hold gets a reply that can only end by barge-in or hang-up. Once released it
    stays open (a reused script passes through it).
    """

    def __init__(self, after_ms: float = 0.0) -> None:
        self.after_ms = after_ms
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def wait_reached(self, within_s: float = 10.0) -> None:
        """Until the double stands at the hold (TimeoutError after ``within_s``: a failure)."""
        async with asyncio.timeout(within_s):
            await self.reached.wait()

    async def stop_here(self) -> None:
        """Called by the double: report arrival, then wait for the release."""
        self.reached.set()
        await self._released.wait()


@dataclass
class ScriptedToolCall:
    """A function call the model makes after a caller's turn (a `toolCall` message)."""

    name: str
    args: Any = field(default_factory=dict)
    #: withdraw it at once (`toolCallCancellation`), as a model does when the caller moves on
    cancel: bool = False


@dataclass
class ScriptedTurn:
    """One caller turn of a script: what the model "heard" and what it replies.

    With ``tool_calls`` the model first calls them (one `toolCall` message) and waits for every
    answer not withdrawn (up to ``CallScript.tool_wait_s``), then replies ``reply``, or what
    ``reply_from`` makes of the answers (``{call name: response}``)."""

    heard: str
    reply: str
    #: Stop the reply part-way until the test releases it.
    hold: Hold | None = None
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    reply_from: Callable[[dict[str, Any]], str] | None = None


@dataclass
class CallScript:
    """What the fake model says during one session."""

    turns: list[ScriptedTurn] = field(default_factory=list)
    greeting: str | None = None
    fallback_reply: str = DEFAULT_REPLY
    #: Input transcription for caller turns beyond ``turns`` ("" → none is sent).
    fallback_heard: str = ""
    #: Think time before the first audio chunk of every reply.
    reply_delay_ms: int = 0
    #: Stop the greeting part-way until the test releases it.
    greeting_hold: Hold | None = None
    #: How long the model waits for a tool's answer before it replies without it.
    tool_wait_s: float = 10.0


@dataclass
class Failure:
    """Fault injection."""

    reject_key: bool = False  # every key is rejected (close 1007 after the setup frame)
    close_after_turns: int | None = None  # close 1011 right after the N-th completed reply
    go_away_after_s: float | None = None  # send goAway this many seconds after setupComplete
    go_away_time_left: str = "10s"
    fail_setup: bool = False  # close 1011 right after receiving setup
    #: sessions from this index on fail like ``fail_setup`` (a service that stays down)
    fail_sessions_from: int | None = None
    accept_delay_s: float = 0.0  # slow opening handshake
    hold_handshake: Hold | None = None  # the opening handshake waits until released
    #: a model whose setup takes no ``historyConfig``: close 1007 naming the unknown field
    reject_history_config: bool = False
    #: Faults at chosen points, on the first ``fault_sessions`` sessions only and never on a
    #: resumed one (so a call meets each fault once): drop the connection after this much of
    #: a scripted reply's audio (the model speaking), or after this much caller speech.
    drop_mid_reply_ms: float | None = None
    drop_mid_speech_ms: float | None = None
    #: send goAway after this much of a scripted reply's audio (then close when time is up)
    go_away_mid_reply_ms: float | None = None
    fault_sessions: int = 1
    #: how a drop looks: None = the TCP connection is cut (no close frame: the client sees
    #: 1006); else a close frame with this code (e.g. 1011)
    drop_code: int | None = None
    #: a setup carrying ``sessionResumption.handle`` is refused (close 1007): an expired or
    #: unknown handle, as the real service answers one
    refuse_resumption: bool = False
    #: refuse (close 1011) a resume while the session the handle came from is still connected
    #: (reported of the real service; the bridge must then close the old socket first)
    refuse_concurrent_resume: bool = False
    #: handles stay valid this long after their session closed (the documented 2 hours)
    handle_ttl_s: float = 7200.0


@dataclass
class CallerTurn:
    index: int
    source: str  # "audio" | "activity" | "text" | "client_content"
    heard: str
    speech_ms: float
    ended_at: float  # the double's clock
    barge_in: bool = False


@dataclass
class AgentReply:
    text: str
    kind: str  # "greeting" | "echo" | "turn" | "fallback"
    started_at: float  # the double's clock when the reply was decided
    first_audio_at: float | None = None
    ended_at: float | None = None
    audio_ms: float = 0.0  # agent audio actually sent
    chunks: int = 0
    completed: bool = False  # turnComplete sent
    interrupted: bool = False


@dataclass
class ToolCallRecord:
    """A function call the double made and what came back for it."""

    call_id: str
    name: str
    args: Any
    sent_at: float  # the double's clock
    sent_perf: float  # time.perf_counter(), for round-trip figures
    cancelled: bool = False
    response: Any = None
    scheduling: str | None = None
    answered_at: float | None = None
    answered_perf: float | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


@dataclass
class LiveSessionRecord:
    """What happened on one connection. Light: audio is only counted, never stored."""

    index: int
    path: str
    api_key: str | None
    headers: dict[str, str]
    key_ok: bool
    connected_at: float  # the double's clock
    connected_wall: float  # time.time()
    setup: dict[str, Any] | None = None
    model: str | None = None
    system_instruction: str | None = None
    setup_at: float | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # non-audio client frames
    #: Initial history (setup `historyConfig.initialHistoryInClientContent`): {"role", "text"}
    history: list[dict[str, str]] = field(default_factory=list)
    frames_dropped: int = 0
    frame_counts: dict[str, int] = field(default_factory=dict)
    audio_chunks: int = 0
    audio_bytes: int = 0
    audio_ms: float = 0.0
    caller_turns: list[CallerTurn] = field(default_factory=list)
    replies: list[AgentReply] = field(default_factory=list)
    interruptions: list[float] = field(default_factory=list)  # the double's clock
    usage: list[dict[str, Any]] = field(default_factory=list)  # usageMetadata sent
    resumption_handles: list[str] = field(default_factory=list)
    #: the handle this session resumed from (its context restored), if any
    resumed_from: str | None = None
    #: received caller audio, kept only when the double was made with ``record_audio=True``
    audio_pcm: bytearray = field(default_factory=bytearray)
    #: ``audio_bytes`` at each handle issued (what the handle's context includes)
    handle_audio_bytes: dict[str, int] = field(default_factory=dict)
    #: faults injected on this session: ("drop" | "go_away", the double's clock)
    faults: list[tuple[str, float]] = field(default_factory=list)
    #: function calls made (scripted ``tool_calls``) and their answers
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    #: `toolResponse` entries that answered no open call (unknown or withdrawn id)
    stray_tool_responses: list[dict[str, Any]] = field(default_factory=list)
    go_away_sent_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    error: str | None = None

    @property
    def heard(self) -> list[str]:
        return [t.heard for t in self.caller_turns]

    @property
    def reply_texts(self) -> list[str]:
        return [r.text for r in self.replies]

    @property
    def completed_replies(self) -> int:
        return sum(1 for r in self.replies if r.completed)
