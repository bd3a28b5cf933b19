"""Fixed things the receptionist says outside the AI conversation, in the tenant's language.

The call session speaks these itself (no model involved): asking whether a silent caller is still
there, saying goodbye after silence or at the maximum call length, and apologising when the line is
busy or something broke. A tenant may override any of them in ``[messages]`` of ``tenant.toml``;
otherwise the defaults below are chosen by the primary language prefix ("hi-IN" -> "hi"), falling
back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = [
    "MESSAGE_KEYS",
    "CallMessages",
    "default_messages",
    "fallback_greeting",
    "language_name",
    "language_prefix",
    "resolve_messages",
]


@dataclass(frozen=True, slots=True)
class CallMessages:
    """What the session says on its own, already in the tenant's primary language."""

    still_there: str
    goodbye_inactive: str
    goodbye_max_duration: str
    busy: str
    technical_problem: str


MESSAGE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(CallMessages))


def language_prefix(language: str) -> str:
    """``"hi-IN"`` -> ``"hi"``; ``"EN_in"`` -> ``"en"``; empty -> ``""``."""
    return language.strip().replace("_", "-").split("-", 1)[0].lower()


_LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "hi": "Hindi",
    "ta": "Tamil",
    "kn": "Kannada",
    "te": "Telugu",
    "mr": "Marathi",
    "bn": "Bengali",
    "gu": "Gujarati",
    "ml": "Malayalam",
    "pa": "Punjabi",
    "or": "Odia",
    "as": "Assamese",
    "ur": "Urdu",
    "ne": "Nepali",
    "sa": "Sanskrit",
    "kok": "Konkani",
    "mai": "Maithili",
    "sd": "Sindhi",
    "ks": "Kashmiri",
    "ar": "Arabic",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "ru": "Russian",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
    "id": "Indonesian",
    "th": "Thai",
    "vi": "Vietnamese",
    "tr": "Turkish",
    "pl": "Polish",
}


def language_name(language: str) -> str:
    """English name of a BCP-47 language ("kn-IN" -> "Kannada"); the code itself if unknown."""
    return _LANGUAGE_NAMES.get(language_prefix(language), language)


# Default wordings. Kept short: they are spoken on a phone line, usually to someone who has gone
# quiet, so they must be understood at once.
_DEFAULTS: dict[str, CallMessages] = {
    "en": CallMessages(
        still_there="Hello, are you still there?",
        goodbye_inactive=(
            "I haven't heard anything for a while, so I'll end the call now. "
            "Please call us again any time. Goodbye!"
        ),
        goodbye_max_duration=(
            "We've reached the time limit for this call. Thank you for calling, and please call "
            "again if you need anything else. Goodbye!"
        ),
        busy=(
            "Sorry, all our lines are busy right now. Please call again in a few minutes. "
            "Thank you!"
        ),
        technical_problem=(
            "Sorry, we're having a technical problem right now. Please call again in a little "
            "while. Thank you for your patience."
        ),
    ),
    "hi": CallMessages(
        still_there="हैलो, क्या आप अभी भी लाइन पर हैं?",
        goodbye_inactive=(
            "काफ़ी देर से आपकी आवाज़ नहीं आई, इसलिए मैं अब कॉल समाप्त कर रही हूँ। "
            "आप कभी भी दोबारा फ़ोन कर सकते हैं। धन्यवाद!"
        ),
        goodbye_max_duration=(
            "इस कॉल का समय पूरा हो गया है। फ़ोन करने के लिए धन्यवाद, "
            "कुछ और जानना हो तो कृपया दोबारा कॉल करें। नमस्ते!"
        ),
        busy="माफ़ कीजिए, अभी हमारी सभी लाइनें व्यस्त हैं। कृपया कुछ मिनट बाद दोबारा कॉल करें। धन्यवाद!",
        technical_problem=(
            "माफ़ कीजिए, अभी कुछ तकनीकी समस्या आ रही है। कृपया थोड़ी देर बाद दोबारा कॉल करें। धन्यवाद!"
        ),
    ),
    "ta": CallMessages(
        still_there="ஹலோ, நீங்கள் இன்னும் லைனில் இருக்கிறீர்களா?",
        goodbye_inactive=(
            "நீண்ட நேரமாக உங்கள் குரல் கேட்கவில்லை, அதனால் இந்த அழைப்பை முடிக்கிறேன். "
            "எப்போது வேண்டுமானாலும் மீண்டும் அழையுங்கள். நன்றி, வணக்கம்!"
        ),
        goodbye_max_duration=(
            "இந்த அழைப்பின் நேர வரம்பு முடிந்துவிட்டது. அழைத்ததற்கு நன்றி, "
            "வேறு ஏதாவது தேவைப்பட்டால் மீண்டும் அழையுங்கள். வணக்கம்!"
        ),
        busy=(
            "மன்னிக்கவும், இப்போது எங்கள் எல்லா லைன்களும் பிஸியாக உள்ளன. "
            "சில நிமிடங்கள் கழித்து மீண்டும் அழையுங்கள். நன்றி!"
        ),
        technical_problem=(
            "மன்னிக்கவும், இப்போது ஒரு தொழில்நுட்பக் கோளாறு ஏற்பட்டுள்ளது. "
            "சிறிது நேரம் கழித்து மீண்டும் அழையுங்கள். நன்றி!"
        ),
    ),
    "kn": CallMessages(
        still_there="ಹಲೋ, ನೀವು ಇನ್ನೂ ಲೈನ್‌ನಲ್ಲಿ ಇದ್ದೀರಾ?",
        goodbye_inactive=(
            "ತುಂಬಾ ಹೊತ್ತಿನಿಂದ ನಿಮ್ಮ ಧ್ವನಿ ಕೇಳಿಸುತ್ತಿಲ್ಲ, ಆದ್ದರಿಂದ ಈ ಕರೆಯನ್ನು ಮುಗಿಸುತ್ತಿದ್ದೇನೆ. "
            "ಯಾವಾಗ ಬೇಕಾದರೂ ಮತ್ತೆ ಕರೆ ಮಾಡಿ. ಧನ್ಯವಾದಗಳು!"
        ),
        goodbye_max_duration=(
            "ಈ ಕರೆಯ ಸಮಯದ ಮಿತಿ ಮುಗಿದಿದೆ. ಕರೆ ಮಾಡಿದ್ದಕ್ಕೆ ಧನ್ಯವಾದಗಳು, ಇನ್ನೇನಾದರೂ ಬೇಕಿದ್ದರೆ ದಯವಿಟ್ಟು ಮತ್ತೆ ಕರೆ ಮಾಡಿ."
        ),
        busy=("ಕ್ಷಮಿಸಿ, ಈಗ ನಮ್ಮ ಎಲ್ಲಾ ಲೈನ್‌ಗಳು ಬ್ಯುಸಿ ಇವೆ. ದಯವಿಟ್ಟು ಕೆಲವು ನಿಮಿಷಗಳ ನಂತರ ಮತ್ತೆ ಕರೆ ಮಾಡಿ. ಧನ್ಯವಾದಗಳು!"),
        technical_problem=("ಕ್ಷಮಿಸಿ, ಈಗ ತಾಂತ್ರಿಕ ತೊಂದರೆ ಇದೆ. ದಯವಿಟ್ಟು ಸ್ವಲ್ಪ ಸಮಯದ ನಂತರ ಮತ್ತೆ ಕರೆ ಮಾಡಿ. ಧನ್ಯವಾದಗಳು!"),
    ),
    "te": CallMessages(
        still_there="హలో, మీరు ఇంకా లైన్‌లో ఉన్నారా?",
        goodbye_inactive=(
            "చాలా సేపటి నుండి మీ మాట వినిపించలేదు, అందుకే ఈ కాల్‌ను ముగిస్తున్నాను. ఎప్పుడైనా మళ్ళీ కాల్ చేయండి. ధన్యవాదాలు!"
        ),
        goodbye_max_duration=(
            "ఈ కాల్ సమయ పరిమితి ముగిసింది. కాల్ చేసినందుకు ధన్యవాదాలు, ఇంకేమైనా కావాలంటే దయచేసి మళ్ళీ కాల్ చేయండి."
        ),
        busy=("క్షమించండి, ప్రస్తుతం మా లైన్లన్నీ బిజీగా ఉన్నాయి. దయచేసి కొన్ని నిమిషాల తర్వాత మళ్ళీ కాల్ చేయండి. ధన్యవాదాలు!"),
        technical_problem=("క్షమించండి, ప్రస్తుతం సాంకేతిక సమస్య ఉంది. దయచేసి కాసేపటి తర్వాత మళ్ళీ కాల్ చేయండి. ధన్యవాదాలు!"),
    ),
    "mr": CallMessages(
        still_there="हॅलो, तुम्ही अजून लाइनवर आहात का?",
        goodbye_inactive=(
            "बराच वेळ तुमचा आवाज आला नाही, म्हणून मी आता कॉल संपवत आहे. "
            "तुम्ही कधीही पुन्हा फोन करू शकता. धन्यवाद!"
        ),
        goodbye_max_duration=(
            "या कॉलची वेळमर्यादा संपली आहे. फोन केल्याबद्दल धन्यवाद, आणखी काही हवे असल्यास कृपया पुन्हा फोन करा."
        ),
        busy="माफ करा, सध्या आमच्या सर्व लाइन व्यस्त आहेत. कृपया काही मिनिटांनी पुन्हा फोन करा. धन्यवाद!",
        technical_problem=(
            "माफ करा, सध्या काही तांत्रिक अडचण येत आहे. कृपया थोड्या वेळाने पुन्हा फोन करा. धन्यवाद!"
        ),
    ),
    "bn": CallMessages(
        still_there="হ্যালো, আপনি কি এখনও লাইনে আছেন?",
        goodbye_inactive=(
            "অনেকক্ষণ আপনার কোনো সাড়া পাচ্ছি না, তাই এখন কলটি শেষ করছি। যেকোনো সময় আবার ফোন করবেন। ধন্যবাদ!"
        ),
        goodbye_max_duration=(
            "এই কলের সময়সীমা শেষ হয়ে গেছে। ফোন করার জন্য ধন্যবাদ, আর কিছু দরকার হলে দয়া করে আবার ফোন করবেন।"
        ),
        busy=("দুঃখিত, এই মুহূর্তে আমাদের সব লাইন ব্যস্ত। দয়া করে কয়েক মিনিট পরে আবার ফোন করুন। ধন্যবাদ!"),
        technical_problem=(
            "দুঃখিত, এই মুহূর্তে একটি প্রযুক্তিগত সমস্যা হচ্ছে। দয়া করে কিছুক্ষণ পরে আবার ফোন করুন। ধন্যবাদ!"
        ),
    ),
}

# Greeting used when the assistant prompt has no marked greeting line: (with name, without name).
_GREETINGS: dict[str, tuple[str, str]] = {
    "en": (
        "Hello, thank you for calling {name}. How can I help you today?",
        "Hello, thank you for calling. How can I help you today?",
    ),
    "hi": (
        "नमस्ते, {name} में फ़ोन करने के लिए धन्यवाद। मैं आपकी क्या मदद कर सकती हूँ?",
        "नमस्ते, फ़ोन करने के लिए धन्यवाद। मैं आपकी क्या मदद कर सकती हूँ?",
    ),
    "ta": (
        "வணக்கம், {name}-ஐ அழைத்ததற்கு நன்றி. நான் உங்களுக்கு எப்படி உதவ முடியும்?",
        "வணக்கம், அழைத்ததற்கு நன்றி. நான் உங்களுக்கு எப்படி உதவ முடியும்?",
    ),
    "kn": (
        "ನಮಸ್ಕಾರ, {name}ಗೆ ಕರೆ ಮಾಡಿದ್ದಕ್ಕೆ ಧನ್ಯವಾದಗಳು. ನಾನು ನಿಮಗೆ ಹೇಗೆ ಸಹಾಯ ಮಾಡಬಹುದು?",
        "ನಮಸ್ಕಾರ, ಕರೆ ಮಾಡಿದ್ದಕ್ಕೆ ಧನ್ಯವಾದಗಳು. ನಾನು ನಿಮಗೆ ಹೇಗೆ ಸಹಾಯ ಮಾಡಬಹುದು?",
    ),
    "te": (
        "నమస్కారం, {name}కి కాల్ చేసినందుకు ధన్యవాదాలు. నేను మీకు ఎలా సహాయం చేయగలను?",
        "నమస్కారం, కాల్ చేసినందుకు ధన్యవాదాలు. నేను మీకు ఎలా సహాయం చేయగలను?",
    ),
    "mr": (
        "नमस्कार, {name} ला फोन केल्याबद्दल धन्यवाद. मी तुमची काय मदत करू शकते?",
        "नमस्कार, फोन केल्याबद्दल धन्यवाद. मी तुमची काय मदत करू शकते?",
    ),
    "bn": (
        "নমস্কার, {name}-এ ফোন করার জন্য ধন্যবাদ। আমি আপনাকে কীভাবে সাহায্য করতে পারি?",
        "নমস্কার, ফোন করার জন্য ধন্যবাদ। আমি আপনাকে কীভাবে সাহায্য করতে পারি?",
    ),
}


def default_messages(language: str) -> CallMessages:
    """Default session messages for a BCP-47 language (by prefix), English if not covered."""
    return _DEFAULTS.get(language_prefix(language), _DEFAULTS["en"])


def resolve_messages(language: str, overrides: Mapping[str, str] | None = None) -> CallMessages:
    """Defaults for ``language`` with the tenant's non-blank ``[messages]`` overrides applied.

    Unknown keys in ``overrides`` are ignored here (validation reports them).
    """
    base = default_messages(language)
    if not overrides:
        return base
    values = {key: getattr(base, key) for key in MESSAGE_KEYS}
    for key in MESSAGE_KEYS:
        text = overrides.get(key)
        if isinstance(text, str) and text.strip():
            values[key] = text.strip()
    return CallMessages(**values)


def fallback_greeting(tenant_name: str, language: str) -> str:
    """Polite opening line naming the business, in ``language`` (English if not covered)."""
    with_name, without_name = _GREETINGS.get(language_prefix(language), _GREETINGS["en"])
    name = " ".join(tenant_name.split())
    return with_name.format(name=name) if name else without_name
