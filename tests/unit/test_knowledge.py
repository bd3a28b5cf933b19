"""Knowledge of the example tenants' files: retrieval, the price list, totals, spoken English."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from receptionist.engines.local.knowledge import (
    Knowledge,
    MenuItem,
    OrderLine,
    format_rupees,
    knowledge_for,
    speakable,
    tokens,
)
from receptionist.language.hindi import hindi_to_english
from receptionist.language.numbers import parse_count
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"


def _tenant(tenant_id: str) -> Tenant:
    tenant, problems = load_tenant(EXAMPLES, tenant_id)
    assert tenant is not None, problems
    return tenant


@pytest.fixture(scope="module")
def kbs() -> dict[str, Knowledge]:
    return {t: knowledge_for(_tenant(t).input_files) for t in ("bakery", "saloon", "clinic")}


def _item(kb: Knowledge, display: str) -> MenuItem:
    found = [it for it in kb.items if it.display.lower() == display.lower()]
    assert found, f"{display!r} not in {[it.display for it in kb.items]}"
    return found[0]


# ----------------------------------------------------------------------------- retrieval

RANKING = [
    ("bakery", "how much is the black forest cake", r"Black Forest cake: 750 rupees per kg"),
    ("bakery", "what time do you close on sunday", r"^Sunday: 8:00 am to 9:00 pm"),
    ("bakery", "are you open on wednesday", r"^Monday to Saturday: 8:00 am to 10:00 pm"),
    ("bakery", "when do you open", r"(Sunday|Monday to Saturday): 8:00 am"),
    ("bakery", "do you deliver to Whitefield?", r"Whitefield .*no delivery"),
    ("bakery", "Where is your shop exactly?", r"^Address: 14, 5th Cross"),
    ("bakery", "Do you make sugar-free cakes?", r"^Sugar-free: only the Fresh Fruit Gateau"),
    ("bakery", "how much is delivery to HSR layout", r"^HSR Layout: delivery charge 60 rupees"),
    ("bakery", "can I pay by card", r"^Payment: UPI, cards or cash"),
    ("bakery", "what is the minimum order for delivery", r"Minimum order for delivery: 400"),
    ("bakery", "are you open on diwali", r"except Diwali day"),
    ("bakery", "do you have eggless cakes", r"[Ee]ggless.*50 rupees extra per kg"),
    ("saloon", "what time do you open on sunday", r"^Open every day, 10:00 am to 9:00 pm"),
    ("saloon", "how much is a keratin treatment", r"keratin treatment: 4500 rupees"),
    ("saloon", "does Divya work on wednesday", r"^Divya: .*day off Wednesday"),
    ("saloon", "which stylist is off on tuesday", r"^Ravi: .*day off Tuesday"),
    ("saloon", "is there parking", r"^Parking: two-wheeler parking"),
    ("saloon", "are you closed on pongal", r"Closed on Pongal day"),
    ("saloon", "what's the last slot for colour", r"last appointment at 8:00 pm"),
    ("clinic", "what are the clinic timings on sunday", r"^Clinic: Monday to Saturday 9:30 am"),
    ("clinic", "what is dr sunita sharma's fee", r"Sunita Sharma: new 700 rupees"),
    ("clinic", "how much is the thyroid test", r"^Thyroid profile .*550 rupees"),
    ("clinic", "is dr anil sharma available on sunday", r"Anil Sharma: Sunday: closed"),
    ("clinic", "is there a medical store in the clinic", r"^Medicines: .*medical store"),
    ("clinic", "do you do home sample collection", r"^Home sample collection: 200 rupees"),
    ("clinic", "what time is the lab open", r"^Lab .*7:30 am to 11:00 am"),
    ("clinic", "do I need to be fasting for lipid profile", r"^Lipid profile: 500 rupees"),
]


@pytest.mark.parametrize(("tenant_id", "question", "expected"), RANKING)
def test_retrieval_ranks_the_right_line_first(
    kbs: dict[str, Knowledge], tenant_id: str, question: str, expected: str
) -> None:
    hits = kbs[tenant_id].search(question)
    assert hits, question
    assert re.search(expected, hits[0].fact.spoken), [h.fact.spoken for h in hits]
    assert hits[0].coverage >= 0.55


@pytest.mark.parametrize(
    ("tenant_id", "question"),
    [
        ("bakery", "do you sell ice cream"),
        ("bakery", "do you have parking"),
        ("saloon", "do you do tattoos"),
        ("clinic", "do you do MRI scans"),
    ],
)
def test_questions_the_files_do_not_answer_find_nothing_good(
    kbs: dict[str, Knowledge], tenant_id: str, question: str
) -> None:
    hits = kbs[tenant_id].search(question)
    assert not hits or hits[0].coverage < 0.55


def test_tokens_fold_synonyms_and_drop_filler() -> None:
    assert tokens("What time do you close?") == ["hours", "hours"]
    assert tokens("How much does it cost") == ["price", "price"]
    assert "price" in tokens("what are the charges")
    assert tokens("brownies") == tokens("brownie") == ["browny"]
    assert set(tokens("are you open on weekends")) >= {"saturday", "sunday", "hours"}


# ----------------------------------------------------------------------------- catalog


def test_bakery_menu_prices(kbs: dict[str, Knowledge]) -> None:
    kb = kbs["bakery"]
    bf = _item(kb, "Black Forest cake")
    assert bf.per_kg and bf.price == 750 and bf.unit_kg == 1
    assert _item(kb, "Red Velvet cake").price == 1100  # "Red Velvet (cream cheese)": ₹1,100
    pastry = _item(kb, "Black Forest pastry")
    assert pastry.price == 90 and not pastry.per_kg
    assert _item(kb, "walnut brownie").price == 100
    cupcake = _item(kb, "Chocolate cupcake")
    assert cupcake.price == 70 and cupcake.pack == (6, Decimal(390))
    pav = _item(kb, "Pav")
    assert pav.price is None and pav.pack == (6, Decimal(40))
    cookies = _item(kb, "Butter cookies")
    assert cookies.price == 160 and cookies.unit_kg == Decimal("0.25")
    assert _item(kb, "Theme or fondant cakes").onwards
    # delivery charges are prices too, but no products to order
    assert _item(kb, "HSR Layout").kind == "charge"
    assert all(it.kind == "product" for it in kb.items if it.source == "menu.md")
    assert kb.half_kg_surcharge and set(kb.half_kg_surcharge.values()) == {Decimal(30)}
    eggless = [e for e in kb.extras if e.keyword == "eggless"]
    assert eggless and all(e.amount == 50 and e.per_kg for e in eggless)


def test_saloon_and_clinic_prices(kbs: dict[str, Knowledge]) -> None:
    saloon, clinic = kbs["saloon"], kbs["clinic"]
    assert _item(saloon, "Haircut + beard trim").price == 400
    keratin = _item(saloon, "keratin treatment")
    assert keratin.price == 4500 and keratin.onwards
    assert _item(saloon, "Waxing full arms").price == 400
    assert _item(saloon, "Waxing full legs").price == 600
    assert _item(saloon, "Bridal makeup").price == 15000
    assert [e.keyword for e in saloon.extras] == ["rica wax"]
    haircuts = [it for it in saloon.items if it.display == "Haircut"]
    assert sorted(int(it.price or 0) for it in haircuts) == [300, 400]  # gents, ladies
    assert _item(clinic, "Thyroid profile").price == 550
    assert _item(clinic, "Vitamin D").price == 1200  # "Vitamin D / Vitamin B12: ₹1,200 / ₹900"
    assert _item(clinic, "Vitamin B12").price == 900
    assert _item(clinic, "Dressing").onwards  # "₹150 से"
    fee = _item(clinic, "Dr. Sunita Sharma")
    assert fee.price == 700 and fee.kind == "charge"


# ----------------------------------------------------------------------------- mentions & totals


def test_mentions_with_quantities(kbs: dict[str, Knowledge]) -> None:
    kb = kbs["bakery"]
    (m,) = kb.find_mentions("I want two kilos of black forest")
    assert m.items[0].display == "Black Forest cake" and m.kg == 2
    (m,) = kb.find_mentions("6 brownies please")
    assert m.ambiguous and m.count == 6
    assert {it.display for it in m.items} == {"Chocolate brownie", "walnut brownie"}
    (m,) = kb.find_mentions("a black forest pastry")
    assert m.items[0].display == "Black Forest pastry"
    (m,) = kb.find_mentions("book 2 boxes chocolate cupcakes")
    assert m.packs == 2 and m.items[0].display == "Chocolate cupcake"
    ms = kb.find_mentions("half kg pineapple cake and 4 veg puffs")
    assert [(x.items[0].display, x.kg, x.count) for x in ms] == [
        ("Pineapple cake", Decimal("0.5"), None),
        ("Veg puff", None, 4),
    ]
    (m,) = kb.find_mentions("Black Forest cake 1 kg")
    assert m.kg == 1
    # how speech-to-text writes a spoken pause
    (m,) = kb.find_mentions("I want to order one kilo, a Black Forest cake for pickup")
    assert m.items[0].display == "Black Forest cake" and m.kg == 1
    assert kb.find_mentions("a chocolate mousse") == []
    # a priced option said between the weight and the item ("Eggless ... ₹50 extra per kg")
    (m,) = kb.find_mentions("two kilo eggless chocolate truffle cake")
    assert m.items[0].display == "Chocolate Truffle cake" and m.kg == 2


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("2 kg black forest", 1500),
        ("half kg pineapple cake", 355),  # half the price + ₹30
        ("6 chocolate brownies", 480),
        ("6 chocolate cupcakes", 390),  # a box of 6
        ("7 vanilla cupcakes", 490),
        ("2 packs of pav", 80),
        ("250 grams of butter cookies", 160),
        ("500 g butter cookies", 320),
        ("two garlic loaves", 180),
        ("1.5 kg butterscotch", 1050),
        ("half a kilo of black forest", 405),
        ("a kilo of pineapple cake", 650),
    ],
)
def test_line_totals_from_the_menu(kbs: dict[str, Knowledge], said: str, expected: int) -> None:
    kb = kbs["bakery"]
    (m,) = kb.find_mentions(said)
    line = OrderLine(m.items[0], count=m.count, kg=m.kg, packs=m.packs)
    assert kb.quote([line]).lines[0].rupees == kb.quote([line]).total == expected


def test_order_total_with_extras_and_unknowns(kbs: dict[str, Knowledge]) -> None:
    kb = kbs["bakery"]
    truffle = _item(kb, "Chocolate Truffle cake")
    eggless = next(e for e in kb.extras if e.keyword == "eggless")
    lines = [
        OrderLine(truffle, kg=Decimal(2), extras=[eggless]),  # 1800 + 2 x 50
        OrderLine(_item(kb, "Veg puff"), count=4),  # 120
    ]
    quote = kb.quote(lines)
    assert quote.total == 2020
    assert quote.lines[0].surcharges == (("eggless", Decimal(100)),)
    assert quote.answer()["lines"][0]["extras"] == [{"option": "eggless", "rupees": "100"}]
    unknown = kb.quote([OrderLine(truffle)])  # by the kg, no weight said: no guess
    assert unknown.total is None and unknown.unpriced() is unknown.lines[0]
    assert unknown.lines[0].why == "say the weight"
    saloon = kbs["saloon"]
    rica = saloon.extras[0]
    arms = OrderLine(_item(saloon, "Waxing full arms"), extras=[rica])
    legs = OrderLine(_item(saloon, "Waxing full legs"), extras=[rica])
    assert saloon.quote([arms, legs]).total == 1400
    two_arms = OrderLine(_item(saloon, "Waxing full arms"), count=2, extras=[rica])
    assert saloon.quote([two_arms]).total == 1200  # the extra once per service: 2 x (400 + 200)


def test_extras_for_the_options_chosen(kbs: dict[str, Knowledge]) -> None:
    """The files' own extras, scoped to what they are stated for: the per-kg eggless charge on
    a cake sold by weight, not on a pastry sold by the piece; Rica wax on the waxing line only."""
    kb, saloon = kbs["bakery"], kbs["saloon"]
    truffle = _item(kb, "Chocolate Truffle cake")
    assert [e.keyword for e in kb.extras_for(truffle, ["Eggless please"])] == ["eggless"]
    assert kb.extras_for(truffle, ["with extra cream"]) == []
    assert kb.extras_for(_item(kb, "Pineapple pastry"), ["eggless"]) == []
    assert [e.keyword for e in saloon.extras_for(_item(saloon, "Waxing full arms"), ["rica wax"])]
    assert saloon.extras_for(_item(saloon, "Manicure"), ["rica wax"]) == []
    assert kb.options_said("two kilo eggless truffle") == ["eggless"]
    assert kb.options_said("no eggless, normal is fine") == []


def test_quote_lines_add_up_to_the_total(kbs: dict[str, Knowledge]) -> None:
    """Each line in whole rupees and the total their sum: what is said adds up."""
    kb = kbs["bakery"]
    cookies = _item(kb, "Butter cookies")  # 160 for 250 g
    lines = [OrderLine(cookies, kg=Decimal("0.3")), OrderLine(cookies, kg=Decimal("0.3"))]
    quote = kb.quote(lines)
    assert [q.rupees for q in quote.lines] == [192, 192] and quote.total == 384
    brownies = OrderLine(_item(kb, "Chocolate brownie"), count=3)
    assert kb.quote([brownies]).lines[0].each == 80


def test_describe_lines() -> None:
    item = MenuItem(
        "Black Forest", "Black Forest cake", ("black forest",), Decimal(750), "kg", Decimal(1), True
    )
    assert OrderLine(item, kg=Decimal(2)).describe() == "2 kg Black Forest cake"
    assert OrderLine(item, kg=Decimal("0.5")).describe() == "half kg Black Forest cake"
    assert OrderLine(item).needs_weight()
    assert item.describe_price() == "750 rupees per kg"


def test_parse_count_and_rupees() -> None:
    assert parse_count("six") == 6
    assert parse_count("a dozen") == 12
    assert parse_count("an") == 1
    assert parse_count("kilo") is None
    assert format_rupees(Decimal("1500.0")) == "1500 rupees"
    assert format_rupees(Decimal("12.5")) == "12.50 rupees"


# ----------------------------------------------------------------------------- speaking


def test_speakable_strips_markdown_and_says_rupees() -> None:
    assert speakable("- **Garlic loaf** -- ₹1,090 (E)", {"(E)": "available eggless"}) == (
        "Garlic loaf, 1090 rupees (available eggless)."
    )
    assert speakable("| Koramangala | ₹40 |") == "Koramangala, 40 rupees."
    assert speakable("Cakes serve 8-10 people") == "Cakes serve 8 to 10 people."


def test_hindi_lines_become_english(kbs: dict[str, Knowledge]) -> None:
    line = "क्लिनिक: सोमवार से शनिवार सुबह 9:30 से रात 9:00, रविवार सुबह 10:00 से दोपहर 1:00"
    english = hindi_to_english(line)
    assert "Monday to Saturday 9:30 am to 9:00 pm" in english
    assert "Sunday 10:00 am to 1:00 pm" in english
    clinic = kbs["clinic"]
    for fact in clinic.facts:
        assert not re.search(r"[\u0900-\u097f]", fact.spoken), fact.spoken
    assert any(f.topic == "Dr. Rohit Verma" for f in clinic.facts)  # "डॉ. रोहित वर्मा (Dr. ...)"


def test_built_once_per_set_of_files() -> None:
    files = _tenant("bakery").input_files
    assert knowledge_for(files) is knowledge_for(files)
