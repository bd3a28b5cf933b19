"""Each tenant's greeting as the caller heard it, kept so that later calls hear it at once.

Opening a voice-model session takes hundreds of milliseconds (TLS, setup, the model's first
audio). The greeting is the same words in the same voice on every call of a tenant, so the first
call captures the audio the bridge played for it (only if it was heard out, uninterrupted) and
later calls play that audio the moment Exotel's `start` arrives, while the engine connects.

Key: tenant id, tenant version (`prompt_version`: a hash of its prompts, files and schema), the
greeting text, the engine's voice identity (engine, model, voice) and the caller's sample rate.
An edit to any of them misses the cache by itself; nothing is ever invalidated by hand.

Store: a bounded in-memory LRU per process, and one file per key under the cache directory
(`<sha256 of the key>.greeting`, written atomically), so every server process and every restart
reuses it. A file is hostile until checked: its size is bounded before it is read, and its
magic, header, key, rate, length and checksum must all match; a bad file is deleted (the next
call that greets through the engine writes it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from receptionist.config import Settings

__all__ = [
    "CachedGreeting",
    "GreetingCache",
    "GreetingCapture",
    "GreetingKey",
    "greeting_cache_for",
]

log = logging.getLogger("receptionist.greeting_cache")

MAGIC = b"RCPT-GREETING-1\n"
SUFFIX = ".greeting"
MAX_HEADER_BYTES = 64 * 1024
MAX_SPOKEN_CHARS = 2000
_HEADER_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class GreetingKey:
    tenant_id: str
    version: str  # the tenant's prompt_version
    text: str  # the greeting the engine was asked to say
    voice: str  # the engine's voice identity (engine, model, voice)
    rate: int  # the caller's sample rate: the audio is stored as the caller hears it

    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedGreeting:
    key: GreetingKey
    spoken: str  # what the engine said (its transcript), for the call's transcript and the model
    pcm: bytes  # 16-bit mono at key.rate

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.key.rate)

    def chunks(self, size: int) -> Iterator[bytes]:
        """The audio in frames of `size` bytes (the last one shorter), one at a time: a call
        playing it holds one frame, not a copy of the whole greeting."""
        pcm = self.pcm
        for i in range(0, len(pcm), size):
            yield pcm[i : i + size]


class GreetingCapture:
    """What the bridge sent while the engine spoke a greeting. Bounded: past the longest
    cacheable greeting it stops collecting, and so it does once another call of the process
    has cached the same greeting (calls that start together before the cache is filled do not
    all hold a copy to the end)."""

    __slots__ = ("_buf", "_cache", "key", "limit", "overflow")

    def __init__(self, cache: GreetingCache, key: GreetingKey, limit: int) -> None:
        self._cache = cache
        self.key = key
        self.limit = limit
        self._buf = bytearray()
        self.overflow = False  # nothing to keep: too long, or cached meanwhile

    def add(self, chunks: list[bytes]) -> None:
        if self.overflow:
            return
        for chunk in chunks:
            self._buf += chunk
        if len(self._buf) > self.limit or self._cache.holds(self.key):
            self.overflow = True
            self._buf = bytearray()

    @property
    def pcm(self) -> bytes:
        return bytes(self._buf)

    def keep(self, spoken: str) -> None:
        """The greeting was heard out: cache it (`spoken`: its words as the engine said them)."""
        if not self.overflow:
            self._cache.put(self.key, spoken or self.key.text, self.pcm)


class GreetingCache:
    """In-memory LRU over a directory of greeting files (directory None: memory only)."""

    def __init__(
        self, directory: Path | None, *, max_bytes: int = 64 << 20, max_seconds: float = 30.0
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._mem: OrderedDict[GreetingKey, CachedGreeting] = OrderedDict()
        self._mem_bytes = 0
        self._loading: dict[GreetingKey, asyncio.Task[CachedGreeting | None]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    def max_pcm_bytes(self, rate: int) -> int:
        n = int(self.max_seconds * rate) * 2
        return min(n, self.max_bytes)

    def capture(self, key: GreetingKey) -> GreetingCapture:
        return GreetingCapture(self, key, self.max_pcm_bytes(key.rate))

    def holds(self, key: GreetingKey) -> bool:
        """In this process's memory (no use count, no LRU move)."""
        return key in self._mem

    # --- reading ------------------------------------------------------------------------------

    def get_nowait(self, key: GreetingKey) -> CachedGreeting | None:
        """The greeting if this process holds it (a dictionary look-up: the hot path)."""
        found = self._mem.get(key)
        if found is not None:
            self._mem.move_to_end(key)
            self.hits += 1
        return found

    async def get(self, key: GreetingKey) -> CachedGreeting | None:
        """From memory, else from its file (read off the event loop; calls that arrive while
        it is read share the one read)."""
        found = self.get_nowait(key)
        if found is not None or self.directory is None:
            if found is None:
                self.misses += 1
            return found
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._load(key))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        found = await asyncio.shield(pending)  # a caller that gives up leaves the read to others
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def _load(self, key: GreetingKey) -> CachedGreeting | None:
        loaded = await asyncio.to_thread(self._read_file, key)
        if loaded is not None:
            self._remember(loaded)
        return loaded

    def path_for(self, key: GreetingKey) -> Path:
        assert self.directory is not None
        return self.directory / f"{key.digest()}{SUFFIX}"

    def _read_file(self, key: GreetingKey) -> CachedGreeting | None:
        path = self.path_for(key)
        limit = len(MAGIC) + _HEADER_LEN.size + MAX_HEADER_BYTES + self.max_pcm_bytes(key.rate)
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > limit:
                    self._reject(path, f"{size} bytes is more than {limit}")
                    return None
                data = f.read(limit + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("greeting cache: cannot read %s: %s", path.name, exc)
            return None
        try:
            return _decode(data, key, self.max_pcm_bytes(key.rate))
        except ValueError as exc:
            self._reject(path, str(exc))
            return None

    def _reject(self, path: Path, why: str) -> None:
        log.warning("greeting cache: ignoring %s (%s); it will be written again", path.name, why)
        with contextlib.suppress(OSError):
            path.unlink()

    # --- writing ------------------------------------------------------------------------------

    def put(self, key: GreetingKey, spoken: str, pcm: bytes) -> CachedGreeting | None:
        """Keep a greeting the caller heard out; the file is written in the background.
        Returns None (nothing kept) for audio that is empty, odd-sized or too long."""
        if key in self._mem:
            return self._mem[key]  # another call of the tenant got there first
        if not pcm or len(pcm) % 2 or len(pcm) > self.max_pcm_bytes(key.rate):
            return None
        greeting = CachedGreeting(key, spoken[:MAX_SPOKEN_CHARS], pcm)
        self._remember(greeting)
        if self.directory is not None:
            task = asyncio.get_running_loop().create_task(self._write(greeting))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        return greeting

    async def _write(self, greeting: CachedGreeting) -> None:
        try:
            await asyncio.to_thread(self._write_file, greeting)
        except OSError as exc:  # a full or read-only disk: the memory copy still serves
            log.warning("greeting cache: cannot write: %s", exc)

    def _write_file(self, greeting: CachedGreeting) -> None:
        path = self.path_for(greeting.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            with tmp.open("wb") as f:
                f.write(_encode(greeting))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # readers see the old file or the whole new one
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    async def drain(self) -> None:
        """Until every file write started so far is done (tests, shutdown)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def _remember(self, greeting: CachedGreeting) -> None:
        old = self._mem.pop(greeting.key, None)
        if old is not None:
            self._mem_bytes -= len(old.pcm)
        self._mem[greeting.key] = greeting
        self._mem_bytes += len(greeting.pcm)
        while self._mem_bytes > self.max_bytes and len(self._mem) > 1:
            _, dropped = self._mem.popitem(last=False)
            self._mem_bytes -= len(dropped.pcm)


def _encode(greeting: CachedGreeting) -> bytes:
    header = orjson.dumps(
        {
            "key": asdict(greeting.key),
            "spoken": greeting.spoken,
            "pcm_bytes": len(greeting.pcm),
            "pcm_sha256": hashlib.sha256(greeting.pcm).hexdigest(),
        }
    )
    return MAGIC + _HEADER_LEN.pack(len(header)) + header + greeting.pcm


def _decode(data: bytes, key: GreetingKey, max_pcm: int) -> CachedGreeting:
    """ValueError for anything but a well-formed file of exactly this key."""
    if not data.startswith(MAGIC):
        raise ValueError("not a greeting file")
    at = len(MAGIC)
    if len(data) < at + _HEADER_LEN.size:
        raise ValueError("truncated")
    (n,) = _HEADER_LEN.unpack_from(data, at)
    at += _HEADER_LEN.size
    if n > MAX_HEADER_BYTES or len(data) < at + n:
        raise ValueError("bad header length")
    try:
        header: Any = orjson.loads(data[at : at + n])
    except orjson.JSONDecodeError:
        raise ValueError("header is not JSON") from None
    if not isinstance(header, dict) or header.get("key") != asdict(key):
        raise ValueError("another key")  # a hash collision or a hand-made file
    pcm = data[at + n :]
    spoken = header.get("spoken")
    if not isinstance(spoken, str) or len(spoken) > MAX_SPOKEN_CHARS:
        raise ValueError("bad text")
    if header.get("pcm_bytes") != len(pcm) or not pcm or len(pcm) % 2 or len(pcm) > max_pcm:
        raise ValueError(f"bad audio length {len(pcm)}")
    if header.get("pcm_sha256") != hashlib.sha256(pcm).hexdigest():
        raise ValueError("checksum mismatch")
    return CachedGreeting(key, spoken, pcm)


# --- one cache per process and directory ----------------------------------------------------------

_shared: dict[tuple[str, int, float], GreetingCache] = {}


def greeting_cache_for(settings: Settings) -> GreetingCache | None:
    """The process's cache for these settings (None when GREETING_CACHE is off). Shared by every
    call in the process, so a greeting read or captured once serves them all."""
    if not settings.greeting_cache:
        return None
    directory = settings.greeting_cache_dir or settings.spool_dir.parent / "greetings"
    max_bytes = int(settings.greeting_cache_mb * (1 << 20))
    ident = (str(directory), max_bytes, settings.greeting_cache_max_s)
    cache = _shared.get(ident)
    if cache is None:
        cache = GreetingCache(
            directory, max_bytes=max_bytes, max_seconds=settings.greeting_cache_max_s
        )
        _shared[ident] = cache
    return cache
