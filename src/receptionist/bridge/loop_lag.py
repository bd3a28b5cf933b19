"""How late this process's event loop runs what is due: the measure of a saturated process.

Every call's frames, resampling and model traffic share one event loop per process; when that
loop runs behind, every call on it hears the delay. A small task asks to wake every
`interval_s` and notes how much later than asked it did (the loop could not run it sooner): one
sleep per interval, nothing per call or frame. `lag_s` is the median of the last `window`
samples: one hiccup (a garbage collection, a burst of call starts) moves it not at all, while a
loop that is behind for most of the last half second shows at once, and a loop that has caught
up drops back within a few wakes. Admission control reads it (bridge/admission.py) and the
`receptionist_event_loop_lag_seconds` gauge shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable

from receptionist.observe import metrics

INTERVAL_S = 0.1
WINDOW = 5  # samples: with INTERVAL_S, about the last half second


class LoopLagMonitor:
    def __init__(
        self,
        *,
        interval_s: float = INTERVAL_S,
        window: int = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._samples: deque[float] = deque([0.0], maxlen=max(1, window))
        self.max_lag_s = 0.0  # the worst single sample since start (logs, tests)
        self._task: asyncio.Task[None] | None = None

    @property
    def lag_s(self) -> float:
        """The loop's recent lag in seconds (0.0 before the first sample)."""
        return statistics.median(self._samples)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def record(self, lag_s: float) -> None:
        """One sample (the monitor's own; also how a test sets a lag without blocking)."""
        lag_s = max(0.0, lag_s)
        self._samples.append(lag_s)
        self.max_lag_s = max(self.max_lag_s, lag_s)
        metrics.EVENT_LOOP_LAG.set(self.lag_s)

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        clock, interval = self._clock, self.interval_s
        while True:
            asked = clock() + interval
            await asyncio.sleep(interval)
            self.record(clock() - asked)
