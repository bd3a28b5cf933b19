"""The settings forms' text work (web/tenant_form.py): tenant.toml cut into areas and put
together again unchanged in meaning, single values set in place, the greeting line, problems
placed on their fields, and the summary of what a save changed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from receptionist.tenants.bundle import TenantBundle, read_folder
from receptionist.tenants.greeting import find_marked_greeting
from receptionist.tenants.loading import load_bundle
from receptionist.web.tenant_form import (
    call_type_rows,
    call_types_toml,
    change_summary,
    join_config,
    map_problems,
    set_active,
    set_greeting,
    set_scalar,
    split_config,
    templates_area,
    templates_toml,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
TENANTS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "tenant.toml").is_file())


@pytest.mark.parametrize("tenant", TENANTS)
def test_every_example_is_cut_into_areas_and_put_back_the_same(tenant: str) -> None:
    text = (EXAMPLES / tenant / "tenant.toml").read_text()
    parts = split_config(text)
    assert not parts.whole
    assert tomllib.loads(parts.text()) == tomllib.loads(text)
    assert parts.text().count("\n#") == text.count("\n#")  # every comment kept
    assert parts.areas["call_types"].lstrip().startswith(("[call_types", "#"))
    rows = call_type_rows(parts.areas["call_types"])
    assert rows is not None
    assert tomllib.loads(call_types_toml(rows))["call_types"].keys() == (
        tomllib.loads(text)["call_types"].keys()
    )
    callbacks = {n: t.get("callback", False) for n, t in tomllib.loads(text)["call_types"].items()}
    again = tomllib.loads(call_types_toml(rows))["call_types"]
    assert {n: t.get("callback", False) for n, t in again.items()} == callbacks
    area = templates_area(parts.areas["templates"])
    assert area is not None
    assert tomllib.loads(templates_toml(area))["templates"] == tomllib.loads(text)["templates"]


def test_a_file_that_cannot_be_cut_safely_is_one_box() -> None:
    # a table header inside a multi-line string is text, not a table
    text = 'name = "x"\nnote = """\n[call_types.fake]\n"""\n[call_types.real]\ndescription = "d"\n'
    parts = split_config(text)
    assert not parts.whole and "fake" in parts.areas["preamble"]
    # an array's element that looks like a header: cutting there would change the meaning
    text = 'name = "x"\nnested = [\n[ "a" ]\n]\n[call_types.real]\ndescription = "d"\n'
    parts = split_config(text)
    assert parts.whole and parts.areas["preamble"] == text
    broken = split_config("name = \n[oops")
    assert broken.whole


def test_a_call_types_area_with_more_than_rows_show_is_edited_as_toml() -> None:
    assert call_type_rows('[call_types.a]\ndescription = "d"\nexamples = ["x"]') is None
    assert call_type_rows('[call_types.a]\ndescription = "d"\nfields = { n = "phone" }') == [
        call_type_rows('[call_types.a]\ndescription = "d"\nfields.n = { type = "phone" }')[0]  # type: ignore[index]
    ]


def test_single_values_are_set_in_place() -> None:
    text = '# top\nname = "A"  # old\nlanguages = [\n  "en-IN",\n]\nactive = true\n'
    out = set_scalar(text, (), "name", 'Crumbs "B" \\ C')
    assert tomllib.loads(out)["name"] == 'Crumbs "B" \\ C' and out.startswith("# top\n")
    out = set_scalar(out, (), "languages", "hi-IN, en-IN")
    assert tomllib.loads(out)["languages"] == ["hi-IN", "en-IN"]
    out = set_scalar(out, (), "voice", "Puck")
    assert tomllib.loads(out)["voice"] == "Puck"
    out = set_scalar(out, (), "voice", None)
    assert "voice" not in tomllib.loads(out)
    budget = set_scalar("", ("budget",), "monthly_usd_limit", "12.5")
    assert tomllib.loads(budget) == {"budget": {"monthly_usd_limit": 12.5}}
    budget = set_scalar(budget, ("budget",), "monthly_usd_warn", "lots")
    assert tomllib.loads(budget)["budget"]["monthly_usd_warn"] == "lots"  # the loader says why
    assert set_scalar(budget, ("budget",), "monthly_usd_warn", None).startswith("[budget]")
    assert tomllib.loads(set_active(text, False))["active"] is False


def test_the_greeting_line_is_replaced_or_added() -> None:
    prompt = 'You are the receptionist.\n- **Greeting:** "Hello!"\nBe brief.'
    out = set_greeting(prompt, 'Namaste, "Crumbs" here')
    assert find_marked_greeting(out) == "Namaste, 'Crumbs' here" and "Be brief." in out
    plain = set_greeting("You are the receptionist.", "Hi there")
    assert find_marked_greeting(plain) == "Hi there"


def test_problems_are_placed_on_their_fields() -> None:
    files = read_folder(EXAMPLES / "bakery").as_text()
    parts = split_config(files["tenant.toml"])
    parts.areas["preamble"] = set_scalar(parts.areas["preamble"], (), "owner_phone", "nope")
    parts.areas["rules"] = parts.areas["rules"].replace('"owner_complaint"', '"nothing"')
    files["tenant.toml"] = join_config(parts.areas)
    files["input_files/menu.md"] = ""
    _tenant, problems = load_bundle("bakery", TenantBundle.from_text(files))
    errors = map_problems(
        [{"file": p.file.removeprefix("bakery/"), "line": p.line, "message": p.message}
         for p in problems],
        parts.areas,
        whole=False,
    )  # fmt: skip
    assert errors.get("business.owner_phone")
    assert any(m.startswith("line ") and "nothing" in m for m in errors.get("rules"))
    assert set(errors.by_field) <= {
        "business.owner_phone", "rules", "files.input_files/menu.md", "general"
    }  # fmt: skip


def test_the_summary_names_files_and_keys() -> None:
    old = {"tenant.toml": 'name = "A"\n[call_types.order]\ndescription = "x"\n', "a.md": "1"}
    new = {"tenant.toml": 'name = "B"\n[call_types.order]\ndescription = "y"\n', "b.md": "2"}
    assert change_summary(old, new) == "-a.md; +b.md; tenant.toml: call_types.order, name"
    assert change_summary(old, old) == "no change"
    comments = {**old, "tenant.toml": "# hi\n" + old["tenant.toml"]}
    assert change_summary(old, comments) == "tenant.toml (comments)"
    many = {f"input_files/{i:03d}.md": "x" for i in range(100)}
    assert len(change_summary({}, many)) <= 200
