"""The watchdog's decision, a few times a second: end a call whose goodbye was heard, say goodbye
at the maximum call length, ask a silent caller whether they are still there, or hang up on one
who stays silent.

Sans-I/O, like telephony/exotel.py: the session passes the clock readings it keeps (all
`time.monotonic()` values) and acts on the verdict; nothing here sleeps, sends or logs, so each
rule is tested with plain numbers (tests/unit/test_silence.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Act(enum.Enum):
    WAIT = "wait"  # nothing to do this tick
    END = "end"  # the goodbye was heard (or its grace ran out): close the call
    MAX_DURATION = "max_duration"  # the call is too long: say goodbye
    PROMPT = "prompt"  # silent a while: ask "are you still there?"
    SILENT = "caller_silent"  # silent since the prompt: say goodbye


@dataclass(frozen=True, slots=True)
class Limits:
    max_call_s: float
    prompt_after_s: float  # silence before the prompt
    hangup_after_s: float  # silence before the goodbye, counted from the same start as the prompt


@dataclass(frozen=True, slots=True)
class Clocks:
    started: float  # the call's start
    last_activity: float  # the caller last spoke (a loud frame, or a transcript)
    playback_until: float  # the agent audio sent so far finishes playing
    prompted_at: float | None  # we asked "are you still there?" and heard nothing since


@dataclass(frozen=True, slots=True)
class Hangup:
    """A goodbye in progress: the call ends once it is heard, or at the deadline."""

    goodbye_sent: bool  # the goodbye turn has been sent in full
    deadline: float


@dataclass(frozen=True, slots=True)
class Verdict:
    act: Act
    prompted_at: float | None  # the session's prompt clock after this tick
    silent_s: float = 0.0


def decide(now: float, clocks: Clocks, limits: Limits, hangup: Hangup | None) -> Verdict:
    """What the watchdog does at `now`."""
    if hangup is not None:
        heard = hangup.goodbye_sent and now >= clocks.playback_until
        ended = heard or now >= hangup.deadline
        return Verdict(Act.END if ended else Act.WAIT, clocks.prompted_at)
    if now - clocks.started >= limits.max_call_s:
        return Verdict(Act.MAX_DURATION, clocks.prompted_at)
    prompted_at = clocks.prompted_at
    if prompted_at is not None and clocks.last_activity > prompted_at:
        prompted_at = None  # the caller answered
    # Silence is counted while neither side speaks: the agent's own audio pauses it, and after
    # the prompt it counts afresh from the prompt.
    silent = now - max(clocks.last_activity, clocks.playback_until, prompted_at or 0.0)
    if prompted_at is None:
        if silent >= limits.prompt_after_s:
            return Verdict(Act.PROMPT, now, silent)
        return Verdict(Act.WAIT, None, silent)
    if silent >= limits.hangup_after_s - limits.prompt_after_s:
        return Verdict(Act.SILENT, prompted_at, silent)
    return Verdict(Act.WAIT, prompted_at, silent)
