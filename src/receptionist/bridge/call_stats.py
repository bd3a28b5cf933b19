"""What one call counts (frames, bytes, marks, latencies) and how its WebSocket close reads.

`CallStats` is written by the session's two pumps on every frame (plain int fields on a slotted
dataclass: the cheapest counters Python has) and stored on the call row at the end (`as_json`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from receptionist.bridge.latency import LatencyHistogram

# How a WebSocket close code reads on the call row (RFC 6455 section 7.4.1).
CLOSE_REASONS = {
    1002: "protocol_error",
    1007: "invalid_frame_data",  # e.g. a text frame that is not UTF-8
    1009: "frame_too_large",
    1012: "server_restart",
}
NO_CODE = 1005  # the close frame gave no code


def close_reason(code: int) -> tuple[str, bool]:
    """The call row's end reason for a caller's close code, and whether the code says something
    went wrong (worth a note on the row; a server restart is routine)."""
    reason = CLOSE_REASONS.get(code, "caller_disconnected")
    return reason, code in CLOSE_REASONS and code != 1012


@dataclass(slots=True)
class CallStats:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    clears: int = 0
    marks_sent: int = 0
    marks_received: int = 0
    dtmf: int = 0
    interruptions: int = 0
    agent_turns: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)
    latency_in: LatencyHistogram = field(default_factory=LatencyHistogram)
    latency_out: LatencyHistogram = field(default_factory=LatencyHistogram)
    greeting_ms: float | None = None
    greeting_source: str = ""  # "cache" | "engine" ("" : no greeting)
    start_to_greeting_ms: float | None = None  # Exotel `start` read → first agent frame sent

    def as_json(self) -> dict[str, Any]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "clears": self.clears,
            "marks_sent": self.marks_sent,
            "marks_received": self.marks_received,
            "dtmf": self.dtmf,
            "interruptions": self.interruptions,
            "agent_turns": self.agent_turns,
            "bad_frames": dict(self.bad_frames),
            "greeting_ms": _round(self.greeting_ms),
            "greeting_source": self.greeting_source,
            "start_to_greeting_ms": _round(self.start_to_greeting_ms),
            "latency_in": self.latency_in.to_json(),
            "latency_out": self.latency_out.to_json(),
        }


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)
