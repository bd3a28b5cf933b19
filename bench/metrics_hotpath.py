"""CPU cost of the bridge's per-frame metrics, in µs per frame: the hand-written histogram of
before prometheus_client, and prometheus_client's Histogram.observe on every frame or on one
frame in LATENCY_SAMPLE_EVERY (what bridge/session.py does), in one process and in
multiprocess mode (`serve --workers N`). The per-call histogram on the call row is the same
before and after and is not counted.

    .venv/bin/python bench/metrics_hotpath.py [--json bench/results/x.json]

Each mode runs in a fresh interpreter (prometheus_client picks it when first imported); the
figure is the best of several repeats, so a busy machine shows less of its noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, machine_info, write_json

FRAMES = 1000
NUMBER, REPEAT = 100, 15


def measure() -> dict[str, float]:
    """Run in the child: µs per frame of each variant."""
    from receptionist.bridge.latency import LatencyHistogram
    from receptionist.bridge.session import LATENCY_SAMPLE_EVERY
    from receptionist.observe import metrics

    old_hist, old_frames = LatencyHistogram(), [0]
    observe = metrics.LATENCY_IN.observe
    dts = [0.00003 * (1 + (i % 17)) for i in range(FRAMES)]

    def before() -> None:  # bridge/metrics.py: a process-wide histogram and a frame counter
        for dt in dts:
            old_hist.record(dt)
            old_frames[0] += 1

    def every_frame() -> None:
        for dt in dts:
            observe(dt)

    def sampled() -> None:
        n = 0
        for dt in dts:
            n += 1  # noqa: SIM113 - as session.py counts its frames
            if not n % LATENCY_SAMPLE_EVERY:
                observe(dt)

    def loop_only() -> None:
        n = 0
        for _ in dts:
            n += 1  # noqa: SIM113

    out = {}
    for name, fn in (
        ("before", before),
        ("every_frame", every_frame),
        ("one_in_4", sampled),
        ("loop_only", loop_only),
    ):
        best = min(timeit.repeat(fn, number=NUMBER, repeat=REPEAT))
        out[name] = round(best / (NUMBER * FRAMES) * 1e6, 3)
    return out


def run_mode(multiprocess: bool) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as tmp:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        done = subprocess.run(
            [sys.executable, __file__, "--child"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return dict(json.loads(done.stdout))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return 0
    result = {
        "bench": "metrics_hotpath",
        "unit": "microseconds per frame",
        "single_process": run_mode(False),
        "multiprocess": run_mode(True),
        "machine": machine_info(),
        "git_commit": git_commit(),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
