"""tenants/draft.py + draft_files.py: a description in, a draft that validates out."""

from __future__ import annotations

import pytest

from receptionist.tenants.bundle import ASSISTANT_PROMPT, CONFIG_FILE
from receptionist.tenants.draft import (
    MAX_DESCRIPTION_BYTES,
    DraftError,
    parse_description,
    read_description,
)
from receptionist.tenants.draft_files import PLACEHOLDER_OWNER_PHONE, render_bundle
from receptionist.tenants.greeting import find_marked_greeting
from receptionist.tenants.loading import load_bundle

BAKERY = """Sweet Crumbs Bakery
A family bakery in Koramangala. We speak English, Hindi and Kannada.
Owner WhatsApp: 98450 12345
- Black Forest cake 1 kg - 750
- Red velvet cake 1 kg: Rs 900
- Brownie ₹80 each
Open every day 9 am to 9 pm, closed on Diwali.
Address: 12, 5th Cross, Koramangala, Bengaluru 560095
Callers usually want to order birthday cakes.
"""

SALON = """Glow Salon - unisex beauty parlour
Haircut Rs 300
Facial: Rs. 1,200 onwards
Timings: Tuesday to Sunday 10:00 to 20:00, Monday closed
"""


def _files(draft_text: str, tenant_id: str = "shop") -> dict[str, str]:
    draft = parse_description(read_description(draft_text.encode()), tenant_id)
    bundle = render_bundle(draft)
    tenant, problems = load_bundle(tenant_id, bundle)
    assert tenant is not None, problems
    return {p: b.decode() for p, b in bundle.files.items()}


def test_a_bakery_is_read_line_by_line() -> None:
    draft = parse_description(BAKERY, "bakery")
    assert draft.name == "Sweet Crumbs Bakery" and draft.kind == "food"
    assert draft.owner_phone == "+919845012345"
    assert draft.languages == ("en-IN", "hi-IN", "kn-IN")
    assert draft.prices == (
        ("Black Forest cake 1 kg", "750"),
        ("Red velvet cake 1 kg", "900"),
        ("Brownie", "80 each"),
    )
    assert draft.hours == ("Open every day 9 am to 9 pm, closed on Diwali.",)
    assert draft.address == "12, 5th Cross, Koramangala, Bengaluru 560095"
    assert draft.callers_want == ("Callers usually want to order birthday cakes.",)
    assert draft.warnings == ()


def test_the_draft_validates_and_its_greeting_is_found() -> None:
    files = _files(BAKERY)
    assert "[call_types.order]" in files[CONFIG_FILE]
    assert 'owner_phone = "+919845012345"' in files[CONFIG_FILE]
    greeting = find_marked_greeting(files[ASSISTANT_PROMPT])
    assert greeting == "Hello, thank you for calling Sweet Crumbs Bakery! How can I help you?"
    assert "- Black Forest cake 1 kg: ₹750" in files["input_files/prices.md"]
    assert "560095" in files["input_files/address.md"]
    assert "(English, Hindi, Kannada)" in files[ASSISTANT_PROMPT]


def test_a_salon_takes_appointments() -> None:
    draft = parse_description(SALON, "glow")
    assert draft.kind == "appointments" and draft.name == "Glow Salon"
    assert ("Haircut", "300") in draft.prices and ("Facial", "1,200 onwards") in draft.prices
    files = _files(SALON, "glow")
    assert "[call_types.appointment]" in files[CONFIG_FILE]
    assert "[call_types.order]" not in files[CONFIG_FILE]


def test_missing_prices_hours_and_owner_are_todos_that_validate() -> None:
    text = "Ravi Hardware\nNear the bus stand, MG Road, Mysuru.\nWe sell paint and tools.\n"
    draft = parse_description(text, "ravi")
    assert draft.kind == "shop" and not draft.prices and not draft.hours
    assert any("no prices" in w for w in draft.warnings)
    assert any("no opening hours" in w for w in draft.warnings)
    assert any("owner_phone" in w for w in draft.warnings)
    files = _files(text, "ravi")
    assert files["input_files/prices.md"].count("TODO") == 1
    assert files["input_files/hours.md"].count("TODO") == 1
    assert f'owner_phone = "{PLACEHOLDER_OWNER_PHONE}"' in files[CONFIG_FILE]
    assert "# TODO: the owner's WhatsApp number" in files[CONFIG_FILE]
    assert "prices and opening hours are not known yet" in files[ASSISTANT_PROMPT]


@pytest.mark.parametrize(
    "text",
    [
        'Quote "Shop" \\ {{1}} \x1b[31m\u2028 Bakery\nCake - 500\n',  # hostile name
        "Only prices here\n₹ 40 for tea\n- 30\n",
        "x" * 5000,  # one long line: not a name
        "नमस्ते मिठाई भंडार\nलड्डू 1 kg - 400\n",
    ],
)
def test_odd_descriptions_still_validate(text: str) -> None:
    files = _files(text)
    assert find_marked_greeting(files[ASSISTANT_PROMPT])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b" \n\t\n", "empty"),
        (b"x" * (MAX_DESCRIPTION_BYTES + 1), "at most 65536"),
        (b"Cafe\n\xff\xfe prices", "not UTF-8"),
    ],
)
def test_bad_descriptions_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(DraftError, match=why):
        read_description(data)


def test_a_phone_number_is_not_a_price() -> None:
    draft = parse_description("Ravi Hardware\nOwner: 9845012345\nCall 98450-12345\n", "ravi")
    assert draft.prices == () and draft.owner_phone == "+919845012345"


def test_the_readme_example_drafts_without_warnings() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("### Drafting a tenant from a description", 1)[1].split("```")[1]
    draft = parse_description(example, "crumbs")
    assert draft.warnings == () and draft.kind == "food"
    assert draft.name == "Sweet Crumbs Bakery" and ("Brownie", "80 each") in draft.prices
    _files(example, "crumbs")
