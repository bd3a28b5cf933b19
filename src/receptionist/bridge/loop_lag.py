"""Event-loop lag: how late a periodic wake-up fires.

Every call of a process shares its one event loop; when the loop is saturated (too many calls, a
blocking call) a timer set for `interval_s` fires late by how long every frame waits. The monitor
is one sleep per interval, nothing per call or frame. `lag_s` is the latest measurement (what
admission control reads); the `receptionist_event_loop_lag_seconds` gauge shows the same.
"""

from __future__ import annotations

import asyncio
import contextlib

from receptionist.observe import metrics

DEFAULT_INTERVAL_S = 0.25


class LoopLagMonitor:
    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.lag_s = 0.0  # the latest measurement, seconds
        self.max_lag_s = 0.0  # the worst since start (logs, tests)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.record(loop.time() - before - self.interval_s)

    def record(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.lag_s = lag_s
        self.max_lag_s = max(self.max_lag_s, lag_s)
        metrics.EVENT_LOOP_LAG.set(lag_s)
