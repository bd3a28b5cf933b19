"""bench/api.py end to end at a small size (SQLite), so the script cannot rot: it seeds, starts
`receptionist serve`, asks every kind of request as an owner and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KINDS = ("list", "filter", "search", "stats", "detail")


def test_bench_api_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "api.py"), "--calls", "300", "--db", "sqlite",
         "--tenants", "2", "--days", "20", "--requests", "3", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["calls"] == 300 and result["db"] == "sqlite"
    assert 0 < result["owner_tenant_calls"] < 300
    for kind in KINDS:
        for name in ("ms_p50", "ms_p95", "floor_ms_p50", "floor_ms_p95"):
            assert isinstance(result[f"{kind}_{name}"], float), (kind, name)
    # every kind read something: pages and searches found calls, details found their call
    assert all(result["items_returned"][k] > 0 for k in ("list", "filter", "search"))
    assert result["machine"]["cpu_model"] and result["machine"]["total_memory_mb"] > 0
    assert result["plans"]  # the query plans are kept with the figures
    assert "search" in proc.stdout and "floor p50" in proc.stdout  # the table
