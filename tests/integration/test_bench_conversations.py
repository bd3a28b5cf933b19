"""bench/conversations.py end to end at its smallest, so the harness cannot rot: it starts
`receptionist serve` with the local engine, places two scenarios spoken by Piper (and one by
espeak-ng on a simulated phone line, when `./run setup-tests` has installed it) and writes its
JSON. What is checked is the harness (calls placed, rows read back, every score and figure
present), not whether the engine passes the scenarios."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from receptionist.engines.local.models import LocalModelsMissing, check_local_models

REPO = Path(__file__).resolve().parents[2]

try:
    check_local_models()
except LocalModelsMissing as exc:  # pragma: no cover - CI installs the extra
    pytest.skip(f"local engine not installed: {exc}", allow_module_level=True)

CHECKS = {"call_type", "details", "messages", "grounded", "mentions"}


def test_bench_conversations_places_scores_and_reports_calls(tmp_path: Path) -> None:
    out = tmp_path / "conversations.json"
    espeak = shutil.which("espeak-ng") is not None
    synths = "piper,espeak:1" if espeak else "piper"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "conversations.py"), "--limit", "2",
         "--synth", synths, "--no-warmup", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["complete"] and doc["calls_run"] == (3 if espeak else 2)
    results = doc["results"]
    assert sorted(r["synth"] for r in results) == (
        ["espeak", "piper", "piper"] if espeak else ["piper", "piper"]
    )
    assert len({r["scenario"] for r in results}) == 2
    for r in results:
        assert r["call_ok"], r
        assert r["stage"] == "done", r  # the post-call pipeline ran and was read back
        assert set(r["checks"]) == CHECKS and isinstance(r["pass"], bool)
        assert r["call_type"] and isinstance(r["messages_decided"], list)
        speakers = {t["speaker"] for t in r["transcript"]}
        assert speakers == {"agent", "caller"}, r["transcript"]
        assert r["latency_ms"] and all(x > 0 for x in r["latency_ms"]), r
        # the engine's own breakdown of each answered turn, read from the call's record
        assert r["turn_timings"], r
        for t in r["turn_timings"]:
            assert {"silence", "stt", "brain", "tts", "response", "speculative"} <= set(t), t
            assert t["response"] >= t["silence"] > 0, t
    by_synth = doc["totals"]["by_synth"]
    assert set(by_synth) == ({"piper", "espeak"} if espeak else {"piper"})
    for g in by_synth.values():
        assert 0 <= g["pass_rate"] <= 1
        assert g["latency"]["p50_ms"] > 0 and g["latency"]["p95_ms"] >= g["latency"]["p50_ms"]
        assert g["engine_breakdown"]["turns"] > 0
    assert doc["targets"] == {
        "piper_pass": 0.9, "espeak_pass": 0.75, "latency_p50_ms": 700, "latency_p95_ms": 1000,
    }  # fmt: skip
