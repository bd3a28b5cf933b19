"""A name spelled out letter by letter ("K-I-R-A-N", "R. A. V. I", "s u m a n") read as the word.

The brain offers to take a name spelled when it did not catch it; speech-to-text writes the
letters apart, so they are joined before the name parser reads the turn.
"""

from __future__ import annotations

import re

#: three or more single letters, each apart from the next by a dash, dot, comma or space
_LETTERS = re.compile(r"(?<![A-Za-z'])(?:[A-Za-z][\s.,-]+){2,}[A-Za-z](?![A-Za-z'])\.?")


def join_spelled_letters(text: str) -> str:
    """``text`` with each run of spelled letters written as one capitalised word."""

    def join(m: re.Match[str]) -> str:
        letters = re.sub(r"[^A-Za-z]", "", m.group(0))
        if len(letters) < 3:
            return m.group(0)
        return letters.capitalize()

    return _LETTERS.sub(join, text)
