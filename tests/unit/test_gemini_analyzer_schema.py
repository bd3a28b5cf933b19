"""Gemini analyzer: response schema, prompt and answer checks (no network)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

from receptionist.postcall.analyzers.gemini import (
    build_prompt,
    build_repair_prompt,
    check_answer,
    render_transcript,
)
from receptionist.postcall.analyzers.schema import NO_CONVERSATION, response_schema
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ROOT / "tenants"
NOW = datetime.fromisoformat("2026-11-25T04:30:00+00:00")  # 10:00 in Asia/Kolkata, a Wednesday
TYPE_MAP = {
    "string": "STRING",
    "integer": "INTEGER",
    "number": "NUMBER",
    "boolean": "BOOLEAN",
    "date": "STRING",
    "time": "STRING",
    "datetime": "STRING",
    "phone": "STRING",
    "list": "ARRAY",
}

TRANSCRIPT = [
    {"speaker": "agent", "text": "Hello, how can I help?", "start_ms": 0, "end_ms": 1000},
    {"speaker": "caller", "text": "I want to book something  for tomorrow.", "start_ms": 1500},
    {"speaker": "agent", "text": "   ", "start_ms": 3000},
    {"speaker": "caller", "text": "My number is 98765 43210.", "start_ms": 4000},
]


@pytest.fixture(scope="module", params=["bakery", "saloon", "clinic"])
def tenant(request: pytest.FixtureRequest) -> Tenant:
    t, problems = load_tenant(TENANTS, request.param)
    assert t is not None, problems
    return t


def test_schema_has_call_type_enum_and_required_top_level(tenant: Tenant) -> None:
    schema = response_schema(tenant)
    assert schema["type"] == "OBJECT"
    assert schema["required"] == ["call_type", "summary", "details"]
    ct = schema["properties"]["call_type"]
    assert ct["type"] == "STRING"
    assert ct["enum"] == [*tenant.call_type_names, NO_CONVERSATION]
    assert schema["properties"]["summary"]["type"] == "STRING"
    details = schema["properties"]["details"]
    assert details["type"] == "OBJECT"
    assert "required" not in details


def test_schema_details_are_union_of_fields_with_mapped_types(tenant: Tenant) -> None:
    props = response_schema(tenant)["properties"]["details"]["properties"]
    expected = {spec.name: spec for ct in tenant.call_types for spec in ct.fields}
    assert set(props) == set(expected)
    for name, spec in expected.items():
        prop = props[name]
        types_for_name = {s.type for ct in tenant.call_types for s in ct.fields if s.name == name}
        want = TYPE_MAP[spec.type] if len(types_for_name) == 1 else "STRING"
        assert prop["type"] == want, name
        assert spec.description.strip()[:20] in prop["description"]
        if spec.type == "date":
            assert "YYYY-MM-DD" in prop["description"]
        if spec.type == "time":
            assert "HH:MM" in prop["description"] and "24" in prop["description"]
        if spec.type == "phone":
            assert "country code" in prop["description"]
        if spec.type == "list":
            assert prop["items"] == {"type": "STRING"}


def test_schema_is_accepted_by_sdk_schema_type(tenant: Tenant) -> None:
    schema = types.Schema.model_validate(response_schema(tenant))
    assert schema.properties is not None
    assert schema.properties["call_type"].enum is not None
    # a fresh dict each time: the SDK edits schemas in place
    assert response_schema(tenant) is not response_schema(tenant)


def test_prompt_has_everything(tenant: Tenant) -> None:
    system, user = build_prompt(tenant, TRANSCRIPT, NOW)
    assert tenant.analyzer_prompt.strip() in system
    for ct in tenant.call_types:
        assert f'"{ct.name}"' in system
        assert ct.description.strip() in system
        for spec in ct.fields:
            assert spec.name in system
    assert NO_CONVERSATION in system
    assert tenant.timezone in system
    assert "YYYY-MM-DD" in system
    assert "caller: I want to book something for tomorrow." in user
    assert "agent: Hello, how can I help?" in user
    assert "caller: My number is 98765 43210." in user


def test_prompt_has_local_date_and_time() -> None:
    t, _ = load_tenant(TENANTS, "bakery")
    assert t is not None and t.timezone == "Asia/Kolkata"
    system, _ = build_prompt(t, TRANSCRIPT, NOW)
    assert "Wednesday 2026-11-25 10:00" in system
    late = datetime.fromisoformat("2026-11-25T20:00:00+00:00")  # already the 26th in India
    system, _ = build_prompt(t, TRANSCRIPT, late)
    assert "Thursday 2026-11-26 01:30" in system


def test_render_transcript_skips_empty_turns() -> None:
    assert render_transcript(TRANSCRIPT).splitlines() == [
        "agent: Hello, how can I help?",
        "caller: I want to book something for tomorrow.",
        "caller: My number is 98765 43210.",
    ]


@pytest.fixture(scope="module")
def bakery() -> Tenant:
    t, problems = load_tenant(TENANTS, "bakery")
    assert t is not None, problems
    return t


def _answer(**kw: Any) -> str:
    base: dict[str, Any] = {"call_type": "order", "summary": "Order", "details": {}}
    base.update(kw)
    return json.dumps(base)


def test_check_answer_valid_and_cleaned(bakery: Tenant) -> None:
    text = _answer(
        summary="Order:\n 1 kg cake",
        details={
            "name": " Priya ",
            "phone": "+91 98765-43210",
            "items": ["Black Forest cake 1 kg", ""],
            "date": "2026-11-26",
            "time": None,
            "delivery_address": "",
        },
    )
    answer, problems = check_answer(bakery, text)
    assert problems == []
    assert answer == {
        "call_type": "order",
        "summary": "Order: 1 kg cake",
        "details": {
            "name": "Priya",
            "phone": "+919876543210",
            "items": ["Black Forest cake 1 kg"],
            "date": "2026-11-26",
        },
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("", "empty"),
        (_answer(call_type="refund"), "call_type must be one of"),
        (_answer(details={"date": "tomorrow"}), "YYYY-MM-DD"),
        (_answer(details={"time": "5 pm"}), "HH:MM"),
        (_answer(details={"flavour": "chocolate"}), "unknown field 'flavour'"),
        (_answer(summary=""), "summary"),
        (_answer(call_type=NO_CONVERSATION, details={"name": "X"}), "takes no details"),
    ],
)
def test_check_answer_problems(bakery: Tenant, text: str, needle: str) -> None:
    answer, problems = check_answer(bakery, text)
    assert answer is None
    assert any(needle in p for p in problems), problems


def test_check_answer_accepts_fenced_json(bakery: Tenant) -> None:
    answer, problems = check_answer(bakery, "```json\n" + _answer() + "\n```")
    assert problems == [] and answer is not None


def test_repair_prompt_lists_problems() -> None:
    text = build_repair_prompt(["call_type must be one of a, b", "field 'date' bad"])
    assert "- call_type must be one of a, b" in text
    assert "- field 'date' bad" in text
    assert "JSON" in text
