"""Filling WhatsApp templates: facts from the analysis, AI text with fallbacks, conditions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receptionist.notify.actions import rule_applies
from receptionist.notify.compose import (
    CallFacts,
    MissingDetail,
    WriterError,
    compose,
    format_value,
)
from receptionist.notify.whatsapp import clean_variable
from receptionist.tenants.actions import ActionRule, Template, Variable
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant
from receptionist.usage import TokenUsage

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Template(
    name="order_confirmation",
    language="en",
    text="Hi {{1}}, we have your order of {{2}} for {{3}}. {{4}} - {{5}}",
)
RULE = ActionRule(
    call_type="order",
    to="customer",
    template="order_confirmation",
    ai_written=True,
    variables=(
        Variable(source="details.name"),
        Variable(source="details.items", default="your items"),
        Variable(source="details.date"),
        Variable(write="Thank the caller warmly", fallback="Thank you for ordering!", max_chars=40),
        Variable(source="business.name"),
    ),
)
FACTS = CallFacts(
    call_sid="CA1",
    call_type="order",
    summary="Anita ordered brownies for pickup tomorrow.",
    details={"name": "Anita", "items": ["6 brownies", "1 milk bread"], "date": "2026-11-26"},
    caller="09812345678",
    started_at=datetime(2026, 11, 25, 10, 35, tzinfo=UTC),
)


def _bakery() -> Tenant:
    tenant, problems = load_tenant(REPO / "tenants", "bakery")
    assert tenant is not None, problems
    return tenant


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return dataclasses.replace(_bakery(), templates=(TEMPLATE,))


class Writer:
    model = "gemini-test"

    def __init__(self, answer: dict[int, str] | Exception) -> None:
        self.answer = answer
        self.calls = 0

    async def write(
        self,
        tenant: Tenant,
        template: Template,
        facts: CallFacts,
        known: Sequence[str | None],
        wanted: dict[int, Variable],
    ) -> tuple[dict[int, str], TokenUsage | None]:
        self.calls += 1
        assert known[3] is None and known[0] == "Anita"  # the facts are filled before the AI
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer, TokenUsage(model_name=self.model, purpose="message", input_tokens=9)


async def test_facts_come_from_the_analysis_and_the_ai_writes_its_part(tenant: Tenant) -> None:
    writer = Writer({3: "So glad you called,\n Anita!  See you very soon."})
    out = await compose(RULE, TEMPLATE, tenant, FACTS, writer)
    assert out.values[:3] == ["Anita", "6 brownies, 1 milk bread", "Thu 26 Nov 2026"]
    assert out.values[3] == "So glad you called, Anita! See you…"  # one line, max 40 chars
    assert len(out.values[3]) <= 40
    assert out.values[4] == "Sweet Crumbs Bakery"
    assert out.text.startswith("Hi Anita, we have your order of 6 brownies, 1 milk bread")
    assert out.notes["ai"] == {"used": True, "model": "gemini-test"}
    assert out.usage is not None and out.usage.purpose == "message"


async def test_ai_failure_falls_back_to_static_text_and_says_why(tenant: Tenant) -> None:
    out = await compose(RULE, TEMPLATE, tenant, FACTS, Writer(WriterError("Gemini 503")))
    assert out.values[3] == "Thank you for ordering!"
    assert out.notes["ai"]["used"] is False and "503" in out.notes["ai"]["reason"]
    assert out.notes["sources"][3] == "fallback" and out.usage is None


async def test_no_ai_configured_or_rule_not_ai_written_uses_the_fallback(tenant: Tenant) -> None:
    out = await compose(RULE, TEMPLATE, tenant, FACTS, None)
    assert out.values[3] == "Thank you for ordering!" and "no AI" in out.notes["ai"]["reason"]
    writer = Writer({3: "never used"})
    rule = dataclasses.replace(RULE, ai_written=False)
    out = await compose(rule, TEMPLATE, tenant, FACTS, writer)
    assert out.values[3] == "Thank you for ordering!" and writer.calls == 0


async def test_an_empty_ai_answer_uses_the_fallback(tenant: Tenant) -> None:
    out = await compose(RULE, TEMPLATE, tenant, FACTS, Writer({3: "   "}))
    assert out.values[3] == "Thank you for ordering!"


async def test_a_missing_detail_uses_its_default_or_stops_the_message(tenant: Tenant) -> None:
    facts = dataclasses.replace(FACTS, details={"name": "Anita", "date": "2026-11-26"})
    out = await compose(RULE, TEMPLATE, tenant, facts, None)
    assert out.values[1] == "your items" and "default" in out.notes["sources"][1]
    facts = dataclasses.replace(FACTS, details={"items": ["cake"], "date": "2026-11-26"})
    with pytest.raises(MissingDetail, match=r"\{\{1\}\} needs details.name"):
        await compose(RULE, TEMPLATE, tenant, facts, None)


def test_call_sources(tenant: Tenant) -> None:
    from receptionist.notify.compose import fixed_values

    rule = dataclasses.replace(
        RULE,
        variables=tuple(
            Variable(source=s)
            for s in ("call.summary", "call.type", "call.caller", "call.time", "business.name")
        ),
    )
    values, _ = fixed_values(rule, tenant, dataclasses.replace(FACTS, call_type="custom_cake"))
    assert values == [
        FACTS.summary,
        "custom cake",
        "+919812345678",
        "25 Nov, 4:05 PM",  # Asia/Kolkata
        "Sweet Crumbs Bakery",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ([], None),
        (True, "yes"),
        (False, "no"),
        (2.0, "2"),
        (1.5, "1.5"),
        (["a", None, "b"], "a, b"),
        ("2026-11-28", "Sat 28 Nov 2026"),
        ("17:30", "5:30 PM"),
        ("2026-13-45", "2026-13-45"),
        ("  chocolate  ", "chocolate"),
    ],
)
def test_format_value(value: object, expected: str | None) -> None:
    assert format_value(value) == expected


def test_clean_variable_makes_whatsapp_safe_text() -> None:
    assert clean_variable("a\n\tb     c") == "a b c"
    assert clean_variable("x" * 2000) == "x" * 1023 + "…"
    assert clean_variable("one two three four", 12) == "one two…"
    # a caller's number as a hostile stream might give it: escape codes and NUL go
    assert clean_variable("+91\x1b[31m98000\x00 00001\u2028") == "+91[31m98000 00001"


def test_rule_conditions() -> None:
    rule = dataclasses.replace(
        RULE, when_present=("items",), when_equals=(("pickup_or_delivery", "Delivery"),)
    )
    assert rule_applies(rule, {"items": ["x"], "pickup_or_delivery": "delivery"})
    assert not rule_applies(rule, {"items": [], "pickup_or_delivery": "delivery"})
    assert not rule_applies(rule, {"items": ["x"], "pickup_or_delivery": "pickup"})
    assert not rule_applies(rule, {"items": ["x"]})
    flag = dataclasses.replace(RULE, when_equals=(("eggless", "true"),))
    assert rule_applies(flag, {"eggless": True}) and not rule_applies(flag, {"eggless": False})


async def test_decide_messages_writes_a_row_per_message_with_reasons(tenant: Tenant) -> None:
    """A missing detail without default, a withheld caller: rows that say why; the owner's
    alert still goes; conditions pick the rules; usage is merged per model."""
    from receptionist.notify.actions import ActionDeps, decide_messages

    owner = ActionRule(
        call_type="order",
        to="owner",
        template="owner_new",
        variables=(Variable(source="call.summary"), Variable(source="details.time")),
    )
    delivery = dataclasses.replace(
        owner, to="+919800000004", when_equals=(("pickup_or_delivery", "delivery"),)
    )
    owner_template = Template(name="owner_new", language="en", text="{{1}} at {{2}}")
    shop = dataclasses.replace(
        tenant, templates=(TEMPLATE, owner_template), actions=(RULE, owner, delivery)
    )
    row = {
        "call_sid": "CA9",
        "call_type": "order",
        "summary": "An order",
        "critical_call_details": {**FACTS.details, "time": "17:00", "_analyzer": "offline"},
        "from_number": "anonymous",
        "started_at": FACTS.started_at,
    }
    deps = ActionDeps(provider="log", writer=Writer({3: "Thanks!"}))
    rows, usage = await decide_messages(shop, row, deps)
    by_to = {r.recipient_type: r for r in rows}
    assert set(by_to) == {"customer", "owner"}  # the delivery rule's condition does not hold
    assert by_to["customer"].status == "skipped" and "withheld" in (by_to["customer"].error or "")
    assert by_to["owner"].status == "queued" and by_to["owner"].payload["variables"] == [
        "An order",
        "5:00 PM",
    ]
    assert by_to["owner"].idempotency_key == "CA9:owner:owner_new"
    assert usage == []  # the customer's message was skipped before the AI wrote anything
    # the owner's template needs details.time, which this analysis lacks: skipped, saying why
    row["critical_call_details"] = {"name": "Anita", "date": "2026-11-26"}
    row["from_number"] = "09812345678"
    rows, usage = await decide_messages(shop, row, deps)
    by_to = {r.recipient_type: r for r in rows}
    assert by_to["owner"].status == "skipped"
    assert "{{2}} needs details.time" in (by_to["owner"].error or "")
    assert by_to["customer"].status == "queued" and usage[0].purpose == "message"
