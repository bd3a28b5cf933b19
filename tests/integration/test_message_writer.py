"""The AI writer of message text, through the real google-genai SDK against the REST double."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receptionist.gemini_rest import make_client
from receptionist.notify.compose import GeminiMessageWriter, WriterError, compose
from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant
from tests.unit.test_compose import FACTS, RULE, TEMPLATE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiRest]:
    async with FakeGeminiRest(api_key="test-key") as server:
        yield server


def _writer(fake: FakeGeminiRest, timeout_s: float) -> GeminiMessageWriter:
    client = make_client("test-key", base_url=fake.base_url, timeout_s=60)
    return GeminiMessageWriter(client, "gemini-2.5-flash", timeout_s=timeout_s)


@pytest.fixture
def writer(fake: FakeGeminiRest) -> GeminiMessageWriter:
    # generous: here a time-out only turns a hang into a failure (a slow machine must not
    # make the answer "late" and the test see the fallback)
    return _writer(fake, timeout_s=60)


def _bakery() -> Tenant:
    tenant, problems = load_tenant(REPO / "tenants", "bakery")
    assert tenant is not None, problems
    return tenant


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return dataclasses.replace(_bakery(), templates=(TEMPLATE,))


async def test_the_model_writes_the_free_text_from_the_facts(
    fake: FakeGeminiRest, writer: GeminiMessageWriter, tenant: Tenant
) -> None:
    fake.script(json.dumps({"v4": "Thanks Anita, see you tomorrow!"}))
    out = await compose(RULE, TEMPLATE, tenant, FACTS, writer)
    assert out.values[3] == "Thanks Anita, see you tomorrow!"
    assert out.usage is not None and out.usage.purpose == "message" and out.usage.input_tokens > 0
    (request,) = fake.requests
    assert request.response_schema is not None
    prompt = request.texts[-1][1]
    # the facts are handed over; the model is told to add none of its own
    assert "6 brownies" in prompt and "[v4]" in prompt and "Hi Anita" in prompt
    assert "Never add a price" in request.system_text and "English" in request.system_text


@pytest.mark.parametrize(
    "answer",
    [Fault(503), Fault(400, message="bad request"), "not json", json.dumps({"v9": "x"}), "[1]"],
    ids=["unavailable", "rejected", "garbled", "wrong-field", "not-object"],
)
async def test_failures_fall_back_to_the_static_text(
    fake: FakeGeminiRest, writer: GeminiMessageWriter, tenant: Tenant, answer: str | Fault
) -> None:
    fake.script(answer)
    with pytest.raises(WriterError):
        await writer.write(tenant, TEMPLATE, FACTS, [None] * 5, {3: RULE.variables[3]})
    fake.script(answer)
    out = await compose(RULE, TEMPLATE, tenant, FACTS, writer)
    assert out.values[3] == "Thank you for ordering!" and out.notes["ai"]["used"] is False


async def test_a_slow_model_times_out_into_the_fallback(
    fake: FakeGeminiRest, tenant: Tenant
) -> None:
    # the double holds this answer until it is stopped: it can never arrive in time
    fake.script(Fault(None, delay_s=3600, text=json.dumps({"v4": "late"})))
    async with asyncio.timeout(60):  # were the writer to wait for it, fail instead of hanging
        out = await compose(RULE, TEMPLATE, tenant, FACTS, _writer(fake, timeout_s=0.2))
    assert out.values[3] == "Thank you for ordering!" and "timed out" in out.notes["ai"]["reason"]
    assert len(fake.requests) == 1  # the model was asked: the fallback is the time-out's
