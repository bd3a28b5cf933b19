"""Tenant folders: example tenants, validation problems with file:line, repository caching."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from receptionist.tenants.loading import Problem, load_tenant, validate_all, validate_tenant
from receptionist.tenants.messages import MESSAGE_KEYS, default_messages
from receptionist.tenants.model import FIELD_TYPES, Tenant
from receptionist.tenants.repository import (
    BrokenTenant,
    InactiveTenant,
    TenantError,
    TenantRepository,
    UnknownTenant,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tenants"
FIXTURES = REPO / "tests" / "data" / "tenants"


# ----------------------------------------------------------------------------- helpers

MINIMAL_TOML = """\
name = "Test Shop"
owner_phone = "+919800000099"
languages = ["en-IN"]

[call_types.enquiry]
description = "Any question"
"""


def make_tenant(
    root: Path,
    tenant_id: str,
    toml: str = MINIMAL_TOML,
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """A tenant folder with valid prompts and one input file; ``files`` (path relative to the
    tenant folder -> content) adds or replaces files."""
    d = root / tenant_id
    (d / "prompts").mkdir(parents=True, exist_ok=True)
    (d / "input_files").mkdir(exist_ok=True)
    (d / "tenant.toml").write_text(toml, encoding="utf-8")
    (d / "prompts" / "assistant.txt").write_text('GREETING: "Hi!"\nBe nice.\n', encoding="utf-8")
    (d / "prompts" / "analyzer.txt").write_text("Classify the call.\n", encoding="utf-8")
    (d / "input_files" / "info.md").write_text("Open 9 to 5.\n", encoding="utf-8")
    for rel, content in (files or {}).items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return d


def strs(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("tenant_id", ["bakery", "saloon", "clinic"])
def test_example_tenants_validate_clean(tenant_id: str) -> None:
    assert validate_tenant(EXAMPLES, tenant_id) == []


def test_validate_all_examples() -> None:
    result = validate_all(EXAMPLES)
    assert {"bakery", "saloon", "clinic"} <= set(result)
    assert all(problems == [] for problems in result.values()), result


def test_bakery_loads_with_expected_values() -> None:
    repo = TenantRepository(EXAMPLES)
    t = repo.get("bakery")
    assert t.name == "Sweet Crumbs Bakery"
    assert t.languages == ("en-IN", "hi-IN", "kn-IN")
    assert t.primary_language == "en-IN"
    assert t.language_name == "English"
    assert t.voice == "Aoede"
    assert t.active is True
    assert t.timezone == "Asia/Kolkata"
    assert t.owner_phone.startswith("+91") and len(t.owner_phone) == 13
    assert t.greeting.startswith("Hello, thank you for calling Sweet Crumbs Bakery")
    assert set(t.call_type_names) == {"order", "custom_cake", "complaint", "enquiry"}
    assert [name for name, _ in t.input_files] == [
        "custom_cakes.md",
        "hours_and_delivery.md",
        "menu.md",
    ]
    assert "₹" in dict(t.input_files)["menu.md"]
    assert "Koramangala" in dict(t.input_files)["hours_and_delivery.md"]
    assert t.messages == default_messages("en")
    assert len(t.prompt_version) == 12


def test_clinic_is_hindi_first() -> None:
    t = TenantRepository(EXAMPLES).get("clinic")
    assert t.primary_language == "hi-IN"
    assert t.language_name == "Hindi"
    assert t.greeting.startswith("नमस्ते, शर्मा फ़ैमिली क्लिनिक")
    assert t.messages.still_there == default_messages("hi").still_there
    # overridden in [messages]
    assert t.messages.goodbye_max_duration.startswith("कॉल का समय पूरा हो गया है।")
    assert set(t.call_type_names) == {"appointment", "prescription_refill", "lab_report", "enquiry"}


def test_saloon_greeting_and_call_types() -> None:
    t = TenantRepository(EXAMPLES).get("saloon")
    assert t.greeting.startswith("Vanakkam!")
    assert t.languages == ("en-IN", "ta-IN")
    assert set(t.call_type_names) == {"appointment", "cancellation", "price_enquiry"}


@pytest.mark.parametrize("tenant_id", ["bakery", "saloon", "clinic"])
def test_system_instruction_has_prompt_and_every_file(tenant_id: str) -> None:
    t = TenantRepository(EXAMPLES).get(tenant_id)
    si = t.system_instruction
    assert si.startswith(t.assistant_prompt.strip())
    assert t.input_files
    for name, text in t.input_files:
        header = f"## Business information: {name}\n"
        assert header in si
        assert text.strip() in si
        assert si.index(header) < si.index(text.strip())
    assert si is t.system_instruction  # built once


@pytest.mark.parametrize("tenant_id", ["bakery", "saloon", "clinic"])
def test_call_type_schema_shape(tenant_id: str) -> None:
    t = TenantRepository(EXAMPLES).get(tenant_id)
    schema = t.call_type_schema
    json.dumps(schema)  # JSON-able
    assert list(schema) == list(t.call_type_names)
    for spec in schema.values():
        assert set(spec) == {"description", "fields"}
        assert isinstance(spec["description"], str) and spec["description"]
        for field in spec["fields"].values():
            assert set(field) == {"type", "required", "description"}
            assert field["type"] in FIELD_TYPES
            assert isinstance(field["required"], bool)
    # a copy: mutating it does not change the tenant
    schema.clear()
    assert t.call_type_schema


def test_bakery_order_schema_fields() -> None:
    schema = TenantRepository(EXAMPLES).get("bakery").call_type_schema
    order = schema["order"]["fields"]
    assert list(order) == [
        "name",
        "phone",
        "items",
        "quantity",
        "pickup_or_delivery",
        "delivery_address",
        "date",
        "time",
    ]
    assert order["items"]["type"] == "list"
    assert order["phone"] == {
        "type": "phone",
        "required": True,
        "description": "Customer's phone number for confirmation",
    }
    assert schema["custom_cake"]["fields"]["eggless"]["type"] == "boolean"
    assert schema["custom_cake"]["fields"]["weight_kg"]["type"] == "number"


def test_tenant_is_hashable_and_repr_is_short() -> None:
    t = TenantRepository(EXAMPLES).get("bakery")
    hash(t)
    assert "Koramangala" not in repr(t)
    assert isinstance(t.raw_config, dict) and t.raw_config["name"] == t.name


def test_exotel_credential_env_names(tmp_path: Path) -> None:
    toml = MINIMAL_TOML.replace(
        "[call_types.enquiry]",
        '[exotel]\nauth_user_env = "BAKERY_EXOTEL_KEY"\nauth_token_env = "BAKERY_EXOTEL_TOKEN"\n\n'
        "[call_types.enquiry]",
    )
    make_tenant(tmp_path, "exo", toml)
    t = TenantRepository(tmp_path).get("exo")
    assert t.exotel_auth_user_env == "BAKERY_EXOTEL_KEY"
    assert t.exotel_auth_token_env == "BAKERY_EXOTEL_TOKEN"


# ----------------------------------------------------------------------------- fixtures


def test_fixture_broken_toml_reports_line() -> None:
    problems = validate_tenant(FIXTURES, "broken_toml")
    assert len(problems) == 1
    assert str(problems[0]).startswith("broken_toml/tenant.toml:4: TOML syntax error")
    assert "quotes" in problems[0].message


def test_fixture_unknown_key_and_bad_field_type() -> None:
    problems = validate_tenant(FIXTURES, "unknown_key")
    text = strs(problems)
    assert len(text) == 2, text
    assert text[0].startswith("unknown_key/tenant.toml:5: unknown key 'timezon'")
    assert "did you mean 'timezone'" in text[0]
    assert text[1].startswith("unknown_key/tenant.toml:12: call_types.order.fields.qty.type")
    assert "did you mean 'integer'" in text[1]


def test_fixture_missing_and_empty_prompts() -> None:
    text = strs(validate_tenant(FIXTURES, "missing_prompt"))
    assert "missing_prompt/prompts/assistant.txt: prompt is empty" in text
    assert "missing_prompt/prompts/analyzer.txt: file is missing" in text
    assert len(text) == 2


def test_fixture_bad_phone() -> None:
    problems = validate_tenant(FIXTURES, "bad_phone")
    assert len(problems) == 1
    p = problems[0]
    assert (p.tenant_id, p.file, p.line) == ("bad_phone", "bad_phone/tenant.toml", 4)
    assert str(p).startswith(
        "bad_phone/tenant.toml:4: owner_phone must be E.164 (+ and 8-15 digits)"
    )


def test_fixture_inactive_validates_but_get_refuses() -> None:
    assert validate_tenant(FIXTURES, "inactive") == []
    repo = TenantRepository(FIXTURES)
    with pytest.raises(InactiveTenant) as info:
        repo.get("inactive")
    assert info.value.tenant_id == "inactive"
    assert info.value.tenant is not None and info.value.tenant.active is False
    assert isinstance(info.value, TenantError)
    assert repo.get_any("inactive").name == "Closed For Now"


def test_broken_tenant_does_not_stop_others() -> None:
    repo = TenantRepository(FIXTURES)
    tenants, problems = repo.load_all()
    loaded = {t.tenant_id for t in tenants}
    assert {"minimal", "inactive"} <= loaded
    assert set(problems) == {"broken_toml", "unknown_key", "missing_prompt", "bad_phone"}
    assert repo.get("minimal").name == "Minimal Shop"
    with pytest.raises(BrokenTenant) as info:
        repo.get("bad_phone")
    assert info.value.problems == problems["bad_phone"]
    assert "bad_phone/tenant.toml:4" in str(info.value)


def test_ids_lists_folders() -> None:
    ids = TenantRepository(FIXTURES).ids()
    assert ids == sorted(ids)
    assert {"minimal", "broken_toml", "inactive"} <= set(ids)


# ----------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "bad_id",
    ["../etc", "..", ".", "", "Bakery", "bakery/../saloon", "/etc/passwd", "bak ery", "a" * 64,
     "-bakery", "bakery\x00", "ba\\kery", "bäckerei"],
)  # fmt: skip
def test_unsafe_ids_are_unknown(bad_id: str) -> None:
    repo = TenantRepository(EXAMPLES)
    with pytest.raises(UnknownTenant) as info:
        repo.get(bad_id)
    assert isinstance(info.value, TenantError)
    assert "unknown tenant" in str(info.value)


def test_missing_tenant_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(UnknownTenant):
        TenantRepository(tmp_path).get("nobody")
    assert TenantRepository(tmp_path / "absent").ids() == []


def test_traversal_cannot_reach_a_real_folder(tmp_path: Path) -> None:
    make_tenant(tmp_path, "outside")
    root = tmp_path / "tenants"
    root.mkdir()
    with pytest.raises(UnknownTenant):
        TenantRepository(root).get("../outside")


# ----------------------------------------------------------------------------- validation details


def test_every_problem_reported_with_lines(tmp_path: Path) -> None:
    toml = """\
name = ""
owner_phone = "+91-98000"
languages = ["en_IN", "hi-IN", "hi-IN"]
voice = "Aode"
active = "yes"
engine = "openai"
timezone = "Mars/Olympus"
colour = "blue"

[exotel]
auth_user_env = "SHOP_EXOTEL_KEY"

[messages]
stil_there = "Hello?"
busy = ""

[call_types.order]
descripton = "typo"

[call_types.order.fields]
qty = { type = "float", required = "yes" }
"Bad Name" = "string"

[call_types.Enquiry]
description = "bad name"
"""
    make_tenant(tmp_path, "messy", toml)
    text = strs(validate_tenant(tmp_path, "messy"))
    expected_starts = [
        "messy/tenant.toml:8: unknown key 'colour'",
        "messy/tenant.toml:1: name must not be empty",
        "messy/tenant.toml:2: owner_phone must be E.164",
        "messy/tenant.toml:3: language 'en_IN' is not a BCP-47 code",
        "messy/tenant.toml:3: language 'hi-IN' is listed twice",
        "messy/tenant.toml:6: engine must be one of",
        "messy/tenant.toml:4: voice 'Aode' is not a Gemini voice; did you mean 'Aoede'?",
        "messy/tenant.toml:5: active must be true or false",
        "messy/tenant.toml:7: timezone 'Mars/Olympus'",
        "messy/tenant.toml:10: exotel.auth_user_env is set but exotel.auth_token_env is not",
        "messy/tenant.toml:14: unknown key 'messages.stil_there'; did you mean 'still_there'?",
        "messy/tenant.toml:15: messages.busy must not be empty",
        "messy/tenant.toml:18: unknown key 'call_types.order.descripton'",
        "messy/tenant.toml:17: missing required key 'call_types.order.description'",
        "messy/tenant.toml:21: call_types.order.fields.qty.type 'float' is not a field type",
        "messy/tenant.toml:21: call_types.order.fields.qty.required must be true or false",
        "messy/tenant.toml:22: field name 'Bad Name'",
        "messy/tenant.toml:24: call type name 'Enquiry'",
    ]
    for start in expected_starts:
        assert any(line.startswith(start) for line in text), (start, text)
    assert "write 'en-IN'" in next(line for line in text if "en_IN" in line)
    assert len(text) == len(expected_starts), text


def test_missing_required_keys(tmp_path: Path) -> None:
    make_tenant(tmp_path, "empty", "# nothing here\n")
    text = strs(validate_tenant(tmp_path, "empty"))
    for key in ("name", "owner_phone", "languages", "call_types"):
        assert f"empty/tenant.toml: missing required key '{key}'" in text


def test_missing_tenant_toml(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "notoml")
    (d / "tenant.toml").unlink()
    assert strs(validate_tenant(tmp_path, "notoml")) == ["notoml/tenant.toml: file is missing"]


def test_missing_prompt_hint_for_wrong_extension(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "wrongext")
    (d / "prompts" / "assistant.txt").rename(d / "prompts" / "assistant.md")
    text = strs(validate_tenant(tmp_path, "wrongext"))
    assert text == [
        "wrongext/prompts/assistant.txt: file is missing "
        "(found assistant.md: rename it to assistant.txt)"
    ]


def test_non_utf8_input_file_reports_byte_offset(tmp_path: Path) -> None:
    data = "Menu\nCake ₹600\n".encode() + b"Caf\xe9 latte\n"
    make_tenant(tmp_path, "latin", files={"input_files/menu.md": data})
    problems = validate_tenant(tmp_path, "latin")
    assert len(problems) == 1
    offset = len("Menu\nCake ₹600\n".encode()) + 3
    assert problems[0].file == "latin/input_files/menu.md"
    assert f"byte offset {offset}" in problems[0].message
    assert "(line 3)" in problems[0].message


def test_binary_input_file(tmp_path: Path) -> None:
    make_tenant(tmp_path, "binary", files={"input_files/logo.bin": b"\x00\x01\x02abc"})
    problems = validate_tenant(tmp_path, "binary")
    assert len(problems) == 1 and "binary" in problems[0].message


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    toml = "\ufeff" + MINIMAL_TOML.replace("\n", "\r\n")
    make_tenant(
        tmp_path, "windows", toml, files={"input_files/faq.md": "\ufeffQ: Parking?\r\nA: Yes.\r\n"}
    )
    tenant, problems = load_tenant(tmp_path, "windows")
    assert problems == []
    assert tenant is not None
    assert dict(tenant.input_files)["faq.md"] == "Q: Parking?\nA: Yes.\n"


def test_exotel_value_must_be_env_name_not_secret(tmp_path: Path) -> None:
    toml = MINIMAL_TOML.replace(
        "[call_types.enquiry]",
        '[exotel]\nauth_user_env = "SHOP_KEY"\nauth_token_env = "9f8e7d6c5b4a39281706"\n\n'
        "[call_types.enquiry]",
    )
    make_tenant(tmp_path, "secret", toml)
    text = strs(validate_tenant(tmp_path, "secret"))
    assert len(text) == 1
    assert text[0].startswith("secret/tenant.toml:7: exotel.auth_token_env must be the NAME")


def test_optional_settings_and_shorthand_fields(tmp_path: Path) -> None:
    toml = (
        MINIMAL_TOML
        + """
[call_types.order]
description = "An order"

[call_types.order.fields]
phone = "phone"
when = { type = "DateTime", required = true }

[call_types.ping]
description = "A call type with no fields"
"""
        + """
[messages]
busy = "  Lines busy, call later.  "
"""
    )
    toml = toml.replace(
        'languages = ["en-IN"]',
        'languages = ["TA-in", "en-IN"]\nengine = "local"\nvoice = "my-local-voice"\n'
        'model = "gemini-2.5-flash-native-audio"',
    )
    make_tenant(tmp_path, "opts", toml)
    tenant, problems = load_tenant(tmp_path, "opts")
    assert problems == [], strs(problems)
    assert tenant is not None
    assert tenant.languages == ("ta-IN", "en-IN")
    assert tenant.language_name == "Tamil"
    assert tenant.engine == "local"
    assert tenant.voice == "my-local-voice"  # any voice with the local engine
    assert tenant.model == "gemini-2.5-flash-native-audio"
    order = tenant.call_type("order")
    assert order is not None
    assert [(f.name, f.type, f.required) for f in order.fields] == [
        ("phone", "phone", False),
        ("when", "datetime", True),
    ]
    assert tenant.call_type_schema["ping"] == {
        "description": "A call type with no fields",
        "fields": {},
    }
    assert tenant.messages.busy == "Lines busy, call later."
    assert tenant.messages.still_there == default_messages("ta").still_there
    assert set(MESSAGE_KEYS) == {
        "still_there",
        "goodbye_inactive",
        "goodbye_max_duration",
        "busy",
        "technical_problem",
    }


def test_invalid_folder_name_reported_by_validate_all(tmp_path: Path) -> None:
    make_tenant(tmp_path, "Good_Name")
    make_tenant(tmp_path, "good")
    result = validate_all(tmp_path)
    assert result["good"] == []
    assert "not a valid tenant id" in result["Good_Name"][0].message
    assert TenantRepository(tmp_path).ids() == ["good"]


def test_prompt_version_changes_with_content(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "ver")
    t1, _ = load_tenant(tmp_path, "ver")
    (d / "input_files" / "info.md").write_text("Open 10 to 6.\n", encoding="utf-8")
    t2, _ = load_tenant(tmp_path, "ver")
    assert t1 is not None and t2 is not None
    assert t1.prompt_version != t2.prompt_version


# ----------------------------------------------------------------------------- caching


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_returns_same_object_and_reloads_on_change(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "shop")
    clock = FakeClock()
    repo = TenantRepository(tmp_path, clock=clock)
    first = repo.get("shop")
    assert repo.get("shop") is first

    # change content: within the 1 s throttle the cached copy is still served
    prompt = d / "prompts" / "assistant.txt"
    prompt.write_text('GREETING: "Hello again, new words!"\n', encoding="utf-8")
    st = prompt.stat()
    os.utime(prompt, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    clock.now += 0.5
    assert repo.get("shop") is first

    clock.now += 1.0
    second = repo.get("shop")
    assert second is not first
    assert second.greeting == "Hello again, new words!"
    assert second.prompt_version != first.prompt_version

    # nothing changed: stat check keeps the same object
    clock.now += 5
    assert repo.get("shop") is second


def test_touch_only_reloads_equal_tenant(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "shop")
    clock = FakeClock()
    repo = TenantRepository(tmp_path, clock=clock)
    first = repo.get("shop")
    toml = d / "tenant.toml"
    st = toml.stat()
    os.utime(toml, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    clock.now += 2
    second = repo.get("shop")
    assert second is not first
    assert second == first


def test_new_and_removed_input_files_reload(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "shop")
    repo = TenantRepository(tmp_path, check_interval=0)
    assert [n for n, _ in repo.get("shop").input_files] == ["info.md"]
    (d / "input_files" / "menu.csv").write_text("item,price\nbun,₹20\n", encoding="utf-8")
    assert [n for n, _ in repo.get("shop").input_files] == ["info.md", "menu.csv"]
    (d / "input_files" / "info.md").unlink()
    assert [n for n, _ in repo.get("shop").input_files] == ["menu.csv"]


def test_tenant_breaks_and_recovers(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "shop")
    make_tenant(tmp_path, "other")
    repo = TenantRepository(tmp_path, check_interval=0)
    good = repo.get("shop")
    (d / "tenant.toml").write_text(MINIMAL_TOML.replace("+919800000099", "12345"), "utf-8")
    with pytest.raises(BrokenTenant) as info:
        repo.get("shop")
    assert [p.line for p in info.value.problems] == [2]
    assert repo.get("other").name == "Test Shop"  # others unaffected
    (d / "tenant.toml").write_text(MINIMAL_TOML, "utf-8")
    assert repo.get("shop") == good


def test_deactivate_and_delete(tmp_path: Path) -> None:
    d = make_tenant(tmp_path, "shop")
    repo = TenantRepository(tmp_path, check_interval=0)
    repo.get("shop")
    (d / "tenant.toml").write_text(
        MINIMAL_TOML.replace('languages = ["en-IN"]', 'languages = ["en-IN"]\nactive = false'),
        "utf-8",
    )
    with pytest.raises(InactiveTenant):
        repo.get("shop")
    shutil.rmtree(d)
    with pytest.raises(UnknownTenant):
        repo.get("shop")


def test_invalidate_forces_reload(tmp_path: Path) -> None:
    make_tenant(tmp_path, "shop")
    repo = TenantRepository(tmp_path)
    first = repo.get("shop")
    repo.invalidate("shop")
    assert repo.get("shop") is not first
    repo.invalidate()
    assert isinstance(repo.get("shop"), Tenant)


def test_tenants_package_has_no_db_or_web_imports() -> None:
    pkg = REPO / "src" / "receptionist" / "tenants"
    for path in pkg.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for banned in ("sqlalchemy", "starlette", "receptionist.store", "receptionist.web",
                       "from ..store", "from ..web", "httpx"):  # fmt: skip
            assert banned not in source, (path.name, banned)


@pytest.mark.parametrize(
    ("budget", "problem"),
    [
        ("monthly_usd_warn = 10\nmonthly_usd_limit = 5", "must not exceed"),
        ("monthly_usd_limit = -1", "must be a number"),
        ('monthly_usd_limit = "lots"', "must be a number"),
        ("monthly_usd_cap = 5", "monthly_usd_cap"),
    ],
)
def test_budget_is_validated(tmp_path: Path, budget: str, problem: str) -> None:
    import shutil

    from receptionist.tenants.loading import validate_tenant

    src = Path(__file__).resolve().parents[1] / "data" / "tenants" / "minimal"
    shutil.copytree(src, tmp_path / "shop")
    toml = tmp_path / "shop" / "tenant.toml"
    lines = toml.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("["))
    toml.write_text("\n".join([*lines[:first], "[budget]", budget, "", *lines[first:]]) + "\n")
    problems = [str(p) for p in validate_tenant(tmp_path, "shop")]
    assert any(problem in p and "shop/tenant.toml" in p for p in problems), problems


def test_budget_loads_as_decimal(tmp_path: Path) -> None:
    import shutil
    from decimal import Decimal

    from receptionist.tenants.loading import load_tenant

    src = Path(__file__).resolve().parents[1] / "data" / "tenants" / "minimal"
    shutil.copytree(src, tmp_path / "shop")
    toml = tmp_path / "shop" / "tenant.toml"
    lines = toml.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("["))
    budget = ["[budget]", "monthly_usd_warn = 2.5", "monthly_usd_limit = 10", ""]
    toml.write_text("\n".join([*lines[:first], *budget, *lines[first:]]) + "\n")
    tenant, problems = load_tenant(tmp_path, "shop")
    assert problems == [] and tenant is not None
    assert tenant.budget_warn_usd == Decimal("2.5") and tenant.budget_limit_usd == Decimal("10")
