"""Shared helpers for the benchmarks in this folder.

* machine / git description for result files,
* a psutil sampler of a process tree (CPU time and RSS of a server and its worker processes),
* percentiles,
* the in-process "floor" measurement (the unavoidable per-frame work of a bridge),
* a small entry point that runs the Gemini Live double in its own process:

      python bench/_common.py double --ready-file F --ca-out CA --api-key K \
          [--turns T] [--stats-out S]

  It writes ``{"port": P}`` to F once it listens (TLS, 127.0.0.1 only), and on SIGTERM writes
  per-session counters (agent audio sent, caller audio received) to S and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import contextlib
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- short scripted conversation used by the load bench ----------------------------------------

#: (what the caller says, what the double "hears" and replies). Short lines: a call of T turns
#: stays around 10-15 s including the tenant's greeting.
SHORT_TURNS: list[tuple[str, str]] = [
    ("Are you open today?", "Yes, we are open until nine pm."),
    ("Do you deliver?", "Yes, within five kilometres."),
    ("Thank you, bye.", "Thank you for calling. Goodbye!"),
    ("One more thing.", "Sure, go ahead."),
]


def short_lines(turns: int) -> list[tuple[str, str]]:
    return [SHORT_TURNS[i % len(SHORT_TURNS)] for i in range(turns)]


# --- description of the machine --------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "total_memory_mb": round(psutil.virtual_memory().total / 2**20),
    }


def git_commit() -> str | None:
    """HEAD's commit, read from .git files (no git process is started)."""
    git = REPO_ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError):
        return None
    return None


def write_json(path: Path, result: dict[str, Any]) -> None:
    """Write a bench's result (creating the folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str, ensure_ascii=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)


# Never handed to a bench's own server: a real key or endpoint must not take the bench's calls
# to the real service. Every other variable passes (GEMINI_RESUME_BUFFER_S and the like are
# settings a run may want to vary).
_NOT_PASSED = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "GEMINI_CA_FILE")


def bench_env() -> dict[str, str]:
    """This process's environment without the real service's key and endpoint."""
    return {k: v for k, v in os.environ.items() if k not in _NOT_PASSED}


def serve_argv(port: int) -> list[str]:
    """`receptionist serve` on loopback at `port`, from this interpreter's virtualenv; it
    migrates a PostgreSQL --db itself (serve refuses a schema that is behind otherwise)."""
    exe = Path(sys.executable).parent / "receptionist"
    return [str(exe), "serve", "--migrate", "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- statistics -------------------------------------------------------------------------------


class Proc:
    """A child process a bench started; stopped by its own pid (and any descendants it left,
    e.g. the workers of a killed supervisor). Its output goes to `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT)
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                print(
                    f"{self.name} did not stop within {timeout_s:g} s; killing pid {self.pid}",
                    file=sys.stderr,
                    flush=True,
                )
                self.popen.kill()
                self.popen.wait(5)
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.is_running():
                    child.kill()
        self._log.close()
        return self.popen.returncode


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for an empty list."""
    if not values:
        return None
    xs = sorted(values)
    k = max(1, -(-len(xs) * p // 100))  # ceil
    return float(xs[int(min(len(xs), k)) - 1])


# --- process tree sampler ---------------------------------------------------------------------


@dataclass
class TreeSampler:
    """CPU time (user+system) and RSS of a process and all its descendants.

    CPU is tracked per pid (last value seen), so a worker that appears during the run counts
    from zero and one that exits keeps its last reading.
    """

    pid: int
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (t, total rss bytes)
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)  # (t, total cpu s)
    pids_seen: set[int] = field(default_factory=set)
    #: (pid, tid) -> cpu seconds at start / last seen; tid == pid is the main (event loop) thread
    thr_start: dict[tuple[int, int], float] = field(default_factory=dict)
    thr_last: dict[tuple[int, int], float] = field(default_factory=dict)

    def _procs(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def read(self) -> tuple[dict[int, float], int]:
        cpu: dict[int, float] = {}
        rss = 0
        for p in self._procs():
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
                    rss += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return cpu, rss

    def rss_now(self) -> int:
        return self.read()[1]

    def read_threads(self) -> dict[tuple[int, int], float]:
        out: dict[tuple[int, int], float] = {}
        for p in self._procs():
            try:
                for t in p.threads():
                    out[(p.pid, t.id)] = t.user_time + t.system_time
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def start(self) -> None:
        cpu, rss = self.read()
        self.cpu_start = dict(cpu)
        self.cpu_last = dict(cpu)
        self.pids_seen = set(cpu)
        now = time.monotonic()
        self.rss_samples = [(now, rss)]
        self.cpu_samples = [(now, 0.0)]
        self.thr_start = self.read_threads()
        self.thr_last = dict(self.thr_start)

    def sample(self) -> None:
        cpu, rss = self.read()
        self.cpu_last.update(cpu)
        self.pids_seen |= set(cpu)
        now = time.monotonic()
        self.rss_samples.append((now, rss))
        self.cpu_samples.append((now, self.cpu_s))
        self.thr_last.update(self.read_threads())

    def thread_cpu_ms(self) -> dict[str, float]:
        """CPU ms during the run: main threads (event loops) vs all other threads, per pid."""
        out: dict[str, float] = {}
        for (pid, tid), v in self.thr_last.items():
            d = (v - self.thr_start.get((pid, tid), 0.0)) * 1000.0
            key = f"pid {pid} {'main' if tid == pid else 'other threads'}"
            out[key] = round(out.get(key, 0.0) + d, 1)
        return out

    def cores_busy_timeline(self) -> list[float]:
        """Cores busy (CPU s per wall s) for each sampling interval."""
        xs = self.cpu_samples
        return [
            round((c1 - c0) / (t1 - t0), 2)
            for (t0, c0), (t1, c1) in itertools.pairwise(xs)
            if t1 > t0
        ]

    @property
    def cpu_s(self) -> float:
        return sum(v - self.cpu_start.get(pid, 0.0) for pid, v in self.cpu_last.items())

    @property
    def peak_rss(self) -> int:
        return max((r for _, r in self.rss_samples), default=0)


# --- floor: the unavoidable per-frame work, measured in-process --------------------------------


def _best_cpu_s(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best


def measure_floor(call_seconds: int = 200, repeats: int = 5) -> dict[str, Any]:
    """CPU ms per call-second of the work no bridge can avoid, using the project's own helpers.

    caller -> model, per second: 10 x (parse one 100 ms Exotel media frame: JSON + base64
    decode; streaming resample 8 kHz -> 16 kHz; base64 encode; JSON dump of a Live
    `realtimeInput.audio` frame).
    model -> caller, per second: 25 x 40 ms 24 kHz `inlineData` frames (what the double and the
    real service send): JSON parse + base64 decode + streaming resample 24 kHz -> 8 kHz +
    Exotel chunking; then 10 x 100 ms Exotel media frames: base64 encode + JSON (Emitter.media).
    """
    import orjson

    from receptionist.audio import StreamResampler
    from receptionist.sim.speech import synth_speech
    from receptionist.telephony import exotel

    pcm8 = synth_speech("Are you open today? Do you deliver to Koramangala?", 8000)
    frame8 = 1600  # 100 ms at 8 kHz, 16-bit
    frames_in = [
        exotel.caller_media_frame(
            "MZbench",
            pcm8[i : i + frame8],
            sequence=i // frame8 + 2,
            chunk=i // frame8 + 1,
            timestamp_ms=(i // frame8 + 1) * 100,
        )
        for i in range(0, frame8 * 10, frame8)
    ]
    pcm24 = synth_speech("Yes, we are open until nine pm, and we deliver.", 24000)
    frame24 = 1920  # 40 ms at 24 kHz
    frames_out = [
        orjson.dumps(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": "audio/pcm;rate=24000",
                                    "data": binascii.b2a_base64(
                                        pcm24[i : i + frame24], newline=False
                                    ).decode(),
                                }
                            }
                        ]
                    }
                }
            }
        )
        for i in range(0, frame24 * 25, frame24)
    ]
    mime16 = "audio/pcm;rate=16000"

    def caller_to_model() -> None:
        rs = StreamResampler(8000, 16000)
        loads_frame = exotel.parse_frame
        b2a = binascii.b2a_base64
        dumps = orjson.dumps
        for _ in range(call_seconds):
            for text in frames_in:
                ev = loads_frame(text)
                out = rs.process(ev.pcm)  # type: ignore[union-attr]
                dumps(
                    {
                        "realtimeInput": {
                            "audio": {"data": b2a(out, newline=False).decode(), "mimeType": mime16}
                        }
                    }
                )

    def model_to_caller() -> None:
        rs = StreamResampler(24000, 8000)
        chunker = exotel.OutboundChunker(8000)
        emit = exotel.Emitter("MZbench")
        loads = orjson.loads
        a2b = binascii.a2b_base64
        for _ in range(call_seconds):
            for raw in frames_out:
                msg = loads(raw)
                data = msg["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
                for chunk in chunker.push(rs.process(a2b(data))):
                    emit.media(chunk)

    caller_to_model()  # warm caches
    model_to_caller()
    c2m = _best_cpu_s(caller_to_model, repeats) * 1000.0 / call_seconds
    m2c = _best_cpu_s(model_to_caller, repeats) * 1000.0 / call_seconds
    return {
        "floor_in_cpu_ms_per_call_second": round(c2m, 3),
        "floor_out_cpu_ms_per_call_second": round(m2c, 3),
        "floor_cpu_ms_per_call_second": round(c2m + m2c, 3),
        "floor_method": (
            f"in-process, best of {repeats} x {call_seconds} call-seconds, time.thread_time; "
            "in: 10 x (exotel.parse_frame + StreamResampler 8k->16k + b64 + orjson.dumps "
            "realtimeInput); out: 25 x 40 ms (orjson.loads inlineData + b64 decode + "
            "StreamResampler 24k->8k + OutboundChunker) + 10 x Emitter.media. Both directions "
            "at full duty (agent audio all the time), so it is an upper bound for a call where "
            "the agent talks part of the time."
        ),
    }


# --- resampling: quality, delay, evenness, CPU ----------------------------------------------


def _sweep(rate: int, seconds: float = 3.0) -> Any:
    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = 100.0, 3400.0  # the telephone band
    return np.round(12_000 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))))


def measure_resampling(impl: str | None = None, repeats: int = 5) -> dict[str, Any]:
    """Figures of `audio.StreamResampler` (``impl`` None: the one the server would use) for the
    two rate pairs of an 8 kHz Gemini call, 8k->16k (caller) and 24k->8k (agent):

    * ``snr_db``: a 100-3400 Hz sweep streamed in the bridge's chunk size (100 ms caller
      frames, 40 ms agent chunks) against soxr "VHQ" on the whole signal at once, after
      shifting by the stated delay;
    * ``delay_ms``: the stated algorithmic delay (group delay of the filter);
    * ``out_ms_per_20ms_chunk_min/_max``: output of each of 50 successive 20 ms chunks (20/20
      means no blocks: every chunk gives its share at once);
    * ``first_output_after_ms``: input fed before the first output came out;
    * ``cpu_us_per_chunk``: best of ``repeats`` x 500 chunks of the bridge's size.
    """
    import numpy as np
    import soxr

    from receptionist.audio import IMPLEMENTATION, StreamResampler

    impl = impl or IMPLEMENTATION
    out: dict[str, Any] = {"implementation": impl}
    for in_rate, out_rate, chunk_ms in ((8000, 16000, 100), (24000, 8000, 40)):
        key = f"{in_rate // 1000}k_to_{out_rate // 1000}k"
        x = _sweep(in_rate).astype("<i2")
        ref = soxr.resample(x.astype(np.float64), in_rate, out_rate, quality="VHQ")
        rs = StreamResampler(in_rate, out_rate, impl=impl)
        step = in_rate * chunk_ms // 1000
        buf = bytearray()
        for i in range(0, len(x), step):
            buf += rs.process(x[i : i + step].tobytes())
        buf += rs.flush()
        y = np.frombuffer(bytes(buf), dtype="<i2").astype(np.float64)
        d = rs.delay_out_samples
        y = y[d : d + len(ref)]
        n = min(len(y), len(ref))
        edge = n // 20
        err = y[edge : n - edge] - ref[edge : n - edge]
        snr = 10 * np.log10(np.sum(ref[edge : n - edge] ** 2) / np.sum(err**2))
        rs = StreamResampler(in_rate, out_rate, impl=impl)
        step20 = in_rate // 50
        outs = [len(rs.process(x[i * step20 : (i + 1) * step20].tobytes())) // 2 for i in range(50)]
        first = next((i for i, o in enumerate(outs) if o), None)
        chunk = x[:step].tobytes()
        rs = StreamResampler(in_rate, out_rate, impl=impl)
        per = _best_cpu_s(
            lambda rs=rs, chunk=chunk: [rs.process(chunk) for _ in range(500)], repeats
        )
        out[key] = {
            "snr_db_vs_offline_vhq": round(float(snr), 1),
            "delay_ms": round(rs.delay_ms, 3) if impl == "fir" else None,
            "out_ms_per_20ms_chunk_min": round(min(outs) * 1000 / out_rate, 2),
            "out_ms_per_20ms_chunk_max": round(max(outs) * 1000 / out_rate, 2),
            "first_output_after_ms": None if first is None else (first + 1) * 20,
            "chunk_ms": chunk_ms,
            "cpu_us_per_chunk": round(per / 500 * 1e6, 2),
        }
    out["method"] = (
        "sweep 100-3400 Hz, 3 s, amplitude 12000, streamed in chunk_ms chunks then flushed, "
        "compared with soxr.resample(quality='VHQ') of the whole sweep after the stated delay "
        "(5 % edges skipped); 50 x 20 ms chunks for evenness; CPU: time.thread_time, best of "
        f"{repeats} x 500 chunks"
    )
    return out


# --- the Gemini Live double in its own process -------------------------------------------------


async def _run_double(args: argparse.Namespace) -> None:
    from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn

    script = CallScript(
        turns=[ScriptedTurn(heard=h, reply=r) for h, r in short_lines(args.turns)],
        reply_delay_ms=args.reply_delay_ms,
    )
    fake = FakeGeminiLive(
        api_key=args.api_key,
        script=script,
        realtime=True,
        chunk_ms=args.chunk_ms,
        end_of_turn_silence_ms=args.eot_ms,
    )
    await fake.start("127.0.0.1", 0)
    Path(args.ca_out).write_bytes(Path(fake.ca_file).read_bytes())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tmp = args.ready_file + ".tmp"
    Path(tmp).write_text(
        json.dumps(
            {
                "port": fake.port,
                "pid": os.getpid(),
                "answer_delay_ms": fake.answer_delay_ms(),
                "chunk_ms": fake.chunk_ms,
                "end_of_turn_silence_ms": fake.end_of_turn_silence_ms,
                "reply_delay_ms": script.reply_delay_ms,
            }
        )
    )
    os.replace(tmp, args.ready_file)
    await stop.wait()
    sessions = []
    for rec in fake.sessions:
        sessions.append(
            {
                "audio_in_ms": round(rec.audio_ms, 1),
                "audio_in_chunks": rec.audio_chunks,
                "agent_audio_ms": round(sum(r.audio_ms for r in rec.replies), 1),
                "greeting_audio_ms": round(
                    sum(r.audio_ms for r in rec.replies if r.kind == "greeting"), 1
                ),
                "agent_chunks": sum(r.chunks for r in rec.replies),
                "replies": len(rec.replies),
                "completed_replies": rec.completed_replies,
                "interruptions": len(rec.interruptions),
                "caller_turns": len(rec.caller_turns),
                "error": rec.error,
                # the double's clock is time.monotonic: system-wide, so comparable with the
                # callers' CallResult.start_sent_at in the bench process
                "turn_ended_at": [round(t.ended_at, 4) for t in rec.caller_turns],
                "reply_first_audio_at": [
                    None if r.first_audio_at is None else round(r.first_audio_at, 4)
                    for r in rec.replies
                ],
                "reply_kinds": [r.kind for r in rec.replies],
            }
        )
    if args.stats_out:
        Path(args.stats_out).write_text(json.dumps({"sessions": sessions}))
    with contextlib.suppress(Exception):
        await asyncio.wait_for(fake.stop(), 5)


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/_common.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("double", help="run the Gemini Live double (TLS, loopback)")
    d.add_argument("--ready-file", required=True)
    d.add_argument("--ca-out", required=True)
    d.add_argument("--api-key", default="bench-key")
    d.add_argument("--turns", type=int, default=2)
    d.add_argument("--stats-out", default="")
    # defaults = FakeGeminiLive's and CallScript's own, so other benches sharing the double
    # without these options see the same double
    d.add_argument("--chunk-ms", type=int, default=40, help="agent audio chunk, real-time paced")
    d.add_argument("--eot-ms", type=int, default=500, help="end-of-turn silence")
    d.add_argument("--reply-delay-ms", type=int, default=0, help="think time before replying")
    args = ap.parse_args(argv)
    if args.cmd == "double":
        try:
            import uvloop

            uvloop.run(_run_double(args))
        except ImportError:  # pragma: no cover
            asyncio.run(_run_double(args))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
