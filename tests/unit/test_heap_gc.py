"""heap.freeze_startup keeps what start-up made out of the collector's walks (and collects its
garbage first); heap.time_gc_pauses puts every collection's pause on /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
