"""Hand-off to a person and AI callbacks, as a tenant configures them (`[handoff]` and
`[callbacks]` in tenant.toml; checked by handoff_checks.py).

Plain values only: the numbers Exotel's Connect applet rings, the hours a person takes calls
(hours.py: in the tenant's time zone), and the words the agent says while putting the caller
through.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hours import Hours
from .messages import language_prefix

__all__ = [
    "DEFAULT_SAY",
    "DEFAULT_UNAVAILABLE",
    "NOTICE_VARIABLES",
    "CallbackRules",
    "Handoff",
]

# what the owner's notice about a hand-off that could not happen says, in placeholder order
NOTICE_VARIABLES: tuple[str, ...] = ("caller", "time", "why")
# What the agent says while putting the caller through, by language prefix (English otherwise).
DEFAULT_SAY: dict[str, str] = {
    "en": "Please hold on, I'm putting you through to someone from our team now.",
    "hi": "कृपया लाइन पर बने रहिए, मैं आपको अभी हमारी टीम के किसी व्यक्ति से जोड़ रही हूँ।",
}
# ... and when nobody can take the call now (outside the hours): a message instead.
DEFAULT_UNAVAILABLE: dict[str, str] = {
    "en": "Nobody from our team can come to the phone right now, but I can take a message "
    "and they will call you back. What would you like me to tell them?",
    "hi": "अभी हमारी टीम से कोई फ़ोन पर नहीं आ सकता, लेकिन मैं आपका संदेश ले सकती हूँ और वे "
    "आपको वापस फ़ोन करेंगे। मैं उन्हें क्या बताऊँ?",
}


@dataclass(frozen=True, slots=True)
class Handoff:
    """`[handoff]`: who takes a call the agent passes on, when, and how it rings."""

    numbers: tuple[str, ...]  # E.164, rung in this order
    hours: Hours
    ring_seconds: int = 30
    record: bool = False
    whisper: str = ""  # played to the person picking up before the caller is joined
    say: str = ""  # overrides DEFAULT_SAY
    unavailable: str = ""  # overrides DEFAULT_UNAVAILABLE
    caller_id: str = ""  # the ExoPhone shown to the person rung ("" = the number called)
    max_minutes: int = 60
    # the owner's WhatsApp template when a caller wanted a person and none could be rung
    # (placeholders: NOTICE_VARIABLES); "" = no message
    notify_template: str = ""

    def phrase(self, language: str) -> str:
        return self.say or DEFAULT_SAY.get(language_prefix(language), DEFAULT_SAY["en"])

    def unavailable_phrase(self, language: str) -> str:
        return self.unavailable or DEFAULT_UNAVAILABLE.get(
            language_prefix(language), DEFAULT_UNAVAILABLE["en"]
        )


@dataclass(frozen=True, slots=True)
class CallbackRules:
    """`[callbacks]`: when the AI may call a caller back, and from which ExoPhone."""

    caller_id: str  # the ExoPhone the caller sees
    hours: Hours
    per_number_per_day: int = 2
    ring_seconds: int = 30
