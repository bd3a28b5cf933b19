"""OpenTelemetry traces of a real call, exported over OTLP/HTTP to a receiver on loopback that
decodes them with the OTLP protobuf definitions: a root span per call, a child per turn, a
child per post-call step, and no phone number anywhere in them."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from receptionist import tracing
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.schema import Stage
from tests.integration.bridge_harness import running_bridge

CALLER = "+919811113333"
TURNS = [ScriptedTurn(heard="Do you have eggless cakes?", reply="Yes, all our cakes.")]


@dataclass
class Receiver:
    url: str
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@contextlib.contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A minimal OTLP/HTTP trace endpoint: POST /v1/traces with a protobuf body."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            receiver.requests.append(request)
            receiver.raw.append(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


async def stage(db: Database, call_sid: str) -> str | None:
    row = await get_call(db, call_sid)
    return None if row is None else str(row["stage"])


def attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return out


async def test_a_call_is_a_trace_with_a_span_per_turn_and_per_step(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        assert tracing.setup_tracing()
        try:
            async with (
                FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
                running_bridge(sqlite_db, tmp_path, fake, run_worker=True) as bridge,
            ):
                result = await place_call(
                    CallOptions(url=bridge.url("bakery"), realtime=False, from_number=CALLER),
                    CallerScript(utterances=[t.heard for t in TURNS]),
                )
                assert result.ok, result.error
                async with asyncio.timeout(60):  # a hang becomes a failure
                    # the condition lives in the database
                    while await stage(sqlite_db, result.call_sid) != Stage.DONE:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
            assert await asyncio.to_thread(tracing.flush)
        finally:
            tracing.shutdown_tracing()

    sid = result.call_sid
    spans = receiver.spans()
    trace_id, call_span_id = tracing.call_ids(sid)
    [call] = [s for s in spans if s.name == "call"]
    assert call.trace_id == trace_id.to_bytes(16, "big")
    assert call.span_id == call_span_id.to_bytes(8, "big") and not call.parent_span_id
    a = attrs(call)
    assert a["call.call_sid"] == sid and a["call.tenant"] == "bakery"
    assert a["call.status"] == "completed" and a["call.end_reason"]
    assert a["call.turns"] == 3 and a["call.engine"] == "gemini-live"

    turns = sorted((s for s in spans if s.name == "turn"), key=lambda s: attrs(s)["turn.index"])
    assert [attrs(t)["turn.kind"] for t in turns] == ["greeting", "answer"]
    for t in turns:
        assert t.trace_id == call.trace_id and t.parent_span_id == call.span_id
        assert call.start_time_unix_nano <= t.start_time_unix_nano <= t.end_time_unix_nano
    greeting = attrs(turns[0])
    assert greeting["turn.latency_ms"] >= 0
    assert turns[0].end_time_unix_nano - turns[0].start_time_unix_nano == pytest.approx(
        greeting["turn.latency_ms"] * 1e6, abs=1e6
    )

    steps = [s for s in spans if s.name == "pipeline"]
    assert {attrs(s)["pipeline.stage"] for s in steps} >= {
        "transcript_saved",
        "analysed",
        "messages_queued",
        "exotel_details",
    }
    for s in steps:
        assert s.trace_id == call.trace_id and s.parent_span_id == call.span_id

    everything = b"".join(receiver.raw)
    assert CALLER.encode() not in everything and b"9811113333" not in everything


def test_without_an_endpoint_opentelemetry_is_not_imported() -> None:
    """Tracing off costs nothing: not even an import of the SDK."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_EXPORTER_OTLP")  # no endpoint
    }
    code = (
        "import sys\n"
        "from receptionist import tracing\n"
        "assert not tracing.setup_tracing()\n"
        "assert tracing.call_started('CA1', 't', 'MZ1', t0_ns=0, start_ms=0) is None\n"
        "with tracing.pipeline_step('CA1', 't', 'analysed') as span:\n"
        "    assert span is None\n"
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry.sdk')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


async def test_a_failed_step_is_marked_with_its_error_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        assert tracing.setup_tracing()
        try:
            with (
                pytest.raises(RuntimeError),
                tracing.pipeline_step("CAfail1", "bakery", "analysed"),
            ):
                raise RuntimeError("analysis invalid: caller said 98111 13333, key=AIzaSecret99")
            assert await asyncio.to_thread(tracing.flush)
        finally:
            tracing.shutdown_tracing()
    [span] = receiver.spans()
    assert span.status.code == span.status.STATUS_CODE_ERROR
    assert span.status.message == (
        "RuntimeError: analysis invalid: caller said •••••••333, key=[REDACTED]"
    )
    assert not span.events  # no exception event with the raw text and stack
    assert b"13333" not in b"".join(receiver.raw) and b"AIzaSecret99" not in b"".join(receiver.raw)
