"""The grounded brain's dialogue policy: it listens first (issue 15).

Each test is a short call in the example tenants' own terms, with sentences written for these
tests. Assertions are on what the brain understood and did, not on wording. "Now" is Wednesday
25 November 2026, 10:00 in Kolkata.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from receptionist.engines.local.brain import BrainReply
from receptionist.engines.local.dialogue.corrections import names_self, replaces
from receptionist.engines.local.dialogue.digits import join_spoken_digits, partial_phone
from receptionist.engines.local.dialogue.echo import strip_echo
from receptionist.engines.local.dialogue.fuzzy import fuzzy_spans, number_words, spoken_variants
from receptionist.engines.local.dialogue.policy import clear_winner, side_questions
from receptionist.engines.local.dialogue.spelling import join_spelled_letters
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))  # a Wednesday
CALLER = "+919800011122"


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    out = {}
    for tenant_id in ("bakery", "saloon", "clinic", "pharmacy"):
        tenant, problems = load_tenant(EXAMPLES, tenant_id)
        assert tenant is not None, problems
        out[tenant_id] = tenant
    return out


def talk(
    tenants: dict[str, Tenant], tenant_id: str, *lines: str
) -> tuple[GroundedBrain, list[BrainReply]]:
    b = GroundedBrain(tenants[tenant_id], caller_number=CALLER, now=NOW)
    return b, [b.respond(line) for line in lines]


def asked_for(reply: BrainReply, field: str) -> bool:
    return reply.reason.startswith("ask:") and field in reply.reason[4:].split(",")


# ----------------------------------------------------------------------------- digits


@pytest.mark.parametrize(
    ("said", "want"),
    [
        ("it's 9-7-3-1-0-4-4-5-5-6", "it's 9731044556"),
        ("my mobile is 973-1044-5-5-6.", "my mobile is 9731044556."),
        ("call me on 97310 44556 after 5", "call me on 9731044556 after 5"),
        ("+91 97310 44556", "+919731044556"),
    ],
)
def test_spoken_phone_digits_are_joined(said: str, want: str) -> None:
    assert join_spoken_digits(said) == want


@pytest.mark.parametrize(
    "said", ["flat 12, 3rd cross at 5 pm", "on 14 12 at 4", "two cakes 1 2 3", "pin 560034"]
)
def test_short_number_groups_are_left_alone(said: str) -> None:
    assert join_spoken_digits(said) == said


def test_phone_read_digit_by_digit_fills_phone_not_date(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(
        tenants,
        "saloon",
        "I'd like to book a pedicure on Saturday at 2 pm.",
        "Name is Leela, number 9-7-3-1-0-4-4-5-5-6",
    )
    assert b.state.details["phone"].endswith("9731044556")
    assert b.state.details["date"] == "2026-11-28"
    assert b.state.details["time"] == "14:00"
    assert b.state.details["name"] == "Leela"


# ----------------------------------------------------------------------------- change of mind


def test_corrections_cues() -> None:
    assert replaces("hmm, switch that to the pineapple one instead")
    assert replaces("Actually, make it 7 pm")
    assert not replaces("and also add a loaf of bread")
    assert not replaces("one kilo of plum cake please")
    assert names_self("this is Rohit speaking")
    assert not names_self("Wait, make it 7 pm instead")


def test_item_replaced_not_added(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "I want two kilo of black forest cake for pickup on Friday.",
        "Hmm, no, switch that to one kilo of pineapple cake instead.",
    )
    items = " ".join(b.state.details["items"]).lower()
    assert "pineapple" in items and "black forest" not in items
    assert "1 kg" in items
    assert "black forest" not in replies[-1].text.lower()


def test_second_item_without_cue_is_added(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(
        tenants,
        "bakery",
        "I want one kilo of black forest cake for pickup on Friday.",
        "And also one kilo of pineapple cake.",
    )
    items = " ".join(b.state.details["items"]).lower()
    assert "pineapple" in items and "black forest" in items


def test_time_correction_is_no_name(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants, "saloon", "Please book a manicure for Thursday at 3 pm.", "Wait, make it 4 pm."
    )
    assert b.state.details["time"] == "16:00"
    assert "name" not in b.state.details
    assert replies[1].reason == "ask:name"


def test_phone_line_while_a_date_is_asked_fills_no_date(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(tenants, "saloon", "I want to book a pedicure.", "I'm Leela, 973-1044-5-5-6")
    assert "date" not in b.state.details and "time" not in b.state.details
    assert b.state.details["phone"].endswith("9731044556")
    # the same question again, but not without a word about why
    assert replies[1].reason == replies[0].reason == "ask:date,time"
    assert replies[1].text.startswith("Thank you")


# ----------------------------------------------------------------------------- answer first


def test_complaint_about_an_item_is_a_complaint(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants, "bakery", "The plum cake we got on Sunday had gone mouldy, it smelled sour."
    )
    assert b.state.intent == "complaint"
    assert "items" not in b.state.details
    assert not replies[0].reason.startswith("ask:items")


def test_unanswerable_question_is_not_pushed_to_an_order(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(
        # (medicines for cats are answered: "We do not stock veterinary medicines")
        tenants,
        "pharmacy",
        "Do you stock any spare parts for wheelchairs?",
        "Alright, thank you.",
    )
    assert replies[0].reason == "no_information"
    assert "order" not in replies[0].text.lower()
    assert replies[1].end_call


def test_thanks_with_nothing_begun_ends_the_call(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(tenants, "saloon", "What time do you open on Monday?", "Okay, thank you.")
    assert replies[1].end_call


# ----------------------------------------------------------------------------- prices, choices


def test_booking_read_back_has_a_price_only_when_asked(tenants: dict[str, Tenant]) -> None:
    _, quiet = talk(
        tenants, "saloon", "Book me a pedicure for Friday at 2 pm.", "I'm Harini.", "yes"
    )
    assert quiet[1].reason == "confirm" and "rupees" not in quiet[1].text
    _, asked = talk(
        tenants,
        "saloon",
        "How much does a pedicure cost?",
        "Okay, book one for Friday at 2 pm.",
        "I'm Harini.",
    )
    assert "rupees" in asked[0].text
    assert asked[2].reason == "confirm" and "rupees" in asked[2].text


def test_phone_number_words_pick_no_option(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "saloon",
        "I'd like a haircut on Friday at 5 pm.",
        "Name is Revathi, number nine one two three four five six seven eight nine.",
    )
    assert replies[0].reason == "ask:choice"
    assert b.state.choice is not None and "service" not in b.state.details
    assert replies[1].reason == "ask:choice"
    _, picked = talk(tenants, "saloon", "I'd like a haircut on Friday at 5 pm.", "the second one")
    assert picked[1].reason != "ask:choice"


# ----------------------------------------------------------------------------- hearing names


def test_number_words_of_a_model_number() -> None:
    assert number_words(650) == ["six fifty", "six hundred fifty"]
    assert number_words(500) == ["five hundred"]
    assert spoken_variants("telma 40") == ["telma forty"]
    assert spoken_variants("accu chek 50 strips 100") == []  # two numbers: left alone


def test_fuzzy_spans_find_near_names_only() -> None:
    aliases = ["combiflam", "black forest cake", "white forest cake"]
    text = "i need two combi flam and one black forrest cake"
    got = {aliases[s.alias]: text[s.start : s.end] for s in fuzzy_spans(text, aliases)}
    assert got == {"combiflam": "combi flam", "black forest cake": "black forrest cake"}
    assert fuzzy_spans("a white forest cake", ["black forest cake"]) == []
    assert fuzzy_spans("combiflam", ["combiflam"], taken=[(0, 9)]) == []


def test_brain_hears_a_misspelt_medicine(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(tenants, "pharmacy", "What is the price of Thyronorm fifty mcg?")
    assert "thyronorm" in replies[0].text.lower() and replies[0].reason == "answer"
    b, replies = talk(
        tenants, "pharmacy", "Please keep two strips of Telma forty ready, I'll pick them up."
    )
    assert any("telma" in i.lower() for i in b.state.details.get("items", []))


def test_examples_name_each_service_once(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(
        tenants, "saloon", "I'd like to book an appointment for Friday at 11 am.", "A tattoo."
    )
    assert replies[0].reason.startswith("ask:service")
    assert replies[1].reason == "not_found"
    said = replies[1].text.split("for example,", 1)[1].split(".")[0]
    names = [n.strip().lower() for n in re.split(r",| or ", said) if n.strip()]
    assert names and len(names) == len(set(names)), said


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("said", "want"),
    [
        ("K-A-R-A-N", "Karan"),
        ("it's R. A. V. I.", "it's Ravi"),
        ("my name is s u m a n, thanks", "my name is Suman, thanks"),
    ],
)
def test_spelled_letters_are_joined(said: str, want: str) -> None:
    assert join_spelled_letters(said) == want


@pytest.mark.parametrize("said", ["B wing, flat 4", "I am A", "Plan A or B"])
def test_lone_letters_are_left_alone(said: str) -> None:
    assert join_spelled_letters(said) == said


def test_name_not_caught_is_offered_spelled(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "One kilo of plum cake for pickup tomorrow at 5 pm.",
        "Name is current, number 9731044556.",
        "N-A-V-E-E-N",
    )
    assert replies[1].reason == "ask:name" and "spell" in replies[1].text
    assert b.state.details["name"] == "Naveen"
    assert replies[2].reason == "confirm" and "Naveen" in replies[2].text


def test_name_corrected_after_the_read_back(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "One kilo of plum cake for pickup tomorrow at 5 pm.",
        "I'm Karan.",
        "No.",
        "The name is Kiran, not Karan.",
    )
    assert "Karan" in replies[1].text  # the read-back says the name
    assert "spell" in replies[2].text
    assert b.state.details["name"] == "Kiran" and replies[3].reason == "corrected"


def test_barge_in_with_a_booking_is_a_whole_turn(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "saloon",
        "How much is a pedicure?",
        "Sorry, I just want a manicure on Sunday at 11 am, I'm Vimala",
    )
    assert b.state.intent == "appointment"
    d = b.state.details
    assert d["service"] == "Manicure" and d["date"] == "2026-11-29" and d["time"] == "11:00"
    assert d["name"] == "Vimala" and replies[1].reason == "confirm"


# ----------------------------------------------------------------------------- what a turn is


def test_a_repeat_prescription_is_no_request_to_repeat(tenants: dict[str, Tenant]) -> None:
    b = GroundedBrain(tenants["clinic"], caller_number=CALLER, now=NOW)
    b.opening()
    first = b.respond("I'd like a repeat of my sugar tablets, Glycomet, from Dr. Anil Sharma.")
    assert first.reason != "repeat" and b.state.intent == "prescription_refill"
    again = b.respond("Sorry, could you repeat that?")
    assert again.reason == "repeat" and again.text == first.text


def test_a_bare_yes_fills_no_free_text_field(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "clinic",
        "I need a refill of my prescription from Dr. Sunita Sharma.",
        "Yes, please.",
    )
    assert replies[0].reason.startswith("ask:medicines")
    assert "medicines" not in b.state.details
    assert replies[1].reason.startswith(("ask:medicines", "ack"))
    assert "still need" in replies[1].text


def test_cancelling_a_booked_service_is_a_cancellation(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(tenants, "saloon", "Please cancel my pedicure appointment on Friday.")
    assert b.state.intent == "cancellation"
    assert b.state.details.get("appointment_date") == "2026-11-27"


def test_send_me_items_is_an_order(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(tenants, "pharmacy", "Send one Combiflam and one Crocin Advance to my flat.")
    assert b.state.intent == "order" and replies[0].reason != "no_information"
    items = " ".join(b.state.details["items"]).lower()
    assert "combiflam" in items and "crocin" in items


# ----------------------------------------------------------------------------- echo


def test_strip_echo_drops_the_agents_words_only() -> None:
    agent = "For which date would you like it? May I have your name, please?"
    assert strip_echo("may I have your name please Sushma", agent) == "Sushma"
    assert strip_echo("Saturday, and I'm Sushma", agent) == "Saturday, and I'm Sushma"
    assert strip_echo("your name", agent) == "your name"  # short runs are the caller's own


def test_agents_words_heard_back_fill_nothing(tenants: dict[str, Tenant]) -> None:
    b = GroundedBrain(tenants["saloon"], caller_number=CALLER, now=NOW)
    b.opening()
    first = b.respond("I'd like to book a threading appointment.")
    assert first.reason.startswith("ask:date")
    # the line leaked the agent's question back, then the caller said only the day
    b.respond(f"{first.text} Friday at 6 pm")
    assert b.state.details.get("date") == "2026-11-27" and b.state.details.get("time") == "18:00"
    assert "name" not in b.state.details


def test_a_fact_that_stands_out_answers_a_wordy_question(tenants: dict[str, Tenant]) -> None:
    assert clear_winner([(9.0, 0.52), (3.0, 0.5)])
    assert not clear_winner([(9.0, 0.52), (6.0, 0.5)])  # two close candidates: not sure
    assert not clear_winner([(9.0, 0.3), (1.0, 0.2)])  # too little of the question in it
    assert not clear_winner([(9.0, 0.52)])  # alone: nothing shows it stands out
    _, replies = talk(tenants, "bakery", "How late are you open on Sunday?")
    assert replies[0].reason == "answer" and "9" in replies[0].text
    _, replies = talk(tenants, "bakery", "Do you sell ice cream?")
    assert replies[0].reason == "no_information"


def test_yes_to_anything_else_invites_the_next_question(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(
        tenants, "saloon", "What time do you open on Monday?", "Yes.", "Do you do threading?"
    )
    assert replies[0].reason == "answer"
    assert replies[1].reason == "ack" and not replies[1].end_call
    assert "anything else" not in replies[1].text.lower()
    assert replies[2].reason == "answer"


def test_a_cake_delivered_is_an_order_a_theme_cake_is_custom(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(tenants, "bakery", "Can you deliver two kilo of butterscotch cake to Jayanagar?")
    assert b.state.intent == "order"
    b, _ = talk(tenants, "bakery", "I need a unicorn theme cake for my daughter's birthday.")
    assert b.state.intent == "custom_cake"


def test_an_address_line_names_nobody(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "saloon",
        "Book a pedicure for Friday at 2 pm.",
        "The address is 14, Second Cross, Lavelle Colony.",
    )
    assert replies[0].reason == "ask:name"  # the name is asked, and still not given
    assert "name" not in b.state.details and replies[1].reason != "confirm"


# ----------------------------------------------------------------------------- the read-back


def test_an_address_for_delivery_answers_pickup_or_delivery(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "One kilo of plum cake for Saturday at 4 pm please.",
        "The address is 9, Rose Garden Street, Indiranagar, near the temple.",
    )
    assert asked_for(replies[0], "pickup_or_delivery")
    assert b.state.details.get("pickup_or_delivery") == "delivery"
    assert not asked_for(replies[1], "pickup_or_delivery")


def test_callback_asked_at_the_read_back_closes_it(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "The cookies I bought on Monday were soggy and stale.",
        "I'm Farida, 9731044556.",
        "Just have the owner call me back please.",
    )
    assert replies[1].reason == "confirm"
    assert replies[2].end_call and b.state.confirmed and b.state.callback_requested


def test_thanks_after_the_read_back_accepts_it(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "saloon",
        "Please cancel my facial appointment on Saturday.",
        "Name is Revathi, 9840987654.",
        "Something came up at work, thanks.",
    )
    assert replies[1].reason == "confirm"
    assert replies[2].end_call and b.state.confirmed


def test_a_question_beside_a_request_is_answered_first(tenants: dict[str, Tenant]) -> None:
    assert side_questions("Book me a pedicure on Friday. Are you open on Friday?") == [
        "Are you open on Friday?"
    ]
    assert side_questions("Can I book a pedicure on Friday?") == []
    b, replies = talk(
        tenants, "saloon", "Book me a pedicure for Friday at 2 pm. What time do you close?"
    )
    assert b.state.details["service"].lower() == "pedicure"
    reply = replies[0].text
    assert "9:00 pm" in reply and reply.index("9:00 pm") < reply.index("?")


def test_romanised_hindi_requests_are_requests(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(tenants, "pharmacy", "Ek Combiflam aur ek Crocin Advance bhej do please.")
    assert b.state.intent == "order"
    assert len(b.state.details.get("items", [])) == 2
    b, _ = talk(tenants, "clinic", "Dr. Anil Sharma ko dikhana hai, parso subah das baje.")
    assert b.state.intent == "appointment"


# ----------------------------------------------------------------------------- cancellations


def test_a_cancellation_is_never_booked(tenants: dict[str, Tenant]) -> None:
    # the saloon takes cancellations: it is one
    b, _ = talk(tenants, "saloon", "I can't come for my threading on Saturday, please cancel it.")
    assert b.state.intent == "cancellation"
    # the clinic has no cancellation call type: a call back, never a new appointment
    b, replies = talk(
        tenants, "clinic", "My appointment with Dr. Anil is on Monday, I want to cancel it."
    )
    assert replies[0].reason == "cannot_cancel" and b.state.callback_requested
    assert b.state.intent != "appointment" and "date" not in b.state.details


def test_a_doctor_changed_is_replaced(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(
        tenants,
        "clinic",
        "Book me with Dr. Anil Sharma on Monday at 10 am.",
        "No wait, make it Dr. Sunita instead.",
    )
    assert "Sunita" in b.state.details["doctor"] and "Anil" not in b.state.details["doctor"]


def test_partial_phone() -> None:
    assert partial_phone("my number is 984511223") == "984511223"
    assert partial_phone("number 98451 1223, thanks") == "98451 1223"
    assert partial_phone("number 98451122334") == "98451122334"
    assert partial_phone("number 9845112233") is None  # ten digits: a number
    assert partial_phone("the order id is 984511223") is None  # no phone number said


def test_a_number_with_digits_missing_is_asked_again(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "The brownies I got yesterday were stale and hard.",
        "My name is Suresh, number 98451 1223.",
        "9 8 4 5 1 1 2 2 3 3",
    )
    assert replies[1].reason == "ask:phone" and "98451 1223" in replies[1].text
    assert b.state.details["phone"].endswith("9845112233")
    assert replies[2].reason == "confirm"


# ----------------------------------------------------------------------------- names asked


def test_name_as_heard_by_speech_to_text_is_taken(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "saloon",
        "Book a pedicure for tomorrow at 5 pm please.",
        "Name as Deepa, number 98445 56677.",
    )
    assert b.state.details["name"] == "Deepa"
    assert replies[-1].reason == "confirm"


def test_yes_to_your_name_goes_on_to_the_read_back(tenants: dict[str, Tenant]) -> None:
    """The caller thinks they gave their name: asking again would loop ("Sorry, I still need
    this" until they hang up)."""
    b, replies = talk(
        tenants,
        "clinic",
        "Book my daughter with Doctor Rohit Verma on Tuesday evening at 6.",
        "Her name is an annual thing. My number is 98391 12233.",
        "Yes, correct.",
    )
    assert asked_for(replies[1], "patient_name")  # a name we could not take: asked again
    assert "spell" in replies[1].text
    assert replies[2].reason != "ack" or "So that's" in replies[2].text
    assert b.state.awaiting_confirmation  # read back, without the name
    assert "patient_name" not in b.state.details
    done = b.respond("Yes.")
    assert done.end_call and b.state.confirmed


def test_a_name_missed_twice_is_not_asked_a_third_time(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants,
        "bakery",
        "I want one kilo of Black Forest cake for pickup on Saturday.",
        "Name is current, 98865 43210.",
        "My name is current.",
    )
    assert asked_for(replies[1], "name")
    assert replies[2].reason == "confirm"
    assert b.state.awaiting_confirmation


def test_a_name_not_answered_is_asked_again(tenants: dict[str, Tenant]) -> None:
    """Changing the order while the name is asked for is no failed answer: asked again."""
    _b, replies = talk(
        tenants,
        "bakery",
        "I want half a kilo of butterscotch cake for pickup on Saturday.",
        "Actually, make that one kilo of chocolate truffle cake instead.",
        "Make it for Sunday instead.",
    )
    assert all(asked_for(r, "name") for r in replies)


# ----------------------------------------------------------------------------- follow-ups


def test_a_follow_up_question_is_about_what_was_just_asked(tenants: dict[str, Tenant]) -> None:
    _b, replies = talk(
        tenants, "saloon", "How much is bridal makeup?", "And how much advance do I pay?"
    )
    assert replies[1].reason == "answer"
    assert "2000" in replies[1].text.replace(",", "")


def test_a_follow_up_as_speech_to_text_wrote_it(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(
        tenants, "saloon", "How much is bridal makeup?", "and how much advanced do I pay?"
    )
    assert "2000" in replies[1].text.replace(",", "")


def test_a_question_with_no_topic_before_finds_no_answer_by_guessing(
    tenants: dict[str, Tenant],
) -> None:
    _, replies = talk(tenants, "saloon", "How much advance do I pay?")
    assert "2000" not in replies[0].text.replace(",", "")


def test_strips_are_counted_and_priced(tenants: dict[str, Tenant]) -> None:
    b, replies = talk(
        tenants, "pharmacy", "Please send two strips of Dolo 650 and one Vicks Vaporub to my home."
    )
    assert [line.count for line in b.state.order] == [2, 1]
    assert "224" in replies[0].text  # 2 x 32 + 160
    assert b.state.details["pickup_or_delivery"] == "delivery"  # "to my home"


def test_a_self_introduction_is_no_list_of_medicines(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(
        tenants,
        "clinic",
        "I need a repeat of my blood pressure tablets, prescribed by Doctor Anil Sharma.",
        "My name is prakash tiwari, number 98397 78899.",
    )
    assert "medicines" not in b.state.details
    assert b.state.details["patient_name"] == "Prakash Tiwari"


@pytest.mark.parametrize(
    "said",
    [
        "I have a manicure booked on Friday. I want to cancel it and come next week instead.",
        "I have a manicure book on Friday. I want to cancel it and come next week instead.",
    ],
)
def test_the_service_of_a_booking_cancelled_is_no_new_booking(
    tenants: dict[str, Tenant], said: str
) -> None:
    b, replies = talk(tenants, "saloon", said)
    assert b.state.intent == "cancellation"
    assert asked_for(replies[0], "name")


def test_a_service_with_a_date_is_still_a_booking(tenants: dict[str, Tenant]) -> None:
    b, _ = talk(tenants, "saloon", "I want to book a manicure on Friday at 11.")
    assert b.state.intent == "appointment"


@pytest.mark.parametrize(
    ("said", "want"),
    [
        ("The address is B-wing, Flat 402, Karishma Society, Kothrud.", "B-wing, Flat 402"),
        ("Addresses Lane 5, Karve Nagar.", "Lane 5, Karve Nagar"),  # "address is", said quickly
    ],
)
def test_the_address_is_what_follows_address_is(
    tenants: dict[str, Tenant], said: str, want: str
) -> None:
    b, _ = talk(tenants, "pharmacy", "Please send one Vicks Vaporub to my home.", said)
    assert b.state.details["delivery_address"].startswith(want)


def test_yes_to_a_question_asked_twice_goes_on_to_the_read_back(
    tenants: dict[str, Tenant],
) -> None:
    """ "Sorry, I still need this" until the caller hangs up helps nobody: after two asks, a
    "yes" leaves the medicines to the owner and reads back the rest."""
    b, replies = talk(
        tenants,
        "clinic",
        "I need a repeat of my blood pressure tablets, prescribed by Doctor Anil Sharma.",
        "My name is Prakash Tiwari, number 98397 78899.",
        "Yes, please.",
    )
    assert asked_for(replies[0], "medicines") and asked_for(replies[1], "medicines")
    assert b.state.awaiting_confirmation
    assert "medicines" not in b.state.details


def test_yes_to_a_question_asked_once_asks_again(tenants: dict[str, Tenant]) -> None:
    _, replies = talk(
        tenants,
        "clinic",
        "I need a repeat of my blood pressure tablets, prescribed by Doctor Anil Sharma.",
        "Yes, please.",
    )
    assert "medicines" in replies[1].text and "So that's" not in replies[1].text


# ----------------------------------------------------------------------------- conv_text fixes


@pytest.mark.parametrize(
    ("tenant_id", "said", "fact_word"),
    [
        # romanised Hindi fillers and "is it available?" verbs ask nothing of their own
        ("bakery", "Didi, sugar free cake milegi kya?", "sugar substitute"),
        ("bakery", "Bhai, garlic loaf milta hai?", "90 rupees"),
        # "keep/carry" is "stock", a pet is what "veterinary" is about
        ("pharmacy", "Do you carry anything for pets?", "veterinary"),
        ("pharmacy", "Do you keep medicine for my cat?", "veterinary"),
    ],
)
def test_a_question_in_other_words_is_answered_from_the_files(
    tenants: dict[str, Tenant], said: str, tenant_id: str, fact_word: str
) -> None:
    _, replies = talk(tenants, tenant_id, said)
    assert replies[0].reason == "answer", replies[0]
    assert fact_word in replies[0].text


def test_an_item_said_in_another_word_order_with_a_hindi_count(
    tenants: dict[str, Tenant],
) -> None:
    """ "Electral ORS" is the list's "ORS Electral sachet"; "teen strip" is three strips, "do
    packet" two packs; "do" stays the English verb elsewhere."""
    b, _ = talk(tenants, "pharmacy", "Send three Electral ORS and teen strip Dolo 650 please")
    assert [(line.item.display, line.count) for line in b.state.order] == [
        ("ORS Electral sachet", 3),
        ("Dolo 650", 3),
    ]
    b, _ = talk(tenants, "bakery", "Bhaiya, do packet pav chahiye")
    assert [(line.item.display, line.packs) for line in b.state.order] == [("Pav", 2)]
    b, _ = talk(tenants, "bakery", "How much do chocolate brownies cost?")
    assert all(line.count is None for line in b.state.order)


def test_with_the_thing_an_option_is_free_of_says_no_to_it(tenants: dict[str, Tenant]) -> None:
    """ "With egg is fine" answers "eggless?" with no: the option's own word, not a bakery's."""
    b, replies = talk(
        tenants,
        "bakery",
        "I need a 2 kg chocolate truffle custom cake for Sunday",
        "With egg is fine",
    )
    assert asked_for(replies[0], "eggless")
    assert b.state.details["eggless"] is False
    assert not asked_for(replies[1], "eggless")


def test_an_eggless_cake_is_priced_with_the_menus_surcharge(tenants: dict[str, Tenant]) -> None:
    """The acknowledgement's figure is the quote's: 2 x 750 + 2 x 50 per kg eggless."""
    b, replies = talk(tenants, "bakery", "I want to order two kilo eggless black forest for pickup")
    assert b.state.total == 1600
    assert "1600 rupees" in replies[0].text


def test_a_request_meant_for_another_business_is_not_taken(tenants: dict[str, Tenant]) -> None:
    """ "Is this the X? I want ..." naming nothing of this business: say who we are first."""
    b, replies = talk(
        tenants, "clinic", "Hello, is this the tyre shop? I want to book a puncture repair."
    )
    assert replies[0].reason == "identity" and "Sharma Family Clinic" in replies[0].text
    assert b.state.intent is None and not b.state.pending_fields


def test_is_this_us_before_a_request_is_neither_answered_nor_read(
    tenants: dict[str, Tenant],
) -> None:
    """ "Is this the bakery?" before an order: no fact read out for it, nothing taken from it."""
    b, replies = talk(
        tenants, "bakery", "Is this the bakery? I'd like 1 kg pineapple cake tomorrow."
    )
    assert [line.item.display for line in b.state.order] == ["Pineapple cake"]
    assert replies[0].reason.startswith("ask:"), replies[0]
    assert replies[0].text.startswith("1 kg Pineapple cake")
