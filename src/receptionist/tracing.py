"""Optional OpenTelemetry traces: one trace per call, a span per turn, a span per pipeline step.

On only when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the standard variables; `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_SERVICE_NAME` and the other standard ones apply too) and the `otel` extra is installed.
Otherwise nothing of OpenTelemetry is imported and every hook here is a check against None.

The shape of a call's trace:

    call            the stream, `start` frame → row written; tenant, call_sid, status,
    │               end reason, turns, greeting ms
    ├── turn        caller's speech ended → agent's first audio (the wait the caller hears);
    │               turn index, latency ms, interrupted. Turn 0 is the greeting (from `start`).
    └── pipeline    one per post-call step (analyse, messages, cost, Exotel details), run later
                    and perhaps on another machine

The trace id and the call span's id are derived from the call_sid, so the pipeline's steps join
the call's trace without storing anything. Spans are built from the transcript's times when a
turn is committed (once per turn), never per audio frame, and exported by the SDK's batch
processor on its own thread (HTTP/protobuf), off the event loop.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from receptionist.logs import current_redactor

log = logging.getLogger("receptionist.tracing")

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_provider: Any = None
_tracer: Any = None
# (trace id, span id) the next span started in this context must take: a call's own span.
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "receptionist_forced_span_ids", default=None
)


def configured(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and any(env.get(v, "").strip() for v in ENDPOINT_VARS)


def enabled() -> bool:
    return _tracer is not None


def setup_tracing() -> bool:
    """Start exporting traces if an endpoint is configured; True if traces are on."""
    global _provider, _tracer
    if _tracer is not None:
        return True
    if not configured():
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    except ImportError:
        log.warning(
            "an OTLP endpoint is set but the otel extra is not installed"
            " (pip install 'receptionist[otel]'): no traces"
        )
        return False

    class CallIds(RandomIdGenerator):
        """Random ids, except for a call's own span: ids derived from its call_sid."""

        def generate_trace_id(self) -> int:
            forced = _forced_ids.get()
            return forced[0] if forced else super().generate_trace_id()

        def generate_span_id(self) -> int:
            forced = _forced_ids.get()
            return forced[1] if forced else super().generate_span_id()

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "receptionist"}
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=CallIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider, _tracer = provider, provider.get_tracer("receptionist")
    log.info("exporting traces over OTLP/HTTP")
    return True


def flush(timeout_s: float = 10.0) -> bool:
    """Export every finished span now (blocking: call it from a thread on the event loop)."""
    return bool(_provider.force_flush(int(timeout_s * 1000))) if _provider is not None else True


def shutdown_tracing() -> None:
    """Flush and stop (tests; the SDK also does it at exit)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def call_ids(call_sid: str) -> tuple[int, int]:
    """The trace id and the call span's id for a call_sid (never 0, which OTLP reads as none)."""
    digest = hashlib.sha256(b"receptionist-call\x00" + call_sid.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def _clean(value: str) -> str:
    red = current_redactor()
    return red.text(value) if red else value


class CallTrace:
    """A live call's span; times are ms since `t0` (the transcript's clock)."""

    __slots__ = ("_parent", "_t0_ns", "span", "start_ms", "turns")

    def __init__(self, span: Any, parent: Any, t0_ns: int, start_ms: float) -> None:
        self.span = span
        self._parent = parent  # a context with the call span as the current one
        self._t0_ns = t0_ns
        self.start_ms = start_ms
        self.turns = 0

    def _ns(self, ms: float) -> int:
        return self._t0_ns + int(ms * 1_000_000)

    def turn(self, committed: Sequence[dict[str, Any]], agent: dict[str, Any]) -> None:
        """An agent turn was committed (`committed`: the turns just added to the transcript,
        the caller's among them if the caller spoke); one span from the caller's last word
        (the `start` frame, for the greeting) to the agent's first audio."""
        caller = next((t for t in committed if t.get("speaker") == "caller"), None)
        agent_start = float(agent["start_ms"])
        if caller is not None:
            waited_from = float(caller["end_ms"])
        elif self.turns == 0:
            waited_from = self.start_ms
        else:
            waited_from = agent_start  # the agent spoke unprompted (a silence prompt)
        attributes: dict[str, Any] = {
            "turn.index": self.turns,
            "turn.kind": "answer" if caller else ("greeting" if self.turns == 0 else "prompt"),
            "turn.interrupted": bool(agent.get("interrupted")),
            "turn.agent_ms": max(0.0, float(agent["end_ms"]) - agent_start),
        }
        # Gemini's transcription of the caller may arrive after the agent began to answer: then
        # the wait is unknown, and the span is a point at the agent's start.
        if waited_from <= agent_start:
            attributes["turn.latency_ms"] = round(agent_start - waited_from, 1)
        span = _tracer.start_span(
            "turn",
            context=self._parent,
            start_time=self._ns(min(waited_from, agent_start)),
            attributes=attributes,
        )
        span.end(end_time=self._ns(agent_start))
        self.turns += 1

    def end(self, **attributes: Any) -> None:
        for key, value in attributes.items():
            if isinstance(value, str):
                value = _clean(value)
            elif isinstance(value, float):
                value = round(value, 1)
            if value is not None:
                self.span.set_attribute(f"call.{key}", value)
        self.span.end()


def call_started(
    call_sid: str, tenant: str, stream_sid: str, *, t0_ns: int, start_ms: float
) -> CallTrace | None:
    """The call's span (None when tracing is off). `t0_ns`: wall-clock time (ns) of the
    transcript's zero; `start_ms`: when the `start` frame was read, on that clock."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    token = _forced_ids.set(call_ids(call_sid))
    try:
        span = _tracer.start_span(
            "call",
            context=trace.set_span_in_context(trace.INVALID_SPAN),  # a root, whatever is current
            start_time=t0_ns + int(start_ms * 1_000_000),
            attributes={
                "call.call_sid": _clean(call_sid),
                "call.tenant": tenant,
                "call.stream_sid": _clean(stream_sid),
            },
        )
    finally:
        _forced_ids.reset(token)
    return CallTrace(span, trace.set_span_in_context(span), t0_ns, start_ms)


@contextlib.contextmanager
def pipeline_step(call_sid: str, tenant: str | None, stage: str) -> Iterator[Any]:
    """A span for one post-call step, in the call's trace; yields the span (None when off).
    An exception raised inside marks it failed (its redacted text as the status) and goes on."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

    trace_id, span_id = call_ids(call_sid)
    call = NonRecordingSpan(
        SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    )
    with _tracer.start_as_current_span(
        "pipeline",
        context=trace.set_span_in_context(call),
        attributes={
            "pipeline.stage": stage,
            "call.call_sid": _clean(call_sid),
            "call.tenant": tenant or "",
        },
        # the SDK would export the exception's text and stack as they are: a step's error can
        # quote the transcript (numbers, names), so only a redacted line goes out
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(StatusCode.ERROR, _clean(f"{type(exc).__name__}: {exc}")[:300])
            raise
