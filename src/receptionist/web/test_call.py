"""A test call from the dashboard: typed caller lines against a tenant version, no voice.

The local engine's grounded brain (what `VOICE_ENGINE=local` answers calls with) is driven the
way the engine drives it, as bench/conv_text.py does: its opening, then `reply` once per caller
line until it ends the call. The transcript is then analysed by the offline analyzer and its
messages decided as the post-call pipeline would (provider "log": nothing is sent, nothing is
stored). Bounded where the lines enter (count, length) and in time; `TestCallBrake` limits how
often one person may place one.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receptionist.engines.local.grounded import GroundedBrain
from receptionist.notify.actions import ActionDeps, decide_messages
from receptionist.postcall.analyzers.offline import analyze_offline
from receptionist.postcall.analyzers.schema import validate_details
from receptionist.tenants.model import Tenant

__all__ = [
    "CALLER_NUMBER",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "BadLines",
    "TestCallBrake",
    "TestCallResult",
    "caller_lines",
    "run_test_call",
]

CALLER_NUMBER = "+919800000099"  # the simulator's caller number (sim.caller.CallOptions)
MAX_LINES = 20
MAX_LINE_CHARS = 300
TIMEOUT_S = 10.0
TURN_MS = 3000  # nominal turn length for the transcript's times


class BadLines(ValueError):
    """The caller's lines cannot be used (none, too many, too long)."""


def caller_lines(text: str) -> list[str]:
    """One caller turn per non-empty line of `text`, checked against the bounds."""
    if len(text) > MAX_LINES * (MAX_LINE_CHARS + 2):
        raise BadLines(f"at most {MAX_LINES} lines of {MAX_LINE_CHARS} characters")
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise BadLines("write at least one line the caller says")
    if len(lines) > MAX_LINES:
        raise BadLines(f"at most {MAX_LINES} lines")
    if any(len(ln) > MAX_LINE_CHARS for ln in lines):
        raise BadLines(f"a line is at most {MAX_LINE_CHARS} characters")
    return lines


@dataclass(frozen=True)
class TestCallResult:
    __test__ = False  # not a pytest test class, whatever its name

    version: int | None
    turns: list[tuple[str, str]]  # (speaker, text)
    call_type: str | None
    summary: str
    details: dict[str, Any]
    problems: list[str]  # the details against the call type's fields
    messages: list[tuple[str, str]]  # (to whom, template) that the call would send
    ended: bool  # the assistant ended the call before the lines ran out


async def run_test_call(
    tenant: Tenant, lines: list[str], *, timeout_s: float = TIMEOUT_S
) -> TestCallResult:
    """The call, bounded by `timeout_s` (asyncio.TimeoutError beyond it)."""
    return await asyncio.wait_for(_call(tenant, lines), timeout_s)


async def _call(tenant: Tenant, lines: list[str]) -> TestCallResult:
    started = datetime.now(UTC)
    brain = GroundedBrain(tenant, CALLER_NUMBER)
    turns: list[tuple[str, str]] = [("agent", brain.opening().text)]
    brain.state.history.append(("agent", turns[0][1]))  # as the engine does for the greeting
    ended = False
    for i, line in enumerate(lines):
        turns.append(("caller", line))
        reply = await brain.reply(line)
        if reply.text:
            turns.append(("agent", reply.text))
        if reply.end_call:
            ended = i < len(lines) - 1
            break
        await asyncio.sleep(0)  # a long call yields, so the time bound can act
    transcript = [
        {"speaker": who, "text": text, "start_ms": i * TURN_MS, "end_ms": (i + 1) * TURN_MS - 100}
        for i, (who, text) in enumerate(turns)
    ]
    analysis = analyze_offline(tenant, transcript, now=started)
    problems = validate_details(tenant, analysis.call_type, analysis.details)
    messages: list[tuple[str, str]] = []
    if not problems:
        row = {
            "call_sid": "test-call",
            "tenant": tenant.tenant_id,
            "status": "completed",
            "stage": "done",
            "end_reason": None,
            "call_type": analysis.call_type,
            "summary": analysis.summary,
            "critical_call_details": {**analysis.details, "_analyzer": analysis.analyzer},
            "from_number": CALLER_NUMBER,
            "started_at": started,
            "created_at": started,
            "transcript": transcript,
        }
        decided, _ = await decide_messages(tenant, row, ActionDeps(provider="log", writer=None))
        messages = [(m.recipient_type, m.template_name or "") for m in decided]
    return TestCallResult(
        version=tenant.version,
        turns=turns,
        call_type=analysis.call_type,
        summary=analysis.summary or "",
        details=dict(analysis.details),
        problems=[str(p) for p in problems],
        messages=messages,
        ended=ended,
    )


@dataclass
class TestCallBrake:
    """Test calls per person (session): at most `per_window` within `window_s`. In memory, per
    process, bounded in the people it remembers."""

    __test__ = False  # not a pytest test class, whatever its name

    per_window: int = 10
    window_s: float = 60.0
    max_people: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _calls: OrderedDict[int, list[float]] = field(default_factory=OrderedDict)

    def take(self, who: int) -> bool:
        now = self.clock()
        recent = [t for t in self._calls.get(who, []) if now - t < self.window_s]
        if len(recent) >= self.per_window:
            self._calls[who] = recent
            return False
        recent.append(now)
        self._calls[who] = recent
        self._calls.move_to_end(who)
        while len(self._calls) > self.max_people:
            self._calls.popitem(last=False)
        return True
