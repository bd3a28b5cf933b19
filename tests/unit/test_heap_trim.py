"""heap.trim gives freed C-heap pages back: RSS falls by what was freed in the heap's middle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from receptionist import heap

pytestmark = pytest.mark.skipif(not heap.available(), reason="no malloc_trim in this C library")

# In a child process, so the test runner's own heap is not part of the figure: 2,000 blocks of
# 48 KB (below glibc's mmap threshold, so from the heap, each written), then all but the last
# freed. The last one pins the heap's top, so glibc's own trimming on free cannot give the
# space back; only malloc_trim can.
CHILD = textwrap.dedent(
    """
    import os, sys
    from receptionist import heap

    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    blocks = [bytes([i % 251]) * (48 * 1024) for i in range(2000)]
    last = blocks[-1]
    del blocks
    before = rss_kb()
    if sys.argv[1] == "trim":
        heap.trim()
    print(before - rss_kb(), len(last))
    """
)


def _released_kb(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0])


def test_trim_returns_the_free_middle_of_the_heap() -> None:
    freed_kb = 1999 * 48
    assert _released_kb("trim") > freed_kb * 0.8
    assert _released_kb("none") < freed_kb * 0.2  # without it the pages stay resident


async def test_trim_every_stops_when_asked_and_is_off_at_zero() -> None:
    stop = asyncio.Event()
    await asyncio.wait_for(heap.trim_every(0, stop), 1.0)  # off: returns at once
    task = asyncio.create_task(heap.trim_every(0.01, stop))
    await asyncio.sleep(0.05)  # a few rounds run (a trim is a no-op here but must not fail)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5.0)
