"""ToolBox: the tools one call may use, and the one way they are run.

Whatever the model (or the local brain) asks, `run` answers with a dict the agent can act on,
within `timeout_s`: a tool the tenant has not enabled is refused, bad arguments get a polite
error naming what is wrong, a slow tool is abandoned at the bound and a failing one is caught;
each outcome (and its time) is handed to `on_outcome`, which the session writes on the call.
A tool never runs on the audio path: the engine starts `run` as a task of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from receptionist.engines.base import ToolSpec
from receptionist.tools.spec import specs_for

if TYPE_CHECKING:
    from receptionist.store.db import Database
    from receptionist.tenants.model import Tenant

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
MAX_ARGS_CHARS = 4000  # a model's arguments are small; anything bigger is refused unread


class ToolArgsError(ValueError):
    """The arguments are missing or wrong; the message is polite and safe to say."""


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """The agent asked to put the caller through to a person (the `handoff` tool); the session
    acts on it (bridge/handoff.py: the stream ends and Exotel's Connect applet rings)."""

    reason: str
    who: str | None = None


@dataclass(frozen=True, slots=True)
class HandoffAnswer:
    """What the session made of a hand-off request: `status` as bridge/handoff.py names it
    (putting_through, outside_hours, not_configured, already_ending) and the words for it."""

    status: str
    say: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One tool call as the call's record shows it."""

    name: str
    status: str  # ok | invalid_args | not_enabled | unknown_tool | timeout | failed
    ms: float
    detail: str = ""


@dataclass
class ToolContext:
    """What the tools know of the call they serve."""

    tenant: Tenant
    db: Database
    call_sid: str | None = None
    caller_number: str | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # the session's hand-off (bridge/handoff.py): what became of it and what the agent says
    on_handoff: Callable[[HandoffRequest], Awaitable[HandoffAnswer]] | None = None
    # A hold (`book`) is written before its answer reaches the caller; only those whose answer
    # was delivered (ToolBox.delivered: the engine sent it to the model, or spoke it) are
    # confirmed at the call's end, the rest are released.
    held: list[str] = field(default_factory=list)  # references held on this call
    told: list[str] = field(default_factory=list)  # ... and of those, the ones delivered
    # the latest this call can end, plus a grace: a hold lasts at least until then
    # (functions.hold_time); None: only `hold_minutes`
    hold_until: datetime | None = None
    # what a tool could not use but answered without (the owner's calendar did not answer):
    # written on the tool's outcome, so the call's record shows it
    notes: list[str] = field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tenant.timezone)


ToolFn = Callable[[ToolContext, dict[str, Any]], Awaitable[dict[str, Any]]]


def _error(reason: str, message: str) -> dict[str, Any]:
    return {"error": message, "reason": reason}


class ToolBox:
    def __init__(
        self,
        ctx: ToolContext,
        *,
        functions: Mapping[str, ToolFn] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_outcome: Callable[[ToolOutcome], None] | None = None,
    ) -> None:
        if functions is None:
            from receptionist.tools.functions import FUNCTIONS

            functions = FUNCTIONS
        self.ctx = ctx
        self._functions = functions
        self._enabled = ctx.tenant.tools.enabled
        self.timeout_s = timeout_s
        self._on_outcome = on_outcome
        self.outcomes: list[ToolOutcome] = []

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return specs_for(self._enabled)

    @property
    def enabled(self) -> tuple[str, ...]:
        return self._enabled

    @property
    def instruction(self) -> str:
        now = self.ctx.clock().astimezone(self.ctx.zone)
        lines = [
            f"\n\n## Tools\nNow it is {now:%A %Y-%m-%d %H:%M} ({self.ctx.tenant.timezone}).",
            "Give dates as YYYY-MM-DD and times as 24-hour HH:MM.",
        ]
        if "check_slot" in self._enabled:
            lines.append("Check a time with check_slot before offering it; if it is taken,")
            lines.append("offer the next free one it gives.")
        if "book" in self._enabled:
            lines.append("Once the caller agrees, hold it with book and tell them the reference.")
        if "quote" in self._enabled:
            lines.append("Totals come from quote only; never add prices up yourself.")
        if "handoff" in self._enabled:
            lines.append("If the caller asks for a person, or you cannot help, use handoff.")
        return " ".join(lines) + "\n"

    async def run(self, name: str, args: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        name = str(name)[:64]
        fn = self._functions.get(name)
        if fn is None:
            result = _error("unknown_tool", f"there is no tool called {name!r}")
            return self._done(name, "unknown_tool", t0, result, name)
        if name not in self._enabled:
            result = _error("not_enabled", f"{name} is not available for this business")
            return self._done(name, "not_enabled", t0, result, "not enabled for the tenant")
        if args is None:
            args = {}
        if not isinstance(args, dict) or len(repr(args)) > MAX_ARGS_CHARS:
            result = _error("invalid_args", "the arguments must be a small object of values")
            return self._done(name, "invalid_args", t0, result, type(args).__name__)
        noted = len(self.ctx.notes)
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await fn(self.ctx, args)
        except ToolArgsError as exc:
            result = _error("invalid_args", f"I could not use that: {exc}")
            return self._done(name, "invalid_args", t0, result, str(exc))
        except TimeoutError:
            result = _error(
                "timeout", "this is taking too long right now; say so and offer to note the request"
            )
            return self._done(name, "timeout", t0, result, f"no answer in {self.timeout_s:g}s")
        except asyncio.CancelledError:
            self._done(name, "cancelled", t0, {}, "the model withdrew the call")
            raise
        except Exception as exc:  # a tool's bug or a lost database: the call goes on
            log.warning("tool %s failed", name, exc_info=True)
            result = _error(
                "failed", "this could not be done right now; apologise and offer to note it"
            )
            return self._done(name, "failed", t0, result, f"{type(exc).__name__}: {exc}"[:200])
        return self._done(name, "ok", t0, result, "; ".join(self.ctx.notes[noted:])[:200])

    def delivered(self, result: dict[str, Any]) -> None:
        """The answer `result` (as :meth:`run` returned it) reached the model or the caller:
        a hold it carries is confirmed at the call's end. An answer never delivered (the tool
        timed out after writing its hold, the session dropped, the call was withdrawn) leaves
        its hold to be released."""
        reference = result.get("reference") if result.get("booked") else None
        if reference in self.ctx.held and reference not in self.ctx.told:
            self.ctx.told.append(reference)

    def _done(
        self, name: str, status: str, t0: float, result: dict[str, Any], detail: str
    ) -> dict[str, Any]:
        outcome = ToolOutcome(name, status, round((time.perf_counter() - t0) * 1000.0, 1), detail)
        self.outcomes.append(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return result
