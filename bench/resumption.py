"""The caller-perceived gap when the Gemini Live connection is lost or told to go away mid-call.

    .venv/bin/python bench/resumption.py --calls 20 [--concurrency 5] \
        [--connect-delay-ms 0,300] [--json bench/results/resumption.json]

One process, all on 127.0.0.1: the Gemini Live double (TLS, replies paced in real time), the
bridge (uvicorn in-process, SQLite) and real-time simulated Exotel callers. Every call is the
same two-turn conversation; each scenario runs `--calls` of them against its own double:

- baseline: no fault (the same turns, for comparison in the same run);
- drop_mid_reply: the connection is cut (no close frame) 1 s into the first reply;
- drop_mid_speech: cut 400 ms into the caller's first question;
- go_away_mid_reply: goAway (timeLeft 10 s) 300 ms into the first reply.

Each set of scenarios runs once per `--connect-delay-ms` value: the double's opening handshake
takes that long (0: loopback; 300: about a TLS + setup round trip to Google from India), which
is what a replacement session costs the caller on top of the bridge's own work.

Figures per scenario, p50/p99 over the calls (ms, on the caller's side of the socket):
- reply_arrival_gap_ms: the longest wait between two agent audio frames arriving during the
  first answer (last frame before the fault → first after it);
- reply_heard_silence_ms: the same as the caller hears it, with the audio already queued for
  playback counted (a caller with audio still playing hears no gap);
- response_ms_turn1/turn2: the caller's speech end → first agent audio of that turn's answer
  (turn 1 straddles the fault in drop_mid_speech; turn 2 is answered by the new session);
- switch_ms: the bridge's own record (`engine_resumed` gap_ms): no session up → replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from receptionist.bridge.app import create_app
from receptionist.bridge.server import serve_in_process, uvicorn_options
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.observe import metrics
from receptionist.sim.caller import CallerScript, CallOptions, CallResult
from receptionist.sim.caller.call import Call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import get_call
from receptionist.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, git_commit, machine_info, percentile, write_json

TURNS = [
    ScriptedTurn(heard="I want a cake.", reply="Sure, we bake chocolate and vanilla cakes."),
    ScriptedTurn(heard="Chocolate, please.", reply="Done, see you Saturday."),
]
SAID = ["I would like to order a birthday cake for Saturday.", "Chocolate, please."]
SCENARIOS: dict[str, Failure | None] = {
    "baseline": None,
    "drop_mid_reply": Failure(drop_mid_reply_ms=1000, fault_sessions=10**9),
    "drop_mid_speech": Failure(drop_mid_speech_ms=400, fault_sessions=10**9),
    "go_away_mid_reply": Failure(go_away_mid_reply_ms=300, fault_sessions=10**9),
}
_GAP = re.compile(r"gap_ms=(\d+)")


def log(msg: str) -> None:
    print(f"[resumption {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class _TimedCall(Call):
    """The simulated caller, also noting when each agent audio frame arrives."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.arrivals: list[tuple[float, float]] = []  # (call clock, seconds of audio)

    def _on_agent_audio(self, pcm: bytes, now: float) -> None:
        self.arrivals.append((now, len(pcm) / (2 * self.opts.sample_rate)))
        super()._on_agent_audio(pcm, now)


def _reply_gaps(call: _TimedCall, res: CallResult) -> tuple[float, float] | None:
    """(longest arrival gap, longest heard silence) in ms inside the answer to the first turn:
    from its first audio frame until the caller's second turn ends."""
    if res.start_sent_at is None or not res.reply_start_ms or len(res.turn_end_ms) < 2:
        return None
    start = res.start_sent_at + res.reply_start_ms[0] / 1000.0
    stop = res.start_sent_at + res.turn_end_ms[1] / 1000.0
    frames = [(t, d) for t, d in call.arrivals if start <= t < stop]
    if len(frames) < 2:
        return None
    gap = silence = 0.0
    play_end = frames[0][0] + frames[0][1]
    for (t_prev, _), (t, d) in itertools.pairwise(frames):
        gap = max(gap, t - t_prev)
        silence = max(silence, t - play_end)
        play_end = max(play_end, t) + d
    return gap * 1000.0, silence * 1000.0


async def _finished_row(db: Database, call_sid: str) -> dict[str, Any] | None:
    """The call's row once the bridge has finished it (written right after the socket closes)."""
    deadline = time.monotonic() + 15.0
    row = await get_call(db, call_sid)
    while (row is None or row["status"] == "in_progress") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        row = await get_call(db, call_sid)
    return row


async def _one_call(url: str, db: Database) -> dict[str, Any]:
    opts = CallOptions(url=url, realtime=True, max_call_s=60)
    script = CallerScript(utterances=SAID, agent_quiet_ms=1000, hangup_after_ms=300)
    call = _TimedCall(opts, script)
    res = await call.run()
    row = await _finished_row(db, res.call_sid)
    events = (row or {}).get("events") or []
    switch = [
        float(m.group(1))
        for e in events
        if e["kind"] in ("engine_resumed", "engine_reconnected") and (m := _GAP.search(e["detail"]))
    ]
    gaps = _reply_gaps(call, res)
    return {
        "ok": res.ok and len(res.response_ms) == len(SAID),
        "error": res.error,
        "status": (row or {}).get("status"),
        "response_ms": [round(x, 1) for x in res.response_ms],
        "reply_arrival_gap_ms": None if gaps is None else round(gaps[0], 1),
        "reply_heard_silence_ms": None if gaps is None else round(gaps[1], 1),
        "switch_ms": switch,
        "resumptions": sum(1 for e in events if e["kind"] == "engine_resumed"),
    }


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


async def _scenario(
    name: str, failure: Failure | None, args: argparse.Namespace, delay_ms: int, work: Path
) -> dict[str, Any]:
    calls, concurrency = args.calls, args.concurrency
    root = work / f"{name}_{delay_ms}"
    tenants = root / "tenants"
    shutil.copytree(REPO_ROOT / "tenants", tenants, ignore=shutil.ignore_patterns("README.md"))
    db = Database(f"sqlite:///{root / 'receptionist.db'}")
    await db.upgrade()
    script = CallScript(turns=TURNS, greeting="Hello.")
    failure = replace(failure or Failure(), accept_delay_s=delay_ms / 1000.0)
    fake = FakeGeminiLive(script=script, realtime=True, failure=failure)
    async with fake:
        cfg = load_settings(
            database_url=db.url,
            tenants_dir=tenants,
            spool_dir=root / "spool",
            gemini_api_key=SecretStr("test-key"),
            gemini_base_url=fake.base_url,
            gemini_ca_file=Path(fake.ca_file),
            keepalive_interval_s=0,
            run_worker=False,
            analyzer="offline",
        )
        ctx = build_context(cfg, db=db)
        async with serve_in_process(create_app(ctx), **uvicorn_options(cfg)) as port:
            url = f"ws://127.0.0.1:{port}/exotel/bakery"
            sem = asyncio.Semaphore(concurrency)

            async def one() -> dict[str, Any]:
                async with sem:
                    return await _one_call(url, db)

            results = await asyncio.gather(*(one() for _ in range(calls)))
    await db.dispose()
    ok = [r for r in results if r["ok"]]
    t1 = [r["response_ms"][0] for r in ok]
    t2 = [r["response_ms"][1] for r in ok]
    out = {
        "calls": calls,
        "answered": len(ok),
        "errors": sorted({str(r["error"] or r["status"]) for r in results if not r["ok"]}),
        "resumptions": sum(r["resumptions"] for r in results),
        "reply_arrival_gap_ms": _stats(
            [r["reply_arrival_gap_ms"] for r in ok if r["reply_arrival_gap_ms"] is not None]
        ),
        "reply_heard_silence_ms": _stats(
            [r["reply_heard_silence_ms"] for r in ok if r["reply_heard_silence_ms"] is not None]
        ),
        "response_ms_turn1": _stats(t1),
        "response_ms_turn2": _stats(t2),
        "switch_ms": _stats([s for r in results for s in r["switch_ms"]]),
        "double_answer_delay_ms": fake.answer_delay_ms(script),
    }
    log(
        f"{name} (connect +{delay_ms} ms): {len(ok)}/{calls} answered,"
        f" gap p50 {out['reply_arrival_gap_ms']['p50']} ms,"
        f" heard silence p50 {out['reply_heard_silence_ms']['p50']} ms,"
        f" turn1 p50 {out['response_ms_turn1']['p50']} ms, switch p50 {out['switch_ms']['p50']}"
    )
    return out


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-resumption-"))
    try:
        runs: dict[str, dict[str, Any]] = {}
        for delay_ms in args.connect_delay_ms:
            runs[f"connect_delay_{delay_ms}ms"] = {
                name: await _scenario(name, failure, args, delay_ms, work)
                for name, failure in SCENARIOS.items()
                if name in args.scenarios
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "bench": "resumption",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_info(),
        "calls_per_scenario": args.calls,
        "concurrency": args.concurrency,
        "reconnects_in_process": {
            outcome: metrics.value(
                "receptionist_engine_resumptions_total",
                {"engine": "gemini-live", "outcome": outcome},
            )
            for outcome in ("resumed", "fresh", "failed")
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per scenario")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument(
        "--connect-delay-ms",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[0],
        help="comma-separated: the double's handshake delay for each set of scenarios",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: v.split(","),
        default=list(SCENARIOS),
        help=f"comma-separated, of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    if args.json is not None:
        write_json(args.json, result)
    bad = [
        f"{run}/{name}"
        for run, scenarios in result["runs"].items()
        for name, s in scenarios.items()
        if s["answered"] != s["calls"]
    ]
    if bad:
        log(f"calls not answered in full: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
