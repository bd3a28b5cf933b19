"""This stream's row of a call: what the row records as the call goes (notes, token usage) and
the row's writes: created at `start`, checkpointed while live, finished at the end.

The session decides the call's outcome (status, end reason, error) and when it was answered;
this object turns those, the transcript and the counters into the records the store takes
(store/calls.py's NewCall and FinishedCall, store/checkpoints.py's Checkpoint). Nothing here
runs per frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from receptionist.bridge.call_stats import CallStats
from receptionist.bridge.live_view import LiveView
from receptionist.bridge.transcript import TranscriptRecorder
from receptionist.hooks.events import call_events
from receptionist.observe import metrics
from receptionist.store.calls import FinishedCall, NewCall, new_session_id
from receptionist.store.checkpoints import Checkpoint
from receptionist.telephony import exotel
from receptionist.usage import TokenUsage

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext
    from receptionist.engines.base import VoiceEngine
    from receptionist.tenants.model import Tenant

log = logging.getLogger("receptionist.call")

MAX_EVENTS = 200  # per call: beyond this only counters grow (a flood of bad frames stays bounded)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the call ended, as the session decided."""

    status: str
    end_reason: str
    error: str | None
    answered_at: datetime | None


class CallRecord:
    def __init__(
        self,
        ctx: BridgeContext,
        transcript: TranscriptRecorder,
        stats: CallStats,
        *,
        t0: float,
    ) -> None:
        self._ctx = ctx
        self._transcript, self._stats = transcript, stats
        self._t0 = t0
        self.session_id = new_session_id()  # this stream's claim on the call row
        self.started_at = datetime.now(UTC)
        self.call_sid = ""
        self.tenant_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.usage: dict[str, TokenUsage] = {}
        self.live = LiveView(ctx.live)  # the owner's live view of this call
        self.created: asyncio.Task[None] | None = None  # the start's write (the session's task)
        self.duplicate = False  # another stream owns this call_sid's row: write nothing
        self._row_written = False  # the start's write made this stream's row
        self._flushed_in = self._flushed_out = 0  # frames already added to the counters

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    def note(self, kind: str, detail: str = "", *, level: int = logging.WARNING) -> None:
        """Record something that happened on the call row (bounded) and log it."""
        if len(self.events) < MAX_EVENTS:
            self.events.append(
                {"t_ms": round(self.elapsed_ms()), "kind": kind, "detail": detail[:300]}
            )
        log.log(level, "call %s: %s %s", self.call_sid or "-", kind, detail)

    def add_usage(self, ev: TokenUsage) -> None:
        prev = self.usage.get(ev.model_name)
        self.usage[ev.model_name] = ev if prev is None else prev + ev

    def token_usage(self) -> list[TokenUsage]:
        """The tokens the live model billed for this call so far, per model."""
        # an engine reports a total of 0 when the model gave none: input + output then
        return [replace(u, total_tokens=u.total_tokens or None) for u in self.usage.values()]

    # --- the start ------------------------------------------------------------------------------

    def new_call(
        self,
        start: exotel.Start,
        tenant_id: str,
        engine: VoiceEngine | None,
        tenant_version: int | None = None,
    ) -> NewCall:
        """The call as its start records it (`tenant_version`: the stored version answering)."""
        return NewCall(
            call_sid=start.call_sid,
            session_id=self.session_id,
            tenant=tenant_id,
            stream_sid=start.stream_sid,
            from_number=start.from_number,
            to_number=start.to_number,
            direction="inbound",
            custom_parameters=start.custom_parameters,
            sample_rate=start.sample_rate,
            engine=engine.name if engine else None,
            model=engine.model if engine else None,
            tenant_version=tenant_version,
            started_at=self.started_at,
        )

    async def create(
        self,
        start: exotel.Start,
        tenant_id: str,
        engine: VoiceEngine | None,
        tenant_version: int | None = None,
        *,
        tenant: Tenant | None = None,
    ) -> bool:
        """Write the row; False: another stream recorded this call_sid first (a finished call,
        or a live one in another process), and this stream writes nothing more. With the
        `tenant`, its `call.started` webhook events are written with the row."""
        new = self.new_call(start, tenant_id, engine, tenant_version)
        if tenant is not None and tenant.webhooks:
            new.webhooks = call_events(tenant, _start_row(new), ("call.started",))
        created = await self._ctx.recorder.create(new, note=self.note)
        self._row_written = created is True  # None: the database failed; checkpoints insert it
        if created is False:
            self.duplicate = True
            return False
        # the row exists (or the database is down and `finish` will write it): the owner's live
        # view may show the call now, with any turn already finished after it
        self.live.begin(
            self.call_sid,
            tenant_id,
            {"from_number": start.from_number, "started_at": self.started_at.isoformat()},
        )
        self.live.turns(self._transcript.turns)
        return True

    # --- while live -----------------------------------------------------------------------------

    def checkpoint_version(self) -> tuple[Any, ...]:
        """Changes when the transcript or the tokens have something new (checkpointer.py)."""
        spent = tuple((u.input_tokens, u.output_tokens) for u in self.usage.values())
        return (self._transcript.version(), spent)

    def checkpoint(self, answered_at: datetime | None) -> Checkpoint | None:
        """The call so far; None until its row was written or given up on (a checkpoint must
        not create the row before `start`'s write, which carries the caller's number) and for a
        stream that owns no row."""
        created = self.created
        if created is None or not created.done() or self.duplicate or self.tenant_id is None:
            return None
        return Checkpoint(
            call_sid=self.call_sid,
            session_id=self.session_id,
            tenant=self.tenant_id,
            started_at=self.started_at,
            answered_at=answered_at,
            transcript=self._transcript.snapshot(self.elapsed_ms()),
            row_written=self._row_written,
            usage=self.token_usage(),
        )

    def flush_counts(self) -> None:
        """Add the frames counted since the last flush to the process's counters: once a
        second per call (the watchdog) and at the end, instead of a counter write per frame
        (in multiprocess mode each is a locked write to a shared file)."""
        stats = self._stats
        if stats.frames_in > self._flushed_in:
            metrics.FRAMES_IN.inc(stats.frames_in - self._flushed_in)
            self._flushed_in = stats.frames_in
        if stats.frames_out > self._flushed_out:
            metrics.FRAMES_OUT.inc(stats.frames_out - self._flushed_out)
            self._flushed_out = stats.frames_out

    # --- the end --------------------------------------------------------------------------------

    def finished_call(self, outcome: Outcome) -> FinishedCall:
        """The call as its end records it."""
        return FinishedCall(
            call_sid=self.call_sid,
            session_id=self.session_id,
            status=outcome.status,
            end_reason=outcome.end_reason or None,
            error=outcome.error,
            transcript=self._transcript.snapshot(self.elapsed_ms()),
            stats=self._stats.as_json(),
            events=self.events,
            answered_at=outcome.answered_at,
            usage=self.token_usage(),
            tenant=self.tenant_id,
            started_at=self.started_at,
        )

    async def finish(self, outcome: Outcome) -> None:
        """Store the call's end (after the start's write), tell the live view and the post-call
        worker; nothing for a row that is another stream's."""
        if self.created is not None:
            await asyncio.gather(self.created, return_exceptions=True)
        self.flush_counts()
        if self.duplicate:
            return
        tenant = self.tenant_id or "unknown"
        end_reason = metrics.bounded(outcome.end_reason)
        metrics.CALLS_ENDED.labels(outcome.status, end_reason, tenant).inc()
        await self._ctx.recorder.finish(self.finished_call(outcome))
        # after the row is final: the page that reloads it sees the end
        self.live.end(self._transcript.turns, outcome.status, outcome.end_reason)
        if self._ctx.worker is not None:
            self._ctx.worker.wake.set()


def _start_row(new: NewCall) -> dict[str, Any]:
    """The columns a `call.started` event reports, as the start writes them."""
    return {
        "call_sid": new.call_sid,
        "from_number": new.from_number,
        "to_number": new.to_number,
        "direction": new.direction,
        "started_at": new.started_at,
    }
