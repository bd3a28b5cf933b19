"""Totals and the printed table of `conversations.py`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from _common import percentile

CHECKS = ("call_type", "details", "messages", "grounded", "mentions")


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 3) if d else None


def _latency(results: list[dict[str, Any]]) -> dict[str, Any]:
    xs = [x for r in results for x in r.get("latency_ms", [])]
    return {
        "turns": len(xs),
        "p50_ms": percentile(xs, 50),
        "p95_ms": percentile(xs, 95),
        "max_ms": max(xs, default=None),
    }


_PARTS = ("silence", "queue", "stt", "stt_compute", "brain", "tts", "response")


def _breakdown(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and p95 of each part of the engine's response time, per answered turn."""
    rows = [t for r in results for t in r.get("turn_timings", [])]
    out: dict[str, Any] = {"turns": len(rows)}
    for part in _PARTS:
        xs = [t[part] for t in rows if part in t]
        out[part] = {"p50_ms": percentile(xs, 50), "p95_ms": percentile(xs, 95)}
    out["speculative_share"] = _rate(sum(1 for t in rows if t.get("speculative")), len(rows))
    return out


def _group(results: list[dict[str, Any]]) -> dict[str, Any]:
    failed = Counter(k for r in results for k, ok in r.get("checks", {}).items() if not ok)
    return {
        "calls": len(results),
        "passed": sum(1 for r in results if r["pass"]),
        "pass_rate": _rate(sum(1 for r in results if r["pass"]), len(results)),
        "check_pass_rate": {
            k: _rate(sum(1 for r in results if r.get("checks", {}).get(k)), len(results))
            for k in CHECKS
        },
        "failed_checks": dict(failed.most_common()),
        "latency": _latency(results),
        "engine_breakdown": _breakdown(results),
    }


def totals(results: list[dict[str, Any]], synths: list[str]) -> dict[str, Any]:
    by_synth = {s: _group([r for r in results if r["synth"] == s]) for s in synths}
    classes = sorted({r["class"] for r in results})
    by_class = {
        c: {s: _group([r for r in results if r["class"] == c and r["synth"] == s]) for s in synths}
        for c in classes
    }
    fields = Counter(
        f"{r['tenant']}.{k}"
        for r in results
        for k, d in r.get("details", {}).items()
        if not d["ok"]
    )
    return {
        "all": _group(results),
        "by_synth": by_synth,
        "by_class": {c: {s: g["pass_rate"] for s, g in v.items()} for c, v in by_class.items()},
        "detail_fields_failed": dict(fields.most_common()),
    }


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def print_table(doc: dict[str, Any], targets: dict[str, Any]) -> None:
    rows = doc["results"]
    head = f"{'scenario':36} {'synth':6} {'type':4} {'dets':5} {'msgs':4} {'fact':4} {'ment':4} {'pass':4} {'p50ms':>6}"  # noqa: E501
    print(head)
    print("-" * len(head))
    for r in sorted(rows, key=lambda r: (r["tenant"], r["scenario"], r["synth"])):
        c = r.get("checks", {})
        d = r.get("details", {})
        dets = f"{sum(1 for v in d.values() if v['ok'])}/{len(d)}" if d else "-"
        lat = percentile(r.get("latency_ms", []), 50)
        flags = [
            ("ok" if c.get(k) else "NO") for k in ("call_type", "messages", "grounded", "mentions")
        ]
        print(
            f"{r['scenario']:36} {r['synth']:6} {flags[0]:4} {dets:5} {flags[1]:4} "
            f"{flags[2]:4} {flags[3]:4} {'PASS' if r['pass'] else 'fail':4} {_ms(lat):>6}"
        )
    print()
    t = doc["totals"]
    for synth, g in t["by_synth"].items():
        target = targets.get(f"{synth}_pass")
        lat = g["latency"]
        print(
            f"{synth:7} pass {g['passed']}/{g['calls']} ({_pct(g['pass_rate'])}, target "
            f"{_pct(target)})  latency p50 {_ms(lat['p50_ms'])} ms p95 {_ms(lat['p95_ms'])} ms "
            f"over {lat['turns']} turns  failed checks {g['failed_checks']}"
        )
    lat = t["all"]["latency"]
    print(
        f"all     latency p50 {_ms(lat['p50_ms'])} ms (target {targets['latency_p50_ms']}), "
        f"p95 {_ms(lat['p95_ms'])} ms (target {targets['latency_p95_ms']})"
    )
    b = t["all"]["engine_breakdown"]
    if b["turns"]:
        print(
            "engine per turn p50 (p95) ms: "
            + ", ".join(f"{p} {_ms(b[p]['p50_ms'])} ({_ms(b[p]['p95_ms'])})" for p in _PARTS)
            + f"; speculative {_pct(b['speculative_share'])} of {b['turns']} turns"
        )
    print("pass rate by class: " + ", ".join(
        f"{c} " + "/".join(_pct(v) for v in by.values()) for c, by in t["by_class"].items()
    ))  # fmt: skip


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"
