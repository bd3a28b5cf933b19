"""The two background loops every long-running part uses, written once.

- :func:`poll`: a queue consumer (the post-call worker, the message dispatcher). It works again
  at once while there is work; when idle it sleeps until woken, stopped, or ``poll_s`` passes;
  while its work keeps failing (the database is away) the sleep grows, up to 30 × ``poll_s``.
- :func:`every`: a periodic pass (checkpoints, the reaper, the spool's replay, counters). It
  waits first, then runs; ``wake`` runs it early; a stop during the wait ends it without a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

#: the longest idle sleep of a failing poll loop, in multiples of its poll_s
MAX_BACKOFF = 30


async def first_of(*events: asyncio.Event) -> None:
    """Return once any of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def poll(
    work: Callable[[], Awaitable[int]],
    *,
    stop: asyncio.Event,
    wake: asyncio.Event,
    poll_s: float,
    failed: Callable[[Exception], None],
) -> None:
    """Run `work` (returning how much it did) until `stop` is set.

    An exception from `work` never ends the loop: `failed` is told on the first failure of a
    run of them and every 30th after (one line per outage, not one per pass)."""
    failures = 0
    while not stop.is_set():
        try:
            busy = await work()
            failures = 0
        except Exception as exc:
            failures += 1
            if failures == 1 or failures % 30 == 0:
                failed(exc)
            busy = 0
        if busy:
            continue
        wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_s * min(2**failures, MAX_BACKOFF)):
                await first_of(wake, stop)


async def every(
    interval_s: float,
    stop: asyncio.Event,
    step: Callable[[], Awaitable[object]],
    *,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` every `interval_s` (or as soon as `wake` is set) until `stop` is set.

    `step` handles its own errors: one escaping it ends the loop."""
    events = (stop,) if wake is None else (stop, wake)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await first_of(*events)
        if wake is not None:
            wake.clear()
        if stop.is_set():
            return
        await step()
