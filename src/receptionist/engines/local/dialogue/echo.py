"""The agent's own words heard back in a caller turn are not the caller's.

On a phone line the agent's voice can leak into what speech-to-text hears (a caller speaking
over the reply, an echo on the line): "May I have your name please Ravi" would otherwise give a
name, a date or an item the caller never said. Runs of four or more words that repeat the
agent's last reply word for word are dropped before the turn is read.
"""

from __future__ import annotations

import re

MIN_RUN = 4  # shorter runs ("for pickup tomorrow") are what callers say back on their own
_WORD = re.compile(r"[A-Za-z0-9']+")


def _key(word: str) -> str:
    return word.lower().strip("'")


def strip_echo(caller: str, agent: str) -> str:
    """``caller`` without the runs of words it shares, in order, with ``agent``."""
    said = [_key(w) for w in _WORD.findall(agent)]
    if len(said) < MIN_RUN:
        return caller
    grams = {tuple(said[i : i + MIN_RUN]) for i in range(len(said) - MIN_RUN + 1)}
    spans = [(m.start(), m.end(), _key(m.group(0))) for m in _WORD.finditer(caller)]
    drop = [False] * len(spans)
    for i in range(len(spans) - MIN_RUN + 1):
        if tuple(w for _, _, w in spans[i : i + MIN_RUN]) in grams:
            for j in range(i, i + MIN_RUN):
                drop[j] = True
    if not any(drop):
        return caller
    out, pos = [], 0
    for (start, end, _), gone in zip(spans, drop, strict=True):
        if gone:
            out.append(caller[pos:start])
            pos = end
    out.append(caller[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip(" ,.") or ""
