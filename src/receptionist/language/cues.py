"""Conversation acts in a caller's words: yes, no, goodbye, thanks, greeting, wrong number ...

Each cue has one table per language (English, romanised Hindi, Devanagari Hindi), and every
reader (the live brains and the post-call analyzer) uses the union, so a word one of them knows
is known to all. Phrases are matched as whole words at the start of what was said (yes/no) or
anywhere (goodbye, wrong number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .text import DEVANAGARI_LETTERS, lower_clean, nfc, wordset

__all__ = [
    "asks_order_status",
    "asks_total",
    "is_goodbye",
    "is_greeting",
    "is_no",
    "is_noise",
    "is_question",
    "is_thanks",
    "is_wrong_number",
    "is_yes",
    "question_strength",
    "sounds_unfinished",
    "wants_human",
    "wants_person",
]

# a word ends where no Latin or Devanagari letter follows (\b does not work after a vowel sign:
# "हाँ" ends in one, which is no \w for Python)
_END = r"(?![\w\u0900-\u097f])"

YES: dict[str, tuple[str, ...]] = {
    "en": ("yes", "yeah", "yep", "yup", "ya", "yah", "sure", "correct", "right", "that's right",
           "that is right", "exactly", "perfect", "ok", "okay", "fine", "alright", "all right",
           "of course", "absolutely", "confirm", "confirmed", "go ahead", "please do", "do it",
           "sounds good", "that's correct", "thats right", "yes please", "correct yes",
           "that's it", "thats it", "it is", "it's right", "done"),
    "hi-latn": ("haan", "han", "haa", "ha ji", "ji haan", "ji"),
    "hi": ("जी हाँ", "हाँ", "हां", "जी"),
}  # fmt: skip
NO: dict[str, tuple[str, ...]] = {
    "en": ("no", "nope", "nah", "not really", "not", "wrong", "incorrect", "that's wrong",
           "that is wrong", "that's not right", "not right", "wait", "hold on", "actually no"),
    "hi-latn": ("nahi", "nahin"),
    "hi": ("नहीं", "नही"),
}  # fmt: skip
WRONG_NUMBER: dict[str, tuple[str, ...]] = {
    "en": ("wrong number",),
    "hi-latn": ("galat number", "ghalat number"),
    "hi": ("गलत नंबर", "ग़लत नंबर", "गलत नम्बर", "ग़लत नम्बर"),
}
GOODBYE: dict[str, tuple[str, ...]] = {
    "en": ("bye", "goodbye", "good bye", "bye bye", "see you", "good night", "that's all",
           "that is all", "thats all", "that's it for now", "nothing else", "no thanks",
           "no thank you", "nothing more", "i'll call back", "i'll call you back",
           "i will call back", "i will call you back", "call later", "call you later",
           "let me think", "i'll think", "i will think", "i'll get back", "i will get back",
           "i'll discuss", "i will discuss", "hang up", "i'll walk in", "i will walk in"),
}  # fmt: skip
THANKS: dict[str, tuple[str, ...]] = {
    "en": ("thank you", "thanks", "thank u", "thankyou"),
    "hi-latn": ("dhanyavaad", "dhanyavad", "shukriya"),
}
# said before thanks without making it more than thanks ("great, thank you")
THANKS_LEAD: dict[str, tuple[str, ...]] = {
    "en": ("ok", "okay", "great", "good", "fine", "alright", "cool", "perfect", "nice"),
    "hi-latn": ("achha", "theek hai"),
}
GREETING: dict[str, tuple[str, ...]] = {
    "en": ("hello", "hi", "hey", "good morning", "good afternoon", "good evening",
           "how are you", "how are you doing", "there", "madam", "sir", "can you hear me",
           "am i audible"),
    "hi-latn": ("hai", "namaste", "namaskar", "ji"),
    "ta-latn": ("vanakkam",),
}  # fmt: skip
_NOISE_WORDS = wordset(
    "um umm uh uhh hmm hm mm mmm er erm ah ahh oh eh huh noise music static beep"
)


def _alternation(tables: Iterable[dict[str, tuple[str, ...]]]) -> str:
    phrases = {nfc(p) for table in tables for ps in table.values() for p in ps}
    # longest first, so "that's it for now" is tried before "that's it"
    return "|".join(re.escape(p) for p in sorted(phrases, key=lambda p: (-len(p), p)))


_YES_RE = re.compile(rf"^(?:{_alternation([YES])}){_END}", re.I)
_NO_RE = re.compile(rf"^(?:{_alternation([NO])}){_END}", re.I)
_WRONG_NUMBER_RE = re.compile(
    rf"(?<![\w\u0900-\u097f])(?:{_alternation([WRONG_NUMBER])}){_END}", re.I
)
_BYE_RE = re.compile(rf"\b(?:{_alternation([GOODBYE])})\b", re.I)
_THANKS_RE = re.compile(
    rf"^(?:(?:{_alternation([THANKS_LEAD])})[\s,.!]*)*(?:{_alternation([THANKS])})"
    r"(?: (?:so much|very much|a lot))?[\s,.!]*$",
    re.I,
)
_GREETING_RE = re.compile(rf"\b(?:{_alternation([GREETING])})\b", re.I)
_HUMAN = re.compile(
    r"\b(?:(?:speak|talk)\s+(?:to|with)\s+(?:a\s+|the\s+|some\s*one|some\s+body)?\s*"
    r"(?:human|person|real person|owner|manager|someone|somebody|staff|doctor|proprietor|boss|"
    r"receptionist)|human being|real person|connect me|transfer me|call me back|callback|"
    r"call back to me|have (?:the owner|someone|somebody) call)\b",
    re.I,
)
# Asking to be put through to a person now (not to be called back later): English, romanised and
# Devanagari Hindi ("malik se baat karni hai", "किसी इंसान से बात कराइए").
WANTS_PERSON: dict[str, tuple[str, ...]] = {
    "en": ("speak to a person", "speak to a human", "talk to a person", "talk to a human",
           "speak to the owner", "talk to the owner", "speak with the owner",
           "talk with the owner", "speak to someone", "talk to someone", "speak to somebody",
           "talk to somebody", "speak to the manager", "talk to the manager", "real person",
           "human being", "connect me", "transfer me", "put me through"),
    "hi-latn": ("malik se baat", "maalik se baat", "owner se baat", "manager se baat",
                "kisi se baat", "insaan se baat", "insan se baat", "aadmi se baat"),
    "hi": ("मालिक से बात", "किसी से बात", "इंसान से बात", "मैनेजर से बात", "ओनर से बात"),
}  # fmt: skip
_PERSON_RE = re.compile(rf"(?:^|\b)(?:{_alternation([WANTS_PERSON])}){_END}", re.I)
# Asking what an order comes to ("how much for two brownies?", "what's the total?", "kitna
# hoga?"): the live brains get the total from the `quote` tool, never add it up themselves.
ASKS_TOTAL: dict[str, tuple[str, ...]] = {
    "en": ("how much for", "how much will", "how much would", "how much does", "how much is",
           "how much are", "how much do", "how much in all", "how much altogether",
           "what's the total", "whats the total", "what is the total", "the total",
           "total amount", "total cost", "total price", "total bill", "what will it cost",
           "what would it cost", "what will that cost", "what would that cost",
           "what will it come to", "what does it come to", "what would it come to",
           "what's the damage", "how much in total", "price for", "cost for"),
    "hi-latn": ("kitna hoga", "kitne ka", "kitne ki", "kitna padega", "kitne paise",
                "total kitna", "total kya", "kul kitna", "kitna lagega", "kitne ka hoga"),
    "hi": ("कितना होगा", "कितने का", "कितने की", "कुल कितना", "टोटल कितना", "कितना लगेगा"),
}  # fmt: skip
# Asking about an earlier order or booking ("I ordered a cake yesterday, is it ready?", "what
# about my booking?", "mera order ready hai?").
ORDER_STATUS: dict[str, tuple[str, ...]] = {
    "en": ("my order", "my booking", "order status",
           "booking status", "status of my", "is it ready", "is my order", "is my cake",
           "is the order ready", "is the cake ready", "did you get my order",
           "i ordered", "i had ordered", "i have ordered", "i booked", "i had booked",
           "i placed an order", "i made a booking", "where is my order",
           "has my order", "what happened to my"),
    "hi-latn": ("mera order", "meri booking", "mera booking", "mera cake", "order ka kya",
                "booking ka kya", "order ready hai", "cake ready hai", "ready hua",
                "maine order kiya", "maine order diya", "maine booking ki", "order kab milega",
                "kab milega"),
    "hi": ("मेरा ऑर्डर", "मेरी बुकिंग", "ऑर्डर का क्या", "बुकिंग का क्या", "तैयार हुआ",
           "मैंने ऑर्डर"),
}  # fmt: skip
_TOTAL_RE = re.compile(rf"(?<![\w\u0900-\u097f])(?:{_alternation([ASKS_TOTAL])}){_END}", re.I)
_ORDER_STATUS_RE = re.compile(
    rf"(?<![\w\u0900-\u097f])(?:{_alternation([ORDER_STATUS])}){_END}", re.I
)
_QUESTION_START = re.compile(
    r"^(?:what|what's|whats|when|where|which|who|whom|why|how|do|does|did|is|are|can|could|"
    r"will|would|should|may|is there|are there|tell me|i want to know|i wanted to know|"
    r"i'd like to know|could you tell|can you tell|kya|kitna|kitne|kab|kahan)\b",
    re.I,
)


def _strip_lead(text: str) -> str:
    return re.sub(r"^(?:um+|uh+|hmm+|er+|ah+|oh|well|so)\b[\s,.!]*", "", lower_clean(text)).strip()


def is_noise(text: str) -> bool:
    """Nothing a receptionist could act on: empty, punctuation, or only um/uh/hmm.

    Devanagari words count as words (a Hindi "गलत नंबर" is no noise).
    """
    said = re.findall(f"[a-z0-9'{DEVANAGARI_LETTERS}]+", lower_clean(text))
    return not said or all(w in _NOISE_WORDS for w in said)


def is_yes(text: str) -> bool:
    """Starts with a yes ("yes", "sure", "haan ji", "हाँ") and is no "no"."""
    s = _strip_lead(text)
    return bool(_YES_RE.match(s)) and not _NO_RE.match(s)


def is_no(text: str) -> bool:
    return bool(_NO_RE.match(_strip_lead(text)))


def is_wrong_number(text: str) -> bool:
    """The caller says they dialled the wrong number ("wrong number", "गलत नंबर")."""
    return bool(_WRONG_NUMBER_RE.search(nfc(text)))


def is_goodbye(text: str) -> bool:
    """The caller is ending the call ("thank you, bye", "that's all", "I'll call back later")."""
    return bool(_BYE_RE.search(lower_clean(text)))


def is_thanks(text: str) -> bool:
    """Only thanks ("great, thank you"): after an answer that closes an enquiry."""
    return bool(_THANKS_RE.match(lower_clean(text)))


def is_greeting(text: str) -> bool:
    """A greeting and nothing else ("Hello?", "Hi, good morning")."""
    low = lower_clean(text)
    rest = _GREETING_RE.sub(" ", low)
    return bool(_GREETING_RE.search(low)) and not re.sub(r"[\s,.!?]+", "", rest)


def wants_human(text: str) -> bool:
    """A person now or a call back later ("speak to the owner", "have someone call me")."""
    return wants_person(text) or bool(_HUMAN.search(lower_clean(text)))


def wants_person(text: str) -> bool:
    """The caller asks to be put through to a person now ("can I talk to the owner?", "मालिक से
    बात करनी है")."""
    return bool(_PERSON_RE.search(nfc(text).lower()))


def asks_total(text: str) -> bool:
    """The caller asks what an order or some items come to ("how much for two milk breads?",
    "what's the total?", "total kitna hoga?")."""
    return bool(_TOTAL_RE.search(nfc(lower_clean(text))))


def asks_order_status(text: str) -> bool:
    """The caller asks about an order or booking made before ("is my cake ready?", "what about
    my booking?", "mera order ready hai?")."""
    return bool(_ORDER_STATUS_RE.search(nfc(lower_clean(text))))


def question_strength(text: str) -> int:
    """2: clearly asks (question word first, "how much"); 1: only a '?' (speech-to-text adds
    one to a rising "Saturday?"); 0: no question."""
    s = _strip_lead(text)
    s = re.sub(r"^(?:and|also|then|but|hi|hello|sorry|excuse me|ok|okay)\b[\s,]*", "", s)
    if _QUESTION_START.match(s):
        return 2
    if re.search(
        r"\bhow much\b|\bprice of\b|\bcost of\b|\bwhat time\b|\btimings?\b|"
        r"\bdo you\b|\bis there\b|\bare you\b|\bcan i\b|\bcan you\b",
        s,
    ):
        return 2
    return 1 if "?" in s else 0


def is_question(text: str) -> bool:
    """Asks something: a '?', a question word first, or 'how much' / 'price of' anywhere."""
    return question_strength(text) > 0


# Last words after which a speaker has not finished: "Name is Kavita, | number ...",
# "two cakes and | ...", "my number is | ...". Pronouns, articles and prepositions cannot end a
# sentence either; a bare number can ("one kilo, at five").
UNFINISHED_ENDINGS: dict[str, tuple[str, ...]] = {
    "en": ("and", "or", "but", "so", "because", "then", "also", "plus", "with", "without",
           "for", "to", "at", "on", "in", "of", "from", "by", "the", "a", "an", "my", "your",
           "our", "number", "name", "number is", "name is", "would like", "um", "uh", "er",
           "it's", "i'm", "i", "we"),
    "hi-latn": ("aur", "ya", "ki", "ka", "ke", "mera", "meri", "mere", "se", "ko", "naam"),
    "hi": ("और", "या", "की", "का", "के", "मेरा", "मेरी", "मेरे", "से", "को", "नाम"),
}  # fmt: skip
_UNFINISHED_RE = re.compile(
    rf"(?:^|[^\w\u0900-\u097f'])(?:{_alternation([UNFINISHED_ENDINGS])})\s*$", re.I
)


def sounds_unfinished(text: str) -> bool:
    """Speech-to-text's words for a turn that stops mid-sentence: at a comma, a dash or an
    ellipsis, or on a word nothing ends on ("and", "my number is"). The engine then waits a
    little longer for the rest before it answers."""
    s = nfc(text).strip()
    if not s:
        return False
    if s.endswith((",", "-", "–", "...", "…", ":")):
        return True
    return bool(_UNFINISHED_RE.search(s.rstrip(" ")))
