"""Admission control: whether this process takes one more call, decided in the handshake.

A call refused before the WebSocket is accepted costs the caller nothing: the Voicebot applet
fails and Exotel goes on with the flow (one retry of the handshake, then the next applet, e.g. a
Connect to the owner). A call accepted by a saturated process instead degrades every call on it.

Reasons (also the `reason` label of receptionist_calls_rejected_total):
- `draining`: the process is stopping (SIGTERM); calls in progress are finishing.
- `capacity`: MAX_CALLS_PER_PROCESS connections are already in progress.
- `overloaded`: the event loop runs later than ADMISSION_MAX_LOOP_LAG_MS (see loop_lag.py).

Refusals come in bursts (a full process refuses every call until one ends), so the log says
when refusing starts, why, and when calls are taken again with how many were refused: one line
per burst, never one per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("receptionist.admission")

DRAINING, CAPACITY, OVERLOADED = "draining", "capacity", "overloaded"


@dataclass
class Admission:
    max_calls: int  # 0: no limit
    max_lag_s: float  # 0: no limit
    lag_s: Callable[[], float]
    draining: Callable[[], bool]
    #: Call connections this process holds now: admitted, not yet finished (saved).
    active: int = 0
    _refusing: str | None = field(default=None, repr=False)
    _refused: int = field(default=0, repr=False)

    def refusal(self) -> str | None:
        """The reason a new call would be refused now, or None."""
        if self.draining():
            return DRAINING
        if self.max_calls and self.active >= self.max_calls:
            return CAPACITY
        if self.max_lag_s and self.lag_s() > self.max_lag_s:
            return OVERLOADED
        return None

    def admit(self) -> str | None:
        """Take a call (then `release()` it when it is over) or say why not."""
        reason = self.refusal()
        if reason is None:
            if self._refusing is not None:
                log.info("taking calls again (%d refused: %s)", self._refused, self._refusing)
                self._refusing, self._refused = None, 0
            self.active += 1
            return None
        if reason != self._refusing:
            log.warning("refusing new calls: %s (%s)", reason, self._detail(reason))
            self._refusing, self._refused = reason, 0
        self._refused += 1
        return reason

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def _detail(self, reason: str) -> str:
        if reason == CAPACITY:
            return f"{self.active} calls, MAX_CALLS_PER_PROCESS={self.max_calls}"
        if reason == OVERLOADED:
            late, limit = self.lag_s() * 1000, self.max_lag_s * 1000
            return f"event loop {late:.0f} ms late, limit {limit:.0f} ms"
        return "the server is stopping"
