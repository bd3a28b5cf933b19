"""Builds a call's transcript from the engine's transcription pieces.

Gemini sends the caller's transcription in pieces, often after the agent has started answering;
so one exchange (caller turn + agent turn) is kept open and committed in speaking order when the
agent's turn completes or is interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Turn:
    speaker: str
    start_ms: float
    end_ms: float
    parts: list[str] = field(default_factory=list)
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "speaker": self.speaker,
            "text": "".join(self.parts).strip(),
            "start_ms": round(self.start_ms),
            "end_ms": round(self.end_ms),
        }
        if self.interrupted:
            d["interrupted"] = True
        return d


class TranscriptRecorder:
    __slots__ = ("_agent", "_caller", "turns")

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self._caller: _Turn | None = None
        self._agent: _Turn | None = None

    def caller_text(self, text: str, t_ms: float, *, voiced_ms: float | None = None) -> bool:
        """A piece of the caller's words, transcribed at `t_ms`; `voiced_ms`: when the caller's
        voice was first heard for them (the transcription comes once they are said), used as
        the turn's start (so a recording plays the words from there), never before the last
        line's end. True: this piece began a new turn."""
        opened = self._caller is None
        if self._caller is None:
            start = t_ms
            if voiced_ms is not None:
                floor = self.turns[-1]["end_ms"] if self.turns else 0
                start = min(t_ms, max(voiced_ms, floor))
            self._caller = _Turn("caller", start, t_ms)
        self._caller.parts.append(text)
        self._caller.end_ms = t_ms
        return opened

    def agent_text(self, text: str, t_ms: float) -> None:
        self.agent_activity(t_ms)
        assert self._agent is not None
        self._agent.parts.append(text)

    def agent_activity(self, t_ms: float) -> None:
        if self._agent is None:
            self._agent = _Turn("agent", t_ms, t_ms)
        self._agent.end_ms = t_ms

    def agent_done(self, t_ms: float, *, interrupted: bool = False) -> dict[str, Any] | None:
        """Commit the open exchange; returns the agent turn if one was open (even if silent)."""
        agent = self._agent
        if self._caller is not None:
            said = self._caller.as_dict()
            if said["text"]:
                self.turns.append(said)
        self._caller = None
        self._agent = None
        if agent is None:
            return None
        agent.end_ms = max(agent.end_ms, t_ms)
        agent.interrupted = interrupted
        turn = agent.as_dict()
        if turn["text"] or interrupted:
            self.turns.append(turn)
        return turn

    def drop_open_caller(self) -> None:
        """Forget the caller's words not yet committed: the engine's new session hears them
        again and sends their text anew (see engines.base.Reconnected)."""
        self._caller = None

    def cut_last_agent_turn(self, t_ms: float) -> bool:
        """The caller spoke over an agent turn that was complete but still playing (an engine
        that hands over its audio faster than it is played): mark that turn interrupted."""
        if self._agent is not None:
            return False
        for turn in reversed(self.turns):
            if turn["speaker"] == "agent":
                turn["interrupted"] = True
                turn["end_ms"] = round(t_ms)
                return True
            if turn["text"]:
                return False  # the caller has spoken since: that turn was heard out
        return False

    def version(self) -> tuple[Any, ...]:
        """Changes whenever `snapshot` would show new text (cheap: no copy), so a checkpoint
        skips calls where nothing was said since the last one."""
        last = self.turns[-1] if self.turns else None
        return (
            len(self.turns),
            last and last["end_ms"],
            last and last.get("interrupted"),
            len(self._caller.parts) if self._caller else -1,
            len(self._agent.parts) if self._agent else -1,
        )

    def snapshot(self, t_ms: float) -> list[dict[str, Any]]:
        """Everything so far, including an exchange still open (call ended mid-sentence)."""
        out = list(self.turns)
        if self._caller is not None:
            said = self._caller.as_dict()
            if said["text"]:
                out.append(said)
        if self._agent is not None and self._agent.parts:
            open_turn = self._agent.as_dict()
            open_turn["end_ms"] = round(max(self._agent.end_ms, t_ms))
            open_turn["incomplete"] = True
            out.append(open_turn)
        return out

    def last_caller_text(self) -> str:
        for t in reversed(self.turns):
            if t["speaker"] == "caller":
                return str(t["text"])
        return ""
