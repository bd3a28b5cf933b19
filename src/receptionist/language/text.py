"""Text basics: Unicode form, words, sentences, the one stop-word list and the one stemmer.

Callers speak English, Hindi (Devanagari) and romanised Hinglish, and speech-to-text writes what
it hears in any of them, so everything here keeps Devanagari letters as word characters.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "DEVANAGARI_LETTERS",
    "STOPWORDS",
    "clean",
    "content_words",
    "has_devanagari",
    "lower_clean",
    "nfc",
    "normalise",
    "rx",
    "sentences",
    "singular",
    "singular_words",
    "stem",
    "weights_said_plainly",
    "words",
    "wordset",
]

# Devanagari letters without the danda punctuation (। ॥), so "छुट्टी।" is the word "छुट्टी"
DEVANAGARI_LETTERS = "\u0900-\u0963\u0966-\u097f"
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")


def nfc(text: str) -> str:
    """NFC form: "ढ़" and "ड़" always as letter + nukta, so patterns and speech compare equal."""
    return unicodedata.normalize("NFC", text)


def rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A regular expression compiled from its NFC form (it then matches NFC text)."""
    return re.compile(nfc(pattern), flags)


def wordset(text: str) -> frozenset[str]:
    """A set of words written as one string (long word lists stay readable)."""
    return frozenset(text.split())


def has_devanagari(text: str) -> bool:
    return bool(_DEVANAGARI.search(text))


_WORD_RE = rx(r"[0-9a-z\u0900-\u097f]+")
_SENT_SPLIT = rx(r"(?<=[.?!।])\s+|\n+")


def words(text: str) -> list[str]:
    """Lower-case words: Latin letters, digits and Devanagari."""
    return _WORD_RE.findall(text.lower())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_SPLIT.split(text) if s.strip()]


def clean(text: str) -> str:
    """Speech-to-text output tidied: one line, single spaces, no stray punctuation runs."""
    s = nfc(text or "").replace("\n", " ")
    s = re.sub(r"\[[^\]]*\]|\([^)]*noise[^)]*\)", " ", s)  # "[noise]", "(background noise)"
    s = re.sub(r"\s+", " ", s)
    return s.strip(" \t-–—")


def lower_clean(text: str) -> str:
    """:func:`clean`, lower-cased, with typographic apostrophes made plain."""
    return clean(text).lower().replace("’", "'")


def weights_said_plainly(text: str) -> str:
    """Weights said the way :func:`receptionist.language.quantities.extract_quantities` reads them.

    "half a kilo" -> "half kilo", "a kilo" -> "1 kilo", "quarter kg" -> "250 g".
    """
    s = re.sub(r"\bhalf an?\s+(kg|kgs|kilo|kilos|kilogram)\b", r"half \1", text, flags=re.I)
    s = re.sub(r"\b(?:a|one)\s+quarter\s+(?:of\s+a\s+)?(?:kg|kilo)\b|\bquarter\s+(?:kg|kilo)\b",
               "250 g", s, flags=re.I)  # fmt: skip
    return re.sub(r"\b(?:a|an)\s+(kg|kilo|kilogram)\b", r"1 \1", s, flags=re.I)


def normalise(text: str) -> str:
    """Lower-case, '&'/'+' as 'and', no apostrophes or hyphens: how item names are matched."""
    s = weights_said_plainly(nfc(text)).lower().replace("’", "'")
    s = re.sub(r"\s*[&+]\s*", " and ", s)
    s = re.sub(r"(\w)'s?\b", r"\1", s)
    s = re.sub(r"[-/]", " ", s)
    s = re.sub(r"\bdoctor\b", "dr", s)
    s = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", s)  # "Dr." -> "dr", but "1.5" stays
    s = re.sub(r"[^a-z0-9\u0900-\u097f. ]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()


# Words that say nothing about what a call or a fact is about: English function words and
# phone-call filler, Hindi (Devanagari) and romanised Hinglish postpositions and auxiliaries.
STOPWORDS = wordset("""
    a an the and or of to for in on at by with from is are was were be been am it its this
    that these those i me my we our us you your he she they them his her their what which who
    whom how when where why do does did doing can could would should will shall may might must
    not no yes if as than then so also just about into out up down over such any some there here
    has have had having get got tell know please want wanted like need needs make makes
    take near work working accept provide allow come offer serve sell sells available exactly
    really actually kindly sir madam ji hello hi hey okay ok um uh hmm well let see thing things
    something anything give much many very bit little all only other else same one ones kind
    sort per each e g eg etc without own more most s t i'm it's that's what's don't i'd i'll
    you're we're want'd
    है हैं का की के को में से और या पर भी तो ही था थी थे
    hai hain ka ki ke ko mein se aur ya par bhi toh tha thi
    kya na bhaiya bhai didi accha acha chahiye milta milti milte milega milegi milenge hota
    hoti hote hoga hogi""")


# Plural endings and what they become ("brownies" -> "browny", "loaves" -> "loaf").
_PLURALS = (
    ("ies", "y"),
    ("ves", "f"),
    ("sses", "ss"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("xes", "x"),
)


def singular(word: str) -> str:
    """'brownies' -> 'browny', 'loaves' -> 'loaf'; other endings untouched (unlike stem).

    Item names keep their spelling (an item's alias must still match what the caller says, see
    the knowledge's word patterns), so they are only made singular, never stemmed.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in _PLURALS:
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def singular_words(phrase: str) -> str:
    return " ".join(singular(w) for w in phrase.split())


def stem(word: str) -> str:
    """Cheap English stemmer: plurals and -ing/-ed, enough to make 'brownies' meet 'brownie'.

    Ours rather than Snowball's: Snowball makes "brownie" "browni" and "loaves" "loav", which the
    synonym table and the knowledge tests (``tokens("brownies") == ["browny"]``) do not expect.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in _PLURALS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)] + repl
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ie") and len(word) > 4:
        return word[:-2] + "y"  # "brownie" and "brownies" both -> "browny"
    if word.endswith("e") and not word.endswith(("ee", "ye")) and len(word) > 4:
        return word[:-1]  # "advance" meets "advanced", "charge" meets "charged"
    return word


def content_words(text: str, also_stop: frozenset[str] = frozenset()) -> list[str]:
    """Stemmed words of ``text`` without stop words (nor ``also_stop``) or single letters."""
    return [stem(w) for w in words(text) if w not in STOPWORDS | also_stop and len(w) > 1]
