"""What permessage-deflate would cost on a call's Gemini Live socket, per call-second of audio,
beside the cost of building the same frames (base64 + JSON) in the same run.

    .venv/bin/python bench/ws_deflate.py [--json bench/results/x.json]

Why it exists: websockets offers permessage-deflate unless told not to, and google-genai opens
the Live socket with websockets' defaults; our engine turns it off (engines/gemini_live.py
`make_client`). The double never accepts the extension, so the bridge's own benches cannot see
its cost; this measures it directly with websockets' own extension objects, as a client would
run them after a server accepted the offer with no limits of its own (window 15 bits, the
client's memLevel 5). Upstream: the caller's audio at 16 kHz in 100 ms realtimeInput frames
(one per Exotel frame); downstream: the model's 24 kHz audio in 40 ms serverContent chunks.
The audio is the simulator's voiced speech with line noise; CPU is time.thread_time, best of
several repeats; memory is tracemalloc's count of what one connection's zlib streams hold.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, machine_info, write_json

SECONDS = 20
REPEATS = 5
WINDOW_BITS = 15  # a server that sets no limit of its own
CLIENT_COMPRESS = {"memLevel": 5}  # websockets' client default


def _audio(rate: int, seconds: int) -> bytes:
    from receptionist.sim.speech import synth_speech

    line = "Hello, I would like to order a chocolate cake for Friday evening please. "
    pcm = b""
    while len(pcm) < rate * 2 * seconds:
        pcm += synth_speech(line, rate)
    samples = np.frombuffer(pcm[: rate * 2 * seconds], dtype="<i2").astype(np.int32)
    noise = np.random.default_rng(7).normal(0, 120, samples.size).astype(np.int32)
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


def _frames(pcm: bytes, chunk_bytes: int, build: Callable[[str], dict[str, Any]]) -> list[bytes]:
    return [
        orjson.dumps(build(base64.b64encode(pcm[i : i + chunk_bytes]).decode()))
        for i in range(0, len(pcm), chunk_bytes)
    ]


def _up(b64: str) -> dict[str, Any]:
    return {"realtimeInput": {"audio": {"data": b64, "mimeType": "audio/pcm;rate=16000"}}}


def _down(b64: str) -> dict[str, Any]:
    part = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": b64}}
    return {"serverContent": {"modelTurn": {"parts": [part]}}}


def _ext(compress: dict[str, Any] | None = None) -> PerMessageDeflate:
    return PerMessageDeflate(False, False, WINDOW_BITS, WINDOW_BITS, compress or {})


def _best_ms(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best * 1e3


def measure() -> dict[str, Any]:
    up_pcm, down_pcm = _audio(16000, SECONDS), _audio(24000, SECONDS)
    up_frames = _frames(up_pcm, 3200, _up)  # 100 ms at 16 kHz
    down_frames = _frames(down_pcm, 1920, _down)  # 40 ms at 24 kHz

    def build() -> None:
        _frames(up_pcm, 3200, _up)
        _frames(down_pcm, 1920, _down)

    def deflate() -> int:
        ext = _ext(CLIENT_COMPRESS)
        return sum(len(ext.encode(Frame(Opcode.TEXT, f)).data) for f in up_frames)

    server = _ext()
    down_wire = [server.encode(Frame(Opcode.TEXT, f)) for f in down_frames]

    def inflate() -> None:
        ext = _ext()
        for f in down_wire:
            ext.decode(f)

    up_bytes = sum(map(len, up_frames))
    down_bytes = sum(map(len, down_frames))
    deflated = deflate()
    tracemalloc.start()
    first_down = _ext().encode(Frame(Opcode.TEXT, down_frames[0]))
    held = [_ext(CLIENT_COMPRESS) for _ in range(10)]
    for ext in held:  # zlib allocates its state on first use
        ext.encode(Frame(Opcode.TEXT, up_frames[0]))
        ext.decode(first_down)
    kb_per_connection = tracemalloc.get_traced_memory()[0] / 1024 / len(held)
    tracemalloc.stop()
    per_s = 1 / SECONDS
    return {
        "build_frames_cpu_ms_per_call_second": round(_best_ms(build) * per_s, 3),
        "deflate_up_cpu_ms_per_call_second": round(_best_ms(deflate) * per_s, 3),
        "inflate_down_cpu_ms_per_call_second": round(_best_ms(inflate) * per_s, 3),
        "up_bytes_per_call_second": round(up_bytes * per_s),
        "up_deflated_ratio": round(deflated / up_bytes, 3),
        "down_bytes_per_call_second": round(down_bytes * per_s),
        "zlib_kb_per_connection": round(kb_per_connection, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    f = measure()
    both = f["deflate_up_cpu_ms_per_call_second"] + f["inflate_down_cpu_ms_per_call_second"]
    rows = [
        ("building frames (b64, JSON), ms CPU/call-s", f["build_frames_cpu_ms_per_call_second"]),
        ("deflate, caller audio up, ms CPU/call-s", f["deflate_up_cpu_ms_per_call_second"]),
        ("inflate, model audio down, ms CPU/call-s", f["inflate_down_cpu_ms_per_call_second"]),
        ("deflate + inflate, ms CPU/call-s", round(both, 3)),
        ("caller audio bytes after deflate", f["up_deflated_ratio"]),
        ("zlib state per connection, KB", f["zlib_kb_per_connection"]),
    ]
    for name, value in rows:
        print(f"{name:<52} {value:>8}")
    if args.json:
        result = {
            "bench": "ws_deflate",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_info(),
            "git_commit": git_commit(),
            "method": __doc__.split("\n\n", 2)[2].strip(),
            "figures": f,
        }
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
