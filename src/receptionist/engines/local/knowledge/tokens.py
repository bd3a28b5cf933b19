"""Search tokens: words of a question and of the files, stemmed and with synonyms, so both meet."""

from __future__ import annotations

import re

from receptionist.language.numbers import NUMBER_WORDS
from receptionist.language.text import (
    STOPWORDS,
    nfc,
    stem,
)

_NUMBER = r"\d+(?:,\d{2,3})*(?:\.\d+)?"  # 1,200 and 1,00,000 but not the comma after "40,"


# word (after stemming) -> canonical token, so questions and files meet on the same word
_SYNONYMS: dict[str, str] = {}


def _syn(canonical: str, words: str) -> None:
    for w in words.split():
        _SYNONYMS[w] = canonical
        _SYNONYMS.setdefault(stem(w), canonical)  # "charges" -> "charg" is a price word too


_syn("hours", "hour time timing open opening close closing closed shut timings sit sits")
_syn(
    "price",
    "cost price rate charge fee rupee rupees expensive cheap amount pricing costing kitna kitne"
    " kitni",
)
_syn("deliver", "delivery deliver delivering home courier")
_syn("address", "address where located location locate direction situated reach")
_syn("payment", "pay payment paying upi card cash gpay paytm online")
_syn("eggless", "eggless egg-free eggfree")
_syn("park", "park parking")
_syn("appointment", "appointment booking book slot")
_syn("doctor", "doctor dr doc physician")
_syn("child", "kid child children baby son daughter paediatrician pediatrician paediatric")
_syn("ladies", "lady ladies woman women female girl")
_syn("gents", "gent gents man men male gentleman boy")
_syn("colour", "colour color")
_syn("report", "report result")
_syn("medicine", "medicine medical pharmacy chemist tablet dawai dawa")
_syn("discount", "discount concession")
_syn("stock", "stock stocks keep carry")
_syn("veterinary", "veterinary vet pet dog puppy cat kitten animal cattle")
_syn("monday", "monday mon")
_syn("tuesday", "tuesday tue tues")
_syn("wednesday", "wednesday wed")
_syn("thursday", "thursday thu thur thurs")
_syn("friday", "friday fri")
_syn("saturday", "saturday sat")
_syn("sunday", "sunday sun")
_syn("festival", "festival holiday diwali deepavali pongal")

_TOKEN_RE = re.compile(r"[a-z0-9]+")
_CLOCK_TIME = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)(?![a-z])")


def _prep(text: str) -> str:
    low = nfc(text).lower().replace("₹", " rupees ").replace("’", "'")
    low = re.sub(r"'s\b|'re\b|'ll\b|'d\b|'ve\b|'m\b", "", low)
    low = re.sub(r"how\s+much|how\s+many\s+rupees", " price ", low)
    low = re.sub(r"\b(\d+)\s*(?:hours?|hrs?)\b", r"\1 duration", low)  # "48 hours" is no timing
    low = _CLOCK_TIME.sub(" hours ", low)  # "8:00 am", "10 pm": a clock time is about timings
    low = re.sub(r"\bwhat\s+time\b|\bwhen\s+do\s+you\s+(?:open|close)\b", " hours ", low)
    low = re.sub(r"\b(sugar|gluten|egg)[-\s]+free\b", r"\1 free", low)
    low = re.sub(r"\bweek\s*ends?\b", " saturday sunday ", low)
    low = re.sub(r"\bweek\s*days?\b", " monday tuesday wednesday thursday friday ", low)
    return low


def tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Search tokens of English text: lower-cased, stemmed, synonyms folded, stopwords dropped."""
    out: list[str] = []
    for raw in _TOKEN_RE.findall(_prep(text)):
        if raw in _SYNONYMS:
            out.append(_SYNONYMS[raw])
            continue
        if not keep_stopwords and raw in STOPWORDS:
            continue
        if raw in NUMBER_WORDS:
            out.append(str(NUMBER_WORDS[raw]))
            continue
        w = _SYNONYMS.get(raw) or _SYNONYMS.get(stem(raw)) or stem(raw)
        out.append(w)
    return out
