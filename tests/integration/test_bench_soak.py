"""bench/soak.py end to end for a few seconds, so the script cannot rot: it starts the Live double
and `receptionist serve`, places calls continuously, samples the server and writes its verdict.
And its verdict rule on made-up series."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from soak import slope_verdict  # noqa: E402


def test_bench_soak_runs_and_samples_the_server(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--minutes", "0.1",
         "--concurrency", "3", "--calls-per-minute", "60", "--sample-s", "1",
         "--warmup-min", "0", "--turns", "1", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: "growing" over a few seconds
    res = json.loads(out.read_text())
    f = res["figures"]
    assert f["calls_started"] >= 1 and f["calls_done"] == f["calls_started"]
    assert f["calls_failed"] == 0, res["errors"]
    assert f["verdict"] in ("flat", "growing") and f["samples"] >= 3
    samples = res["samples"]
    assert all(s["rss_kb"] > 0 and s["open_fds"] > 0 for s in samples)
    assert max(s["active_calls"] or 0 for s in samples) >= 1  # sampled while calls were live
    assert res["machine"]["nproc"] and res["parameters"]["concurrency"] == 3


def test_the_verdict_is_flat_within_the_noise_and_growing_beyond_it() -> None:
    wobble = [(t * 60.0, 250_000 + (300 if t % 2 else -300)) for t in range(60)]
    flat = slope_verdict(wobble, 250_000)
    assert flat["verdict"] == "flat" and abs(flat["slope_kb_per_hour"]) < 100
    leak = [(t * 60.0, 250_000 + 100 * t) for t in range(60)]  # 6 MB an hour
    grows = slope_verdict(leak, 253_000)
    assert grows["verdict"] == "growing" and grows["slope_kb_per_hour"] == 6000.0
    assert slope_verdict(leak[:2], 250_000)["verdict"] == "too_short"
