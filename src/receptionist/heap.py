"""Give the C heap's free pages back to the operating system (glibc's `malloc_trim`).

A long-running server allocates and frees many medium blocks per call (TLS read buffers,
WebSocket frames, JSON of transcripts, SQL parameters). glibc returns freed memory to the
system only from the top of the main heap, so holes left in the middle stay resident: the
soak bench saw RSS creep by several MB an hour with no Python object leaking.
`malloc_trim(0)` releases every whole free page in every arena (madvise), which keeps RSS
at what is really in use. It runs in a thread: it holds one arena's lock at a time, and
Python's small objects (pymalloc) do not go through malloc, so the event loop keeps going.

On a libc without `malloc_trim` (musl, macOS) this is a no-op.

`pin_mmap_threshold` keeps each call's large, mostly unused buffers out of the resident set, and
`freeze_startup` is the Python side of the same concern: see their docstrings.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from functools import cache
from typing import Any

from receptionist import loops
from receptionist.observe import metrics

log = logging.getLogger(__name__)


@cache
def _libc(name: str, *argtypes: Any) -> Any | None:
    """glibc's function `name` returning int, or None where the C library has no such thing."""
    lib = ctypes.util.find_library("c")
    if not lib:
        return None
    try:
        fn = getattr(ctypes.CDLL(lib), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def _malloc_trim() -> Any | None:
    return _libc("malloc_trim", ctypes.c_size_t)


def available() -> bool:
    return _malloc_trim() is not None


# mallopt's parameter numbers (glibc malloc.h) and glibc's own starting values
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve blocks of `threshold` bytes or more from their own mmap, for good; True if set.

    Every TLS connection under uvloop (each call's Gemini Live socket) allocates a 256 KB read
    buffer, of which a read touches a few pages (a TLS record is at most 16 KB). glibc starts
    with both thresholds at 128 KB but raises them to the size of the largest mapped block freed
    (start-up frees several MB), and then such buffers come from the heap, whose pages are
    resident from earlier use, and the free top of the heap is kept. Pinned (which also stops
    glibc's adjusting), a buffer gets its own mapping whose untouched pages cost nothing and
    which munmap returns at the call's end; the heap's free top goes back to the system.
    bench/bridge_load.py, 200 calls, glibc's thresholds pinned from the environment: ~226-242 KB
    of RSS per call before, ~218 after, CPU the same; a later noisier run was inside the noise
    (bench/results/memory_pin_mmap_end_2026-12-07.json). A no-op without glibc's mallopt.
    """
    fn = _libc("mallopt", ctypes.c_int, ctypes.c_int)
    if fn is None:
        return False
    return bool(fn(_M_MMAP_THRESHOLD, threshold)) and bool(fn(_M_TRIM_THRESHOLD, threshold))


def trim() -> bool:
    """Release free heap pages now; True if the C library released any."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False


async def trim_every(interval_s: float, stop: asyncio.Event) -> None:
    """Trim every `interval_s` seconds until `stop` is set (0 or no malloc_trim: returns)."""
    if interval_s <= 0 or not available():
        return
    await loops.every(interval_s, stop, _trim_in_thread)


async def _trim_in_thread() -> None:
    t0 = time.perf_counter()
    released = await asyncio.to_thread(trim)
    log.debug("heap trim: released=%s in %.1f ms", released, (time.perf_counter() - t0) * 1e3)


def freeze_startup() -> int:
    """Take every object alive now out of the cyclic garbage collector's walks; returns how many.

    Called once a process has started (imports, settings, the app, loaded models). A full
    (generation 2) collection walks every tracked container, and after google-genai, pydantic,
    SQLAlchemy and numpy are imported that is hundreds of thousands of objects: one pass took up
    to 188 ms on the bench machine at 200 calls, and every call's audio waits on the one event
    loop meanwhile (the p99 spikes of `bench/bridge_load.py`). What start-up made lives as long
    as the process, so walking it finds nothing; frozen, the collector walks only what calls
    make. The garbage of start-up is collected first so that it is not kept for ever.
    """
    gc.collect()
    gc.freeze()
    time_gc_pauses()
    return gc.get_freeze_count()


_gc_started: list[float] = []


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        pause = time.perf_counter() - _gc_started.pop()
        metrics.GC_PAUSE.labels(str(info["generation"])).observe(pause)


def time_gc_pauses() -> None:
    """Time every collection into `receptionist_gc_pause_seconds` (idempotent): a pause stops
    every call of the process, so an operator should see one, not infer it from lag."""
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)
