"""Keeps live calls recoverable if this server dies, and recovers the calls of servers that did.

One task per server process, off the audio path: every `CHECKPOINT_INTERVAL_S` it snapshots
the transcripts of the live calls (a few list copies on the event loop; no call's frame loop
ever waits for it) and writes the ones that changed, with this process's heartbeat, in one
transaction (store/checkpoints.py). When the database is away the snapshot of every live call
goes to one file per process in the spool folder instead, replaced atomically each round and
removed once the database takes checkpoints again.

On start-up it closes the calls of processes that are gone: first those recorded only in
checkpoint files a dead process on this host left behind, then those in the database (its own
host's dead processes at once, other machines' once their heartbeat is `SERVER_LOST_AFTER_S`
old); then again every `REAPER_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from receptionist import loops
from receptionist.observe import metrics
from receptionist.store.bookings import release_calls
from receptionist.store.checkpoints import (
    Checkpoint,
    ServerProcess,
    heartbeat_and_checkpoint,
    heartbeat_then_each,
    provably_dead,
    unregister_server,
)
from receptionist.store.db import Database, unreachable
from receptionist.store.reaper import LostCall, close_lost_calls, reap_lost_calls
from receptionist.store.schema import utcnow

log = logging.getLogger("receptionist.checkpoint")

CHECKPOINTS = "checkpoints"  # spool subfolder: one file per server process while the db is away
MAX_FILE_BYTES = 64 * 1024 * 1024  # a checkpoint file larger than this is not ours: left alone
# the database could not be reached (as opposed to refusing a call's data)
YIELD_EVERY = 100  # calls snapshotted between two returns to the event loop


class LiveCall(Protocol):
    """What the checkpointer needs of a live call (CallSession)."""

    def checkpoint_version(self) -> Hashable: ...

    def checkpoint(self) -> Checkpoint | None: ...


class Checkpointer:
    def __init__(
        self,
        db: Database,
        live: Mapping[str, LiveCall],
        spool_dir: Path,
        *,
        interval_s: float,
        lost_after_s: float,
        reap_interval_s: float,
        max_call_s: float,
        on_reaped: Callable[[list[str]], None] | None = None,
        before_reap: Callable[[], Awaitable[object]] | None = None,
        me: ServerProcess | None = None,
    ) -> None:
        self.db = db
        self.live = live
        self.folder = spool_dir / CHECKPOINTS
        self.interval_s = interval_s
        # a live server beats every interval: a few missed beats (a slow database) are not death
        self.lost_after_s = max(lost_after_s, 3 * interval_s)
        self.reap_interval_s = reap_interval_s
        self.max_call_s = max_call_s
        self.on_reaped = on_reaped
        self.before_reap = before_reap
        self.me = me or ServerProcess.this_process()
        self._written: dict[str, Any] = {}  # call_sid -> transcript version the db has
        self._on_disk = False
        self._failing = False
        self._away: set[str] = set()  # loops waiting for the database (logged once each)
        self._refused: set[str] = set()  # calls whose data the database refused last round
        self._beats = 0  # heartbeats written

    @property
    def path(self) -> Path:
        return self.folder / f"{self.me.id}.json"

    # --- one round ------------------------------------------------------------------------

    async def snapshot(self, *, changed_only: bool) -> tuple[list[Checkpoint], dict[str, Any]]:
        """The live calls (or those whose transcript changed since the database last took
        them), and every live call's transcript version. Runs on the event loop between the
        calls' frames: it gives the loop back every YIELD_EVERY calls."""
        out: list[Checkpoint] = []
        versions: dict[str, Any] = {}
        for i, (sid, call) in enumerate(list(self.live.items())):
            if i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            version = call.checkpoint_version()
            if changed_only and self._written.get(sid) == version:
                versions[sid] = version
                continue
            cp = call.checkpoint()
            if cp is not None:
                versions[sid] = version
                out.append(cp)
        return out, versions

    async def tick(self) -> None:
        """Heartbeat plus every live call whose transcript changed; to disk if the db fails."""
        changed, versions = await self.snapshot(changed_only=not self._failing)
        try:
            async with asyncio.timeout(max(2 * self.interval_s, 2.0)):
                try:
                    had_row = await heartbeat_and_checkpoint(self.db, self.me, changed)
                    self._refused = set()
                    if not had_row and self._beats:
                        # our heartbeat was so late that another server took this one for
                        # dead and closed its live calls as server_lost: they go on here, and
                        # each one's real end overwrites that when it comes
                        log.error(
                            "this server (%s) was taken for dead: its heartbeat stalled longer"
                            " than SERVER_LOST_AFTER_S; its live calls were closed elsewhere",
                            self.me.id,
                        )
                    self._beats += 1
                except Exception as exc:
                    if unreachable(exc):
                        raise
                    # the database is up and refused something: see _careful
                    versions = await self._careful(changed, versions)
        except Exception as exc:
            if not self._failing:
                log.warning("checkpoint to the database failed (%s); writing to %s", exc, self.path)
                self._failing = True
                # the file holds every live call, not only those that changed
                changed, versions = await self.snapshot(changed_only=False)
            if changed or self._on_disk:
                await asyncio.to_thread(self._write_file, changed)
            return
        if self._failing:
            log.info("checkpoints reach the database again")
        self._failing = False
        self._written = versions  # calls that ended are dropped from it here
        if self._on_disk and not self._refused:
            self.path.unlink(missing_ok=True)
            self._on_disk = False

    async def _careful(self, changed: list[Checkpoint], versions: dict[str, Any]) -> dict:
        """The database is up but refused some call's data: the heartbeat and the other calls
        must not wait for it (or other servers would take this one for dead). Each call goes
        in its own transaction; the refused ones are kept on disk. Returns the versions the
        database now has."""
        refused = await heartbeat_then_each(self.db, self.me, changed)
        for sid, why in refused:
            log.error("call %s: checkpoint refused by the database: %s", sid, why)
        self._refused = {sid for sid, _ in refused}
        if self._refused:
            bad = [cp for cp in changed if cp.call_sid in self._refused]
            await asyncio.to_thread(self._write_file, bad)
        return {k: v for k, v in versions.items() if k not in self._refused}

    def _write_file(self, calls: list[Checkpoint]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "server": {
                "id": self.me.id,
                "host": self.me.host,
                "pid": self.me.pid,
                "pid_space": self.me.pid_space,
                "started_at": self.me.started_at.isoformat(),
            },
            "calls": [],
        }
        for cp in calls:
            try:  # one call whose text no encoder takes must not cost the others theirs
                orjson.dumps(cp.transcript)
            except TypeError as exc:
                log.error("call %s: checkpoint not written to disk: %s", cp.call_sid, exc)
                continue
            data["calls"].append(cp.as_json())
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)  # atomic: a crash never leaves half a file under the name
        self._on_disk = True

    # --- recovery -------------------------------------------------------------------------

    async def recover_files(self) -> list[str]:
        """Close the calls in checkpoint files left by dead processes of this host."""
        if not self.folder.is_dir():
            return []
        closed: list[str] = []
        stale_before = time.time() - self.lost_after_s
        for path in sorted(self.folder.glob("*.json")):
            if path == self.path:
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                data = orjson.loads(path.read_bytes())
                owner = _server_of(data["server"])
                calls = [Checkpoint.from_json(d) for d in data["calls"]]
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue  # another process recovered it meanwhile
            except Exception as exc:
                log.error("checkpoint file %s is unreadable (%s): left for a person", path, exc)
                continue
            # a live process rewrites its file every interval while the db is away
            if not (provably_dead(owner, self.me) or mtime < stale_before):
                continue
            why = f"server process {owner.host}:{owner.pid} stopped while the call was live"
            lost = [_lost_from(cp, datetime_from_ts(mtime), why) for cp in calls]
            closed += await close_lost_calls(self.db, lost)
            path.unlink(missing_ok=True)
        return closed

    async def reap(self) -> list[str]:
        """One reaper pass: files of dead local processes, then the database."""
        if self.before_reap is not None:
            # spooled ends first: a call that ended while the database was away has its real
            # end written before a reaper could take it for lost
            await self.before_reap()
        closed = await self.recover_files()
        closed += await reap_lost_calls(
            self.db, self.me, lost_after_s=self.lost_after_s, max_call_s=self.max_call_s
        )
        if closed:
            # which of their holds' answers reached the caller died with the process: none is
            # confirmed, all are released now rather than at their bound
            await release_calls(self.db, closed)
            metrics.CALLS_SERVER_LOST.inc(len(closed))
            log.warning(
                "closed %d call(s) of server processes that are gone (server_lost): %s",
                len(closed),
                ", ".join(closed[:20]),
            )
            if self.on_reaped is not None:
                self.on_reaped(closed)
        return closed

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this process, then one reaper pass (a failure is retried by the loops)."""
        try:
            await self.tick()  # the first heartbeat registers this process
            async with asyncio.timeout(max(self.reap_interval_s, 10.0)):
                await self.reap()
        except Exception as exc:
            log.warning("start-up recovery of lost calls postponed: %s", exc)

    async def run(self, stop: asyncio.Event) -> None:
        """`start`, then checkpoints and reaper passes until `stop`. Runs beside the server,
        never before it: a database that is away or slow delays no call."""
        await self.start()
        await asyncio.gather(
            loops.every(self.interval_s, stop, lambda: self._pass(self.tick, "checkpoint")),
            loops.every(self.reap_interval_s, stop, lambda: self._pass(self.reap, "reaper")),
        )

    async def _pass(self, step: Callable[[], Awaitable[Any]], what: str) -> None:
        try:
            await step()
        except Exception as exc:  # a bug or an outage must not end the loop
            if not unreachable(exc):
                log.exception("%s pass failed", what)
            elif what not in self._away:  # an outage: one line, not a traceback per pass
                self._away.add(what)
                log.warning("%s pass waits for the database (%s)", what, exc)
        else:
            self._away.discard(what)

    async def close(self) -> None:
        """A clean stop, after the calls were written: the heartbeat row and file go."""
        if self.live:
            return  # calls are still live (not written yet): keep both for a reaper
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await unregister_server(self.db, self.me)
        self.path.unlink(missing_ok=True)


def datetime_from_ts(ts: float) -> datetime:
    return utcnow() - timedelta(seconds=max(0.0, time.time() - ts))


def _server_of(d: dict[str, Any]) -> ServerProcess:
    return ServerProcess(
        id=str(d["id"]),
        host=str(d["host"]),
        pid=int(d["pid"]),
        pid_space=str(d.get("pid_space") or ""),
        started_at=datetime.fromisoformat(d["started_at"]),
    )


def _lost_from(cp: Checkpoint, last_seen: datetime, why: str) -> LostCall:
    return LostCall(
        call_sid=cp.call_sid,
        session_id=cp.session_id,
        tenant=cp.tenant,
        started_at=cp.started_at,
        answered_at=cp.answered_at,
        transcript=cp.transcript,
        last_seen=max(last_seen, cp.taken_at),
        why=why,
        usage=cp.usage,
        checkpoint_at=cp.taken_at,
    )
