"""The greeting cache on its own: keys, the LRU bound, files written atomically and read back
only when every check passes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from receptionist.bridge.greeting_cache import (
    MAGIC,
    CachedGreeting,
    GreetingCache,
    GreetingKey,
    greeting_cache_for,
)
from receptionist.config import load_settings

KEY = GreetingKey("bakery", "v1", "Hello, Sweet Crumbs!", "gemini-live:m:Puck", 8000)
PCM = bytes(range(256)) * 40  # 10240 bytes, 0.64 s at 8 kHz


async def _stored(directory: Path, key: GreetingKey = KEY, pcm: bytes = PCM) -> Path:
    cache = GreetingCache(directory)
    assert cache.put(key, "Hello, Sweet Crumbs!", pcm) is not None
    await cache.drain()
    return cache.path_for(key)


async def test_a_stored_greeting_is_read_back_by_another_process_cache(tmp_path: Path) -> None:
    path = await _stored(tmp_path)
    assert path.is_file() and path.suffix == ".greeting"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    fresh = GreetingCache(tmp_path)  # a new process or a restart: memory empty
    assert fresh.get_nowait(KEY) is None
    found = await fresh.get(KEY)
    assert found == CachedGreeting(KEY, "Hello, Sweet Crumbs!", PCM)
    assert fresh.get_nowait(KEY) is found  # now in memory


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": "saloon"},  # two tenants never share
        {"version": "v2"},  # a tenant edit (new prompt version)
        {"text": "Hello again!"},  # a new greeting
        {"voice": "gemini-live:m:Kore"},  # another voice or model
        {"rate": 16000},  # a wideband stream
    ],
)
async def test_any_change_of_the_key_misses(tmp_path: Path, change: dict[str, object]) -> None:
    await _stored(tmp_path)
    other = replace(KEY, **change)  # type: ignore[arg-type]
    assert other.digest() != KEY.digest()
    cache = GreetingCache(tmp_path)
    assert await cache.get(KEY) is not None  # from the file, now in memory too
    assert cache.get_nowait(other) is None
    assert await cache.get(other) is None


def _corrupt(data: bytes) -> list[tuple[str, bytes]]:
    head = len(MAGIC) + 4
    return [
        ("not ours", b"RIFF" + data[4:]),
        ("truncated", data[: head - 2]),
        ("header length", data[: len(MAGIC)] + b"\xff\xff\xff\xff" + data[head:]),
        ("header not json", data[:head] + b"{" * 10 + data[head + 10 :]),
        ("audio cut", data[:-1]),
        ("audio flipped", data[:-1] + bytes([data[-1] ^ 1])),
        ("audio added", data + b"\x00\x00"),
    ]


@pytest.mark.parametrize("case", range(7))
async def test_a_corrupt_file_is_ignored_deleted_and_written_again(
    tmp_path: Path, case: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = await _stored(tmp_path)
    name, bad = _corrupt(path.read_bytes())[case]
    path.write_bytes(bad)
    cache = GreetingCache(tmp_path)
    assert await cache.get(KEY) is None, name
    assert not path.exists(), name
    assert "ignoring" in caplog.text
    cache.put(KEY, "Hello, Sweet Crumbs!", PCM)  # the next call that greets fills it again
    await cache.drain()
    assert (await GreetingCache(tmp_path).get(KEY)) is not None


async def test_a_file_of_another_key_is_not_trusted(tmp_path: Path) -> None:
    """A file under this key's name that holds another key (a hand-made or colliding file)."""
    other = replace(KEY, tenant_id="saloon")
    src = await _stored(tmp_path, other)
    cache = GreetingCache(tmp_path)
    src.rename(cache.path_for(KEY))
    assert await cache.get(KEY) is None


async def test_an_oversized_file_is_not_read(tmp_path: Path) -> None:
    path = await _stored(tmp_path)
    small = GreetingCache(tmp_path, max_seconds=0.5)  # 8000 bytes at 8 kHz: the file is larger
    assert await small.get(KEY) is None
    assert not path.exists()
    # and such audio is never kept in the first place
    assert small.put(KEY, "x", PCM) is None
    assert small.put(KEY, "x", PCM[:-1]) is None  # odd length: not 16-bit audio
    assert small.put(KEY, "x", b"") is None


async def test_memory_is_bounded_least_recent_first(tmp_path: Path) -> None:
    cache = GreetingCache(None, max_bytes=3 * len(PCM))
    keys = [replace(KEY, tenant_id=f"t{i}") for i in range(4)]
    for key in keys[:3]:
        cache.put(key, "x", PCM)
    assert cache.get_nowait(keys[0]) is not None  # used: now the most recent
    cache.put(keys[3], "x", PCM)
    assert cache.get_nowait(keys[1]) is None  # the least recently used went
    assert all(cache.get_nowait(k) is not None for k in (keys[0], keys[2], keys[3]))


async def test_calls_arriving_together_share_one_file_read(tmp_path: Path) -> None:
    await _stored(tmp_path)
    cache = GreetingCache(tmp_path)
    reads = 0
    real = cache._read_file

    def counting(key: GreetingKey) -> CachedGreeting | None:
        nonlocal reads
        reads += 1
        return real(key)

    cache._read_file = counting  # type: ignore[method-assign]
    found = await asyncio.gather(*(cache.get(KEY) for _ in range(20)))
    assert reads == 1
    assert all(f is not None and f.pcm == PCM for f in found)


async def test_a_capture_stops_once_another_call_cached_the_greeting() -> None:
    cache = GreetingCache(None, max_seconds=1.0)  # 16000 bytes at 8 kHz
    first, second, long = cache.capture(KEY), cache.capture(KEY), cache.capture(KEY)
    for capture in (first, second):
        capture.add([PCM[:3200]])
    long.add([PCM, PCM])  # 20480 bytes: more than a cacheable greeting
    assert long.overflow and long.pcm == b""
    assert cache.put(KEY, "x", first.pcm) is not None
    second.add([PCM[3200:6400]])
    assert second.overflow and second.pcm == b""  # its copy is dropped, not kept to the end


def test_settings_choose_the_directory_and_can_turn_it_off(tmp_path: Path) -> None:
    beside = greeting_cache_for(load_settings(spool_dir=tmp_path / "data" / "spool"))
    assert beside is not None and beside.directory == tmp_path / "data" / "greetings"
    assert greeting_cache_for(load_settings(spool_dir=tmp_path / "data" / "spool")) is beside
    own = greeting_cache_for(load_settings(greeting_cache_dir=tmp_path / "g"))
    assert own is not None and own.directory == tmp_path / "g"
    assert greeting_cache_for(load_settings(greeting_cache=False)) is None


def test_chunks_cover_the_audio_in_order() -> None:
    greeting = CachedGreeting(KEY, "x", PCM)
    chunks = list(greeting.chunks(3200))
    assert [len(c) for c in chunks] == [3200, 3200, 3200, 640]
    assert b"".join(chunks) == PCM
    assert greeting.seconds == pytest.approx(0.64)
