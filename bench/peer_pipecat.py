"""The peer, measured in the project: a minimal Pipecat bot and `receptionist serve`, each driven
by the same simulated Exotel caller against the same Gemini Live double, in one run.

    .venv/bin/python bench/peer_pipecat.py [--levels 1,10,50] [--ours-more 100,200,400,600]
        [--turns 2] [--json bench/results/peer_pipecat_<date>.json] [--budget-s 600]

Pipecat is installed with pip into its OWN virtualenv (`bench/.work/pipecat-venv`, git-ignored,
reused when the pinned version is already there); nothing of it enters the project's `.venv`.
The bot (`BOT_SOURCE`, written to `bench/.work/pipecat_bot.py`) is built only from Pipecat's
own parts: `ExotelFrameSerializer`, `FastAPIWebsocketTransport` and `GeminiLiveLLMService`,
pointed at the double through google-genai's `HttpOptions(base_url=..., async_client_args=
{"ssl": <context trusting the double's CA>})`.

For every concurrency level and each side: start the server (ours or the bot), one warm-up
call (greeting only: lazy imports and first-call allocations are not per-call costs), idle RSS,
then N calls at once, each a real-time paced 8 kHz Exotel stream with T scripted lines
(`sim.caller.run_load`, as bench/bridge_load.py drives it), psutil sampling the server's
process tree every 0.5 s; then the server is stopped, so the sides never share the machine.
See bench/README.md ("peer_pipecat.py") for every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    Proc,
    TreeSampler,
    bench_env,
    free_port,
    git_commit,
    machine_info,
    percentile,
    serve_argv,
    short_lines,
    write_json,
)

# --- what is installed, and where ------------------------------------------------------------

PIPECAT_VERSION = "1.14.0"
#: Pinned: the figures belong to these versions. uvicorn serves the bot's FastAPI app (the
#: "websocket" extra brings FastAPI but no server); uvloop is the event loop our server runs on,
#: so both sides get the same loop and the comparison is about the frameworks.
PEER_REQUIREMENTS = (
    f"pipecat-ai[google,websocket]=={PIPECAT_VERSION}",
    "uvicorn==0.55.0",
    "uvloop==0.23.0",
)
WORK_DIR = REPO_ROOT / "bench" / ".work"
VENV_DIR = WORK_DIR / "pipecat-venv"
BOT_PATH = WORK_DIR / "pipecat_bot.py"
#: A Gemini 2.5 id on purpose: for 3.x models Pipecat nudges the session with a realtime text
#: input " ", which the double (like a model) takes for a caller turn and answers.
LIVE_MODEL = "models/gemini-2.5-flash-native-audio-preview-09-2025"
TENANT = "bakery"
SAMPLE_EVERY_S = 0.5
SEND_LAG_WARN_MS = 50.0
#: A caller who hears nothing for this long after the call connects is not being served well.
GREETING_SILENCE_MS = 1000.0

BOT_SOURCE = '''\
"""Minimal Pipecat bot written by bench/peer_pipecat.py and run in Pipecat's own virtualenv.

Exotel Voicebot WebSocket -> ExotelFrameSerializer -> FastAPIWebsocketTransport ->
GeminiLiveLLMService (pointed at the bench's Gemini Live double) -> back to the caller.
"""

import argparse
import json
import ssl
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, WebSocket
from google.genai.types import HttpOptions
from loguru import logger
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner

RATE = 8000  # Exotel's rate: the pipeline runs at it both ways

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--gemini-base-url", required=True)
ap.add_argument("--ca-file", required=True)
ap.add_argument("--api-key", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--system-file", required=True)
ap.add_argument("--greeting", required=True)
args = ap.parse_args()

# Warnings only, like the server it is compared with (LOG_LEVEL=WARNING).
logger.remove()
logger.add(sys.stderr, level="WARNING")

SYSTEM = Path(args.system_file).read_text()
# google-genai passes async_client_args["ssl"] to the Live WebSocket as is.
CA = ssl.create_default_context(cafile=args.ca_file)
HTTP = dict(base_url=args.gemini_base_url, async_client_args={"ssl": CA})
GREET = f"(Say this to the caller now, word for word, then wait: «{args.greeting}»)"
app = FastAPI()


class GeminiLive(GeminiLiveLLMService):
    """Pipecat's service with its documented hook for services without initial history (its
    Vertex subclass does the same): the opening context then goes as plain client content with
    turnComplete, which the double answers at once. With `historyConfig` the double keeps it as
    history and never answers it, so a 2.5-model bot would never greet."""

    def _get_history_config(self):
        return None


@app.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


async def start_of(ws: WebSocket) -> tuple[str, str]:
    """Exotel sends `connected`, then `start` with the stream and call ids."""
    for _ in range(3):
        msg = json.loads(await ws.receive_text())
        if msg.get("event") == "start":
            start = msg.get("start") or {}
            sid = start.get("stream_sid") or msg.get("stream_sid") or ""
            return str(sid), str(start.get("call_sid") or "")
    raise ValueError("no start event")


@app.websocket("/exotel")
async def exotel(ws: WebSocket) -> None:
    await ws.accept()
    stream_sid, call_sid = await start_of(ws)
    transport = FastAPIWebsocketTransport(
        websocket=ws,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=ExotelFrameSerializer(stream_sid=stream_sid, call_sid=call_sid),
            allowed_origins=[],
        ),
    )
    llm = GeminiLive(
        api_key=args.api_key,
        settings=GeminiLiveLLMService.Settings(
            model=args.model, system_instruction=SYSTEM, voice="Charon"
        ),
        http_options=HttpOptions(**HTTP),
    )
    # Without a context, its aggregator pair and a queued LLMRunFrame the service never starts
    # its first turn and drops the caller's audio.
    context = LLMContext([{"role": "user", "content": GREET}])
    pair = LLMContextAggregatorPair(context)
    pipeline = Pipeline([transport.input(), pair.user(), llm, transport.output(), pair.assistant()])
    # No RTVI: a phone line has no RTVI client and the Exotel serializer drops its messages;
    # leaving it out gives the peer its leanest pipeline.
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        enable_rtvi=False,
    )

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)

    # As Pipecat's own telephony template does: start the first turn once the transport is up,
    # cancel the runner when the caller goes.
    @transport.event_handler("on_client_connected")
    async def connected(_transport, _client) -> None:
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def gone(_transport, _client) -> None:
        await runner.cancel()

    await runner.run()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
'''


def log(msg: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the peer's virtualenv ----------------------------------------------------------------------


def _installed_version(python: Path) -> str | None:
    if not python.is_file():
        return None
    probe = (
        "import importlib.metadata as m, uvicorn, uvloop, fastapi, google.genai, pipecat; "
        "print(m.version('pipecat-ai'))"
    )
    proc = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_peer_venv(venv: Path, *, timeout_s: float = 1200.0) -> Path:
    """The peer's python, installing the pinned requirements first when they are missing."""
    python = venv / "bin" / "python"
    if _installed_version(python) == PIPECAT_VERSION:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    install_log = venv.parent / "pipecat-install.log"
    log(f"installing {', '.join(PEER_REQUIREMENTS)} into {venv} (log: {install_log})")
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    with open(install_log, "wb") as out:
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0 or _installed_version(python) != PIPECAT_VERSION:
        raise RuntimeError(f"pip install into {venv} failed; see {install_log}")
    return python


# --- processes ---------------------------------------------------------------------------------


def _wait_until(check: Callable[[], bool], proc: Proc, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: {what} not within {timeout_s:g} s:\n{proc.tail()}")


def _healthz(port: int) -> Callable[[], bool]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy

    def check() -> bool:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    return check


def _tls_ok(port: int, ca_file: Path) -> Callable[[], bool]:
    def check() -> bool:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:  # noqa: SIM117
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                return True

    return check


def _base_env() -> dict[str, str]:
    env = bench_env()
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@dataclass
class Double:
    proc: Proc
    port: int
    ca_file: Path
    #: What the double itself waits before answering, and its agent audio chunk size, as it
    #: reports them in its ready file.
    answer_delay_ms: float
    chunk_ms: int


def start_double(tmp: Path, turns: int) -> Double:
    ready, ca_file = tmp / "double.json", tmp / "ca.pem"
    proc = Proc(
        "double",
        [sys.executable, str(Path(__file__).resolve().parent / "_common.py"), "double",
         "--ready-file", str(ready), "--ca-out", str(ca_file), "--api-key", "bench-key",
         "--turns", str(turns)],
        _base_env(),
        tmp / "double.log",
    )  # fmt: skip
    _wait_until(ready.is_file, proc, 30, "ready file")
    info = json.loads(ready.read_text())
    port = int(info["port"])
    _wait_until(_tls_ok(port, ca_file), proc, 15, "TLS")
    delay = float(info.get("answer_delay_ms", answer_delay_ms()))
    return Double(proc, port, ca_file, delay, int(info.get("chunk_ms", 40)))


def start_ours(tmp: Path, double: Double, tag: str) -> tuple[Proc, str]:
    port = free_port()
    env = _base_env()
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / f'ours-{tag}.db'}",
        GEMINI_API_KEY="bench-key",
        GEMINI_BASE_URL=f"https://127.0.0.1:{double.port}",
        GEMINI_CA_FILE=str(double.ca_file),
        TENANTS_DIR=str(REPO_ROOT / "tenants"),
        SPOOL_DIR=str(tmp / f"spool-{tag}"),
        LOG_LEVEL="WARNING",
        # the bench finds the limit itself: no admission control refusing calls on the way
        MAX_CALLS_PER_PROCESS="0",
        ADMISSION_MAX_LOOP_LAG_MS="0",
        RUN_WORKER="false",  # the bridge alone, as the bot has no post-call work either
        WORKERS="1",
        HOST="127.0.0.1",
        PORT=str(port),
    )
    proc = Proc(
        f"ours-{tag}",
        serve_argv(port),
        env,
        tmp / f"ours-{tag}.log",
    )
    _wait_until(_healthz(port), proc, 60, "/healthz 200")
    return proc, f"ws://127.0.0.1:{port}/exotel/{TENANT}"


def start_peer(
    tmp: Path, double: Double, python: Path, greeting: str, tag: str
) -> tuple[Proc, str]:
    port = free_port()
    env = _base_env()
    env["SSL_CERT_FILE"] = str(double.ca_file)  # belt and braces: the context is passed too
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    proc = Proc(
        f"pipecat-{tag}",
        [str(python), str(BOT_PATH), "--port", str(port),
         "--gemini-base-url", f"https://127.0.0.1:{double.port}",
         "--ca-file", str(double.ca_file), "--api-key", "bench-key", "--model", LIVE_MODEL,
         "--system-file", str(tenant_prompt_path()), "--greeting", greeting],
        env,
        tmp / f"pipecat-{tag}.log",
    )  # fmt: skip
    _wait_until(_healthz(port), proc, 90, "/healthz 200")
    return proc, f"ws://127.0.0.1:{port}/exotel"


# --- the tenant's words (the same for both sides) -----------------------------------------------


def tenant_prompt_path() -> Path:
    return REPO_ROOT / "tenants" / TENANT / "prompts" / "assistant.txt"


def tenant_greeting() -> str:
    from receptionist.tenants.greeting import find_marked_greeting

    greeting = find_marked_greeting(tenant_prompt_path().read_text())
    if not greeting:
        raise RuntimeError(f"no greeting marked in {tenant_prompt_path()}")
    return greeting


def answer_delay_ms() -> float:
    """The double's own wait before it answers (end-of-turn silence + think time) from its
    defaults, for a double process that does not report it."""
    from receptionist.sim.gemini_live import CallScript, FakeGeminiLive

    eot = inspect.signature(FakeGeminiLive).parameters["end_of_turn_silence_ms"].default
    return float(eot) + float(CallScript().reply_delay_ms)


def exotel_chunk_wait_ms(double_chunk_ms: int, sample_rate: int = 8000) -> float:
    """What a bridge that keeps Exotel's minimum media chunk (`OutboundChunker.min_bytes`,
    100 ms of audio by default) waits after the double's first agent audio before its first
    frame is complete: the double paces its chunks in real time. Ours keeps the rule; the
    Pipecat serializer sends each 40 ms of audio as it comes, so it never waits."""
    from receptionist.telephony.exotel import OutboundChunker

    need_ms = OutboundChunker(sample_rate).min_bytes * 1000.0 / (2 * sample_rate)
    return float((math.ceil(need_ms / double_chunk_ms - 1e-9) - 1) * double_chunk_ms)


def expected_agent_ms(texts: Iterable[str]) -> float:
    """Agent audio a caller should hear for these replies (the double's speech is synthetic and
    deterministic; 8 kHz and 24 kHz renderings last the same)."""
    from receptionist.sim.speech import synth_speech

    return sum(len(synth_speech(t, 8000)) / 16.0 for t in texts)


# --- figures (pure) ----------------------------------------------------------------------------


class CallLike(Protocol):
    """The fields of `sim.caller.CallResult` the figures use."""

    ok: bool
    error: str | None
    greeting_ms: float | None
    response_ms: list[float]
    agent_audio_ms: float
    duration_s: float
    turn_timeouts: int
    unanswered_turns: int
    max_send_lag_ms: float
    media_received: int
    events: list[Any]


def greeting_heard(call: CallLike) -> bool:
    """Agent audio started before the caller's first line ended: the caller heard a greeting.
    (`greeting_ms` alone is the first agent audio of the call, whatever it was.)"""
    return any(e.kind == "agent_audio_start" and e.text == "greeting" for e in call.events)


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def replies_lost(call: CallLike, turns: int) -> int:
    """Agent replies the caller never heard: the greeting plus one per scripted line."""
    heard = (1 if greeting_heard(call) else 0) + len(call.response_ms)
    return max(0, 1 + turns - heard)


def summarise_level(
    calls: Sequence[CallLike],
    *,
    concurrency: int,
    turns: int,
    delay_ms: float,
    chunk_wait_ms: float,
    expected_audio_ms: float,
    cpu_s: float,
    rss_idle: int,
    rss_peak: int,
    wall_s: float,
) -> dict[str, Any]:
    """The figures of one side at one concurrency level."""
    call_seconds = sum(c.duration_s for c in calls)
    greet = [c.greeting_ms for c in calls if c.greeting_ms is not None and greeting_heard(c)]
    resp = [x - delay_ms for c in calls for x in c.response_ms]
    share = [x - chunk_wait_ms for x in resp]
    frames = sum(c.media_received for c in calls)
    received = sum(c.agent_audio_ms for c in calls)
    reasons: dict[str, int] = {}
    for c in calls:
        if not c.ok:
            key = (c.error or "?")[:80]
            reasons[key] = reasons.get(key, 0) + 1
    max_lag = max((c.max_send_lag_ms for c in calls), default=0.0)
    return {
        "concurrency": concurrency,
        "calls": len(calls),
        "calls_failed": sum(1 for c in calls if not c.ok),
        "failure_reasons": reasons,
        "wall_s": round(wall_s, 2),
        "call_seconds": round(call_seconds, 1),
        "cpu_ms_per_call_second": _r(cpu_s * 1000.0 / call_seconds if call_seconds else None, 2),
        "cores_busy_mean": _r(cpu_s / wall_s if wall_s else None, 3),
        "rss_idle_kb": rss_idle // 1024,
        "rss_peak_kb": rss_peak // 1024,
        "rss_kb_per_call": _r((rss_peak - rss_idle) / 1024 / concurrency if concurrency else None),
        "response_ms_p50": _r(percentile(resp, 50)),
        "response_ms_p99": _r(percentile(resp, 99)),
        "response_ms_max": _r(max(resp) if resp else None),
        "responses": len(resp),
        "exotel_chunk_wait_ms": chunk_wait_ms,
        "response_less_chunk_rule_ms_p50": _r(percentile(share, 50)),
        "response_less_chunk_rule_ms_p99": _r(percentile(share, 99)),
        "agent_frame_ms_mean": _r(received / frames if frames else None),
        "greeting_ms_p50": _r(percentile(greet, 50)),
        "greeting_ms_p99": _r(percentile(greet, 99)),
        "greeting_ms_max": _r(max(greet) if greet else None),
        "replies_expected": (1 + turns) * len(calls),
        "replies_lost": sum(replies_lost(c, turns) for c in calls),
        "turn_timeouts": sum(c.turn_timeouts for c in calls),
        "unanswered_turns": sum(c.unanswered_turns for c in calls),
        "agent_audio_expected_ms": round(expected_audio_ms * len(calls), 1),
        "agent_audio_received_ms": round(received, 1),
        # 40 ms chunk padding makes a whole reply arrive a little longer than its speech, so
        # only a shortfall counts as lost.
        "agent_audio_lost_ms": round(max(0.0, expected_audio_ms * len(calls) - received), 1),
        "max_send_lag_ms": round(max_lag, 1),
        "caller_overloaded": max_lag > SEND_LAG_WARN_MS,
    }


def degraded(level: dict[str, Any], first: dict[str, Any] | None) -> list[str]:
    """Why a level counts as degraded (empty: it held). `first` is the same side at 1 call."""
    why = []
    if level["calls_failed"]:
        why.append(f"{level['calls_failed']} call(s) failed")
    if level["replies_lost"]:
        why.append(f"{level['replies_lost']} reply(ies) lost")
    if level["agent_audio_lost_ms"] > 100.0 * level["calls"]:
        why.append(f"{level['agent_audio_lost_ms']:.0f} ms of agent audio lost")
    p99, base = level["response_ms_p99"], (first or {}).get("response_ms_p99")
    if p99 is not None and base is not None and p99 > 2 * max(base, 0.0) + 100.0:
        why.append(f"response p99 {p99:.0f} ms > 2 x {base:.0f} + 100 ms (1 call)")
    g99 = level.get("greeting_ms_p99")
    if g99 is not None and g99 > GREETING_SILENCE_MS:
        why.append(f"greeting p99 {g99:.0f} ms > {GREETING_SILENCE_MS:g} ms of silence")
    if level["caller_overloaded"]:
        why.append(f"the caller process itself lagged {level['max_send_lag_ms']:.0f} ms")
    return why


def ratio(ours: float | None, peer: float | None) -> float | None:
    """ours / peer; None when either is missing or the peer's figure is not positive."""
    if ours is None or peer is None or peer <= 0:
        return None
    return round(ours / peer, 2)


#: (label, key) of the figures compared side by side, lower is better for all of them.
COMPARED = (
    ("CPU ms per call-second", "cpu_ms_per_call_second"),
    ("response p50 ms (net)", "response_ms_p50"),
    ("response p99 ms (net)", "response_ms_p99"),
    ("  less Exotel chunk rule p50", "response_less_chunk_rule_ms_p50"),
    ("  less Exotel chunk rule p99", "response_less_chunk_rule_ms_p99"),
    ("greeting p50 ms", "greeting_ms_p50"),
    ("greeting p99 ms", "greeting_ms_p99"),
    ("RSS KB per call", "rss_kb_per_call"),
    ("replies lost", "replies_lost"),
    ("agent audio lost ms", "agent_audio_lost_ms"),
)


def comparison(ours: dict[int, dict[str, Any]], peer: dict[int, dict[str, Any]]) -> list[dict]:
    """One row per (concurrency, figure) measured on both sides, with ours / peer."""
    rows = []
    for c in sorted(set(ours) & set(peer)):
        for label, key in COMPARED:
            o, p = ours[c].get(key), peer[c].get(key)
            rows.append(
                {"concurrency": c, "figure": label, "key": key, "ours": o, "peer": p,
                 "ratio": ratio(o, p)}
            )  # fmt: skip
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of `comparison()` rows."""
    out = [
        "| calls | figure | receptionist | Pipecat | ours / peer |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['concurrency']} | {r['figure']} | {_fmt(r['ours'])} | {_fmt(r['peer'])} | "
            f"{_fmt(r['ratio'])} |"
        )
    return "\n".join(out)


def format_ours_only(ours: dict[int, dict[str, Any]], peer_levels: Iterable[int]) -> str:
    """Markdown table of our levels beyond the peer's."""
    skip = set(peer_levels)
    out = [
        "| calls | CPU ms/call-s | response p50 / p99 ms | greeting p50 / p99 ms | "
        "RSS KB/call | replies lost | degraded |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in sorted(ours):
        if c in skip:
            continue
        f = ours[c]
        out.append(
            f"| {c} | {_fmt(f['cpu_ms_per_call_second'])} | {_fmt(f['response_ms_p50'])} / "
            f"{_fmt(f['response_ms_p99'])} | {_fmt(f['greeting_ms_p50'])} / "
            f"{_fmt(f['greeting_ms_p99'])} | {_fmt(f['rss_kb_per_call'])} | "
            f"{f['replies_lost']} | {'; '.join(f.get('degraded') or []) or 'no'} |"
        )
    return "\n".join(out)


# --- one level on one side ----------------------------------------------------------------------


async def _calls(url: str, n: int, turns: int, max_call_s: float) -> list[Any]:
    from receptionist.sim.caller import CallerScript, CallOptions, run_load

    script = CallerScript(utterances=[h for h, _ in short_lines(turns)])

    def make_opts(i: int) -> CallOptions:
        return CallOptions(url=url, realtime=True, sample_rate=8000, max_call_s=max_call_s)

    return await run_load(make_opts, script, calls=n, concurrency=n)


@dataclass
class Settings:
    turns: int
    delay_ms: float
    chunk_wait_ms: float
    expected_audio_ms: float
    max_call_s: float
    greeting: str
    peer_python: Path | None
    tmp: Path
    double: Double
    log_tails: dict[str, list[str]] = field(default_factory=dict)


async def run_level(side: str, concurrency: int, s: Settings) -> dict[str, Any]:
    tag = f"c{concurrency}"
    if side == "ours":
        proc, url = start_ours(s.tmp, s.double, tag)
    else:
        assert s.peer_python is not None
        proc, url = start_peer(s.tmp, s.double, s.peer_python, s.greeting, tag)
    try:
        warm = await _calls(url, 1, 0, s.max_call_s)  # greeting only
        if not all(r.ok for r in warm):
            log(f"{side}: warm-up call failed: {[r.error for r in warm]}")
        await asyncio.sleep(1.0)
        srv, dbl = TreeSampler(proc.pid), TreeSampler(s.double.proc.pid)
        idle = []
        for _ in range(4):
            idle.append(srv.rss_now())
            await asyncio.sleep(0.25)
        rss_idle = int(sum(idle) / len(idle))
        srv.start()
        dbl.start()
        me = psutil.Process()
        my0 = sum(me.cpu_times()[:2])
        sys0 = psutil.cpu_times()
        t0 = time.monotonic()
        task = asyncio.create_task(_calls(url, concurrency, s.turns, s.max_call_s))
        while not task.done():
            await asyncio.wait([task], timeout=SAMPLE_EVERY_S)
            srv.sample()
            dbl.sample()
        wall_s = time.monotonic() - t0
        caller_cpu_s = sum(me.cpu_times()[:2]) - my0
        machine = machine_busy(sys0, psutil.cpu_times(), wall_s)
        calls = task.result()
    finally:
        code = proc.stop()
        s.log_tails[proc.name] = proc.tail(15).splitlines()
    fig = summarise_level(
        calls,
        concurrency=concurrency,
        turns=s.turns,
        delay_ms=s.delay_ms,
        chunk_wait_ms=s.chunk_wait_ms if side == "ours" else 0.0,
        expected_audio_ms=s.expected_audio_ms,
        cpu_s=srv.cpu_s,
        rss_idle=rss_idle,
        rss_peak=srv.peak_rss,
        wall_s=wall_s,
    )
    call_s = fig["call_seconds"]
    fig["double_cpu_ms_per_call_second"] = _r(dbl.cpu_s * 1000.0 / call_s if call_s else None, 2)
    fig["server_cores_busy_max"] = max(srv.cores_busy_timeline(), default=None)
    # The callers run in this one process: near 1.0 the load generator is the limit.
    fig["caller_cores_busy_mean"] = _r(caller_cpu_s / wall_s if wall_s else None, 3)
    # The machine is shared: what everything else took during the level, and what the
    # hypervisor took (steal), explain a level that is slower than the one before.
    if wall_s:
        ours_s = srv.cpu_s + dbl.cpu_s + caller_cpu_s
        fig["machine_cores_busy_mean"] = _r(machine["busy_s"] / wall_s, 3)
        fig["other_processes_cores_busy_mean"] = _r(
            max(0.0, machine["busy_s"] - ours_s) / wall_s, 3
        )
        fig["steal_cores_mean"] = _r(machine["steal_s"] / wall_s, 3)
    fig["server_exit_code"] = code
    fig["pids"] = len(srv.pids_seen)
    return fig


def machine_busy(t0: Any, t1: Any, wall_s: float) -> dict[str, float]:
    """CPU seconds the whole machine was busy (not idle, iowait or stolen) and stolen by the
    hypervisor between two `psutil.cpu_times()` readings."""

    def get(t: Any, name: str) -> float:
        return float(getattr(t, name, 0.0))

    # guest time is already counted in user time (Linux)
    total = sum(t1) - sum(t0) - sum(get(t1, k) - get(t0, k) for k in ("guest", "guest_nice"))
    idle = sum(get(t1, k) - get(t0, k) for k in ("idle", "iowait"))
    steal = get(t1, "steal") - get(t0, "steal")
    return {"busy_s": max(0.0, total - idle - steal), "steal_s": max(0.0, steal)}


# --- the run ------------------------------------------------------------------------------------


def working_tree_changes() -> list[str]:
    """Uncommitted changes under src/ and bench/ (others work in the same tree): the figures are
    of the code as it was on disk, which `git_commit` alone would not say. Read-only git call
    that takes no lock."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "src", "bench"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return [line for line in proc.stdout.splitlines() if line.strip()]
    return []


def wait_for_quiet(max_wait_s: float, threshold: float = 1.5) -> dict[str, Any]:
    """Wait (bounded) for the 1-minute load average to drop below `threshold`; say what it was."""
    t0 = time.monotonic()
    before = os.getloadavg()
    while os.getloadavg()[0] > threshold and time.monotonic() - t0 < max_wait_s:
        time.sleep(10)
    after = os.getloadavg()
    return {
        "threshold": threshold,
        "load_before_wait": [round(x, 2) for x in before],
        "load_at_start": [round(x, 2) for x in after],
        "waited_s": round(time.monotonic() - t0, 1),
        "busy_at_start": after[0] > threshold,
    }


async def run(
    args: argparse.Namespace, tmp: Path, peer_python: Path | None, load: dict[str, Any]
) -> dict[str, Any]:
    started = datetime.now(UTC)
    t_start = time.monotonic()
    greeting = tenant_greeting()
    replies = [r for _, r in short_lines(args.turns)]
    double = start_double(tmp, args.turns)
    log(f"Gemini Live double pid {double.proc.pid} on https://127.0.0.1:{double.port}")
    s = Settings(
        turns=args.turns,
        delay_ms=double.answer_delay_ms,
        chunk_wait_ms=exotel_chunk_wait_ms(double.chunk_ms),
        expected_audio_ms=expected_agent_ms([greeting, *replies]),
        max_call_s=args.max_call_s,
        greeting=greeting,
        peer_python=peer_python,
        tmp=tmp,
        double=double,
    )
    ours: dict[int, dict[str, Any]] = {}
    peer: dict[int, dict[str, Any]] = {}
    stopped_because: str | None = None
    try:
        # Alternate the sides level by level so a change in the machine's load hits both.
        for c in args.levels:
            for side, store in (("peer", peer), ("ours", ours)):
                if side == "peer" and args.ours_only:
                    continue
                log(f"{side}: {c} call(s) at once")
                fig = await run_level(side, c, s)
                fig["degraded"] = degraded(fig, store.get(min(store)) if store else fig)
                store[c] = fig
                log(f"{side} c={c}: {_brief(fig)}")
        for c in args.ours_more:
            if time.monotonic() - t_start > args.budget_s:
                stopped_because = f"time budget ({args.budget_s:g} s) spent"
                break
            if ours and ours[max(ours)]["degraded"]:
                stopped_because = f"degraded at {max(ours)}: {ours[max(ours)]['degraded']}"
                break
            log(f"ours: {c} calls at once")
            fig = await run_level("ours", c, s)
            fig["degraded"] = degraded(fig, ours.get(min(ours)) if ours else fig)
            ours[c] = fig
            log(f"ours c={c}: {_brief(fig)}")
        else:
            if ours and ours[max(ours)]["degraded"]:
                stopped_because = f"degraded at {max(ours)}: {ours[max(ours)]['degraded']}"
    finally:
        double.proc.stop()
    held = [c for c, f in ours.items() if not f["degraded"]]
    peer_held = [c for c, f in peer.items() if not f["degraded"]]
    rows = comparison(ours, peer)
    return {
        "bench": "peer_pipecat",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git_commit": git_commit(),
        "working_tree_changes": working_tree_changes(),
        "load": {**load, "load_at_end": [round(x, 2) for x in os.getloadavg()]},
        "duration_s": round(time.monotonic() - t_start, 1),
        "peer": {
            "pipecat_version": PIPECAT_VERSION,
            "requirements": list(PEER_REQUIREMENTS),
            "venv": str(args.venv),
            "bot": "ExotelFrameSerializer + FastAPIWebsocketTransport + GeminiLiveLLMService, "
            "LLMContext + LLMContextAggregatorPair, LLMRunFrame queued on connect; pipeline "
            "rates 8000 in and out; PipelineWorker without RTVI under a WorkerRunner; no "
            "historyConfig (Pipecat's hook, as its Vertex service); uvicorn (uvloop), loguru at "
            "WARNING",
            "model": LIVE_MODEL,
        },
        "parameters": {
            "levels": args.levels,
            "ours_more": args.ours_more,
            "turns": args.turns,
            "tenant": TENANT,
            "greeting": greeting,
            "caller_lines": [h for h, _ in short_lines(args.turns)],
            "double_replies": replies,
            "double_answer_delay_ms": s.delay_ms,
            "double_chunk_ms": double.chunk_ms,
            "exotel_chunk_wait_ms_ours": s.chunk_wait_ms,
            "pacing": "realtime, 100 ms Exotel media frames at 8 kHz",
            "warmup": "1 greeting-only call per server start, not measured",
            "server_per_level": "a fresh server process per side and level; one double per run",
            "ours": "receptionist serve, 1 worker, SQLite, RUN_WORKER=false, LOG_LEVEL=WARNING",
            "sample_every_s": SAMPLE_EVERY_S,
        },
        "definitions": {
            "response_ms": "caller's last voiced frame sent -> first agent audio frame received, "
            "minus double_answer_delay_ms (the double's own end-of-turn wait)",
            "response_less_chunk_rule_ms": "response_ms minus exotel_chunk_wait_ms: for ours the "
            "wait for Exotel's minimum media chunk (100 ms by default; the double paces 40 ms "
            "chunks, so the first frame is complete 80 ms after the first agent audio); 0 for "
            "Pipecat, "
            "whose serializer sends every 40 ms of audio as it comes (agent_frame_ms_mean)",
            "greeting_ms": "caller's start frame sent -> first agent audio frame received",
            "cpu_ms_per_call_second": "CPU (user+system) of the server's process tree during the "
            "level / sum of the callers' call durations",
            "rss_kb_per_call": "(peak RSS of the server tree during the level - idle RSS after "
            "the warm-up) / concurrency",
            "replies_lost": "greeting + one reply per caller line that the caller never heard",
            "degraded": "a call failed, a reply was lost, > 100 ms of agent audio lost per call, "
            "response p99 above 2 x the 1-call p99 + 100 ms, greeting p99 above 1,000 ms, or the "
            "caller itself lagged > 50 ms",
        },
        "ours": {str(c): f for c, f in sorted(ours.items())},
        "pipecat": {str(c): f for c, f in sorted(peer.items())},
        "comparison": rows,
        "highest_concurrency_held": {
            "ours": max(held, default=None),
            "pipecat": max(peer_held, default=None),
        },
        "ours_stopped_because": stopped_because,
        "log_tails": s.log_tails,
    }


def _brief(f: dict[str, Any]) -> str:
    return (
        f"cpu {_fmt(f['cpu_ms_per_call_second'])} ms/call-s, response p50/p99 "
        f"{_fmt(f['response_ms_p50'])}/{_fmt(f['response_ms_p99'])} ms, greeting p99 "
        f"{_fmt(f['greeting_ms_p99'])} ms, rss {_fmt(f['rss_kb_per_call'])} KB/call, lost "
        f"{f['replies_lost']}, failed {f['calls_failed']}"
        + (f", degraded: {'; '.join(f['degraded'])}" if f.get("degraded") else "")
    )


def _levels(text: str) -> list[int]:
    try:
        xs = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if any(x < 1 or x > 2000 for x in xs):
        raise argparse.ArgumentTypeError("levels must be between 1 and 2000")
    return xs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--levels", type=_levels, default=[1, 10, 50], help="both sides")
    ap.add_argument(
        "--ours-more",
        type=_levels,
        default=[100, 200, 300, 400, 600],
        help="ours only, in order, until a level degrades or the budget is spent",
    )
    ap.add_argument("--turns", type=int, default=2, choices=range(1, 5))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--venv", type=Path, default=VENV_DIR)
    ap.add_argument("--budget-s", type=float, default=480.0, help="no new level after this")
    ap.add_argument("--timeout", type=float, default=900.0, help="hard limit for the run")
    ap.add_argument("--max-call-s", type=float, default=90.0)
    ap.add_argument("--wait-load-s", type=float, default=180.0, help="wait for load < 1.5")
    ap.add_argument("--ours-only", action="store_true", help="skip the peer (no install)")
    args = ap.parse_args(argv)
    args.levels = sorted(set(args.levels))
    # The install and the wait for a quiet machine come before the run's time limit.
    try:
        peer_python = None if args.ours_only else ensure_peer_venv(args.venv)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"error: {exc}")
        return 2
    BOT_PATH.parent.mkdir(parents=True, exist_ok=True)
    BOT_PATH.write_text(BOT_SOURCE)
    load = wait_for_quiet(args.wait_load_s)
    log(f"load average {load['load_at_start']} (waited {load['waited_s']} s)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-peer-"))

    async def go() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run(args, tmp, peer_python, load)

    try:
        try:
            import uvloop

            res = uvloop.run(go())
        except ImportError:  # pragma: no cover
            res = asyncio.run(go())
    except TimeoutError:
        log(f"overall timeout ({args.timeout:g} s) reached; processes stopped")
        return 2
    except (RuntimeError, subprocess.SubprocessError) as exc:
        log(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    m = res["machine"]
    print(
        f"peer_pipecat: receptionist vs Pipecat {PIPECAT_VERSION}, {res['parameters']['turns']} "
        f"turns, {m['nproc']} CPUs ({m['cpu_model']}), load at start "
        f"{res['load']['load_at_start']}; response = caller-perceived minus the double's "
        f"{res['parameters']['double_answer_delay_ms']:g} ms"
    )
    print(format_table(res["comparison"]))
    print()
    print(format_ours_only({int(k): v for k, v in res["ours"].items()}, args.levels))
    print(f"highest concurrency held: {res['highest_concurrency_held']}")
    if res["ours_stopped_because"]:
        print(f"ours stopped: {res['ours_stopped_because']}")
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
