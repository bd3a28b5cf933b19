"""The one answer schema per tenant: built once, the same rules for Gemini's schema and checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from receptionist.postcall.analyzers.schema import (
    NO_CONVERSATION,
    answer_schema,
    response_schema,
    validate_details,
)
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


@pytest.fixture(scope="module")
def bakery() -> Tenant:
    t, problems = load_tenant(TENANTS, "bakery")
    assert t is not None, problems
    return t


def test_built_once_per_call_type_schema(bakery: Tenant) -> None:
    assert answer_schema(bakery) is answer_schema(bakery)
    # a new version of the tenant with the same call types shares the models
    again = dataclasses.replace(bakery, prompt_version="other")
    assert answer_schema(again) is answer_schema(bakery)
    changed = dataclasses.replace(bakery, call_types=bakery.call_types[:1])
    assert answer_schema(changed) is not answer_schema(bakery)
    assert answer_schema(changed).call_types == (bakery.call_types[0].name, NO_CONVERSATION)


def test_gemini_schema_is_the_models_schema(bakery: Tenant) -> None:
    models = answer_schema(bakery)
    wire = response_schema(bakery)
    assert wire["properties"]["call_type"]["enum"] == list(models.call_types)
    order = next(ct for ct in bakery.call_types if ct.name == "order")
    for spec in order.fields:
        prop = wire["properties"]["details"]["properties"][spec.name]
        assert prop["nullable"] is True
        assert "title" not in prop and "default" not in prop and "anyOf" not in prop
    assert set(models.details) == set(bakery.call_type_names)


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ({"date": "tomorrow"}, "field 'date' (date) must be a date as YYYY-MM-DD: 'tomorrow'"),
        ({"time": "25:00"}, "field 'time' (time) must be a time as HH:MM (24-hour): '25:00'"),
        ({"phone": "98-76"}, "field 'phone' (phone) must be digits with an optional leading +"),
        ({"items": ["cake", ""]}, "field 'items' (list) must be a list of non-empty strings"),
        ({"name": None}, "field 'name' (string) must be a string: None"),
        ({"flavour": "x"}, "unknown field 'flavour' for call type 'order'"),
    ],
)
def test_detail_problems(bakery: Tenant, details: dict[str, object], problem: str) -> None:
    problems = validate_details(bakery, "order", details)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_problems_keep_the_answers_order(bakery: Tenant) -> None:
    problems = validate_details(bakery, "order", {"zz": 1, "date": "x", "aa": 2})
    assert [p.split()[0:3] for p in problems] == [
        ["unknown", "field", "'zz'"],
        ["field", "'date'", "(date)"],
        ["unknown", "field", "'aa'"],
    ]


def test_valid_details_and_other_call_types(bakery: Tenant) -> None:
    ok = {"name": "Priya", "phone": "+919876543210", "items": ["cake"], "date": "2026-11-26"}
    assert validate_details(bakery, "order", ok) == []
    assert validate_details(bakery, NO_CONVERSATION, {}) == []
    assert validate_details(bakery, NO_CONVERSATION, {"a": 1}) == [
        "no_conversation takes no details, got 'a'"
    ]
    assert validate_details(bakery, "refund", {})[0].startswith("unknown call type 'refund'")
