"""bench/greeting.py end to end at a small size, so the script cannot rot: it starts the Live
double and `receptionist serve`, runs the cold, warm and restart rounds and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_greeting_runs_cold_warm_and_restart(tmp_path: Path) -> None:
    out = tmp_path / "greeting.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "greeting.py"), "--calls", "3",
         "--settle-s", "0.5", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds = json.loads(out.read_text())["rounds"]
    assert list(rounds) == ["cold", "warm", "warm_repeat", "restart"]
    expected = {"cold": "engine", "warm": "cache", "warm_repeat": "cache", "restart": "cache"}
    for name, source in expected.items():
        r = rounds[name]
        assert r["calls"] == r["greeted"] == 3 and r["errors"] == [], (name, r)
        assert r["server"]["greeting_source"] == {source: 3}, (name, r)
        assert r["start_to_first_audio_ms"]["p50"] > 0
    # cold: at most the warm-up tenant's file (written when its greeting's mark arrives, which
    # may be before or after the count); the bench tenant's greeting came from the engine above
    assert rounds["cold"]["cache_files_before"] <= 1
    assert rounds["restart"]["cache_files_before"] >= 1  # the file a new process played from
