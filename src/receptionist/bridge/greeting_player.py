"""The cached greeting (bridge/greeting_cache.py) played to a caller while the engine connects.

Played like an agent turn: the session sends its first frame at once, then `GreetingPlayer`
sends the rest paced GREETING_LEAD_S ahead of what the caller has heard, and ends the turn (the
session sends its mark). The model is not speaking it, so its own barge-in cannot stop it: the
player tells the session when the caller has spoken over it long enough (`barged_in`), and the
session stops it (`stop`) and clears what Exotel still holds.

The player knows the session only through three callables (send a frame, when the audio sent
so far ends, end the turn), so it is tested and read without a socket or a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from receptionist.audio import duration_ms, rms
from receptionist.bridge.greeting_cache import (
    CachedGreeting,
    GreetingCapture,
    GreetingKey,
    greeting_cache_for,
)
from receptionist.engines.base import GreetsFromCache, VoiceEngine

if TYPE_CHECKING:
    from receptionist.config import Settings
    from receptionist.tenants.model import Tenant

# Sent this far ahead of what the caller has heard (as a model streams a little ahead of
# playback): enough to ride out a busy event loop, little to clear on barge-in.
GREETING_LEAD_S = 0.5
# Caller speech this long over the greeting stops it: a click or a single loud frame does not.
GREETING_BARGE_IN_MS = 60.0


async def find_greeting(
    settings: Settings, engine: VoiceEngine, tenant: Tenant, rate: int
) -> tuple[CachedGreeting | None, GreetingCapture | None]:
    """The tenant's greeting as this engine spoke it before; or, on a miss, a capture to fill
    the cache with the engine's own greeting (neither when the cache is off or the engine
    cannot greet from it)."""
    cache = greeting_cache_for(settings)
    if cache is None or not isinstance(engine, GreetsFromCache):
        return None, None
    key = GreetingKey(
        tenant.tenant_id, tenant.prompt_version, tenant.greeting, engine.voice_id, rate
    )
    found = cache.get_nowait(key) or await cache.get(key)
    return found, (cache.capture(key) if found is None else None)


class GreetingPlayer:
    """The rest of a cached greeting (its turn open, its first frame sent), from a task."""

    def __init__(
        self,
        frames: Iterator[bytes],
        *,
        rate: int,
        threshold: float,
        send_frame: Callable[[bytes], Awaitable[None]],
        heard_until: Callable[[], float],
        end_turn: Callable[[], Awaitable[str]],
        name: str,
    ) -> None:
        """`send_frame`: send one frame as agent audio; `heard_until`: when the agent audio sent
        so far ends playing (time.monotonic()); `end_turn`: end the agent turn, returning the
        name of its mark; `threshold`: the RMS level of caller speech."""
        self._rate, self._threshold = rate, threshold
        self._heard_until = heard_until
        self._voiced_ms = 0.0  # caller speech heard over the greeting
        self.mark: str | None = None  # once all is sent: Exotel echoes it when played
        self._task = asyncio.create_task(self._play(frames, send_frame, end_turn), name=name)

    async def _play(
        self,
        frames: Iterator[bytes],
        send_frame: Callable[[bytes], Awaitable[None]],
        end_turn: Callable[[], Awaitable[str]],
    ) -> None:
        for chunk in frames:
            ahead = self._heard_until() - time.monotonic()
            if ahead > GREETING_LEAD_S:
                await asyncio.sleep(ahead - GREETING_LEAD_S)
            await send_frame(chunk)
        self.mark = await end_turn()

    def barged_in(self, pcm: bytes) -> bool | None:
        """Has the caller spoken over the greeting long enough to stop it (with this frame)?
        None: the greeting was heard out, nothing is left to interrupt."""
        if self._task.done() and time.monotonic() >= self._heard_until():
            return None
        if rms(pcm) > self._threshold:
            self._voiced_ms += duration_ms(len(pcm), self._rate)
        else:
            self._voiced_ms = 0.0
        return self._voiced_ms >= GREETING_BARGE_IN_MS

    async def stop(self) -> bool:
        """Stop sending; True: it was still sending (its turn is still open)."""
        task = self._task
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return task.cancelled()
