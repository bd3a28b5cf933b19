"""bench/resumption.py end to end at a small size, so the script cannot rot: one call whose Live
connection is cut mid-reply, answered in full on a resumed session, with its figures written
(the baseline scenario is the same call without the fault)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_resumption_runs_a_drop(tmp_path: Path) -> None:
    out = tmp_path / "resumption.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "resumption.py"), "--calls", "1",
         "--scenarios", "drop_mid_reply", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(out.read_text())["runs"]["connect_delay_0ms"]
    assert list(run) == ["drop_mid_reply"]
    drop = run["drop_mid_reply"]
    assert drop["calls"] == drop["answered"] == 1 and drop["resumptions"] == 1, drop
    assert drop["switch_ms"]["p50"] > 0 and drop["response_ms_turn2"]["p50"] > 0
    assert drop["reply_arrival_gap_ms"]["n"] == drop["reply_heard_silence_ms"]["n"] == 1
