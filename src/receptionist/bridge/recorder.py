"""Writes calls to the store without ever losing one.

The row is created at `start` and completed at the end, however the call ends. If the database is
down at the end, the finished call is retried briefly and then written to a spool folder as JSON.
The running server replays the spool on its own as soon as the database answers again (a loop
that looks every `SPOOL_REPLAY_INTERVAL_S`, woken early by any call that saved fine), at
start-up, and on `receptionist db replay-spool`.

Every write is bounded (`WRITE_TIMEOUT_S`): a database that hangs instead of refusing (a lost
machine, a network partition: a pooled connection would otherwise wait on its socket for many
minutes) is an outage like any other, so the call's end reaches the spool, not a stuck task.

A call that starts while the database is away keeps what its start said (caller's number,
stream, engine, ...) for its end's write, and in the spool file: the row written later is whole,
in one transaction (never a half row for the pipeline to pick up). Its `call.started` webhook
event goes the same way: written with that row, so the business hears of the start late (when
the call's end is saved, or replayed from the spool) but does hear of it, with the true
`started_at`, before the call's `call.ended` (which the analysis after it writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import exc as sa_exc

from receptionist import loops
from receptionist.observe import metrics
from receptionist.store.calls import (
    START_DETAILS,
    CallOwnedElsewhere,
    FinishedCall,
    NewCall,
    create_call,
    finish_call,
)
from receptionist.store.db import Database, unreachable
from receptionist.store.webhook_deliveries import NewDelivery
from receptionist.usage import TokenUsage

log = logging.getLogger("receptionist.recorder")

RETRY_DELAYS_S = (0.2, 1.0, 3.0)
WRITE_TIMEOUT_S = 10.0  # one write of one call (a healthy database takes milliseconds)
CONFLICTS = "conflicts"  # spool subfolder: records of streams that reused another's call_sid


class CallRecorder:
    def __init__(
        self,
        db: Database,
        spool_dir: Path,
        *,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.db = db
        self.spool_dir = spool_dir
        self.retry_delays = retry_delays
        self.write_timeout_s = write_timeout_s
        self._saved = asyncio.Event()  # a call was written: the database is back
        # starts the database could not take, by session_id, until their call ends (bounded by
        # the calls in progress): the row written at the end must still name the caller
        self._unwritten: dict[str, NewCall] = {}
        self.server_id: str | None = None  # this server process's id (bridge/checkpointer.py)

    async def create(self, new: NewCall, *, note: Callable[[str, str], object]) -> bool | None:
        """True: the row is this stream's; False: another stream recorded this call_sid first
        (nothing was written); None: the database failed (`finish` will create the row), and
        `note` was told why (for the call's record)."""
        new = dataclasses.replace(new, server_id=self.server_id)
        try:
            async with asyncio.timeout(self.write_timeout_s):  # the call's end waits for it
                return await create_call(self.db, new)
        except Exception as exc:  # the call goes on; finish() creates the row if needed
            metrics.PERSIST_FAILURES.inc()
            # name the real cause: a row the database refused is not an outage
            refused = isinstance(exc, sa_exc.DBAPIError) and not isinstance(
                exc, (sa_exc.OperationalError, sa_exc.InterfaceError)
            )
            kind = "db_refused_row_at_start" if refused else "db_unavailable_at_start"
            note(kind, f"{type(exc).__name__}: {exc}")
            if not refused:  # a refused row would be refused again at the end
                self._unwritten[new.session_id] = new
            return None

    async def finish(self, finished: FinishedCall) -> None:
        start = self._unwritten.pop(finished.session_id or "", None)
        if start is not None:  # the start never reached the database: the end writes it
            finished = dataclasses.replace(
                finished, **_start_details(start), webhooks=list(start.webhooks)
            )
        ok = await self._write(finished)
        if ok:
            self._saved.set()
        else:
            metrics.PERSIST_FAILURES.inc()

    async def _write(self, finished: FinishedCall) -> bool:
        for delay in (*self.retry_delays, None):
            try:
                async with asyncio.timeout(self.write_timeout_s):
                    await finish_call(self.db, finished)
                return True
            except CallOwnedElsewhere:
                # not an outage: retrying cannot help and the other stream's row must stay as
                # it is; keep this stream's record on disk for a person instead of losing it
                path = self._spool(finished, self.spool_dir / CONFLICTS)
                log.error(
                    "call %s: another stream already recorded this call_sid; this stream's"
                    " record is kept in %s",
                    finished.call_sid,
                    path,
                )
                return False
            except Exception as exc:
                # a database that hung for the whole bound will not answer in a second or two:
                # the record goes to disk now rather than after more bounds
                if delay is None or isinstance(exc, TimeoutError):
                    path = self._spool(finished, self.spool_dir)
                    log.error(
                        "call %s: database unavailable (%s); saved to %s for replay",
                        finished.call_sid,
                        exc,
                        path,
                    )
                    return False
                log.warning("call %s: saving failed (%s), retrying", finished.call_sid, exc)
                await asyncio.sleep(delay)
        return False

    def _spool(self, finished: FinishedCall, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{finished.call_sid or 'unknown'}-{uuid.uuid4().hex[:8]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(dataclasses.asdict(finished)))
        os.replace(tmp, path)  # atomic: a crash never leaves half a file under a .json name
        return path

    async def replay_loop(self, stop: asyncio.Event, interval_s: float) -> None:
        """Replay the spool whenever it has calls and the database may be back: every
        `interval_s`, or at once after a call saved fine. Ends when `stop` is set."""
        await loops.every(interval_s, stop, self._replay_if_spooled, wake=self._saved)

    async def _replay_if_spooled(self) -> None:
        if any(self.spool_dir.glob("*.json")):
            try:
                await self.replay_spool()
            except Exception:  # a bug here must not end the loop; the files stay
                log.exception("spool replay failed")

    async def replay_spool(self) -> int:
        """Write spooled calls to the database; returns how many were saved.

        Several processes may replay one spool folder at once (`serve --workers N` all start
        with a replay, `db replay-spool` beside a running server): each file is replayed
        under an exclusive lock on it, and one another process holds, or has already removed,
        is left alone. Without it two processes wrote the same call twice (the second finish
        freed a lease a worker held on it) and the loser's move of a clashing file failed,
        which at start-up stopped its server."""
        if not self.spool_dir.is_dir():
            return 0
        saved = 0
        for path in sorted(self.spool_dir.glob("*.json")):
            with _locked(path) as raw:
                if raw is None:
                    continue  # another process has it, or had it
                try:
                    finished = _load_finished(orjson.loads(raw))
                    async with asyncio.timeout(self.write_timeout_s):
                        await finish_call(self.db, finished)
                except CallOwnedElsewhere:
                    conflicts = self.spool_dir / CONFLICTS
                    conflicts.mkdir(exist_ok=True)
                    os.replace(path, conflicts / path.name)
                    log.error("spooled call %s clashes with another stream's row", path.name)
                    continue
                except Exception as exc:
                    if unreachable(exc):
                        # the other files would meet the same: one line and one try a round
                        # (not one per spooled call), and no round stuck behind a hang
                        waiting = sum(1 for _ in self.spool_dir.glob("*.json"))
                        log.warning(
                            "database still unavailable (%s: %s); %d spooled call(s) wait",
                            type(exc).__name__,
                            exc,
                            waiting,
                        )
                        break
                    log.warning("spooled call %s not replayed yet: %s", path.name, exc)
                    continue
                path.unlink(missing_ok=True)
                saved += 1
        if saved:
            log.info("replayed %d spooled call(s) into the database", saved)
        return saved


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bytes | None]:
    """The file's bytes while this process holds an exclusive lock on it; None when another
    process holds the lock or the file is gone (replayed and removed by another process)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # locked after the holder removed it: the path is gone or is another file now
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except (BlockingIOError, FileNotFoundError):
            same = False
        if not same:
            yield None
            return
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read()
        yield raw
    finally:
        os.close(fd)  # releases the lock


def _start_details(start: NewCall) -> dict[str, Any]:
    """What a start the database never took said, for the row the end's write inserts."""
    return {name: getattr(start, name) for name in START_DETAILS}


def _load_finished(data: dict[str, Any]) -> FinishedCall:
    data["usage"] = [TokenUsage(**u) for u in data.get("usage") or []]
    data["webhooks"] = [NewDelivery(**w) for w in data.get("webhooks") or []]
    for key in ("answered_at", "ended_at", "started_at"):
        if data.get(key):
            data[key] = datetime.fromisoformat(data[key])
    return FinishedCall(**data)
