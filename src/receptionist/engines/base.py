"""The VoiceEngine interface: what the bridge needs from any realtime voice model.

An engine takes the caller's audio at `input_rate` and yields typed events. Events are plain
slotted dataclasses: the bridge dispatches on their type with a few `isinstance` checks per frame,
no queues or per-frame tasks in between.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from receptionist.usage import TokenUsage

if TYPE_CHECKING:
    from receptionist.tenants.model import Tenant


@dataclass(frozen=True, slots=True)
class AgentAudio:
    pcm: bytes  # 16-bit mono at the engine's output_rate


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    text: str  # a piece of what the engine heard; pieces of one turn are concatenated


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    text: str  # a piece of what the agent said


@dataclass(frozen=True, slots=True)
class TurnComplete:
    pass


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The caller spoke over the agent: drop any agent audio not yet played."""


@dataclass(frozen=True, slots=True)
class GoingAway:
    """The engine's server will close the session soon (Gemini `goAway`)."""

    time_left_s: float | None


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The engine replaced its model session (a goAway, or a dropped connection) and the call
    goes on. `resumed`: the server restored the conversation from a resumption handle; else a
    fresh session was given the conversation so far. `cut_turn`: the model's turn in flight was
    lost (the bridge records it as cut, not as said). `redo_caller`: the caller's words since
    the last committed turn are heard again by the new session (the bridge drops its open text
    so they are not written twice). `gap_ms`: how long no session took the caller's audio;
    `replayed_ms`/`dropped_ms`: caller audio sent again to the new session / lost."""

    cause: str  # "go_away" | "dropped"
    resumed: bool
    attempts: int
    gap_ms: float
    replayed_ms: float = 0.0
    dropped_ms: float = 0.0
    cut_turn: bool = False
    redo_caller: bool = False


@dataclass(frozen=True, slots=True)
class EndCall:
    """The engine decided the call is over; its goodbye is the turn being spoken now. The bridge
    hangs up once that turn has been heard."""

    reason: str = "agent_ended"


@dataclass(frozen=True, slots=True)
class HandoffRequested:
    """The engine passes the caller to a person (the local brain heard "can I talk to the
    owner?"); its "putting you through" line is the turn being spoken now. The bridge records who
    and why and ends the stream once the line is heard, so Exotel's flow goes on to its Connect
    applet (bridge/handoff.py)."""

    reason: str = "caller_asked"
    who: str | None = None


@dataclass(frozen=True, slots=True)
class EngineNote:
    """Something the call's record should show (e.g. "the model was down: fallback used")."""

    kind: str
    detail: str = ""
    level: int = logging.WARNING  # how loudly the bridge logs it (routine figures: DEBUG)


@dataclass(frozen=True, slots=True)
class EngineClosed:
    """The engine stopped producing events; `error` is set when that was not asked for."""

    error: str | None = None


EngineEvent = (
    AgentAudio
    | CallerTranscript
    | AgentTranscript
    | TurnComplete
    | Interrupted
    | TokenUsage  # tokens billed for one model response (purpose 'live')
    | GoingAway
    | Reconnected
    | EndCall
    | HandoffRequested
    | EngineNote
    | EngineClosed
)


class EngineError(RuntimeError):
    """The engine could not start or failed; the message is safe to store on the call row."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool the model may call during the call: its name, what it does, its arguments as a
    JSON schema; `blocking` False lets the model keep talking while it runs (Gemini
    `NON_BLOCKING`), the answer then told when the model is idle."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    blocking: bool = True


class ToolRunner(Protocol):
    """The call's tools (receptionist.tools.ToolBox): the same functions for every engine.
    `run` never raises and is bounded in time: a failing, slow, refused or badly called tool
    comes back as a polite result the model can say, and is recorded on the call."""

    @property
    def specs(self) -> tuple[ToolSpec, ...]: ...

    @property
    def instruction(self) -> str:
        """Words for the system instruction: today's date, how to use the tools."""
        ...

    async def run(self, name: str, args: Any) -> dict[str, Any]: ...

    def delivered(self, result: dict[str, Any]) -> None:
        """`result` (from `run`) reached the model, or was spoken to the caller: what it
        holds is confirmed at the call's end (what was never delivered is released)."""
        ...


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """What one call asks of an engine."""

    call_sid: str
    tenant_id: str
    system_instruction: str
    language: str  # BCP-47 primary language, e.g. "hi-IN"
    voice: str | None = None
    model: str | None = None
    engine: str | None = None  # the tenant's choice ("gemini-live" | "local"); None: default
    tenant: Tenant | None = None  # engines that answer from the tenant's files need it
    caller_number: str | None = None
    caller_sample_rate: int | None = None  # the caller's line (Exotel's start): 8000 or 16000
    tools: ToolRunner | None = None  # the tenant's tools enabled for this call; None: none


class VoiceEngine(Protocol):
    name: str
    model: str
    input_rate: int
    output_rate: int

    async def connect(self) -> None:
        """Open the session; raise EngineError with a clear reason on failure."""

    async def say(self, text: str, kind: str | None = None) -> None:
        """Make the agent speak `text` now. `kind` says which fixed line it is ("greeting" or a
        CallMessages field name) so an engine that cannot speak the text's language can use
        its own words for it."""

    async def send_audio(self, pcm: bytes) -> None:
        """Caller audio at `input_rate`."""

    def events(self) -> AsyncIterator[EngineEvent]:
        """Events until the session ends; the last one is EngineClosed."""
        ...

    async def close(self) -> None:
        """Close the session; idempotent."""


@runtime_checkable
class GreetsFromCache(Protocol):
    """An engine whose greeting the bridge may play from a cache of its own earlier audio.

    `voice_id` names everything that shapes how the agent sounds (engine, model, voice): it is
    part of the cache key, so a new voice or model never plays an old recording.
    `greeting_played(text)` is called before `connect()` when the caller is already hearing the
    greeting `text` from the cache: the engine must not greet, and must carry on as if it had
    said those words (they are in its conversation so far)."""

    voice_id: str

    def greeting_played(self, text: str) -> None: ...


class EngineFactory(Protocol):
    def __call__(self, request: EngineRequest) -> VoiceEngine: ...
