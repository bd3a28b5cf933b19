"""Every Prometheus metric of Receptionist, defined once (prometheus_client), and their exposition.

One process (`serve`, tests, the demo) keeps its metrics in memory and `/metrics` renders them.
Several processes on one port (`serve --workers N`) run in prometheus_client's multiprocess mode:
the supervisor creates a fresh directory and puts it in `PROMETHEUS_MULTIPROC_DIR` before it
starts them (prometheus_client picks the mode when it is first imported), every process writes
its samples to files there, and a scrape reaching any of them reads all the files, so it sees
every process's calls summed. Counters of a process that died stay in the sum (its calls
happened); its live gauges are dropped by `mark_process_dead`.

Labels are bounded: tenant ids come from validated tenant files (or `unknown`), reasons and kinds
from our own code; never a call sid or a phone number.
"""

from __future__ import annotations

import hmac
import os
import re
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)

#: prometheus_client's own switch for multiprocess mode (read when it is first imported).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series (a timestamp per counter) double the output and no alert uses them; the
# multiprocess exposition has none either, so one process and N look the same.
disable_created_metrics()

# Time the bridge spends on one frame: tens of µs normally, milliseconds when the loop is busy.
_FRAME_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
# What a caller waits for: the greeting, a reply.
_CALLER_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
# A pipeline step: a database write (ms) to a model's analysis or Exotel's API (seconds).
_STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# --- calls (bridge) ------------------------------------------------------------------------------

ACTIVE_CALLS = Gauge(
    "receptionist_active_calls",
    "Calls in progress (all server processes summed).",
    multiprocess_mode="livesum",
)
CALLS_STARTED = Counter(
    "receptionist_calls_started",
    "Exotel streams that sent a start frame, by tenant ('unknown': no such tenant).",
    ["tenant"],
)
CALLS_ENDED = Counter(
    "receptionist_calls_ended",
    "Calls ended, by status (completed/failed/rejected), end reason and tenant.",
    ["status", "reason", "tenant"],
)
CALLS_REJECTED = Counter(
    "receptionist_calls_rejected",
    "Streams refused, by reason (unauthorized, tenant_unavailable, no_start, ...).",
    ["reason"],
)
BAD_FRAMES = Counter(
    "receptionist_bad_frames", "Exotel frames dropped as malformed or hostile, by kind.", ["kind"]
)
FRAMES_IN = Counter("receptionist_frames_in", "Caller audio frames forwarded to the engine.")
FRAMES_OUT = Counter("receptionist_frames_out", "Agent audio frames sent to Exotel.")
CLEARS_SENT = Counter("receptionist_clears_sent", "Exotel `clear` frames sent (barge-in).")
PERSIST_FAILURES = Counter(
    "receptionist_persist_failures", "Call rows the database could not take (spooled to disk)."
)
CALLS_SERVER_LOST = Counter(
    "receptionist_calls_server_lost",
    "Live calls of a server process that died, closed by a reaper (end reason server_lost).",
)
LIVE_EVENTS_DROPPED = Counter(
    "receptionist_live_events_dropped",
    "Events of the owner's live view the database could not take (the calls are unaffected).",
)
LATENCY_IN = Histogram(
    "receptionist_bridge_latency_in_seconds",
    "Bridge time per caller frame: parse, resample, hand to the engine (one frame in 4).",
    buckets=_FRAME_BUCKETS,
)
LATENCY_OUT = Histogram(
    "receptionist_bridge_latency_out_seconds",
    "Bridge time per engine audio event: resample, chunk, send to Exotel (one in 4).",
    buckets=_FRAME_BUCKETS,
)
GREETING = Histogram(
    "receptionist_greeting_seconds",
    "Connection accepted to the first agent audio frame sent.",
    buckets=_CALLER_BUCKETS,
)
RESPONSE = Histogram(
    "receptionist_response_seconds",
    "Per turn: end of the caller's transcribed turn to the start of the agent's reply.",
    buckets=_CALLER_BUCKETS,
)
ENGINE_ERRORS = Counter(
    "receptionist_engine_errors",
    "Voice engine failures, by engine and kind (create_failed, connect_failed, session_lost).",
    ["engine", "kind"],
)
ENGINE_GO_AWAYS = Counter(
    "receptionist_engine_go_aways",
    "goAway notices from the model (a session resumption follows), by engine.",
    ["engine"],
)
ENGINE_RESUMPTIONS = Counter(
    "receptionist_engine_resumptions",
    "Model sessions resumed after a goAway or a dropped socket, by engine and outcome.",
    ["engine", "outcome"],
)
GC_PAUSE = Histogram(
    "receptionist_gc_pause_seconds",
    "Python's cyclic garbage collections: how long each stopped the process, by generation.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
)
EVENT_LOOP_LAG = Gauge(
    "receptionist_event_loop_lag_seconds",
    "How late a periodic wake-up of the event loop fired (the worst process).",
    multiprocess_mode="livemax",
)

# --- post-call pipeline and messages (worker) ----------------------------------------------------

PIPELINE_BACKLOG = Gauge(
    "receptionist_pipeline_backlog",
    "Calls with post-call work: due now and unclaimed (state=due), or leased (state=claimed).",
    ["state"],
    multiprocess_mode="livemax",  # every worker counts the same database
)
PIPELINE_STAGE = Histogram(
    "receptionist_pipeline_stage_seconds",
    "Duration of a post-call step, by the stage it starts from and outcome (ok/retry/failed).",
    ["stage", "outcome"],
    buckets=_STAGE_BUCKETS,
)
NOTIFICATIONS = Counter(
    "receptionist_notifications",
    "WhatsApp messages by the send's outcome (sent, logged, queued=retry, failed, unknown).",
    ["status", "provider"],
)
COST_USD = Counter(
    "receptionist_cost_usd",
    "AI cost of calls (USD, as the pipeline costs them), by tenant.",
    ["tenant"],
)

_LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def bounded(value: str | None, default: str = "unknown") -> str:
    """A label value from a short lower-case identifier of ours (a tenant id, a reason's prefix
    like `stop` of `stop:callended`); anything else becomes `default`."""
    head = (value or "").partition(":")[0]
    return head if _LABEL_RE.fullmatch(head) else default


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every process in multiprocess mode; and its
    content type."""
    if multiprocess_dir():
        registry = CollectorRegistry()  # per scrape, as prometheus_client asks
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead server process's live gauges (its counters stay in the sum)."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


def value(name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's current value in this process (0 when absent): for tests and the CLI."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def bearer_matches(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    if not header or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def start_metrics_server(port: int, host: str = "0.0.0.0", *, token: str | None = None) -> int:
    """Serve /metrics on host:port from a thread (`receptionist worker`, which has no HTTP server
    of its own); with `token`, only to `Authorization: Bearer <token>`. Returns the bound port."""
    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    app = make_wsgi_app(registry)

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        if token is not None and not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"unauthorized\n"]
        return app(environ, start_response)

    server_class = _MetricsServer6 if ":" in host else _MetricsServer
    httpd = make_server(host, port, guarded, server_class, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()
    return int(httpd.server_port)


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds the worker's exit


class _MetricsServer6(_MetricsServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no line per scrape
        pass
