"""Medicines a caller names with their strength: "Amlodipine 5 mg", "Telma 40".

The shape (a capitalised name, then a number, maybe "mg") is how speech-to-text writes a
medicine; words that take a number the same way in an address or a title are no medicine.
"""

from __future__ import annotations

import re

from .text import wordset

__all__ = ["medicine_mentions"]

_MEDICINE = re.compile(r"\b([A-Z][a-z]+(?:[ -][A-Z][a-z]*)?)\s+(\d{1,4}(?:\.\d+)?)(\s*mg)?\b")
# "Flat 402", "Room 12", "Dr 5": a number after these is no strength ("flatt": speech-to-text)
_NOT_MEDICINE = wordset(
    "dr doctor flat flatt room number phone sir madam plot block wing lane road sector house "
    "building floor gate shop no"
)


def medicine_mentions(text: str) -> list[str]:
    """Each medicine said with its strength, as said ("Telma 40", "Amlodipine 5 mg")."""
    return [
        f"{m.group(1)} {m.group(2)}{' mg' if m.group(3) else ''}"
        for m in _MEDICINE.finditer(text)
        if m.group(1).split()[0].lower() not in _NOT_MEDICINE
    ]
