"""The deterministic post-call analyzer: call-type choice, end-to-end calls, validation.

Its extractors (phones, dates, times ...) are tested in ``tests/unit/language/``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from receptionist.postcall.analyzers.offline import analyze_offline, choose_call_type
from receptionist.postcall.analyzers.schema import NO_CONVERSATION, Analysis, validate_details
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ROOT / "tenants"
DATA = ROOT / "tests" / "data" / "transcripts"
NOW = datetime.fromisoformat("2026-11-25T10:00:00+05:30")  # a Wednesday


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    out = {}
    for tid in ("bakery", "saloon", "clinic", "pharmacy"):
        tenant, problems = load_tenant(TENANTS, tid)
        assert tenant is not None, problems
        out[tid] = tenant
    return out


def call(*turns: tuple[str, str]) -> list[dict[str, Any]]:
    out, ms = [], 0
    for speaker, text in turns:
        out.append({"speaker": speaker, "text": text, "start_ms": ms, "end_ms": ms + 1000})
        ms += 1500
    return out


def C(text: str) -> tuple[str, str]:
    return ("caller", text)


def A(text: str) -> tuple[str, str]:
    return ("agent", text)


def test_dates_use_tenant_timezone(tenants: dict[str, Tenant]) -> None:
    # 20:00 UTC on the 25th is already the 26th in Kolkata: "tomorrow" is the 27th
    late = datetime.fromisoformat("2026-11-25T20:00:00+00:00")
    a = analyze_offline(
        tenants["saloon"],
        call(C("Cancel my appointment for tomorrow please. Anitha, 9884556677.")),
        now=late,
    )
    assert a.details["appointment_date"] == "2026-11-27"


# --------------------------------------------------------------------------- call types


def test_empty_transcript_is_no_conversation(tenants: dict[str, Tenant]) -> None:
    for transcript in ([], call(A("Sweet Crumbs Bakery, how can I help?")), call(C("   "))):
        a = analyze_offline(tenants["bakery"], transcript, now=NOW)
        assert a.call_type == NO_CONVERSATION
        assert a.details == {}
        assert a.analyzer == "offline"


@pytest.mark.parametrize(
    ("tid", "text", "want"),
    [
        ("bakery", "I want to order two kg black forest cake for pickup", "order"),
        ("bakery", "I need a birthday cake with a photo, write Happy Birthday", "custom_cake"),
        ("bakery", "The cake you delivered was stale, I want to complain", "complaint"),
        ("bakery", "What time do you close on Sunday?", "enquiry"),
        ("saloon", "Please cancel my appointment for Friday", "cancellation"),
        ("saloon", "Book a haircut for tomorrow at 5 pm", "appointment"),
        ("saloon", "How much is a gold facial?", "price_enquiry"),
        ("clinic", "डॉक्टर साहब का अपॉइंटमेंट चाहिए कल", "appointment"),
        ("clinic", "मेरी दवा ख़त्म हो गई है, फिर से लिखवानी है", "prescription_refill"),
        ("clinic", "Meri CBC ki report aa gayi kya?", "lab_report"),
        ("clinic", "क्लिनिक कहाँ है?", "enquiry"),
    ],
)
def test_call_type(tenants: dict[str, Tenant], tid: str, text: str, want: str) -> None:
    name, conf = choose_call_type(tenants[tid], call(C(text)), now=NOW)
    assert name == want
    assert 0.0 <= conf <= 1.0


@pytest.mark.parametrize(
    ("tid", "turns", "want"),
    [
        # an order from the menu, though the agent asks what it asks of custom cakes
        ("bakery", [C("I'd like to order half a kilo of white forest cake to pick up on Friday."),
                    A("Should the cake be eggless?"), C("Yes please.")], "order"),
        ("bakery", [C("Two kg butterscotch cake, delivered to Indiranagar day after tomorrow.")],
         "order"),
        # complaints, cancellations and enquiries that name an item are no orders
        ("bakery", [C("The pineapple pastry I bought on Monday was spoiled.")], "complaint"),
        ("bakery", [C("Do you have an eggless black forest cake?")], "enquiry"),
        ("pharmacy", [C("The cough syrup you sent me has expired.")], "complaint"),
        ("pharmacy", [C("You delivered Combiflam instead of Crocin.")], "complaint"),
        ("pharmacy", [C("Please keep two strips of Crocin Advance ready, I'll collect at 6.")],
         "order"),
        ("saloon", [C("Can I get a pedicure tomorrow at 11 am?")], "appointment"),
        ("saloon", [C("I had booked a hair spa for Saturday, please move it to Monday.")],
         "cancellation"),
    ],
)  # fmt: skip
def test_call_type_from_the_callers_words(
    tenants: dict[str, Tenant], tid: str, turns: list[tuple[str, str]], want: str
) -> None:
    assert choose_call_type(tenants[tid], call(*turns), now=NOW)[0] == want


def test_nothing_matched_goes_to_enquiry_type(tenants: dict[str, Tenant]) -> None:
    assert choose_call_type(tenants["bakery"], call(C("Hmm.")), now=NOW)[0] == "enquiry"
    assert choose_call_type(tenants["saloon"], call(C("Hmm.")), now=NOW)[0] == "price_enquiry"


def test_caller_outweighs_agent(tenants: dict[str, Tenant]) -> None:
    transcript = call(
        A("Would you like to book an appointment? We have slots tomorrow."),
        C("No, I want to cancel my appointment."),
    )
    assert choose_call_type(tenants["saloon"], transcript, now=NOW)[0] == "cancellation"


def test_wrong_number(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            C("Is this Sharma Medical Store?"),
            A("No, this is Sweet Crumbs."),
            C("Sorry, wrong number."),
        ),
        now=NOW,
    )
    assert a.call_type == "enquiry"


# --------------------------------------------------------------------------- end to end


def test_bakery_order_end_to_end(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            A("Sweet Crumbs Bakery, how can I help?"),
            C("Hi, I want to order one kg Black Forest cake for tomorrow."),
            A("Pickup or delivery?"),
            C("Pickup, around 5 pm."),
            A("May I have your name and number?"),
            C("My name is Priya Nair, number is 98450 12345."),
        ),
        now=NOW,
    )
    assert isinstance(a, Analysis)
    assert a.call_type == "order"
    assert a.details == {
        "name": "Priya Nair",
        "phone": "+919845012345",
        "items": ["Black Forest cake 1 kg"],
        "pickup_or_delivery": "pickup",
        "date": "2026-11-26",
        "time": "17:00",
    }
    assert a.summary.startswith("Order:") and "Priya Nair" in a.summary
    assert validate_details(tenants["bakery"], a.call_type, a.details) == []


def test_custom_cake_end_to_end(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            C("Anniversary cake chahiye, 1 kg pineapple, 'Happy Anniversary Mom Dad' likhna hai."),
            A("Eggless chahiye?"),
            C("Nahi, normal chalega."),
            A("Kab chahiye?"),
            C("Friday ko."),
            A("Naam aur number?"),
            C("Naam Sneha Kulkarni hai, number 8105 667 788."),
        ),
        now=NOW,
    )
    assert a.call_type == "custom_cake"
    assert a.details["eggless"] is False
    assert a.details["weight_kg"] == 1.0
    assert a.details["message_on_cake"] == "Happy Anniversary Mom Dad"
    assert a.details["date"] == "2026-11-27"
    assert a.details["phone"] == "+918105667788"
    assert a.details["name"] == "Sneha Kulkarni"
    assert a.details["flavour"] == "Pineapple"


def test_saloon_appointment_end_to_end(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["saloon"],
        call(
            C("I want to book a haircut and beard trim for tomorrow at 11 am."),
            A("Any stylist preference?"),
            C("Ravi if possible."),
            A("Name and number?"),
            C("Vignesh, 98400 12345."),
        ),
        now=NOW,
    )
    assert a.call_type == "appointment"
    assert a.details["name"] == "Vignesh"  # a bare answer to "Name?"
    assert a.details["stylist"] == "Ravi"
    assert a.details["date"] == "2026-11-26"
    assert a.details["time"] == "11:00"
    assert a.details["phone"] == "+919840012345"
    assert "haircut" in a.details["service"].lower()


def test_clinic_hindi_end_to_end(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(
            A("नमस्ते, शर्मा फ़ैमिली क्लिनिक।"),
            C("नमस्ते, मुझे डॉक्टर अनिल शर्मा का अपॉइंटमेंट चाहिए, कल सुबह 10 बजे।"),
            A("मरीज़ का नाम और फ़ोन नंबर बताइए।"),
            C("मेरा नाम रमेश गुप्ता है, नंबर 98390 12345।"),
        ),
        now=NOW,
    )
    assert a.call_type == "appointment"
    assert a.details["patient_name"] == "रमेश गुप्ता"
    assert a.details["phone"] == "+919839012345"
    assert a.details["doctor"] == "Dr. Anil Sharma"
    assert a.details["date"] == "2026-11-26"
    assert a.details["time"] == "10:00"


def test_clinic_refill_medicines(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(
            C("Meri mummy ki dawai repeat karni hai: Glycomet 500, Telma 40, aur Shelcal."),
            A("Mummy ka naam?"),
            C("Shanti Devi. Number 9839 778 899."),
        ),
        now=NOW,
    )
    assert a.call_type == "prescription_refill"
    assert a.details["medicines"] == ["Glycomet 500", "Telma 40", "Shelcal"]
    assert a.details["patient_name"] == "Shanti Devi"


def test_caller_correction_of_phone(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["saloon"],
        call(
            C(
                "Book highlights with Divya on Friday 3 pm. "
                "Priyanka, 8939 001 234. Sorry, 8939 001 243."
            )
        ),
        now=NOW,
    )
    assert a.details["phone"] == "+918939001243"


def test_agent_read_back_confirmed(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            C("One kg pineapple cake for pickup tomorrow. 98860 12345, no wait, last digit six."),
            A("So 98860 12346?"),
            C("Haan sahi hai."),
        ),
        now=NOW,
    )
    assert a.details["phone"] == "+919886012346"


def test_greeting_today_is_no_date(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(
            A("Good evening, Sharma Family Clinic. What can I do for you today?"),
            C("I need to see Dr. Anil Sharma. Name Farhan Ali, 98390 55443."),
        ),
        now=NOW,
    )
    assert a.call_type == "appointment"
    assert "date" not in a.details


def test_unconfirmed_agent_line_gives_no_detail(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            C("Two kg black forest cake for pickup please."),
            A("Shall I note it for Friday at 4 pm?"),
            C("Hmm, let me check with my wife first."),
        ),
        now=NOW,
    )
    assert "date" not in a.details and "time" not in a.details


def test_confirmed_read_back_fills_a_gap_not_the_callers_value(
    tenants: dict[str, Tenant],
) -> None:
    a = analyze_offline(
        tenants["saloon"],
        call(
            C("Book a pedicure for Thursday please. Lalitha, 90030 11223."),
            A("So a pedicure on Friday 27 November at 3 pm, is that right?"),
            C("Yes, correct."),
        ),
        now=NOW,
    )
    assert a.details["date"] == "2026-11-26"  # the caller's Thursday, not the read-back's
    assert a.details["time"] == "15:00"  # only the confirmed read-back said a time


def test_change_of_mind_replaces_the_item_of_its_kind(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(
            C("One kg pineapple cake and six veg puffs for pickup on Sunday."),
            A("One kg Pineapple cake, noted."),
            C("Actually, make it a red velvet cake instead."),
        ),
        now=NOW,
    )
    assert a.call_type == "order"
    items = " | ".join(a.details["items"]).lower()
    assert "red velvet" in items and "puff" in items and "pineapple" not in items


def test_change_of_mind_of_doctor(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(
            C("Appointment with Dr. Rohit Verma on Monday please."),
            A("May I have the patient's name?"),
            C("No wait, Dr. Anil Sharma instead. Patient is Gopal Rao, 98390 22110."),
        ),
        now=NOW,
    )
    assert a.details["doctor"] == "Dr. Anil Sharma"


def test_items_heard_a_little_wrong_and_instead_of(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["pharmacy"],
        call(
            C("I'd like to order one strip of Combiflem and a Vicks Vaporub, delivered home."),
            C("And Crocin Advance instead of the Dolo 650, please."),
        ),
        now=NOW,
    )
    assert a.call_type == "order"
    items = " | ".join(a.details["items"])
    assert "Combiflam" in items and "Vicks Vaporub" in items and "Crocin" in items
    assert "Dolo" not in items


def test_cancel_drops_an_item_only_for_a_replacement(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["pharmacy"],
        call(
            C("Deliver Benadryl cough syrup to Aundh."),
            C("Cancel the Benadryl, send Combiflam."),
        ),
        now=NOW,
    )
    assert a.details["items"] == ["Combiflam"]
    b = analyze_offline(
        tenants["saloon"], call(C("Please cancel my pedicure on Friday, I'm unwell.")), now=NOW
    )
    assert b.call_type == "cancellation"


def test_medicine_written_apart_and_named_twice(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(C("I need a repeat of Januvi-a-50 and Shelcal, prescribed by Dr. Anil Sharma.")),
        now=NOW,
    )
    assert a.details["medicines"] == ["Januvia 50", "Shelcal"]
    b = analyze_offline(
        tenants["pharmacy"],
        call(C("Deliver one Volini, the Volini pain relief spray, to Kothrud please.")),
        now=NOW,
    )
    assert b.details["items"] == ["Volini pain relief spray"]


def test_item_whose_first_word_is_misheard_found_by_its_next_word(
    tenants: dict[str, Tenant],
) -> None:
    # "Balini" is far from "Volini", but "spray" is a word only that item has
    a = analyze_offline(
        tenants["pharmacy"], call(C("Please deliver a Balini spray to Aundh.")), now=NOW
    )
    assert a.details["items"] == ["Volini pain relief spray"]


def test_last_name_given_wins_and_spelling_corrects(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["clinic"],
        call(
            C("Appointment with Dr. Anil Sharma tomorrow. Patient is Lalit Jain."),
            A("Lalit Jain, noted."),
            C("Sorry, it's spelled L-A-L-I-T-H, and my number is 98390 66778."),
        ),
        now=NOW,
    )
    assert a.details["patient_name"] == "Lalith"
    b = analyze_offline(
        tenants["saloon"],
        call(C("Book a pedicure Friday 4 pm. My name is Sunanda."), C("No, name is Sumana.")),
        now=NOW,
    )
    assert b.details["name"] == "Sumana"


def test_taken_back_time_and_date(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["saloon"],
        call(
            C("Book a head massage for Thursday at 4 pm."),
            A("Noted."),
            C("Make it 6 pm instead, not 4 pm. And Saturday rather than Thursday."),
        ),
        now=NOW,
    )
    assert a.details["time"] == "18:00"
    assert a.details["date"] == "2026-11-28"


def test_delivery_said_without_the_word(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["pharmacy"],
        call(C("Kindly send a Digital thermometer to my flat in Baner. I'm Omkar, 98220 77665.")),
        now=NOW,
    )
    assert a.details["pickup_or_delivery"] == "delivery"
    b = analyze_offline(
        tenants["pharmacy"],
        call(C("I want to order Combiflam, keep it ready, I'll collect it after work.")),
        now=NOW,
    )
    assert b.details["pickup_or_delivery"] == "pickup"


def test_issue_in_the_callers_words(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["pharmacy"],
        call(
            C("Hello."),
            C("The thermometer you sold me last week has stopped working."),
            A("I'm sorry to hear that. May I have your name?"),
            C("My name is Vrinda, 98220 99887."),
        ),
        now=NOW,
    )
    assert a.call_type == "complaint"
    assert a.details["issue"] == "The thermometer you sold me last week has stopped working."


def test_never_invents(tenants: dict[str, Tenant]) -> None:
    a = analyze_offline(
        tenants["bakery"],
        call(C("I want to order a cake."), A("Which one?"), C("I'll call back later.")),
        now=NOW,
    )
    assert a.call_type == "order"
    # nothing said about name, phone, date, time, delivery: all left out, none null-filled
    for key in ("name", "phone", "date", "time", "pickup_or_delivery", "delivery_address"):
        assert key not in a.details
    assert None not in a.details.values()


def test_every_labelled_call_gives_valid_details(tenants: dict[str, Tenant]) -> None:
    """Not an accuracy check (that is bench/analyzer_accuracy.py): only schema validity."""
    for tid, tenant in tenants.items():
        if not (DATA / f"{tid}.jsonl").exists():
            continue
        for line in (DATA / f"{tid}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            a = analyze_offline(tenant, rec["transcript"], now=datetime.fromisoformat(rec["now"]))
            assert validate_details(tenant, a.call_type, a.details) == [], rec["id"]
            assert a.summary


def test_labelled_sets_are_well_formed(tenants: dict[str, Tenant]) -> None:
    for tid, tenant in tenants.items():
        if not (DATA / f"{tid}.jsonl").exists():
            continue
        lines = (DATA / f"{tid}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) >= 30
        ids = set()
        for line in lines:
            rec = json.loads(line)
            assert rec["id"] not in ids
            ids.add(rec["id"])
            datetime.fromisoformat(rec["now"])
            exp = rec["expected"]
            assert validate_details(tenant, exp["call_type"], exp["details"]) == [], rec["id"]
            for turn in rec["transcript"]:
                assert turn["speaker"] in ("caller", "agent")


# --------------------------------------------------------------------------- validate_details


def test_validate_details(tenants: dict[str, Tenant]) -> None:
    bakery = tenants["bakery"]
    good = {
        "name": "Priya",
        "phone": "+919845012345",
        "items": ["Black Forest cake 1 kg"],
        "pickup_or_delivery": "pickup",
        "date": "2026-11-26",
        "time": "17:00",
    }
    assert validate_details(bakery, "order", good) == []
    assert validate_details(bakery, "order", {}) == []  # missing is fine
    assert validate_details(bakery, "custom_cake", {"weight_kg": 1, "eggless": True}) == []
    assert validate_details(bakery, NO_CONVERSATION, {}) == []

    def problems(call_type: str, details: dict[str, Any]) -> list[str]:
        return validate_details(bakery, call_type, details)

    assert "unknown call type" in problems("haircut", {})[0]
    assert "unknown field" in problems("order", {"colour": "red"})[0]
    assert problems("order", {"phone": "98450 12345"})  # spaces
    assert problems("order", {"phone": "+91-9845012345"})
    assert problems("order", {"date": "26/11/2026"})
    assert problems("order", {"date": "2026-02-30"})
    assert problems("order", {"time": "5 pm"})
    assert problems("order", {"time": "25:00"})
    assert problems("order", {"items": "cake"})
    assert problems("order", {"items": [1]})
    assert problems("order", {"name": ""})
    assert problems("custom_cake", {"weight_kg": "1 kg"})
    assert problems("custom_cake", {"weight_kg": True})
    assert problems("custom_cake", {"eggless": "yes"})
    assert problems(NO_CONVERSATION, {"name": "x"})


def test_analysis_is_frozen() -> None:
    a = Analysis(call_type="order", summary="s", details={}, analyzer="offline")
    assert a.confidence is None
    with pytest.raises(AttributeError):
        a.call_type = "x"  # type: ignore[misc]
    assert a.as_dict()["analyzer"] == "offline"
