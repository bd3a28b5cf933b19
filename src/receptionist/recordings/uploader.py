"""Finished tapes to the recording store, and recordings past their tenant's retention away.

Runs beside the pipeline in the worker of each serving process (`serve`), since the raw tapes are
on that machine's disk: each row names the machine (`node`) and only that machine's uploader
claims it. One pass:

0. (at start) rehome: pending rows whose raw tracks are on this disk under another machine name
   (a container re-created over the same volume) become this machine's;
1. adopt: every manifest the bridge left (tape.py) becomes a row (`pending`; `opted_out` or
   `failed` at once, their tracks removed) and the manifest goes: the row is durable now;
2. upload: claim due rows under a lease, encode the stereo file in a thread (encode.py), put it
   in the store (stores.py) in a thread, mark it `stored` and remove the raw tracks. A store that
   is down, full or refusing is retried with a backoff doubling from `backoff_base_s` (up to an
   hour) until `max_attempts`, then the row is `failed` with the reason (its raw tracks go at
   the next sweep). The call's own row and transcript never wait for any of this.

`sweep` (every `sweep_every_s`): recordings older than their tenant's `retention_days` (30 when
the tenant no longer records) are deleted from the store and their rows marked `deleted`; raw
tracks left without a manifest are removed when their row is over (stored, opted out, finally
failed) or, with no row at all (a server killed during the call), after a day; a `pending`
row's tracks (first try or a retry after a failure) are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from receptionist import loops
from receptionist.recordings.encode import encode_stereo
from receptionist.recordings.stores import RecordingStore, StoreError
from receptionist.recordings.tape import MANIFEST_SUFFIX, Manifest, read_manifest
from receptionist.store.db import Database
from receptionist.store.recordings import (
    EMPTY,
    FAILED,
    OPTED_OUT,
    PENDING,
    STORED,
    ClaimedUpload,
    NewRecording,
    add_recording,
    claim_uploads,
    expired,
    mark_deleted,
    upload_failed,
    upload_finished,
)
from receptionist.store.schema import call_recordings, utcnow
from receptionist.tenants.recording_checks import DEFAULT_RETENTION_DAYS
from receptionist.tenants.repository import TenantError, Tenants

__all__ = ["RecordingUploader", "this_node"]

log = logging.getLogger("receptionist.recordings")

MAX_BACKOFF_S = 3600.0
ORPHAN_AFTER_S = 24 * 3600.0
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def this_node() -> str:
    return socket.gethostname()[:100] or "localhost"


def _remove_tracks(base: str | None) -> None:
    if not base:
        return
    for suffix in (".caller.pcm", ".agent.pcm", ".enc.ogg", ".enc.mp3"):
        Path(base + suffix).unlink(missing_ok=True)


class RecordingUploader:
    def __init__(
        self,
        db: Database,
        tenants: Tenants,
        store: RecordingStore,
        spool_dir: Path,
        *,
        worker_id: str,
        node: str | None = None,
        fmt: str = "opus",
        max_attempts: int = 8,
        backoff_base_s: float = 30.0,
        lease_s: float = 300.0,
        batch: int = 2,
        poll_s: float = 5.0,
        sweep_every_s: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.tenants, self.store, self.spool_dir = db, tenants, store, spool_dir
        self.worker_id, self.node = worker_id, node or this_node()
        self.fmt = fmt
        self.max_attempts, self.backoff_base_s = max_attempts, backoff_base_s
        self.lease_s, self.batch, self.poll_s, self.sweep_every_s = (
            lease_s,
            batch,
            poll_s,
            sweep_every_s,
        )
        self.clock = clock
        self.wake = asyncio.Event()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        def failed(exc: Exception) -> None:  # the database is away: the tapes wait on disk
            log.error("recordings: pass failed (%s); retrying", exc)

        async def sweep() -> None:
            try:
                await self.sweep()
            except Exception as exc:
                log.error("recordings: retention sweep failed (%s)", exc)

        try:
            await self.rehome()
        except Exception as exc:
            log.error("recordings: tapes of an earlier name of this machine not taken (%s)", exc)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                loops.poll(
                    self.run_once, stop=stop, wake=self.wake, poll_s=self.poll_s, failed=failed
                )
            )
            tg.create_task(loops.every(self.sweep_every_s, stop, sweep))

    async def run_once(self) -> int:
        """Adopt the finished tapes, then upload one batch side by side; returns the work done."""
        adopted = await self.adopt()
        claimed = await claim_uploads(
            self.db, node=self.node, worker_id=self.worker_id, lease_s=self.lease_s,
            limit=self.batch, now=self.clock(),
        )  # fmt: skip
        await asyncio.gather(*(self._upload(c) for c in claimed))
        return adopted + len(claimed)

    async def rehome(self) -> int:
        """Pending uploads whose raw tracks are on this disk but whose row names another machine
        (a container re-created with a new host name over the same volume) become this one's."""
        r = call_recordings.c
        async with self.db.session() as conn:
            rows = (
                await conn.execute(
                    sa.select(r.id, r.raw_base)
                    .where(r.status == "pending", r.node != self.node, r.raw_base.is_not(None))
                    .limit(1000)
                )
            ).all()
        mine = [
            row.id
            for row in rows
            if Path(row.raw_base + ".caller.pcm").exists()
            or Path(row.raw_base + ".agent.pcm").exists()
        ]
        if mine:
            async with self.db.begin() as conn:
                await conn.execute(
                    sa.update(call_recordings).where(r.id.in_(mine)).values(node=self.node)
                )
            log.info("recordings: %d pending upload(s) taken over by %s", len(mine), self.node)
        return len(mine)

    # --- 1. manifests to rows -----------------------------------------------------------------

    async def adopt(self) -> int:
        if not self.spool_dir.is_dir():
            return 0
        done = 0
        for path in sorted(self.spool_dir.glob("*" + MANIFEST_SUFFIX)):
            try:
                manifest = read_manifest(path)
            except FileNotFoundError:
                continue  # another process on this machine (serve --workers N) adopted it
            except (OSError, ValueError, TypeError) as exc:
                log.error("recordings: unreadable manifest %s (%s); set aside", path.name, exc)
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
                continue
            await add_recording(
                self.db, self._new_row(manifest), now=self.clock()
            )  # raises: the file stays
            if manifest.opted_out or manifest.error:
                _remove_tracks(manifest.base)
            path.unlink(missing_ok=True)
            done += 1
        return done

    def _new_row(self, m: Manifest) -> NewRecording:
        if m.opted_out:
            return NewRecording(m.call_sid, m.tenant, self.node, None, m.sample_rate, OPTED_OUT)
        if m.error:
            error = f"recording stopped during the call: {m.error}"
            return NewRecording(m.call_sid, m.tenant, self.node, None, m.sample_rate, FAILED, error)
        return NewRecording(m.call_sid, m.tenant, self.node, m.base, m.sample_rate)

    # --- 2. encode and store ------------------------------------------------------------------

    def _key(self, c: ClaimedUpload, suffix: str) -> str:
        day = c.created_at.strftime("%Y-%m-%d")
        return f"{_SAFE.sub('_', c.tenant)}/{day}/{_SAFE.sub('_', c.call_sid)[:100]}{suffix}"

    async def _upload(self, c: ClaimedUpload) -> None:
        caller, agent = Path(c.raw_base + ".caller.pcm"), Path(c.raw_base + ".agent.pcm")
        if not caller.exists() and not agent.exists():
            await upload_failed(
                self.db, c, worker_id=self.worker_id, error="the raw audio is gone", retry_at=None
            )
            return
        t0 = time.perf_counter()
        try:
            encoded = await asyncio.to_thread(
                encode_stereo,
                caller,
                agent,
                c.sample_rate,
                Path(c.raw_base + ".enc"),
                self.fmt,  # type: ignore[arg-type]
            )
        except Exception as exc:  # a full disk, a bad file: retried like a store failure
            await self._failed(c, f"encoding failed: {type(exc).__name__}: {exc}")
            return
        if encoded.duration_ms == 0:
            await upload_finished(self.db, c, worker_id=self.worker_id, status=EMPTY)
            _remove_tracks(c.raw_base)
            return
        key = self._key(c, encoded.suffix)
        try:
            await asyncio.to_thread(self.store.put, key, encoded.path, encoded.content_type)
        except StoreError as exc:
            encoded.path.unlink(missing_ok=True)
            await self._failed(c, f"{self.store.name} store: {exc}")
            return
        kept = await upload_finished(
            self.db, c, worker_id=self.worker_id, status=STORED, store=self.store.name, key=key,
            content_type=encoded.content_type, size=encoded.size, duration_ms=encoded.duration_ms,
        )  # fmt: skip
        _remove_tracks(c.raw_base)
        log.info(
            "recording of %s stored (%s, %d bytes, %.0f ms of work)%s",
            c.call_sid, key, encoded.size, (time.perf_counter() - t0) * 1000,
            "" if kept else "; the lease had passed to another uploader",
        )  # fmt: skip

    async def _failed(self, c: ClaimedUpload, error: str) -> None:
        retry_at = None
        if c.attempts < self.max_attempts:
            delay = min(self.backoff_base_s * 2 ** (c.attempts - 1), MAX_BACKOFF_S)
            retry_at = self.clock() + timedelta(seconds=delay)
        await upload_failed(self.db, c, worker_id=self.worker_id, error=error, retry_at=retry_at)
        level = logging.WARNING if retry_at is not None else logging.ERROR
        log.log(
            level, "recording of %s: attempt %d failed (%s)%s", c.call_sid, c.attempts, error,
            "" if retry_at is not None else "; given up",
        )  # fmt: skip

    # --- retention ----------------------------------------------------------------------------

    def retention_days(self, tenant: str) -> int:
        try:
            policy = self.tenants.get_any(tenant).recording
        except TenantError:
            policy = None
        return policy.retention_days if policy is not None else DEFAULT_RETENTION_DAYS

    async def sweep(self) -> int:
        """Delete what is past its tenant's retention; returns how many recordings went."""
        r = call_recordings.c
        async with self.db.session() as conn:
            tenants = list(
                (
                    await conn.execute(sa.select(r.tenant).where(r.status != "deleted").distinct())
                ).scalars()
            )
        gone = 0
        now = self.clock()
        for tenant in tenants:
            before = now - timedelta(days=self.retention_days(tenant))
            for row in await expired(self.db, tenant, before):
                if row["store_key"] and row["status"] == STORED:
                    try:
                        await asyncio.to_thread(self.store.delete, row["store_key"])
                    except StoreError as exc:
                        log.warning("recording %s not deleted yet (%s)", row["call_sid"], exc)
                        continue
                if row["node"] == self.node:  # another machine's raw tracks went after a day
                    _remove_tracks(row["raw_base"])
                await mark_deleted(self.db, row["id"])
                gone += 1
        orphans = await asyncio.to_thread(self._orphans, await self._tracks_to_keep())
        if gone or orphans:
            log.info("recordings: %d past their retention deleted, %d orphan tracks", gone, orphans)
        return gone

    async def _tracks_to_keep(self) -> tuple[set[str], set[str]]:
        """(raw bases whose upload is still coming: a `pending` row, first try or a retry;
        raw bases of rows that are over: stored, opted out, finally failed, deleted), of the
        rows that name this machine."""
        r = call_recordings.c
        async with self.db.session() as conn:
            rows = (
                await conn.execute(
                    sa.select(r.raw_base, r.status).where(
                        r.node == self.node, r.raw_base.is_not(None)
                    )
                )
            ).all()
        coming = {row.raw_base for row in rows if row.status == PENDING}
        over = {row.raw_base for row in rows if row.status != PENDING} - coming
        return coming, over

    def _orphans(self, known: tuple[set[str], set[str]]) -> int:
        """Raw tracks without a manifest whose upload will never come: a row that is over
        (stored, opted out, finally failed) at once; no row at all (a server killed during the
        call) once a day old. A `pending` row's tracks stay, however long it retries."""
        if not self.spool_dir.is_dir():
            return 0
        coming, over = known
        cutoff = time.time() - ORPHAN_AFTER_S
        n = 0
        for path in self.spool_dir.glob("*.pcm"):
            base = str(path).removesuffix(".caller.pcm").removesuffix(".agent.pcm")
            if base in coming or Path(base + MANIFEST_SUFFIX).exists():
                continue
            try:
                if base in over or path.stat().st_mtime < cutoff:
                    os.unlink(path)
                    n += 1
            except OSError:
                continue
        return n
