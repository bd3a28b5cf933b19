"""GeminiAnalyzer through the real google-genai SDK against the REST double on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from receptionist.gemini_rest import AnalyzerRejected, AnalyzerUnavailable, make_client
from receptionist.postcall.analyzers.gemini import AnalysisInvalid, GeminiAnalyzer
from receptionist.postcall.analyzers.schema import NO_CONVERSATION, Analysis
from receptionist.sim.gemini_rest import INVALID_KEY_MESSAGE, FakeGeminiRest, Fault
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.fromisoformat("2026-11-25T10:00:00+05:30")
MODEL = "gemini-2.5-flash"

CALL = [
    {"speaker": "agent", "text": "Sweet Crumbs Bakery, how can I help?", "start_ms": 0},
    {"speaker": "caller", "text": "One kg Black Forest cake for tomorrow, pickup.", "start_ms": 1},
    {"speaker": "agent", "text": "Name and number please?", "start_ms": 2},
    {"speaker": "caller", "text": "Priya, 98765 43210.", "start_ms": 3},
]
GOOD: dict[str, Any] = {
    "call_type": "order",
    "summary": "Order: 1 kg Black Forest cake, pickup tomorrow",
    "details": {
        "name": "Priya",
        "phone": "+919876543210",
        "items": ["Black Forest cake 1 kg"],
        "pickup_or_delivery": "pickup",
        "date": "2026-11-26",
    },
}


@pytest.fixture(scope="module")
def bakery() -> Tenant:
    tenant, problems = load_tenant(ROOT / "tenants", "bakery")
    assert tenant is not None, problems
    return tenant


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiRest]:
    async with FakeGeminiRest(api_key="test-key") as server:
        yield server


@pytest.fixture
def analyzer(fake: FakeGeminiRest) -> GeminiAnalyzer:
    # generous: a timeout here only turns a hang into a failure (test_slow_answer_times_out
    # sets its own)
    client = make_client("test-key", base_url=fake.base_url, timeout_s=60)
    return GeminiAnalyzer(client, MODEL, timeout_s=60)


def dumps(obj: Any) -> str:
    return json.dumps(obj)


async def test_valid_answer(fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant) -> None:
    fake.script(dumps(GOOD))
    analysis, usage = await analyzer.analyze(bakery, CALL, NOW)
    assert analysis == Analysis(
        call_type="order",
        summary=GOOD["summary"],
        details=GOOD["details"],
        analyzer=MODEL,
        confidence=None,
    )
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.model == MODEL
    assert req.api_key == "test-key"
    assert req.response_mime_type == "application/json"
    schema = req.response_schema
    assert schema is not None
    assert schema["properties"]["call_type"]["enum"] == [*bakery.call_type_names, NO_CONVERSATION]
    assert "items" in schema["properties"]["details"]["properties"]
    assert req.temperature == 0
    assert bakery.analyzer_prompt.strip()[:60] in req.system_text
    assert "2026-11-25" in req.system_text
    [(role, text)] = req.texts
    assert role == "user" and "caller: Priya, 98765 43210." in text
    # usage = the double's deterministic counts
    [u] = usage
    assert u.purpose == "analysis" and u.model_name == MODEL
    assert u.input_tokens == -(-req.prompt_chars // 4)
    assert u.output_tokens == -(-len(dumps(GOOD)) // 4)
    assert u.total_tokens == u.input_tokens + u.output_tokens


async def test_call_returns_only_analysis(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    fake.script(dumps(GOOD))
    analysis = await analyzer(bakery, CALL, NOW)
    assert isinstance(analysis, Analysis) and analysis.details["date"] == "2026-11-26"


async def test_default_answer_from_schema(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    analysis = await analyzer(bakery, CALL, NOW)  # nothing scripted
    assert analysis.call_type == bakery.call_type_names[0]
    assert analysis.details == {}


async def test_invalid_json_then_valid_is_repaired(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    fake.script('{"call_type": "order", "summary": ', dumps(GOOD))
    analysis, usage = await analyzer.analyze(bakery, CALL, NOW)
    assert analysis.details == GOOD["details"]
    assert len(fake.requests) == 2
    first, repair = fake.requests
    roles = [role for role, _ in repair.texts]
    assert roles == ["user", "model", "user"]
    assert repair.texts[0] == first.texts[0]
    assert repair.texts[1][1] == '{"call_type": "order", "summary": '
    assert "not valid JSON" in repair.texts[2][1]
    assert repair.response_schema == first.response_schema
    # usage summed over both requests
    assert len(usage) == 2
    assert sum(u.input_tokens for u in usage) == sum(-(-r.prompt_chars // 4) for r in fake.requests)
    assert usage[1].input_tokens > usage[0].input_tokens


async def test_unknown_call_type_is_repaired(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    fake.script(dumps({**GOOD, "call_type": "cake_order"}), dumps(GOOD))
    analysis = await analyzer(bakery, CALL, NOW)
    assert analysis.call_type == "order"
    assert len(fake.requests) == 2
    assert "cake_order" in fake.requests[1].texts[2][1]


async def test_schema_violation_twice_raises_with_raw_answers(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    bad1 = dumps({**GOOD, "details": {**GOOD["details"], "date": "tomorrow"}})
    bad2 = dumps({**GOOD, "details": {**GOOD["details"], "time": "5 pm"}})
    fake.script(bad1, bad2)
    with pytest.raises(AnalysisInvalid) as info:
        await analyzer.analyze(bakery, CALL, NOW)
    exc = info.value
    assert exc.raw_answers == [bad1, bad2]
    assert exc.retryable is False
    assert any("HH:MM" in p for p in exc.problems)
    assert len(exc.usage) == 2
    assert len(fake.requests) == 2
    assert "YYYY-MM-DD" in fake.requests[1].texts[2][1]


async def test_server_error_is_unavailable(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant
) -> None:
    fake.script(Fault(status=500), Fault(status=429), Fault(status=503))
    for _ in range(3):
        with pytest.raises(AnalyzerUnavailable) as info:
            await analyzer(bakery, CALL, NOW)
        assert info.value.retryable is True
    assert len(fake.requests) == 3  # no retries inside the SDK


async def test_slow_answer_times_out(fake: FakeGeminiRest, bakery: Tenant) -> None:
    client = make_client("test-key", base_url=fake.base_url)
    analyzer = GeminiAnalyzer(client, MODEL, timeout_s=0.2)
    # the double holds this answer until it is stopped: it can never arrive in time
    fake.script(Fault(status=None, delay_s=3600, text=dumps(GOOD)))
    # (the outer bound: were the analyzer to wait for it, fail instead of hanging)
    with pytest.raises(AnalyzerUnavailable, match="timed out"):
        async with asyncio.timeout(60):
            await analyzer(bakery, CALL, NOW)
    assert len(fake.requests) == 1  # the request reached it: the time-out is the client's


async def test_unreachable_is_unavailable(bakery: Tenant) -> None:
    async with FakeGeminiRest() as gone:
        url = gone.base_url
    analyzer = GeminiAnalyzer(make_client("test-key", base_url=url), MODEL, timeout_s=60)
    with pytest.raises(AnalyzerUnavailable):
        await analyzer(bakery, CALL, NOW)


async def test_wrong_key_is_rejected(fake: FakeGeminiRest, bakery: Tenant) -> None:
    analyzer = GeminiAnalyzer(make_client("wrong", base_url=fake.base_url), MODEL)
    with pytest.raises(AnalyzerRejected) as info:
        await analyzer(bakery, CALL, NOW)
    assert info.value.retryable is False
    assert INVALID_KEY_MESSAGE in str(info.value)
    assert "400" in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize(
    "transcript",
    [
        [],
        [{"speaker": "agent", "text": "Hello? Anyone there?"}],
        [{"speaker": "caller", "text": "  "}, {"speaker": "agent", "text": "Hello?"}],
    ],
)
async def test_no_caller_speech_makes_no_request(
    fake: FakeGeminiRest, analyzer: GeminiAnalyzer, bakery: Tenant, transcript: list[dict[str, Any]]
) -> None:
    analysis, usage = await analyzer.analyze(bakery, transcript, NOW)
    assert analysis.call_type == NO_CONVERSATION
    assert analysis.details == {}
    assert usage == []
    assert fake.requests == []
