"""Text mode of the conversation bench: the same scenarios and scoring as `conversations.py`,
without audio, a server or a database. A fast loop for the local engine's brain.

    .venv/bin/python bench/conv_text.py [--tenant bakery,clinic] [--limit N] \
        [--heard bench/results/conversations_baseline_2026-12-07.json [--synth piper]] \
        [--json bench/results/conversations_text.json]

Per scenario (bench/conversations/*.toml):
1. The brain the local engine would build for the tenant (`engines/local/wiring.brain_factory`
   with the default settings, LOCAL_BRAIN=grounded), called the way the engine calls it: the
   opening, then `reply` once per caller line, in order, until the brain ends the call. A silent
   caller says nothing (the bench's silence prompts come from the bridge, not the brain).
   With `--heard`, each caller line is what the engine heard in that audio-bench run (its
   stored transcript's caller turns, per synthesizer) instead of the written line.
2. The transcript (greeting, then caller / agent turns) analysed by the post-call pipeline's
   analyzer (`postcall/wiring.offline_analyzer`, as with ANALYZER=offline), its details checked
   with `validate_details` as the pipeline does, then the messages decided by
   `notify/actions.decide_messages` (provider "log", no AI writer), as the pipeline does.
3. Scored by `conversations.score` (`conv_scenarios.py`): call type, details, messages decided,
   numbers grounded in the tenant's files or the caller's words, words the agent should say.

Not measured here: hearing (Whisper), turn-taking, barge-in timing, latency. A barge-in line is
one more caller turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, machine_info, percentile, write_json
from conv_report import print_table, totals
from conv_scenarios import (
    Scenario,
    call_day_of,
    check_scenarios,
    load_scenarios,
    score_details,
    tenant_numbers,
)
from conversations import TARGETS, TENANTS_DIR, score
from receptionist.config import Settings
from receptionist.engines.local.grounded import CALLER_NUMBER_TEXT
from receptionist.engines.local.intents import is_enquiry_type
from receptionist.engines.local.wiring import brain_factory
from receptionist.notify.actions import ActionDeps, decide_messages
from receptionist.postcall.analyzers.schema import validate_details
from receptionist.postcall.wiring import offline_analyzer
from receptionist.tenants.repository import TenantRepository

CALLER_NUMBER = "+919800000099"  # the simulator's caller number (sim.caller.CallOptions)
TURN_MS = 3000  # nominal turn length for the stored transcript's times


def heard_lines(path: Path, synth: str) -> dict[str, list[str]]:
    """Scenario id -> the caller turns the engine heard in an audio-bench run."""
    doc = json.loads(path.read_text())
    out: dict[str, list[str]] = {}
    for r in doc.get("results", []):
        if r.get("synth") == synth and "transcript" in r:
            out[r["scenario"]] = [t["text"] for t in r["transcript"] if t["speaker"] == "caller"]
    return out


def quote_figures(brain: Any) -> set[str]:
    """The rupees of the brain's order as `quote` priced it after a turn (lines and total):
    figures computed from the tenant's price list, not read from it."""
    quote = brain.state.quote
    if quote is None:
        return set()
    out = {str(q.rupees) for q in quote.lines if q.rupees is not None}
    return out | ({str(quote.total)} if quote.total is not None else set())


async def converse(
    tenant: Any, lines: list[str], brain_ms: list[float], quoted: set[str] | None = None
) -> tuple[list[dict[str, Any]], Any]:
    """The stored transcript of one call: the brain's opening, then each caller line and the
    brain's reply, until the brain ends the call or the lines run out. Appends each reply's
    time (ms) to ``brain_ms`` and the order's `quote` figures after it to ``quoted``. Also
    returns the brain (its state: what it understood)."""
    brain = brain_factory(Settings(local_brain="grounded"))(tenant, CALLER_NUMBER)
    turns: list[tuple[str, str]] = [("agent", brain.opening().text)]
    brain.state.history.append(("agent", turns[0][1]))  # as the engine does for the greeting
    for line in lines:
        turns.append(("caller", line))
        t0 = time.perf_counter()
        reply = await brain.reply(line)
        brain_ms.append((time.perf_counter() - t0) * 1000)
        if quoted is not None:
            quoted |= quote_figures(brain)
        if reply.text:
            turns.append(("agent", reply.text))
        if reply.end_call:
            break
    return [
        {"speaker": who, "text": text, "start_ms": i * TURN_MS, "end_ms": (i + 1) * TURN_MS - 100}
        for i, (who, text) in enumerate(turns)
    ], brain


def brain_view(s: Scenario, tenant: Any, brain: Any, started: datetime) -> dict[str, Any]:
    """What the brain itself understood (its call type and details), scored like the stored
    analysis: it tells a brain failure from an analyzer failure."""
    if brain is None:
        return {"intent": None, "call_type_ok": s.call_type == "no_conversation"}
    st = brain.state
    got = {k: v for k, v in st.details.items() if v != CALLER_NUMBER_TEXT}
    intent = st.intent or ""
    day = call_day_of({"started_at": started}, tenant.timezone)
    per_field = score_details(s, tenant, intent, got, day)
    return {
        "intent": st.intent,
        "details": got,
        # no aim taken (a wrong number, a greeting): the analyzer's default, the enquiry type
        "call_type_ok": intent == s.call_type
        or (
            not intent
            and any(is_enquiry_type(c) and c.name == s.call_type for c in tenant.call_types)
        ),
        "details_ok": all(per_field.values()),
        "failed_details": sorted(k for k, ok in per_field.items() if not ok),
    }


async def run_one(
    s: Scenario, tenant: Any, facts: set[str], lines: list[str], started: datetime
) -> dict[str, Any]:
    brain_ms: list[float] = []
    quoted: set[str] = set()
    transcript, brain = await converse(tenant, lines, brain_ms, quoted) if lines else ([], None)
    call_sid = f"text-{s.id}"
    analysis, _ = await offline_analyzer(tenant, transcript, started)
    problems = validate_details(tenant, analysis.call_type, analysis.details)
    row: dict[str, Any] = {
        "call_sid": call_sid,
        "tenant": s.tenant,
        "status": "completed",
        "stage": "failed" if problems else "done",
        "end_reason": None,
        "call_type": analysis.call_type,
        "summary": analysis.summary,
        "critical_call_details": {**analysis.details, "_analyzer": analysis.analyzer},
        "from_number": CALLER_NUMBER,
        "started_at": started,
        "created_at": started,
        "transcript": transcript,
    }
    notes: list[dict[str, Any]] = []
    if not problems:
        messages, _ = await decide_messages(tenant, row, ActionDeps(provider="log", writer=None))
        notes = [
            {"recipient_type": m.recipient_type, "template_name": m.template_name}
            | {"status": m.status}
            for m in messages
        ]
    base = {"scenario": s.id, "tenant": s.tenant, "class": s.kind, "synth": "text"}
    base |= {"expected": {"call_type": s.call_type, "messages": sorted(s.messages)}}
    base |= {"lines": lines, "analysis_problems": problems}
    base |= {"brain_ms": [round(x, 2) for x in brain_ms]}
    base |= {"brain": brain_view(s, tenant, brain, started)}
    scored = score(s, tenant, row, notes, facts)
    # the strict check stands; beside it, what is left once the figures `quote` computed from
    # the price list for the caller's order (totals, "10 veg puffs, 300") are counted as grounded
    beyond = [n for n in scored["ungrounded_numbers"] if n not in quoted]
    others_ok = all(ok for k, ok in scored["checks"].items() if k != "grounded")
    base |= {"quote_figures": sorted(quoted), "ungrounded_beyond_quote": beyond}
    base |= {"pass_if_quote_figures_grounded": others_ok and not beyond}
    return base | scored


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    repo = TenantRepository(TENANTS_DIR)
    tenants = {t: repo.get(t) for t in repo.ids()}
    scenarios = load_scenarios()
    problems = check_scenarios(scenarios, tenants)
    if problems:
        raise SystemExit("scenario data problems:\n  " + "\n  ".join(problems))
    scenarios = [s for s in scenarios if not args.tenant or s.tenant in args.tenant]
    if args.limit:
        scenarios = scenarios[: args.limit]
    heard = heard_lines(args.heard, args.synth) if args.heard else {}
    facts = {t: tenant_numbers(TENANTS_DIR / t) for t in tenants}
    results = []
    for s in scenarios:
        if args.heard and s.id not in heard:
            continue  # that run did not reach this scenario
        lines = heard[s.id] if args.heard else [ln.say for ln in s.lines]
        results.append(await run_one(s, tenants[s.tenant], facts[s.tenant], lines, started))
    return {
        "bench": "conversations_text",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": git_commit(),
        "parameters": {
            "tenants": args.tenant or sorted(tenants),
            "limit": args.limit,
            "lines": f"heard ({args.synth}) from {args.heard}" if args.heard else "written",
            "brain": "grounded",
            "analyzer": "offline",
            "caller_number": CALLER_NUMBER,
            "note": args.note,
        },
        "totals": totals(results, ["text"]),
        "brain_understood": brain_totals(results),
        "brain_ms_per_turn": {
            "turns": len(ms := [x for r in results for x in r["brain_ms"]]),
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "max": max(ms, default=None),
        },
        "results": results,
    }


def brain_totals(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls whose brain had the right call type and details, and of the failed calls, those
    the brain had right (the stored analysis or the messages went wrong after it)."""
    right = [
        r for r in results if r["brain"]["call_type_ok"] and r["brain"].get("details_ok", True)
    ]
    failed = [r for r in results if not r["pass"]]
    return {
        "calls": len(results),
        "pass_if_quote_figures_grounded": sum(
            1 for r in results if r.get("pass_if_quote_figures_grounded")
        ),
        "brain_right": len(right),
        "failed_calls": len(failed),
        "failed_but_brain_right": sorted(r["scenario"] for r in failed if r in right),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenant", default="", help="comma separated; default all")
    ap.add_argument("--limit", type=int, default=0, help="first N scenarios")
    ap.add_argument("--heard", type=Path, default=None, help="audio-bench results JSON")
    ap.add_argument("--synth", default="piper", help="with --heard: whose hearing (piper, espeak)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--note", default="", help="recorded in the JSON (which code ran, why)")
    ap.add_argument("--quiet", action="store_true", help="totals only, no per-scenario table")
    args = ap.parse_args(argv)
    args.tenant = [t for t in args.tenant.split(",") if t]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    doc = asyncio.run(run(args))
    if args.quiet:
        g = doc["totals"]["by_synth"]["text"]
        print(f"text pass {g['passed']}/{g['calls']} failed checks {g['failed_checks']}")
        print(f"brain ms per turn {doc['brain_ms_per_turn']}")
        b = doc["brain_understood"]
        print(
            f"brain right {b['brain_right']}/{b['calls']}; failed calls the brain had right: "
            f"{len(b['failed_but_brain_right'])}/{b['failed_calls']}"
        )
        print(
            "pass with the quote tool's figures counted as grounded: "
            f"{b['pass_if_quote_figures_grounded']}/{b['calls']}"
        )
    else:
        print_table(doc, TARGETS)
    if args.json:
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
