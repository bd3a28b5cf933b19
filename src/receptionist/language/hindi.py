"""Hindi and Hinglish: Devanagari transliterated, Hindi lines put into rough English.

The local engine's voice speaks English only and the analyzer compares names across scripts, so
Devanagari text is either glossed (a small glossary, loanwords, the file's own glosses such as
"लैब टेस्ट / Lab tests") or transliterated ("रमेश गुप्ता" -> "ramesh gupta").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .text import DEVANAGARI_LETTERS, has_devanagari, nfc

__all__ = [
    "LOANWORDS",
    "hindi_to_english",
    "learn_glossary",
    "loanwords_in_latin",
    "transliterate",
]

_DEV_WORD = re.compile(f"[{DEVANAGARI_LETTERS}]+")

# English words written in Devanagari, as Hindi files and speech-to-text spell them.
LOANWORDS = {
    "थायराइड": "thyroid", "थाइरोइड": "thyroid", "शुगर": "sugar", "टेस्ट": "test",
    "रिपोर्ट": "report", "केक": "cake", "विटामिन": "vitamin", "यूरिन": "urine", "ब्लड": "blood",
    "लिपिड": "lipid", "प्रोफाइल": "profile", "हेयरकट": "haircut", "फेशियल": "facial",
    "चॉकलेट": "chocolate", "पाइनएप्पल": "pineapple", "डॉक्टर": "doctor", "डॉ.": "dr.",
    # parts of English business names ("लाइफ़केयर मेडिकोज़" is "Lifecare Medicos")
    "लाइफ़": "life", "लाइफ": "life", "केयर": "care", "हेल्थ": "health", "प्लस": "plus",
    "सिटी": "city", "सेंटर": "centre", "मेडिकोज़": "medicos", "मेडिकोज": "medicos",
    "फ़ार्मा": "pharma", "फार्मा": "pharma", "मेडिकेयर": "medicare", "वेल": "well",
}  # fmt: skip
LOANWORDS = {nfc(k): v for k, v in LOANWORDS.items()}


def loanwords_in_latin(text: str) -> str:
    """ "थायराइड test" -> "thyroid test": English words written in Devanagari, in Latin letters."""
    for dev, lat in LOANWORDS.items():
        text = text.replace(dev, lat)
    return text


_DEV_VOWELS = {
    "अ": "a", "आ": "aa", "इ": "i", "ई": "ee", "उ": "u", "ऊ": "oo", "ए": "e", "ऐ": "ai",
    "ओ": "o", "औ": "au", "ऋ": "ri", "ऑ": "o",
}  # fmt: skip
_DEV_MATRAS = {
    "ा": "a", "ि": "i", "ी": "i", "ु": "u", "ू": "u", "े": "e", "ै": "ai", "ो": "o",
    "ौ": "au", "ृ": "ri", "ॉ": "o", "ॅ": "e",
}  # fmt: skip
_DEV_CONS = {
    "क": "k", "ख": "kh", "ग": "g", "घ": "gh", "ङ": "n", "च": "ch", "छ": "chh", "ज": "j",
    "झ": "jh", "ञ": "n", "ट": "t", "ठ": "th", "ड": "d", "ढ": "dh", "ण": "n", "त": "t",
    "थ": "th", "द": "d", "ध": "dh", "न": "n", "प": "p", "फ": "ph", "ब": "b", "भ": "bh",
    "म": "m", "य": "y", "र": "r", "ल": "l", "व": "v", "श": "sh", "ष": "sh", "स": "s",
    "ह": "h", "क़": "q", "ख़": "kh", "ग़": "g", "ज़": "z", "ड़": "r", "ढ़": "rh", "फ़": "f",
}  # fmt: skip


_INHERENT = "\x00"  # a consonant's own 'a', until schwa deletion decides whether it is said
_Unit = tuple[str, str]  # (consonant in Latin letters or "", vowel, "" after a virama)


def _units(word: str) -> list[_Unit]:
    """One Devanagari word as syllable units: consonant and the vowel that follows it."""
    units: list[_Unit] = []
    chars = list(word)
    i = 0
    while i < len(chars):
        c = chars[i]
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if c + nxt in _DEV_CONS and nxt == "़":
            c, i = c + nxt, i + 1
            nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if c in _DEV_CONS:
            if nxt == "्":
                units.append((_DEV_CONS[c], ""))
                i += 2
            elif nxt in _DEV_MATRAS:
                units.append((_DEV_CONS[c], _DEV_MATRAS[nxt]))
                i += 2
            else:
                units.append((_DEV_CONS[c], _INHERENT))
                i += 1
        elif c in _DEV_VOWELS:
            units.append(("", _DEV_VOWELS[c]))
            i += 1
        elif c in "ंँ" and units:  # nasalised: the vowel before it is said, with an n
            cons, vowel = units[-1]
            units[-1] = (cons, ("a" if vowel == _INHERENT else vowel) + "n")
            i += 1
        else:  # visarga, a lone nukta or virama
            i += 1
    return units


def _delete_schwas(units: list[_Unit]) -> list[_Unit]:
    """Hindi does not say every inherent 'a': never at the end of a word ("नगर" nagar), nor
    between two sounded syllables when a consonant with a vowel follows ("गोमती" gomti,
    "लखनऊ" lakhnau, "समझना" samajhna), deciding from the end of the word."""
    out = list(units)
    if out and out[-1][1] == _INHERENT:
        out[-1] = (out[-1][0], "")
    for i in range(len(out) - 2, 0, -1):
        cons, vowel = out[i]
        if vowel != _INHERENT:
            continue
        prev_vowel = out[i - 1][1]
        nxt_cons, nxt_vowel = out[i + 1]
        if prev_vowel and nxt_cons and nxt_vowel:
            out[i] = (cons, "")
    return [(c, "a" if v == _INHERENT else v) for c, v in out]


def transliterate(text: str) -> str:
    """Rough Devanagari -> Latin ("रमेश गुप्ता" -> "ramesh gupta", "गोमती नगर" -> "gomti nagar"),
    for comparing names and saying places.

    Inherent 'a' is dropped where Hindi drops it (:func:`_delete_schwas`); long and short vowels
    are folded together. Latin text passes through unchanged (lower-cased).
    """

    def word(m: re.Match[str]) -> str:
        return "".join(c + v for c, v in _delete_schwas(_units(m.group(0))))

    res = _DEV_WORD.sub(word, nfc(text)).lower()
    return res.replace("aa", "a").replace("ee", "i").replace("oo", "u")


# A small glossary of words that show up in Indian business information written in Hindi.
# Longer phrases first; anything not listed is transliterated (names of places, people, shops).
_HINDI_GLOSSARY: dict[str, str] = {
    "बैठने का समय": "timings", "खून की पूरी जाँच": "complete blood count",
    "खाली पेट": "fasting", "उसी दिन": "same day", "अगले दिन": "next day",
    "अगला दिन": "next day", "पहली बार": "first visit", "बच्चों की": "children's",
    "बच्चों का": "children's", "बच्चों के": "children's", "के पास": "near",
    "के हिसाब से": "depending on", "ले सकते हैं": "can be collected",
    "भेजी जाती है": "is sent", "भेजी जाती हैं": "are sent", "दी जाती है": "is given",
    "देखा जाता है": "are seen", "आ सकते हैं": "can come", "नहीं है": "is not available",
    "से ज़्यादा": "over", "से ज्यादा": "over", "से कम": "under", "एक दिन पहले": "a day ahead",
    "सोमवार": "Monday", "मंगलवार": "Tuesday", "बुधवार": "Wednesday", "गुरुवार": "Thursday",
    "शुक्रवार": "Friday", "शनिवार": "Saturday", "रविवार": "Sunday", "इतवार": "Sunday",
    "रोज़": "daily", "रोज": "daily", "हर दिन": "every day", "छुट्टी": "closed",
    "बंद": "closed", "खुला": "open", "समय": "timings", "दिन": "day", "घंटे": "hours",
    "साल": "years", "महीने": "months", "हफ़्ते": "weeks", "तक": "until", "से": "to",
    "और": "and", "या": "or", "में": "in", "पर": "on", "भी": "also", "सिर्फ़": "only",
    "सिर्फ": "only", "सभी": "all", "अन्य": "other", "बिना": "without", "सेवाएँ": "services",
    "सेवा": "service", "डॉक्टर": "doctor", "डॉ.": "Dr.", "डॉ": "Dr.", "क्लिनिक": "clinic",
    "फ़ीस": "fee", "फीस": "fee", "परामर्श": "consultation", "रिपोर्ट": "report",
    "टेस्ट": "test", "जाँच": "test", "जांच": "test", "लैब": "lab", "सैंपल": "sample",
    "टीकाकरण": "vaccination", "टीके": "vaccines", "टीका": "vaccine", "दवा": "medicine",
    "दवाई": "medicine", "दवाइयाँ": "medicines", "दवाइयां": "medicines", "मरीज़ों": "patients",
    "मरीज़": "patient", "मरीजों": "patients", "बच्चे": "children", "बच्चों": "children",
    "उम्र": "age", "छूट": "discount", "भुगतान": "payment", "नकद": "cash", "कार्ड": "card",
    "पता": "address", "बुक": "book", "करें": "", "करे": "", "पहले": "before",
    "दोबारा": "again", "घर": "home", "लेना": "collection", "लगाना": "",
    "कीमत": "price", "दाम": "price", "मोबाइल": "mobile", "नंबर": "number",
    "रजिस्टर्ड": "registered", "प्रिंट": "print", "मेडिकल": "medical", "स्टोर": "store",
    "पास": "near", "सामान्य": "general", "चिकित्सक": "physician", "बुखार": "fever",
    "इंजेक्शन": "injection", "ड्रेसिंग": "dressing", "अपॉइंटमेंट": "appointment",
    "बिल": "bill", "पर्ची": "receipt", "नहीं": "not", "सरकारी": "government",
    "शेड्यूल": "schedule", "आपकी": "yours", "आपका": "yours", "एक": "one", "दो": "two",
    "विशेषज्ञ": "specialist", "समस्या": "problem", "ब्लड": "blood", "प्रेशर": "pressure",
    "थायरॉइड": "thyroid", "डायबिटीज़": "diabetes", "गर्भावस्था": "pregnancy",
    "पीरियड्स": "periods", "पेट": "stomach", "तकलीफ़": "problems", "तकलीफ": "problems",
    "स्त्री": "women's", "रोग": "diseases", "प्रसूति": "obstetrics",
    "वाले": "", "वाला": "", "का": "", "की": "", "के": "", "को": "", "है": "", "हैं": "",
    "जी": "",
}  # fmt: skip
# the built-in words win over the loanwords' lower-case spellings ("डॉ." is "Dr.")
_HINDI_GLOSSARY = {**LOANWORDS, **{nfc(k): v for k, v in _HINDI_GLOSSARY.items()}}

_DAYPART = {"सुबह": "am", "दोपहर": "pm", "शाम": "pm", "रात": "pm"}
_DAYPART_TIME = re.compile(nfc(r"(सुबह|दोपहर|शाम|रात)\s*(\d{1,2})(?::(\d{2}))?(?:\s*बजे)?"))
_BAJE = re.compile(nfc(r"(\d{1,2})(?::(\d{2}))?\s*बजे"))
_BARE_AFTER_RANGE = re.compile(
    r"\b(\d{1,2}(?::\d{2})?)\s*(am|pm)\s+to\s+(\d{1,2}(?::\d{2})?)(?![\d:])(?!\s*[ap]m)"
)
_GLOSS_SLASH = re.compile(
    nfc(r"((?:\d+\s*)?[\u0900-\u097f][^/|:(),\n]*?)\s*/\s*([A-Za-z][A-Za-z .&'-]*[A-Za-z.])")
)
_GLOSS_PAREN = re.compile(nfc(r"((?:\d+\s*)?[\u0900-\u097f][^()/|:,\n]*?)\s*\(([A-Za-z][^()]*)\)"))


def _daypart_time(m: re.Match[str]) -> str:
    part, hour, minute = m.group(1), int(m.group(2)), m.group(3)
    suffix = _DAYPART[part]
    if part == "दोपहर" and hour in (11,):
        suffix = "am"
    if hour == 12:
        suffix = "pm"
    return f"{hour}:{minute} {suffix}" if minute else f"{hour} {suffix}"


def learn_glossary(texts: Iterable[str]) -> dict[str, str]:
    """Devanagari -> English pairs the files themselves give ("लैब टेस्ट / Lab tests")."""
    pairs: dict[str, str] = {}
    for text in texts:
        text = nfc(text)
        for rx in (_GLOSS_SLASH, _GLOSS_PAREN):
            for m in rx.finditer(text):
                native = m.group(1).strip(" -#*")
                english = m.group(2).strip(" .") if rx is _GLOSS_SLASH else m.group(2).strip()
                if len(native.split()) > 4:
                    continue
                if native and english and not has_devanagari(english):
                    pairs.setdefault(native, english)
    return pairs


def hindi_to_english(text: str, learned: dict[str, str] | None = None) -> str:
    """Rough English for a line mixing Hindi and English, good enough to speak facts aloud.

    Keeps the file's own English glosses, converts "सुबह 10:00" style times to "10:00 am",
    translates glossary words and transliterates the rest (mostly names of places and people).
    """
    text = nfc(text)
    if not has_devanagari(text):
        return text
    text = _GLOSS_SLASH.sub(lambda m: m.group(2), text)
    text = _GLOSS_PAREN.sub(lambda m: m.group(2), text)
    text = _DAYPART_TIME.sub(_daypart_time, text)
    text = _BAJE.sub(
        lambda m: f"{m.group(1)}:{m.group(2)} o'clock" if m.group(2) else f"{m.group(1)} o'clock",
        text,
    )
    text = re.sub(nfc(r"(₹\s*[\d,]+)\s*से(?=\s*$|\s*[;,।.)])"), r"from \1", text)
    text = re.sub(nfc(r"(\d+(?::\d\d)?\s*(?:am|pm|o'clock))\s*तक"), r"until \1", text)
    # phrases first (the built-in glossary wins over the file's own glosses for common words)
    phrases = {**(learned or {}), **_HINDI_GLOSSARY}
    for native, english in sorted(phrases.items(), key=lambda kv: -len(kv[0])):
        if native in text:
            text = re.sub(
                rf"(?<![{DEVANAGARI_LETTERS}]){re.escape(native)}(?![{DEVANAGARI_LETTERS}])",
                english,
                text,
            )
    text = _DEV_WORD.sub(lambda m: _word_to_english(m.group(0)), text)
    text = text.replace("।", ".").replace("॥", ".")
    text = re.sub(r"\b([2-9]|\d{2,}) day\b", r"\1 days", text)
    text = re.sub(r"\(([^()]+?)\s+near\)", r"(near \1)", text)
    text = _BARE_AFTER_RANGE.sub(_carry_daypart, text)
    return re.sub(r"\s+([,.;:])", r"\1", re.sub(r"[ \t]+", " ", text)).strip()


def _carry_daypart(m: re.Match[str]) -> str:
    """'6:00 pm to 8:30' -> '6:00 pm to 8:30 pm' (Hindi says the part of day once)."""
    first, part, second = m.group(1), m.group(2), m.group(3)
    h1, h2 = int(first.split(":")[0]), int(second.split(":")[0])
    if part == "am" and h2 < h1:
        part = "pm"  # "10:00 am to 1:00" is 1 pm
    return f"{first} {m.group(2)} to {second} {part}"


def _word_to_english(word: str) -> str:
    if word in _HINDI_GLOSSARY:
        return _HINDI_GLOSSARY[word]
    if word in ("।", "॥"):
        return "."
    compound = _loanword_compound(word)
    if compound:
        return compound.capitalize()
    return transliterate(word).capitalize()


def _loanword_compound(word: str) -> str:
    """Two English loanwords written as one Devanagari word ("लाइफ़केयर" -> "lifecare"), or ""."""
    for cut in range(2, len(word) - 1):
        head, tail = word[:cut], word[cut:]
        if head in LOANWORDS and tail in LOANWORDS:
            return LOANWORDS[head] + LOANWORDS[tail]
    return ""
