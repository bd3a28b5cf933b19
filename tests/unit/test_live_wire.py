"""The Gemini Live per-frame wire format: audio out, server messages in."""

from __future__ import annotations

import base64

import orjson
import pytest

from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    GoingAway,
    Interrupted,
    TurnComplete,
)
from receptionist.engines.live_wire import audio_frame, parse_server_message
from receptionist.usage import TokenUsage


def test_audio_frame_shape_and_payload() -> None:
    pcm = bytes(range(256)) * 4
    msg = orjson.loads(audio_frame(pcm))
    audio = msg["realtime_input"]["audio"]
    assert audio["mime_type"] == "audio/pcm;rate=16000"
    assert base64.b64decode(audio["data"]) == pcm


def test_server_content_in_order() -> None:
    pcm = b"\x01\x02" * 100
    raw = orjson.dumps(
        {
            "serverContent": {
                "inputTranscription": {"text": "Hello"},
                "modelTurn": {
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "audio/pcm;rate=24000",
                                "data": base64.b64encode(pcm).decode(),
                            }
                        }
                    ]
                },
                "outputTranscription": {"text": "Hi there"},
                "turnComplete": True,
            }
        }
    )
    events = parse_server_message(raw, "m").events
    assert events == [
        CallerTranscript("Hello"),
        AgentAudio(pcm),
        AgentTranscript("Hi there"),
        TurnComplete(),
    ]


def test_interrupted_usage_resumption_go_away() -> None:
    raw = orjson.dumps(
        {
            "serverContent": {"interrupted": True},
            "usageMetadata": {
                "promptTokenCount": 120,
                "responseTokenCount": 30,
                "totalTokenCount": 150,
                "promptTokensDetails": [
                    {"modality": "AUDIO", "tokenCount": 100},
                    {"modality": "TEXT", "tokenCount": 20},
                ],
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
            },
            "sessionResumptionUpdate": {"newHandle": "h1", "resumable": True},
            "goAway": {"timeLeft": "10s"},
        }
    )
    parsed = parse_server_message(raw, "live-model")
    assert parsed.events == [
        Interrupted(),
        TokenUsage(
            model_name="live-model",
            input_tokens=120,
            output_tokens=30,
            total_tokens=150,
            input_audio_tokens=100,
            input_text_tokens=20,
            output_audio_tokens=30,
            output_text_tokens=0,
        ),
        GoingAway(10.0),
    ]
    assert parsed.resumption_handle == "h1"


def test_unresumable_update_and_setup_complete_give_nothing() -> None:
    parsed = parse_server_message(b'{"sessionResumptionUpdate":{"resumable":false}}', "m")
    assert parsed.events == [] and parsed.resumption_handle is None
    assert parse_server_message(b'{"setupComplete":{}}', "m").events == []


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]"])
def test_garbage_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_server_message(raw, "m")


def test_tool_calls_and_cancellations() -> None:
    msg = {
        "toolCall": {
            "functionCalls": [
                {"id": "fc-1", "name": "check_slot", "args": {"date": "2026-12-08"}},
                {"id": "fc-2", "name": "book"},  # no args: the tool says what is missing
            ]
        }
    }
    parsed = parse_server_message(orjson.dumps(msg), "m")
    assert [(c.call_id, c.name, c.args) for c in parsed.tool_calls] == [
        ("fc-1", "check_slot", {"date": "2026-12-08"}),
        ("fc-2", "book", None),
    ]
    assert parsed.events == []
    cancel = parse_server_message(b'{"toolCallCancellation": {"ids": ["fc-1", 7]}}', "m")
    assert cancel.cancelled_calls == ["fc-1"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"toolCall": null}',
        b'{"toolCall": []}',
        b'{"toolCall": {"functionCalls": "x"}}',
        b'{"toolCall": {"functionCalls": [1, null, {"id": 3, "name": "book"}, {"name": "b"}]}}',
        b'{"toolCall": {"functionCalls": [{"id": "", "name": "book"}]}}',
        b'{"toolCallCancellation": {"ids": "fc-1"}}',
    ],
)
def test_tool_call_shapes_that_are_skipped(raw: bytes) -> None:
    parsed = parse_server_message(raw, "m")
    assert parsed.tool_calls == [] and parsed.cancelled_calls == []


def test_tool_calls_are_bounded() -> None:
    calls = [{"id": f"fc-{i}" + "x" * 500, "name": "n" * 500} for i in range(100)]
    parsed = parse_server_message(orjson.dumps({"toolCall": {"functionCalls": calls}}), "m")
    assert len(parsed.tool_calls) == 8
    assert all(len(c.call_id) <= 128 and len(c.name) <= 64 for c in parsed.tool_calls)
