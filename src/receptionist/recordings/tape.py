"""A call's raw recording on local disk, written by the bridge while the call goes on.

Two tracks, the caller's and the agent's, each a file of raw 16-bit PCM at the call's own rate
(what Exotel sends and what we send to it: nothing is resampled or encoded on the audio path).
Every sample sits at its time since the call's clock started (the transcript's clock), so the two
files line up and silences are kept: a track whose next audio starts later than where it ends
gets a hole (zeros) up to it. The agent's audio is placed where it *plays*: audio sent ahead of
playback follows what is still queued, and on barge-in (`cut_agent`) what Exotel dropped unplayed
is cut from the track, as the caller never heard it.

Per frame this is a comparison and a `bytearray` append; the bytes reach the files from a thread
(`flush`, the session's watchdog, about once a second), so a slow or full disk never stalls the
pumps. A track is bounded (`max_bytes`); a failed write stops the tape (`broken` says why) and
leaves the call alone. `opt_out` deletes the files at once and takes nothing more.

At the end `close` writes a manifest beside the tracks (`<base>.json`): the worker's uploader
(uploader.py) finds it, encodes the stereo file and stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CallTape", "Manifest", "TapeTrack", "read_manifest", "tape_base"]

# Caller audio arrives about every 100 ms; network jitter bunches it. A frame that arrives later
# than where the track ends by more than this starts after a gap (Exotel paused the stream);
# earlier or closer, it follows on (the track's own samples stay contiguous).
CALLER_SLACK_S = 0.5
MANIFEST_SUFFIX = ".json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tape_base(folder: Path, call_sid: str, session_id: str) -> Path:
    """The tracks' common path without suffix: the call's sid made safe for a file name."""
    return folder / f"{_UNSAFE.sub('_', call_sid)[:80] or 'call'}-{session_id[:12]}"


class TapeTrack:
    """One direction's samples: a buffer not yet written, at byte offset `start` of its file."""

    __slots__ = ("buf", "fd", "full", "limit", "path", "start", "truncate_to")

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.buf = bytearray()
        self.start = 0  # the file offset where `buf` begins
        self.limit = limit  # bytes: the track ends there
        self.full = False
        self.truncate_to: int | None = None  # a cut reached bytes already written

    @property
    def end(self) -> int:
        return self.start + len(self.buf)

    def put(self, pcm: bytes, at: int, slack: int) -> None:
        end = self.start + len(self.buf)
        gap = at > end + slack
        if (at if gap else end) + len(pcm) > self.limit:
            self.full = True
            return
        if gap:
            if self.buf:  # a gap inside the buffer: zeros (a tick's worth, bounded by limit)
                self.buf += bytes(at - end)
            else:  # nothing buffered: the file gets a hole there (reads as zeros)
                self.start = at
        self.buf += pcm

    def cut(self, at: int) -> None:
        """Drop everything from byte `at` on (audio that was never played)."""
        if at >= self.end:
            return
        if at >= self.start:
            del self.buf[at - self.start :]
            return
        self.buf = bytearray()
        self.start = at
        self.truncate_to = at if self.truncate_to is None else min(self.truncate_to, at)

    def take(self) -> tuple[int, bytearray, int | None] | None:
        """What to write now (offset, bytes, truncate first to), or None; the buffer restarts."""
        if not self.buf and self.truncate_to is None:
            return None
        out = (self.start, self.buf, self.truncate_to)  # handed over whole: no copy
        self.start += len(self.buf)
        self.buf = bytearray()
        self.truncate_to = None
        return out


def _write(fd: int, job: tuple[int, bytearray, int | None]) -> None:
    offset, data, truncate_to = job
    if truncate_to is not None:
        os.ftruncate(fd, truncate_to)
    if data:
        os.pwrite(fd, data, offset)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the uploader needs of a finished tape (the JSON beside its tracks)."""

    call_sid: str
    tenant: str
    session_id: str
    sample_rate: int
    base: str  # the tracks' path without suffix
    opted_out: bool = False
    error: str | None = None  # the tape broke (a disk error): what it has is not kept

    @property
    def caller_path(self) -> Path:
        return Path(self.base + ".caller.pcm")

    @property
    def agent_path(self) -> Path:
        return Path(self.base + ".agent.pcm")


def read_manifest(path: Path) -> Manifest:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    names = {f.name for f in dataclasses.fields(Manifest)}
    return Manifest(**{k: v for k, v in data.items() if k in names})


class CallTape:
    """The call's two tracks. `t0`: the call's clock (time.monotonic() of the transcript's 0)."""

    def __init__(
        self,
        folder: Path,
        *,
        call_sid: str,
        tenant: str,
        session_id: str,
        rate: int,
        t0: float,
        max_s: float,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.call_sid, self.tenant, self.session_id = call_sid, tenant, session_id
        self.rate, self.t0 = rate, t0
        self.base = tape_base(folder, call_sid, session_id)
        limit = int(max_s * rate) * 2
        self.caller = TapeTrack(Path(f"{self.base}.caller.pcm"), limit)
        try:
            self.agent = TapeTrack(Path(f"{self.base}.agent.pcm"), limit)
        except OSError:  # no half tape: the caller's track goes too
            os.close(self.caller.fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.caller.path)
            raise
        self._slack = int(CALLER_SLACK_S * rate) * 2
        self.on = True  # takes audio
        self.opted_out = False
        self.broken: str | None = None
        self._flushing: asyncio.Future[None] | None = None

    def _at(self, t: float) -> int:
        # before t0 (never, in a call) it is negative: put() then appends at the track's end
        return int((t - self.t0) * self.rate) * 2

    # --- the audio path (per frame: no I/O) -------------------------------------------------

    def caller_audio(self, pcm: bytes, now: float) -> None:
        """A caller frame that arrived at `now` (its last sample is about now)."""
        if self.on:
            self.caller.put(pcm, self._at(now) - len(pcm), self._slack)

    def agent_audio(self, pcm: bytes, plays_at: float) -> None:
        """Agent audio sent to the caller that starts playing at `plays_at`."""
        if self.on:
            self.agent.put(pcm, self._at(plays_at), 0)

    def cut_agent(self, now: float) -> None:
        """Barge-in: the agent audio after `now` was dropped by Exotel unplayed."""
        if self.on:
            self.agent.cut(self._at(now))

    # --- off the audio path -----------------------------------------------------------------

    def flush_soon(self) -> None:
        """Start writing what the tracks hold, from a thread, unless a write is under way;
        never waits (the call's watchdog calls it: a slow disk must not hold its timers)."""
        if not self.on or (self._flushing is not None and not self._flushing.done()):
            return
        jobs = [(t.fd, job) for t in (self.caller, self.agent) if (job := t.take()) is not None]
        if not jobs:
            return
        self._flushing = asyncio.get_running_loop().run_in_executor(None, _write_all, jobs)
        self._flushing.add_done_callback(self._written)

    def _written(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and (exc := done.exception()) is not None:
            # a full or failing disk: this call is not recorded
            self._break(f"{type(exc).__name__}: {exc}"[:300])

    async def _settle(self) -> None:
        """Wait for the write under way. Shielded: a cancelled waiter never cancels (or drops)
        a write, so close() cannot close a descriptor a thread is still writing to."""
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flushing)

    async def flush(self) -> None:
        """Write what the tracks hold and wait for it (after any write under way: in order)."""
        await self._settle()
        self.flush_soon()
        await self._settle()

    def opt_out(self) -> None:
        """The caller asked not to be recorded: nothing more is taken, the tracks go now (a
        write still in flight lands in a file already unlinked: nothing is kept)."""
        if self.opted_out:
            return
        self.opted_out = True
        self._drop()

    def _break(self, why: str) -> None:
        if self.broken is None and not self.opted_out:
            self.broken = why
            self._drop()

    def _drop(self) -> None:
        self.on = False
        for track in (self.caller, self.agent):
            track.buf = bytearray()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(track.path)

    async def close(self, *, keep: bool = True) -> Manifest:
        """Write the rest, close the files and leave the manifest for the uploader; `keep`
        False: the files go and no manifest is left (a stream whose call is another's)."""
        if not keep:
            self._drop()
        await self.flush()
        for track in (self.caller, self.agent):
            with contextlib.suppress(OSError):
                os.close(track.fd)
        manifest = Manifest(
            call_sid=self.call_sid,
            tenant=self.tenant,
            session_id=self.session_id,
            sample_rate=self.rate,
            base=str(self.base),
            opted_out=self.opted_out,
            error=self.broken,
        )
        if not keep:
            return manifest
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _write_manifest, manifest)
        except OSError as exc:  # the disk is gone: the tracks cannot be found again either
            self._break(f"manifest not written: {exc}"[:300])
        return manifest


def _write_all(jobs: list[tuple[int, tuple[int, bytearray, int | None]]]) -> None:
    for fd, job in jobs:
        _write(fd, job)


def _write_manifest(manifest: Manifest) -> None:
    path = Path(manifest.base + MANIFEST_SUFFIX)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(dataclasses.asdict(manifest)))
    os.replace(tmp, path)  # atomic: the uploader never reads half a manifest
