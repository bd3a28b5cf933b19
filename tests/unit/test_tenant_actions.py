"""WhatsApp rules in tenant.toml: [whatsapp], [templates.<name>], [[actions.<call_type>]]."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.tenants.actions import (
    CALL_SOURCES,
    ActionRule,
    Template,
    Variable,
    WhatsAppSender,
)
from receptionist.tenants.loading import Problem, load_tenant, validate_tenant
from receptionist.tenants.model import Tenant

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tenants"

BASE = """\
name = "Test Shop"
owner_phone = "+919800000099"
languages = ["en-IN"]

[call_types.order]
description = "An order"

[call_types.order.fields]
name = "string"
items = "list"
pickup_or_delivery = "string"
eggless = "boolean"
date = "date"

[call_types.complaint]
description = "A complaint"

[call_types.enquiry]
description = "Any question"

[templates.order_confirmation]
language = "en"
text = "Hi {{1}}, we have your order of {{2}} for {{3}}. {{4}} - Test Shop"

[templates.owner_alert]
language = "en"
text = "{{1}} call from {{2}}: {{3}}"

[templates.thanks]
language = "en_US"
text = "Thank you for calling!"
"""

OWNER_RULE = """
[[actions.complaint]]
to = "owner"
template = "owner_alert"
variables = ["call.type", "call.caller", "call.summary"]
"""

FULL = (
    BASE
    + """
[whatsapp]
integrated_number = "+91 98000 00009"
namespace = "abc_123-def"
auth_key_env = "SHOP_MSG91_AUTHKEY"

[[actions.order]]
to = "customer"
template = "order_confirmation"
ai_written = true
when = { present = ["items"], equals = { pickup_or_delivery = "pickup", eggless = true } }
variables = [
  "details.name",
  { from = "details.items", default = "your items", max_chars = 200 },
  "call.time",
  { write = "One warm sentence", fallback = "Thank you for ordering with us!", max_chars = 160 },
]

[[actions.order]]
to = "+91 98000-00002"
urgent = true
template = "owner_alert"
variables = [
  "call.type",
  { from = "call.caller", default = "a hidden number" },
  "call.summary",
]

[[actions.complaint]]
to = "Owner"
template = "thanks"
urgent = true
"""
)


def make_tenant(root: Path, toml: str, tenant_id: str = "shop") -> Path:
    d = root / tenant_id
    (d / "prompts").mkdir(parents=True)
    (d / "input_files").mkdir()
    (d / "tenant.toml").write_text(toml, encoding="utf-8")
    (d / "prompts" / "assistant.txt").write_text('GREETING: "Hi!"\nBe nice.\n', encoding="utf-8")
    (d / "prompts" / "analyzer.txt").write_text("Classify the call.\n", encoding="utf-8")
    (d / "input_files" / "info.md").write_text("Open 9 to 5.\n", encoding="utf-8")
    return d


def line_of(toml: str, marker: str) -> int:
    """1-based number of the first line of ``toml`` containing ``marker``."""
    found = [i for i, line in enumerate(toml.splitlines(), start=1) if marker in line]
    assert found, marker
    return found[0]


def problems_of(tmp_path: Path, toml: str) -> list[str]:
    make_tenant(tmp_path, toml)
    return [str(p) for p in validate_tenant(tmp_path, "shop")]


def load(tmp_path: Path, toml: str) -> Tenant:
    make_tenant(tmp_path, toml)
    tenant, problems = load_tenant(tmp_path, "shop")
    assert problems == [], [str(p) for p in problems]
    assert tenant is not None
    return tenant


# ----------------------------------------------------------------------------- valid rules


def test_full_example_builds_the_dataclasses(tmp_path: Path) -> None:
    t = load(tmp_path, FULL)
    assert t.whatsapp == WhatsAppSender(
        integrated_number="919800000009",
        namespace="abc_123-def",
        auth_key_env="SHOP_MSG91_AUTHKEY",
    )
    assert t.templates == (
        Template(
            "order_confirmation",
            "en",
            "Hi {{1}}, we have your order of {{2}} for {{3}}. {{4}} - Test Shop",
        ),
        Template("owner_alert", "en", "{{1}} call from {{2}}: {{3}}"),
        Template("thanks", "en_US", "Thank you for calling!"),
    )
    assert t.actions == (
        ActionRule(
            call_type="order",
            to="customer",
            template="order_confirmation",
            variables=(
                Variable(source="details.name"),
                Variable(source="details.items", default="your items", max_chars=200),
                Variable(source="call.time"),
                Variable(
                    write="One warm sentence",
                    fallback="Thank you for ordering with us!",
                    max_chars=160,
                ),
            ),
            ai_written=True,
            when_present=("items",),
            when_equals=(("pickup_or_delivery", "pickup"), ("eggless", "true")),
            urgent=False,
            line=line_of(FULL, 'to = "customer"'),
        ),
        ActionRule(
            call_type="order",
            to="+919800000002",
            template="owner_alert",
            variables=(
                Variable(source="call.type"),
                Variable(source="call.caller", default="a hidden number"),
                Variable(source="call.summary"),
            ),
            urgent=True,
            line=line_of(FULL, 'to = "+91 98000-00002"'),
        ),
        ActionRule(
            call_type="complaint",
            to="owner",
            template="thanks",
            variables=(),
            urgent=True,
            line=line_of(FULL, 'to = "Owner"'),
        ),
    )
    assert [r.template for r in t.actions_for("order")] == ["order_confirmation", "owner_alert"]
    assert t.actions_for("enquiry") == ()
    assert t.template("owner_alert") is t.templates[1]
    assert t.templates[0].variable_count == len(t.actions[0].variables) == 4


def test_no_blocks_means_nothing_to_send(tmp_path: Path) -> None:
    t = load(tmp_path, BASE.split("[templates.")[0])
    assert t.templates == () and t.actions == () and t.whatsapp is None


def test_optional_details_of_the_format(tmp_path: Path) -> None:
    toml = (
        BASE
        + """
[whatsapp]
integrated_number = 919800000009

[[actions.order]]
to = "customer"
template = "owner_alert"
ai_written = false
when = { present = "name", equals = { date = 2026, eggless = "FALSE" } }
variables = ["business.name", { write = "w", fallback = "thanks" }, "details.date"]

[[actions.enquiry]]
to = "owner"
template = "owner_alert"
ai_written = true
variables = ["call.type", "call.caller", "call.summary"]
"""
    )
    t = load(tmp_path, toml)
    assert t.whatsapp == WhatsAppSender(integrated_number="919800000009")
    first, second = t.actions
    # write variables without ai_written: fine, the fallback is sent
    assert first.ai_written is False and first.variables[1].fallback == "thanks"
    assert first.when_present == ("name",)
    assert first.when_equals == (("date", "2026"), ("eggless", "FALSE"))
    # ai_written without write variables: accepted
    assert second.ai_written is True and not any(v.ai_written for v in second.variables)


def test_rules_as_an_inline_array_get_their_lines(tmp_path: Path) -> None:
    toml = (
        BASE
        + """
[actions]
complaint = [
  { to = "owner", template = "thanks" },
  { to = "customer", template = "thanks", urgent = true },
]
"""
    )
    t = load(tmp_path, toml)
    assert [(r.to, r.line) for r in t.actions] == [
        ("owner", line_of(toml, '{ to = "owner"')),
        ("customer", line_of(toml, '{ to = "customer"')),
    ]


def test_rule_line_is_the_header_without_to(tmp_path: Path) -> None:
    toml = BASE + '\n[[actions.order]]\ntemplate = "thanks"\n'
    text = problems_of(tmp_path, toml)
    assert text == [
        f"shop/tenant.toml:{line_of(toml, '[[actions.order]]')}: "
        "missing required key 'actions.order.to'"
    ]


def test_templates_and_rules_do_not_change_prompt_version(tmp_path: Path) -> None:
    plain = load(tmp_path / "a", BASE.split("[templates.")[0])
    full = load(tmp_path / "b", FULL)
    assert plain.prompt_version == full.prompt_version


# ----------------------------------------------------------------------------- problems

# (text added to BASE, expected message, marker of the line it is reported on)
CASES = [
    pytest.param(
        '\n[[actions.ordr]]\nto = "owner"\ntemplate = "thanks"\n',
        "[[actions.ordr]]: 'ordr' is not a call type; did you mean 'order'? "
        "(declared: order, complaint, enquiry)",
        "[[actions.ordr]]",
        id="unknown-call-type",
    ),
    pytest.param(
        '\n[actions.order]\nto = "owner"\ntemplate = "thanks"\n',
        "actions.order must be written [[actions.order]], with double brackets",
        "[actions.order]",
        id="single-brackets",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nurgnet = true\n',
        "unknown key 'actions.order.urgnet'; did you mean 'urgent'? (allowed here: to, "
        "template, ai_written, urgent, when, variables)",
        "urgnet",
        id="unknown-rule-key",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owners"\ntemplate = "thanks"\n',
        "actions.order.to 'owners' is not a recipient: write \"customer\" (the caller), "
        "\"owner\" (owner_phone) or a number; did you mean 'owner'?",
        'to = "owners"',
        id="to-typo",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "+91123"\ntemplate = "thanks"\n',
        "actions.order.to '+91123' is not a recipient: write + and 8-15 digits",
        'to = "+91123"',
        id="to-short-number",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "+91 98000 00002 1234567"\ntemplate = "thanks"\n',
        "actions.order.to '+91 98000 00002 1234567' is not a recipient: write + and 8-15 digits",
        "to = ",
        id="to-long-number",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "919800000002"\ntemplate = "thanks"\n',
        "actions.order.to '919800000002' is not a recipient: write the number with + and "
        'the country code (e.g. "+919800000002")',
        "to = ",
        id="to-without-plus",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = 919800000002\ntemplate = "thanks"\n',
        "actions.order.to must be text in quotes, not a number",
        "to = ",
        id="to-not-text",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thank"\n',
        "actions.order.template 'thank' is not declared; did you mean 'thanks'? "
        "(add a [templates.thank] table with its language and text)",
        'template = "thank"',
        id="template-not-declared",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nai_written = "yes"\n',
        "actions.order.ai_written must be true or false, not text",
        "ai_written",
        id="ai-written-not-bool",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nurgent = 1\n',
        "actions.order.urgent must be true or false, not a number",
        "urgent",
        id="urgent-not-bool",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\n',
        "actions.order needs variables = [...], one per placeholder: template 'owner_alert' "
        "has 3 ({{1}}..{{3}})",
        "[[actions.order]]",
        id="variables-missing",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\n'
        'variables = ["call.type", "call.summary"]\n',
        "actions.order.variables has 2 entries but template 'owner_alert' has 3 "
        "({{1}}..{{3}}): give exactly one per placeholder, in order",
        "variables",
        id="too-few-variables",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nvariables = ["call.type"]\n',
        "actions.order.variables has 1 entry but template 'thanks' has no placeholders",
        "variables",
        id="variables-for-no-placeholders",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nvariables = "call.type"\n',
        "actions.order.variables must be a list [...], one entry per placeholder, not text",
        "variables",
        id="variables-not-a-list",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "details.nme",\n  "call.summary",\n]\n',
        "actions.order variable {{2}}: 'nme' is not a field of call type 'order'; did you "
        "mean 'name'? (its fields: name, items, pickup_or_delivery, eggless, date)",
        '"details.nme"',
        id="unknown-detail-field",
    ),
    pytest.param(
        '\n[[actions.complaint]]\nto = "owner"\ntemplate = "owner_alert"\n'
        'variables = ["call.type", "details.name", "call.summary"]\n',
        "actions.complaint variable {{2}}: 'name' is not a field of call type 'complaint' "
        "(it has no fields)",
        "variables",
        id="detail-of-call-type-without-fields",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  { from = "call.caler", default = "?" },\n  "call.summary",\n]\n',
        "actions.order variable {{2}}: 'call.caler' is not a source; did you mean "
        "'call.caller'? (use \"details.<field>\" or one of " + ", ".join(CALL_SOURCES) + ")",
        "call.caler",
        id="unknown-call-source",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\n'
        'variables = ["call.type", 42, "call.summary"]\n',
        'actions.order variable {{2}} must be "details.<field>", one of call.summary',
        "variables",
        id="variable-not-text-or-table",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { write = "Say thanks" },\n]\n',
        "actions.order variable {{3}}: 'write' needs a 'fallback' text, sent as it is when "
        "the AI is unavailable",
        '{ write = "Say thanks" }',
        id="write-without-fallback",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { write = "Say thanks", fallback = "  " },\n]\n',
        "actions.order.variables.fallback must not be empty",
        "fallback",
        id="empty-fallback",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n'
        '  { write = "Say thanks", fallback = "Thanks", max_chars = 0 },\n]\n',
        "actions.order variable {{3}}: max_chars must be a whole number from 1 to 1024",
        "max_chars",
        id="max-chars-zero",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n'
        '  { write = "Say thanks", fallback = "Thanks", max_chars = 1025 },\n]\n',
        "actions.order variable {{3}}: max_chars must be a whole number from 1 to 1024",
        "max_chars",
        id="max-chars-too-big",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n'
        '  { write = "Say thanks", fallback = "Thanks", max_chars = "160" },\n]\n',
        "actions.order variable {{3}}: max_chars must be a whole number from 1 to 1024",
        "max_chars",
        id="max-chars-not-a-number",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n'
        '  { write = "Say thanks", fallback = "Thank you very much", max_chars = 10 },\n]\n',
        "actions.order variable {{3}}: fallback is 19 characters, more than max_chars (10); "
        "shorten it or raise max_chars",
        "max_chars",
        id="fallback-longer-than-max-chars",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n'
        '  { from = "call.summary", write = "Say thanks", fallback = "Thanks" },\n]\n',
        "actions.order variable {{3}}: give either 'from' (a fact from the call) or 'write' "
        "(text the AI writes), not both",
        "write = ",
        id="from-and-write",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { default = "x" },\n]\n',
        "actions.order variable {{3}} needs 'from' (e.g. \"details.name\") or 'write'",
        '{ default = "x" }',
        id="neither-from-nor-write",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { from = "call.summary", fallback = "x" },\n]\n',
        "actions.order variable {{3}}: 'fallback' goes with 'write'; with 'from' use 'default'",
        "fallback",
        id="fallback-with-from",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { write = "w", fallback = "f", default = "d" },\n]\n',
        "actions.order variable {{3}}: 'default' goes with 'from'; with 'write' use 'fallback'",
        "default",
        id="default-with-write",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\nvariables = [\n'
        '  "call.type",\n  "call.caller",\n  { from = "call.summary", defualt = "x" },\n]\n',
        "unknown key 'actions.order.variables.defualt'; did you mean 'default'?",
        "defualt",
        id="unknown-variable-key",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nwhen = { present = ["itms"] }\n',
        "actions.order.when.present: 'itms' is not a field of call type 'order'; "
        "did you mean 'items'?",
        "when",
        id="when-present-unknown-field",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nwhen = { present = [1, 2] }\n',
        'actions.order.when.present must be a list of field names like ["name", "phone"]',
        "when",
        id="when-present-not-names",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\n'
        '[actions.order.when]\nequals = { pickup_or_delivry = "pickup" }\n',
        "actions.order.when.equals: 'pickup_or_delivry' is not a field of call type 'order'; "
        "did you mean 'pickup_or_delivery'?",
        "pickup_or_delivry",
        id="when-equals-unknown-field",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\n'
        'when = { equals = { eggless = "yes" } }\n',
        "actions.order.when.equals.eggless: 'eggless' is a true/false field, so compare it "
        "with true or false, not 'yes'",
        "when",
        id="when-equals-boolean-field",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\n'
        'when = { equals = { name = ["a", "b"] } }\n',
        "actions.order.when.equals.name must be text, a number or true/false, not a list",
        "when",
        id="when-equals-list",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nwhen = { presnt = ["name"] }\n',
        "unknown key 'actions.order.when.presnt'; did you mean 'present'? "
        "(allowed here: present, equals)",
        "when",
        id="when-unknown-key",
    ),
    pytest.param(
        '\n[[actions.order]]\nto = "owner"\ntemplate = "thanks"\nwhen = "items"\n',
        "actions.order.when must be a table like { present = [",
        "when",
        id="when-not-a-table",
    ),
    pytest.param(
        '\n[templates.gap]\nlanguage = "en"\ntext = "Hi {{1}}, {{3}}"\n',
        "templates.gap.text must number its placeholders {{1}}, {{2}}, ... with none left "
        "out, but {{2}} is missing",
        'text = "Hi {{1}}, {{3}}"',
        id="placeholder-gap",
    ),
    pytest.param(
        '\n[templates.zero]\nlanguage = "en"\ntext = "Hi {{0}}, {{1}}"\n',
        "templates.zero.text must number its placeholders {{1}}, {{2}}, ... with none left "
        "out, but there is no {{0}}",
        'text = "Hi {{0}}',
        id="placeholder-zero",
    ),
    pytest.param(
        '\n[templates.named]\nlanguage = "en"\ntext = "Hi {{name}}"\n',
        "templates.named.text has {{name}}: placeholders must be numbered {{1}}, {{2}}, ...",
        'text = "Hi {{name}}"',
        id="placeholder-named",
    ),
    pytest.param(
        '\n[templates.long]\nlanguage = "en"\ntext = "' + "x" * 1025 + '"\n',
        "templates.long.text is 1025 characters; WhatsApp allows at most 1024",
        "xxxx",
        id="template-too-long",
    ),
    pytest.param(
        '\n[templates.empty]\nlanguage = "en"\ntext = " "\n',
        "templates.empty.text must not be empty",
        'text = " "',
        id="template-empty",
    ),
    pytest.param(
        '\n[templates.nolang]\ntext = "Hi"\n',
        "missing required key 'templates.nolang.language'",
        "[templates.nolang]",
        id="template-without-language",
    ),
    pytest.param(
        '\n[templates.dash]\nlanguage = "en-US"\ntext = "Hi"\n',
        "templates.dash.language 'en-US' is not a WhatsApp language code like \"en\", "
        '"en_US", "hi" or "kn"; write \'en_US\'',
        'language = "en-US"',
        id="language-with-dash",
    ),
    pytest.param(
        '\n[templates.word]\nlanguage = "english"\ntext = "Hi"\n',
        "templates.word.language 'english' is not a WhatsApp language code",
        'language = "english"',
        id="language-word",
    ),
    pytest.param(
        '\n[templates.OrderDone]\nlanguage = "en"\ntext = "Hi"\n',
        "template name 'OrderDone' must be written exactly as approved at MSG91: lowercase "
        "letters, digits and '_'",
        "[templates.OrderDone]",
        id="template-name",
    ),
    pytest.param(
        '\n[templates.spelt]\nlanguage = "en"\ntext = "Hi"\ntexts = "Hello"\n',
        "unknown key 'templates.spelt.texts'; did you mean 'text'? (allowed here: language, text)",
        "texts",
        id="unknown-template-key",
    ),
    pytest.param(
        '\n[templates]\nloose = "Hi {{1}}"\n',
        "templates.loose must be a table ([templates.loose] with language and text), not text",
        "loose",
        id="template-not-a-table",
    ),
    pytest.param(
        '\n[whatsapp]\nintegrated_number = "+91 98000"\n',
        "whatsapp.integrated_number must be the WhatsApp sender number with its country code, "
        "10-15 digits (e.g. \"919800000009\"); got '+91 98000'",
        "integrated_number",
        id="integrated-number-short",
    ),
    pytest.param(
        '\n[whatsapp]\nintegrated_number = "91980000000912345"\n',
        "whatsapp.integrated_number must be the WhatsApp sender number",
        "integrated_number",
        id="integrated-number-long",
    ),
    pytest.param(
        '\n[whatsapp]\nauth_key_env = "412345AbCdEfGh12345678"\n',
        "whatsapp.auth_key_env must be the NAME of an environment variable in capitals "
        '(e.g. "BAKERY_MSG91_AUTHKEY"), never the auth key itself',
        "auth_key_env",
        id="auth-key-itself",
    ),
    pytest.param(
        '\n[whatsapp]\nauth_key_env = "A1B2C3D4E5F6A7B8C9D0"\n',
        "whatsapp.auth_key_env must be the NAME of an environment variable",
        "auth_key_env",
        id="auth-key-in-capitals",
    ),
    pytest.param(
        '\n[whatsapp]\nnamespace = "has space"\n',
        "whatsapp.namespace must be the template namespace shown at MSG91",
        "namespace",
        id="namespace",
    ),
    pytest.param(
        '\n[whatsapp]\nintegrated_numbr = "919800000009"\n',
        "unknown key 'whatsapp.integrated_numbr'; did you mean 'integrated_number'?",
        "integrated_numbr",
        id="unknown-whatsapp-key",
    ),
]


@pytest.mark.parametrize(("extra", "message", "marker"), CASES)
def test_each_rule_reports_file_line_and_message(
    tmp_path: Path, extra: str, message: str, marker: str
) -> None:
    toml = BASE + extra
    text = problems_of(tmp_path, toml)
    line = len(BASE.splitlines()) + line_of(extra, marker)  # first such line after BASE
    assert len(text) == 1, text
    assert text[0].startswith(f"shop/tenant.toml:{line}: {message}"), (line, text)


def test_misspelt_key_also_reports_the_missing_one(tmp_path: Path) -> None:
    toml = BASE + '\n[[actions.order]]\nto = "owner"\ntempalte = "thanks"\n'
    text = problems_of(tmp_path, toml)
    assert text == [
        f"shop/tenant.toml:{line_of(toml, 'tempalte')}: unknown key "
        "'actions.order.tempalte'; did you mean 'template'? "
        "(allowed here: to, template, ai_written, urgent, when, variables)",
        f"shop/tenant.toml:{line_of(toml, '[[actions.order]]')}: "
        "missing required key 'actions.order.template'",
    ]


def test_problem_in_a_later_rule_points_at_that_rule(tmp_path: Path) -> None:
    toml = (
        BASE
        + OWNER_RULE
        + """
[[actions.complaint]]
to = "customer"
template = "owner_alert"
variables = [
  "call.type",
  "call.caller",
  { from = "call.summry" },
]
"""
    )
    text = problems_of(tmp_path, toml)
    assert len(text) == 1, text
    assert text[0].startswith(f"shop/tenant.toml:{line_of(toml, 'call.summry')}: ")
    assert "did you mean 'call.summary'?" in text[0]


def test_every_problem_is_collected(tmp_path: Path) -> None:
    toml = (
        BASE
        + """
[whatsapp]
integrated_number = "12"
auth_key_env = "secret-key"

[templates.bad]
language = "EN"
text = "{{2}}"

[[actions.order]]
to = "boss"
template = "missing"
variables = ["details.nothing", { write = "w" }]
when = { present = ["nope"] }

[[actions.refund]]
to = "owner"
template = "thanks"
"""
    )
    text = problems_of(tmp_path, toml)
    expected = [
        (line_of(toml, "integrated_number"), "whatsapp.integrated_number must be"),
        (line_of(toml, "auth_key_env"), "whatsapp.auth_key_env must be the NAME"),
        (line_of(toml, 'language = "EN"'), "templates.bad.language 'EN' is not"),
        (line_of(toml, 'text = "{{2}}"'), "templates.bad.text must number its placeholders"),
        (line_of(toml, 'to = "boss"'), "actions.order.to 'boss' is not a recipient"),
        (line_of(toml, 'template = "missing"'), "actions.order.template 'missing' is not"),
        (line_of(toml, "when = "), "actions.order.when.present: 'nope' is not a field"),
        (line_of(toml, "details.nothing"), "actions.order variable {{1}}: 'nothing' is not"),
        (line_of(toml, "details.nothing"), "actions.order variable {{2}}: 'write' needs"),
        (line_of(toml, "[[actions.refund]]"), "[[actions.refund]]: 'refund' is not a call type"),
    ]
    for line, start in expected:
        assert any(t.startswith(f"shop/tenant.toml:{line}: {start}") for t in text), (start, text)
    assert "write 'en'" in next(t for t in text if "'EN'" in t)
    assert len(text) == len(expected), text


def test_broken_field_is_reported_once(tmp_path: Path) -> None:
    toml = (
        BASE.replace('date = "date"', 'date = "day"')
        + '\n[[actions.order]]\nto = "owner"\ntemplate = "owner_alert"\n'
        'variables = ["details.date", "call.caller", "call.summary"]\n'
    )
    text = problems_of(tmp_path, toml)
    assert len(text) == 1 and "call_types.order.fields.date.type 'day'" in text[0], text


def test_broken_template_is_not_also_undeclared(tmp_path: Path) -> None:
    toml = (
        BASE
        + '\n[templates.half]\nlanguage = "en"\ntext = "{{1}} {{3}}"\n'
        + '\n[[actions.order]]\nto = "owner"\ntemplate = "half"\nvariables = ["call.type"]\n'
    )
    text = problems_of(tmp_path, toml)
    assert len(text) == 1 and "templates.half.text must number" in text[0], text


def test_multiline_text_does_not_confuse_lines(tmp_path: Path) -> None:
    toml = (
        BASE
        + '''
[templates.multi]
language = "hi"
text = """नमस्ते {{1}},
to = "not a key"
[not.a.table]
धन्यवाद"""

[[actions.order]]
to = "nobody"
template = "multi"
variables = ["details.name"]
'''
    )
    text = problems_of(tmp_path, toml)
    line = line_of(toml, 'to = "nobody"')
    assert text == [
        f"shop/tenant.toml:{line}: actions.order.to 'nobody' is "
        'not a recipient: write "customer" (the caller), "owner" (owner_phone) or a number '
        '(e.g. "+919800000002")'
    ]


def test_problem_type() -> None:
    p = Problem("shop", "shop/tenant.toml", 3, "x")
    assert str(p) == "shop/tenant.toml:3: x"


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("tenant_id", ["bakery", "saloon", "clinic"])
def test_example_tenants_have_valid_rules(tenant_id: str) -> None:
    tenant, problems = load_tenant(EXAMPLES, tenant_id)
    assert problems == [], [str(p) for p in problems]
    assert tenant is not None
    assert tenant.templates and tenant.actions
    for rule in tenant.actions:
        template = tenant.template(rule.template)
        assert template is not None
        assert template.variable_count == len(rule.variables)
        assert rule.call_type in tenant.call_type_names
        assert rule.line is not None
        for var in rule.variables:
            assert var.fallback if var.ai_written else var.source
        if rule.to == "owner":  # owner alerts go out even when a detail is missing
            assert all(v.default is not None for v in rule.variables if v.detail_field)
        assert template.render([f"<{i}>" for i in range(template.variable_count)])
    assert {r.call_type for r in tenant.actions} <= set(tenant.call_type_names)
    assert tenant.actions_for("enquiry") == ()
    assert tenant.actions_for("price_enquiry") == ()


def test_bakery_rules() -> None:
    t, _ = load_tenant(EXAMPLES, "bakery")
    assert t is not None
    assert t.whatsapp == WhatsAppSender(integrated_number="919800000009")
    order = t.actions_for("order")
    assert [(r.to, r.ai_written) for r in order] == [
        ("customer", True),
        ("owner", False),
        ("+919800000004", False),
    ]
    assert sum(v.ai_written for v in order[0].variables) == 1
    assert order[2].when_equals == (("pickup_or_delivery", "delivery"),)
    assert [r.to for r in t.actions_for("custom_cake")] == ["customer", "owner"]
    (complaint,) = t.actions_for("complaint")
    assert complaint.to == "owner" and complaint.urgent
    assert {tpl.language for tpl in t.templates} == {"en"}


def test_saloon_rules() -> None:
    t, _ = load_tenant(EXAMPLES, "saloon")
    assert t is not None
    assert [r.to for r in t.actions_for("appointment")] == ["customer", "owner"]
    assert [r.to for r in t.actions_for("cancellation")] == ["customer", "owner"]


def test_clinic_rules_are_in_hindi() -> None:
    t, _ = load_tenant(EXAMPLES, "clinic")
    assert t is not None
    assert {tpl.language for tpl in t.templates} == {"hi"}
    assert all(any("\u0900" <= ch <= "\u097f" for ch in tpl.text) for tpl in t.templates)
    assert [r.to for r in t.actions_for("appointment")] == ["customer", "owner"]
    urgent = [r for r in t.actions if r.urgent]
    assert urgent and all(r.to == "owner" for r in urgent)


def test_two_rules_for_the_same_recipient_and_template_are_refused(tmp_path: Path) -> None:
    toml = BASE + OWNER_RULE + OWNER_RULE.replace('to = "owner"', 'to = "owner"  # again')
    text = problems_of(tmp_path, toml)
    assert len(text) == 1, text
    assert text[0].startswith(f"shop/tenant.toml:{line_of(toml, '# again')}: ")
    assert "a second message to owner with template 'owner_alert'" in text[0]
