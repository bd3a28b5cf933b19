"""Scripted conversations for the demo, tests and the benchmark.

The Gemini Live double does not understand audio: each caller line is synthesised as tone-speech
whose length follows the text, and the double "hears" the scripted line and speaks the scripted
reply. The replies quote only facts from the example tenants' own files.
"""

from __future__ import annotations

from receptionist.sim.gemini_live import CallScript, ScriptedTurn

_SCENARIOS: dict[str, list[ScriptedTurn]] = {
    "bakery": [
        ScriptedTurn(
            heard="Hi, do you have an eggless chocolate truffle cake?",
            reply="Yes, we do! Chocolate truffle is nine hundred rupees per kilo, and eggless"
            " is fifty rupees extra per kilo. Would you like to order one?",
        ),
        ScriptedTurn(
            heard="Yes, one kilo for pickup tomorrow at five pm. My name is Anita.",
            reply="Lovely, Anita. One kilo eggless chocolate truffle cake, pickup tomorrow at"
            " five pm, nine hundred and fifty rupees. Shall I confirm that?",
        ),
        ScriptedTurn(
            heard="Yes please, thank you.",
            reply="Done! We'll send you a WhatsApp confirmation. Thank you for calling Sweet"
            " Crumbs Bakery!",
        ),
    ],
    "saloon": [
        ScriptedTurn(
            heard="I'd like a haircut appointment on Saturday morning.",
            reply="Of course. We have a slot at eleven on Saturday. May I have your name?",
        ),
        ScriptedTurn(
            heard="It's Karthik.",
            reply="Thank you, Karthik. A haircut on Saturday at eleven is booked. See you then!",
        ),
    ],
    "clinic": [
        ScriptedTurn(
            heard="मुझे कल डॉक्टर से मिलना है।",
            reply="ज़रूर। कल सुबह दस बजे का समय खाली है। आपका नाम बताइए?",
        ),
        ScriptedTurn(
            heard="मेरा नाम रमेश है।",
            reply="धन्यवाद रमेश जी, कल सुबह दस बजे आपका अपॉइंटमेंट तय हो गया है।",
        ),
    ],
}

GENERIC = [
    ScriptedTurn(heard="Hello, what are your opening hours?", reply="We are open every day."),
    ScriptedTurn(heard="Thank you, bye.", reply="Thank you for calling. Goodbye!"),
]


def scenario(tenant_id: str) -> list[ScriptedTurn]:
    return list(_SCENARIOS.get(tenant_id, GENERIC))


def caller_lines(tenant_id: str) -> list[str]:
    return [t.heard for t in scenario(tenant_id)]


def live_script(tenant_id: str) -> CallScript:
    return CallScript(turns=scenario(tenant_id))


# Lines a caller speaks to the local engine (real speech, heard by Whisper tiny.en: English).
_SPOKEN: dict[str, list[str]] = {
    "bakery": [
        "Hi, how much is the black forest cake?",
        "I want to order one kilo of black forest cake for pickup tomorrow at five pm.",
        "My name is Priya.",
        "Yes, that's right.",
    ],
    "saloon": [
        "What time do you open on Sunday?",
        "I want to book a haircut and beard trim for Sunday at eleven am with Ravi.",
        "My name is Vignesh.",
        "Yes.",
    ],
    "clinic": [
        "What is Doctor Sunita Sharma's fee?",
        "I want to book an appointment with the gynaecologist for Monday at eleven thirty.",
        "Ritika Agarwal.",
        "Yes.",
    ],
}
_SPOKEN_GENERIC = ["Hello, what are your opening hours?", "Thank you, bye."]


def spoken_lines(tenant_id: str) -> list[str]:
    return list(_SPOKEN.get(tenant_id, _SPOKEN_GENERIC))
