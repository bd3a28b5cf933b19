"""heap.freeze_startup keeps what start-up made out of the collector's walks (and collects its
garbage first); heap.time_gc_pauses puts every collection's pause on /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from receptionist import heap

# In a child process: freezing is for a whole process's life, and the runner's own objects must
# not be frozen by a test.
CHILD = textwrap.dedent(
    """
    import gc, json, weakref
    from prometheus_client import REGISTRY
    from receptionist import heap

    class Node:
        pass

    def pauses(gen):
        return REGISTRY.get_sample_value(
            "receptionist_gc_pause_seconds_count", {"generation": gen}) or 0.0

    kept = Node()                                  # alive at start-up: frozen
    lost = Node(); lost.me = lost                  # a cycle nobody holds: start-up's garbage
    lost_ref = weakref.ref(lost); del lost
    before = pauses("2")
    frozen = heap.freeze_startup()
    tracked = {id(o) for o in gc.get_objects()}
    heap.time_gc_pauses()                          # again: still one callback
    gc.collect()
    print(json.dumps({
        "frozen": frozen,
        "kept_walked": id(kept) in tracked,
        "garbage_collected": lost_ref() is None,
        "callbacks": gc.callbacks.count(heap._time_gc),
        "gen2_pauses": pauses("2") - before,
    }))
    """
)


def test_freeze_startup_and_the_pause_metric() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["frozen"] > 1000  # the imports' objects
    assert got["kept_walked"] is False  # the collector no longer walks what start-up made
    assert got["garbage_collected"] is True  # not frozen for ever
    assert got["callbacks"] == 1
    assert got["gen2_pauses"] == 1  # the collect after the freeze (the one before is untimed)


# glibc marks a chunk served by its own mmap with bit 1 (IS_MMAPPED) of the size word before it.
MMAP_CHILD = textwrap.dedent(
    """
    import ctypes, ctypes.util, json
    from receptionist import heap

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def mmapped(size):
        p = libc.malloc(size)
        flag = bool(ctypes.c_size_t.from_address(p - ctypes.sizeof(ctypes.c_size_t)).value & 2)
        libc.free(p)
        return flag

    libc.free(libc.malloc(4 << 20))   # freeing a 4 MB mapping raises glibc's threshold past it
    before = mmapped(256 * 1024)      # a TLS read buffer now comes from the heap
    pinned = heap.pin_mmap_threshold()
    libc.free(libc.malloc(4 << 20))   # and no longer moves it
    # The first block after pinning may still come from the free top of the heap; freeing it
    # trims that top (the trim threshold is pinned too), and from then on each has its own map.
    after = [mmapped(256 * 1024) for _ in range(3)]
    print(json.dumps({"before": before, "pinned": pinned, "after": after[1:],
                      "small": mmapped(64 * 1024)}))
    """
)


def test_pin_mmap_threshold_keeps_large_buffers_in_their_own_mappings() -> None:
    if not heap.available():  # pragma: no cover - not glibc
        pytest.skip("glibc only")
    out = subprocess.run(
        [sys.executable, "-c", MMAP_CHILD], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {
        "before": False,
        "pinned": True,
        "after": [True, True],
        "small": False,
    }
