"""Greeting extraction from assistant prompts, in many scripts, and its fallbacks."""

from __future__ import annotations

import pytest

from receptionist.tenants import greeting as greeting_mod
from receptionist.tenants.greeting import (
    cached_greeting,
    clear_greeting_cache,
    extract_greeting,
    find_marked_greeting,
)
from receptionist.tenants.messages import fallback_greeting


def g(prompt: str, language: str = "en-IN", name: str = "Sweet Crumbs") -> str:
    return extract_greeting(prompt, tenant_name=name, language=language)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ('GREETING: "Hello, Sweet Crumbs here!"', "Hello, Sweet Crumbs here!"),
        (
            "Greeting: Welcome to the bakery, how can I help?",
            "Welcome to the bakery, how can I help?",
        ),
        ("greeting = «Namaste ji, boliye»", "Namaste ji, boliye"),
        ("gReEtInG:   “Hi there, thanks for calling”  ", "Hi there, thanks for calling"),
        ("Greeting: 'Hello, I'm Priya from Sweet Crumbs'", "Hello, I'm Priya from Sweet Crumbs"),
        ("[greeting] Hello and welcome!", "Hello and welcome!"),
        ("[Greeting] “Vanakkam!”", "Vanakkam!"),
        ('- **Greeting:** "Hello from the list"', "Hello from the list"),
        ("## Greeting: Hi from a heading", "Hi from a heading"),
        ('GREETING："Full-width colon"', "Full-width colon"),
        ('GREETING: "Unbalanced quote till end', "Unbalanced quote till end"),
    ],
)
def test_marker_and_quote_styles(prompt: str, expected: str) -> None:
    assert g("You are a receptionist.\n" + prompt + "\nBe kind.") == expected


def test_hindi_devanagari_marker_and_text() -> None:
    prompt = (
        "आप शर्मा क्लिनिक की रिसेप्शनिस्ट हैं।\n"
        'अभिवादन: "नमस्ते, शर्मा फ़ैमिली क्लिनिक में आपका स्वागत है।"\n'
        "हमेशा विनम्र रहें।"
    )
    assert g(prompt, "hi-IN") == "नमस्ते, शर्मा फ़ैमिली क्लिनिक में आपका स्वागत है।"


def test_tamil_text_with_english_marker() -> None:
    prompt = 'Greeting: "வணக்கம்! Glow Unisex Saloon-க்கு அழைத்ததற்கு நன்றி."\nRules...'
    assert g(prompt, "ta-IN") == "வணக்கம்! Glow Unisex Saloon-க்கு அழைத்ததற்கு நன்றி."


def test_tamil_marker_word() -> None:
    assert g("வாழ்த்து: வணக்கம், சொல்லுங்க!", "ta-IN") == "வணக்கம், சொல்லுங்க!"


def test_kannada_text_and_marker() -> None:
    assert g('GREETING: "ನಮಸ್ಕಾರ, ಸ್ವೀಟ್ ಕ್ರಂಬ್ಸ್ ಬೇಕರಿ!"', "kn-IN") == "ನಮಸ್ಕಾರ, ಸ್ವೀಟ್ ಕ್ರಂಬ್ಸ್ ಬೇಕರಿ!"
    assert g("ಶುಭಾಶಯ = «ನಮಸ್ಕಾರ»", "kn-IN") == "ನಮಸ್ಕಾರ"


def test_telugu_and_bengali_markers() -> None:
    assert g('అభివాదం: "నమస్కారం!"', "te-IN") == "నమస్కారం!"
    assert g('অভিবাদন: "নমস্কার, স্বাগতম!"', "bn-IN") == "নমস্কার, স্বাগতম!"


def test_mixed_hinglish() -> None:
    prompt = (
        "Tum ek friendly receptionist ho.\n"
        "Greeting: Namaste ji! Sweet Crumbs mein aapka swagat hai, batayiye kya chahiye?"
    )
    assert g(prompt, "hi-IN") == (
        "Namaste ji! Sweet Crumbs mein aapka swagat hai, batayiye kya chahiye?"
    )


def test_emoji_kept() -> None:
    assert g('GREETING: "Hello 🎂 welcome to Sweet Crumbs! 😊"') == (
        "Hello 🎂 welcome to Sweet Crumbs! 😊"
    )


def test_first_marked_line_wins() -> None:
    prompt = 'Greeting: "First one"\nmore text\nGREETING: "Second one"\n[greeting] third'
    assert g(prompt) == "First one"


def test_empty_marked_line_is_skipped() -> None:
    assert g('GREETING: ""\nGreeting:   \nGREETING: "The real one"') == "The real one"


def test_marker_inside_a_paragraph_with_quotes() -> None:
    prompt = (
        "You answer the phone for the bakery. When the call starts, open with greeting: "
        '"Hi, Sweet Crumbs here, what can I get you?" and then listen carefully.\n'
        "Never invent prices."
    )
    assert g(prompt) == "Hi, Sweet Crumbs here, what can I get you?"


def test_unquoted_marker_inside_prose_is_not_a_greeting() -> None:
    prompt = "Keep the greeting: short and warm, then ask what they need."
    assert g(prompt) == fallback_greeting("Sweet Crumbs", "en-IN")


def test_word_containing_marker_is_not_a_marker() -> None:
    assert find_marked_greeting("Greetings: hello there") is None
    assert find_marked_greeting("pre-greeting notes") is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en-IN", "Hello, thank you for calling Sweet Crumbs. How can I help you today?"),
        ("hi-IN", "नमस्ते, Sweet Crumbs में फ़ोन करने के लिए धन्यवाद। मैं आपकी क्या मदद कर सकती हूँ?"),
        ("ta-IN", "வணக்கம், Sweet Crumbs-ஐ அழைத்ததற்கு நன்றி. நான் உங்களுக்கு எப்படி உதவ முடியும்?"),
        ("kn-IN", "ನಮಸ್ಕಾರ, Sweet Crumbsಗೆ ಕರೆ ಮಾಡಿದ್ದಕ್ಕೆ ಧನ್ಯವಾದಗಳು. ನಾನು ನಿಮಗೆ ಹೇಗೆ ಸಹಾಯ ಮಾಡಬಹುದು?"),
        ("te-IN", "నమస్కారం, Sweet Crumbsకి కాల్ చేసినందుకు ధన్యవాదాలు. నేను మీకు ఎలా సహాయం చేయగలను?"),
        ("mr-IN", "नमस्कार, Sweet Crumbs ला फोन केल्याबद्दल धन्यवाद. मी तुमची काय मदत करू शकते?"),
        ("bn-IN", "নমস্কার, Sweet Crumbs-এ ফোন করার জন্য ধন্যবাদ। আমি আপনাকে কীভাবে সাহায্য করতে পারি?"),
    ],
)
def test_fallback_per_language(language: str, expected: str) -> None:
    assert g("You are a helpful receptionist. No greeting marked.", language) == expected


def test_unknown_language_falls_back_to_english() -> None:
    assert g("no marker", "xx-YY") == (
        "Hello, thank you for calling Sweet Crumbs. How can I help you today?"
    )
    assert g("no marker", "") == (
        "Hello, thank you for calling Sweet Crumbs. How can I help you today?"
    )


def test_fallback_without_name() -> None:
    assert extract_greeting("", tenant_name="  ", language="en") == (
        "Hello, thank you for calling. How can I help you today?"
    )


def test_language_prefix_is_case_and_separator_insensitive() -> None:
    assert g("x", "HI_in") == g("x", "hi-IN")


def test_cached_greeting_reuses_result(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_greeting_cache()
    calls = []
    real = greeting_mod.extract_greeting

    def counting(prompt: str, *, tenant_name: str, language: str) -> str:
        calls.append(prompt)
        return real(prompt, tenant_name=tenant_name, language=language)

    monkeypatch.setattr(greeting_mod, "extract_greeting", counting)
    prompt = 'GREETING: "Cached hello"'
    assert cached_greeting(prompt, tenant_name="A", language="en") == "Cached hello"
    assert cached_greeting(prompt, tenant_name="A", language="en") == "Cached hello"
    assert len(calls) == 1
    # a different prompt, name or language is a different entry
    assert cached_greeting("no marker", tenant_name="A", language="hi") == fallback_greeting(
        "A", "hi"
    )
    assert cached_greeting("no marker", tenant_name="B", language="hi") == fallback_greeting(
        "B", "hi"
    )
    assert len(calls) == 3
    clear_greeting_cache()
