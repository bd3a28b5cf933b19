"""The deterministic post-call analyzer: extractors, call-type choice, end-to-end calls."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from receptionist.postcall.analyzers.schema import NO_CONVERSATION, Analysis, validate_details
from receptionist.postcall.offline_analyzer import (
    analyze_offline,
    choose_call_type,
    extract_dates,
    extract_names,
    extract_phones,
    extract_quantities,
    extract_times,
    transliterate,
)
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ROOT / "tenants"
DATA = ROOT / "tests" / "data" / "transcripts"
NOW = datetime.fromisoformat("2026-11-25T10:00:00+05:30")  # a Wednesday
TODAY = NOW.date()


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    out = {}
    for tid in ("bakery", "saloon", "clinic"):
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


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("my number is 98450 12345", ["+919845012345"]),
        ("call me on +91 98450-12345 please", ["+919845012345"]),
        ("09845012345", ["+919845012345"]),
        ("7019 234 567", ["+917019234567"]),
        ("98 45 32 10 98", ["+919845321098"]),
        ("nine eight four five six seven eight nine zero one", ["+919845678901"]),
        ("nine eight four zero double five six seven eight nine", ["+919840556789"]),
        ("नंबर ९८३९० १२३४५ है", ["+919839012345"]),
        ("first 98860 12345, sorry 98860 12346", ["+919886012345", "+919886012346"]),
    ],
)
def test_phones(text: str, want: list[str]) -> None:
    assert extract_phones(text) == want


@pytest.mark.parametrize(
    "text",
    ["the shop is at 560095", "order 250 grams", "12345 67890", "it costs 1,500 rupees"],
)
def test_not_phones(text: str) -> None:
    assert extract_phones(text) == []  # 5xxxx / 1xxxx are not Indian mobiles


# --------------------------------------------------------------------------- dates


def dates(text: str) -> list[str]:
    return [d.isoformat() for _, d in extract_dates(text, TODAY)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("today please", ["2026-11-25"]),
        ("for tomorrow", ["2026-11-26"]),
        ("day after tomorrow", ["2026-11-27"]),
        ("this Saturday", ["2026-11-28"]),
        ("on Wednesday", ["2026-12-02"]),  # today is Wednesday: the next one
        ("next Thursday", ["2026-12-03"]),  # Thursday of next week
        ("next Monday", ["2026-11-30"]),
        ("25th December", ["2026-12-25"]),
        ("December 5th", ["2026-12-05"]),
        ("the 12th of December", ["2026-12-12"]),
        ("25/12", ["2026-12-25"]),
        ("25-12-2026", ["2026-12-25"]),
        ("on 3rd January", ["2027-01-03"]),  # a past month means next year
        ("कल सुबह", ["2026-11-26"]),
        ("परसों शाम", ["2026-11-27"]),
        ("parso ke liye", ["2026-11-27"]),
        ("अगले मंगलवार", ["2026-12-01"]),
        ("शुक्रवार को", ["2026-11-27"]),
        ("सैंपल कल दिया था", ["2026-11-24"]),  # past tense: yesterday
        ("Monday ko sample diya tha", ["2026-11-23"]),
        ("23 tarikh ko sample diya tha", ["2026-11-23"]),
        ("28 तारीख को", ["2026-11-28"]),
        ("no date here at 5:30", []),
    ],
)
def test_dates(text: str, want: list[str]) -> None:
    assert dates(text) == want


def test_dates_use_tenant_timezone(tenants: dict[str, Tenant]) -> None:
    # 20:00 UTC on the 25th is already the 26th in Kolkata: "tomorrow" is the 27th
    late = datetime.fromisoformat("2026-11-25T20:00:00+00:00")
    a = analyze_offline(
        tenants["saloon"],
        call(C("Cancel my appointment for tomorrow please. Anitha, 9884556677.")),
        now=late,
    )
    assert a.details["appointment_date"] == "2026-11-27"


# --------------------------------------------------------------------------- times


def times(text: str) -> list[str]:
    return [t for _, t in extract_times(text)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("at 5 pm", ["17:00"]),
        ("5:30 pm", ["17:30"]),
        ("5.30pm", ["17:30"]),
        ("10 am", ["10:00"]),
        ("12 pm", ["12:00"]),
        ("17:00", ["17:00"]),
        ("half past five", ["17:30"]),
        ("quarter past eleven", ["11:15"]),
        ("five pm", ["17:00"]),
        ("6 o'clock", ["18:00"]),
        ("शाम 5 बजे", ["17:00"]),
        ("सुबह 10 बजे", ["10:00"]),
        ("साढ़े ग्यारह बजे", ["11:30"]),
        ("Shaam 6 baje tak", ["18:00"]),
        ("dopahar 2 baje", ["14:00"]),
        ("evening 6", ["18:00"]),
        ("2 kg cake", []),
    ],
)
def test_times(text: str, want: list[str]) -> None:
    assert times(text) == want


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2 kg", [2.0]),
        ("one kilo", [1.0]),
        ("half kg", [0.5]),
        ("1.5 kg", [1.5]),
        ("डेढ़ किलो", [1.5]),
        ("two kilos", [2.0]),
        ("250 grams", [0.25]),
        ("three and a half kg", [3.5]),
        ("two brownies", []),
    ],
)
def test_quantities(text: str, want: list[float]) -> None:
    assert [v for _, v in extract_quantities(text)] == want


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Hi, my name is Priya Nair, number is 98450 12345", ["Priya Nair"]),
        ("This is Kavya.", ["Kavya"]),
        ("I am Rohit Menon, 9900112233", ["Rohit Menon"]),
        ("मेरा नाम रमेश गुप्ता है", ["रमेश गुप्ता"]),
        ("Mera naam Ankit hai", ["Ankit"]),
        ("I am calling about my order", []),
        ("I'm not sure", []),
    ],
)
def test_names(text: str, want: list[str]) -> None:
    assert [n for _, n in extract_names(text)] == want


def test_patient_name() -> None:
    got = extract_names("I need an appointment for my mother Kamla Devi", patient=True)
    assert [n for _, n in got] == ["Kamla Devi"]


def test_transliterate() -> None:
    assert transliterate("रमेश गुप्ता") == "ramesh gupta"
    assert transliterate("Priya") == "priya"


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
        for line in (DATA / f"{tid}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            a = analyze_offline(tenant, rec["transcript"], now=datetime.fromisoformat(rec["now"]))
            assert validate_details(tenant, a.call_type, a.details) == [], rec["id"]
            assert a.summary


def test_labelled_sets_are_well_formed(tenants: dict[str, Tenant]) -> None:
    for tid, tenant in tenants.items():
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


def test_today_is_wednesday() -> None:
    assert date(2026, 11, 25) == TODAY and TODAY.weekday() == 2
