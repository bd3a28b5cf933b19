"""Posts due webhook deliveries, beside the pipeline in each worker.

One POST per delivery: the event as JSON, signed (signing.py), with its id and type in headers.
A 2xx answer delivers it. Anything else (another status, a redirect: never followed, a timeout,
a refused connection, a missing secret) is recorded as an attempt and tried again after a
backoff that doubles from `backoff_base_s` up to an hour, until `max_attempts`; then the delivery
is `failed` and the owner's window can replay it. The receiver's answer is read only up to a few
KB: a hostile or broken endpoint cannot hold a worker's memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import orjson

from receptionist import loops
from receptionist.hooks.signing import SIGNATURE_HEADER, sign
from receptionist.store.db import Database
from receptionist.store.schema import utcnow
from receptionist.store.webhook_deliveries import (
    ClaimedDelivery,
    claim_deliveries,
    finish_delivery,
)

__all__ = ["WebhookDeliverer"]

log = logging.getLogger("receptionist.webhooks")

MAX_BACKOFF_S = 3600.0
MAX_ERROR_CHARS = 300
USER_AGENT = "receptionist-webhooks/1"


class WebhookDeliverer:
    def __init__(
        self,
        db: Database,
        *,
        worker_id: str,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        lease_s: float = 60.0,
        max_attempts: int = 8,
        backoff_base_s: float = 30.0,
        batch: int = 8,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self.lease_s, self.max_attempts, self.backoff_base_s = lease_s, max_attempts, backoff_base_s
        self.batch, self.poll_s, self.clock = batch, poll_s, clock
        self.environ = os.environ if environ is None else environ
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Post one batch of due deliveries side by side; returns how many were attempted."""
        claimed = await claim_deliveries(
            self.db, worker_id=self.worker_id, lease_s=self.lease_s, limit=self.batch,
            now=self.clock(),
        )  # fmt: skip
        await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        def failed(exc: Exception) -> None:
            log.error("webhooks: cannot claim deliveries (%s); retrying", exc)

        await loops.poll(
            self.run_once, stop=stop, wake=self.wake, poll_s=self.poll_s, failed=failed
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _retry_at(self, attempts: int) -> datetime | None:
        if attempts >= self.max_attempts:
            return None
        delay = min(self.backoff_base_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
        return self.clock() + timedelta(seconds=delay)

    async def _deliver(self, c: ClaimedDelivery) -> None:
        attempted_at = self.clock()
        t0 = time.perf_counter()
        status, error = await self._post(c)
        ok = status is not None and 200 <= status < 300
        kept = await finish_delivery(
            self.db,
            c,
            worker_id=self.worker_id,
            attempted_at=attempted_at,
            duration_ms=int((time.perf_counter() - t0) * 1000),
            status_code=status,
            error=error,
            retry_at=None if ok else self._retry_at(c.attempts),
        )
        if not ok:
            log.warning(
                "webhook %s %s to %s: attempt %d failed (%s)",
                c.event_type, c.event_id, c.url, c.attempts, error or status,
            )  # fmt: skip
        elif not kept:
            log.info("webhook %s: delivered, but the lease had passed to another worker", c.id)

    async def _post(self, c: ClaimedDelivery) -> tuple[int | None, str | None]:
        secret = self.environ.get(c.secret_env)
        if not secret:
            return None, f"the secret's environment variable {c.secret_env} is not set"
        body = orjson.dumps(c.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Receptionist-Event-Id": c.event_id,
            "Receptionist-Event": c.event_type,
            SIGNATURE_HEADER: sign(secret.encode(), int(self.clock().timestamp()), body),
        }
        try:
            async with self.client.stream("POST", c.url, content=body, headers=headers) as r:
                await _read_some(r)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        if 300 <= r.status_code < 400:
            return r.status_code, f"redirect to {r.headers.get('location', '?')[:200]} not followed"
        if r.status_code >= 300:
            return r.status_code, f"HTTP {r.status_code}"
        return r.status_code, None


async def _read_some(response: httpx.Response, limit: int = 4096) -> None:
    """Read at most `limit` bytes of the answer (it is not used; the connection is freed)."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen >= limit:
            break
