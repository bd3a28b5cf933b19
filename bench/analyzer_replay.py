"""The offline analyzer re-run on the transcripts a conversation-bench run stored.

    .venv/bin/python bench/analyzer_replay.py [bench/results/conversations_baseline_2026-12-07.json]
        [--show-errors] [--json out.json]

A conversation run (``conversations.py``) stores each call's transcript as the real speech-to-text
heard it. This replays ``analyze_offline`` on those transcripts with today's code and today's
scenario expectations (``bench/conversations/*.toml``), and scores the way the bench does
(``conv_scenarios.score_details``: every expected detail, and a wrong call type fails them all).
It measures the analyzer alone: the dialogue that produced the transcript is fixed.

Each call's clock is the run's start plus the wall time of the calls before it (the bench runs
them one after the other), so "tomorrow" resolves as it did in the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from conv_scenarios import Scenario, load_scenarios, score_details  # noqa: E402
from receptionist.language.dates import local_today  # noqa: E402
from receptionist.postcall.analyzers.offline import analyze_offline  # noqa: E402
from receptionist.postcall.analyzers.offline.context import Context, read_turns  # noqa: E402
from receptionist.postcall.analyzers.offline.details import extract_details  # noqa: E402
from receptionist.tenants.loading import load_tenant  # noqa: E402
from receptionist.tenants.model import Tenant  # noqa: E402

DEFAULT_RUN = REPO_ROOT / "bench/results/conversations_baseline_2026-12-07.json"


def _tenants(ids: set[str]) -> dict[str, Tenant]:
    out = {}
    for tid in sorted(ids):
        tenant, problems = load_tenant(REPO_ROOT / "tenants", tid)
        if tenant is None:
            raise SystemExit(f"tenant {tid}: {problems}")
        out[tid] = tenant
    return out


def replay(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per replayed call: expected and got call type, per-field verdicts, details."""
    scenarios: dict[str, Scenario] = {s.id: s for s in load_scenarios()}
    tenants = _tenants({r["tenant"] for r in run["results"]})
    clock = datetime.fromisoformat(run["date"])
    rows = []
    for r in run["results"]:
        now = clock
        clock += timedelta(seconds=float(r.get("wall_s") or 0))
        s = scenarios.get(r["scenario"])
        if s is None or not r.get("transcript"):
            continue
        tenant = tenants[r["tenant"]]
        a = analyze_offline(tenant, r["transcript"], now=now)
        day = local_today(now, tenant.timezone)
        fields = score_details(s, tenant, a.call_type, a.details, day)
        # the details as they would be with the right call type: the fields' own errors
        given = {}
        ct = tenant.call_type(s.call_type)
        if ct is not None:
            ctx = Context(tenant, read_turns(r["transcript"]), now)
            given = score_details(s, tenant, s.call_type, extract_details(ctx, ct), day)
        rows.append(
            {
                "scenario": s.id,
                "tenant": s.tenant,
                "synth": r.get("synth", ""),
                "want_type": s.call_type,
                "got_type": a.call_type,
                "fields": fields,
                "fields_given_type": given,
                "want": s.details,
                "got": a.details,
                "transcript": r["transcript"],
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    per_field: Counter[str] = Counter()
    per_field_ok: Counter[str] = Counter()
    per_field_given: Counter[str] = Counter()
    for row in rows:
        for name, ok in row["fields"].items():
            key = f"{row['tenant']}.{name}"
            per_field[key] += 1
            per_field_ok[key] += int(ok)
            per_field_given[key] += int(row["fields_given_type"].get(name, False))
    n = len(rows)
    type_ok = sum(r["want_type"] == r["got_type"] for r in rows)
    with_details = [r for r in rows if r["fields"]]
    return {
        "calls": n,
        "call_type_accuracy": round(type_ok / n, 3) if n else None,
        "details_calls": len(with_details),
        "details_all_ok": sum(all(r["fields"].values()) for r in with_details),
        "fields": sum(per_field.values()),
        "fields_ok": sum(per_field_ok.values()),
        "fields_ok_given_type": sum(per_field_given.values()),
        # field -> [ok, ok had the call type been right, expected]
        "per_field": {
            k: [per_field_ok[k], per_field_given[k], per_field[k]] for k in sorted(per_field)
        },
        "confusions": dict(
            Counter(
                f"{r['want_type']} -> {r['got_type']}"
                for r in rows
                if r["want_type"] != r["got_type"]
            ).most_common()
        ),
    }


def by_synth(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for synth in sorted({r["synth"] for r in rows}):
        part = summarise([r for r in rows if r["synth"] == synth])
        out[synth] = {k: v for k, v in part.items() if k not in ("per_field", "confusions")}
    return out


def _print(summary: dict[str, Any]) -> None:
    print(f"calls {summary['calls']}  call type {summary['call_type_accuracy']}")
    print(
        f"detail fields ok {summary['fields_ok']}/{summary['fields']} "
        f"(with the right call type {summary['fields_ok_given_type']})  "
        f"calls with every detail ok {summary['details_all_ok']}/{summary['details_calls']}"
    )
    print(f"  {'field':32s}  ok  ok|type  expected")
    for k, (ok, given, n) in summary["per_field"].items():
        print(f"  {k:32s} {ok:3d}  {given:6d}  {n:4d}")
    print("confusions:", summary["confusions"])
    for synth, part in summary.get("by_synth", {}).items():
        print(
            f"{synth}: call type {part['call_type_accuracy']}, fields ok {part['fields_ok']}"
            f"/{part['fields']} (right type {part['fields_ok_given_type']}), every detail ok "
            f"{part['details_all_ok']}/{part['details_calls']}"
        )


def _print_errors(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        bad = [k for k, ok in r["fields"].items() if not ok]
        if r["want_type"] == r["got_type"] and not bad:
            continue
        print(f"== {r['scenario']} {r['synth']}: type {r['got_type']} (want {r['want_type']})")
        for k in bad:
            print(f"   {k}: want {r['want'][k]!r} got {r['got'].get(k)!r}")
        for t in r["transcript"]:
            print(f"      {t['speaker'][:1]}: {t['text'][:150]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", default=str(DEFAULT_RUN))
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    run = json.loads(Path(args.run).read_text())
    rows = replay(run)
    if args.show_errors:
        _print_errors(rows)
    summary = summarise(rows)
    summary["by_synth"] = by_synth(rows)
    _print(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
