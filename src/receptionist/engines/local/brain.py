"""The "brain" of the local voice engine: caller text in, receptionist reply text out.

The local engine runs speech-to-text, asks a brain what to say, and speaks the answer with
text-to-speech. Brains are interchangeable behind :class:`Brain`:

- ``grounded`` (:mod:`.grounded`, the default): deterministic rules over the tenant's own files,
  no language model, nothing invented;
- a future ``llm`` brain may keep the same :class:`DialogueState` (what was understood and
  collected) and the facts retrieved by :mod:`.knowledge`, and only word the reply.

That is why the state is a plain mutable dataclass and every :class:`BrainReply` carries the facts
it was built from: the dialogue logic and the wording can be separated later without changing the
engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from .knowledge import MenuItem, OrderLine, Quote

__all__ = ["Brain", "BrainReply", "Choice", "DialogueState", "StreamingBrain"]


@dataclass(frozen=True, slots=True)
class BrainReply:
    """What to say next and whether to hang up afterwards.

    ``facts`` are the lines of the tenant's files the reply relies on (spoken form), ``intent`` the
    call type understood so far, ``reason`` a short machine-readable tag of why the brain said it
    ("answer", "ask:date", "confirm", "closed", "not_understood", "no_information" ...), for logs
    and tests.
    """

    text: str
    end_call: bool = False
    intent: str | None = None
    facts: tuple[str, ...] = ()
    reason: str = ""


@dataclass(slots=True)
class Choice:
    """A "which one?" question waiting for the caller: the same name fits several items."""

    field: str  # the detail it is for ("items", "service", ...)
    options: list[MenuItem]
    labels: list[str]  # how each option was read out, same order
    count: int | None = None
    kg: Decimal | None = None
    packs: int | None = None


@dataclass(slots=True)
class DialogueState:
    """Everything one call has established so far (one per call, owned by its brain).

    ``details`` holds the values of the call type's fields in the same shapes the post-call
    analyzer produces (dates as ISO strings, times as "HH:MM", lists of item strings ...), so
    they can be compared or handed on as they are.
    """

    intent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    pending_fields: list[str] = field(default_factory=list)  # asked for, not yet answered
    awaiting_confirmation: bool = False  # read the details back, waiting for yes / no
    confirmed: bool = False
    misunderstandings: int = 0  # consecutive turns that could not be placed
    facts_used: list[str] = field(default_factory=list)
    turns: int = 0
    ended: bool = False
    order: list[OrderLine] = field(default_factory=list)  # priced lines behind "items"
    quote: Quote | None = None  # what the order comes to (knowledge.quote), None: no order
    choice: Choice | None = None
    callback_offered: bool = False  # asked "shall the owner call you back?"
    callback_requested: bool = False
    extras_said: list[str] = field(default_factory=list)  # "eggless", "rica wax" ...
    last_prompt: str = ""  # kind of the last thing we asked: "field", "confirm", "anything_else"
    history: list[tuple[str, str]] = field(default_factory=list)  # ("caller"|"agent", text)

    @property
    def total(self) -> Decimal | None:
        """The order's total from its quote, when every line has a price."""
        return self.quote.total if self.quote is not None else None


@runtime_checkable
class Brain(Protocol):
    """One call's receptionist logic. Built per call; ``reply`` is called once per caller turn."""

    state: DialogueState

    def opening(self) -> BrainReply:
        """The first words of the call (the greeting), in the engine's language."""
        ...

    async def reply(self, caller_text: str) -> BrainReply:
        """What to say to ``caller_text`` (one finished caller turn from speech-to-text)."""
        ...


@runtime_checkable
class StreamingBrain(Brain, Protocol):
    """A brain whose reply can be spoken while it is still being written (the ``llm`` brain).

    ``stream`` yields the reply in speakable pieces (whole sentences, or parts of a long one) as
    soon as each is final, so the engine can synthesize and play the first while the rest is
    still being made. When the iteration ends, ``last_reply`` holds the whole turn's
    :class:`BrainReply` (all pieces joined, ``end_call``, ``intent``, ``reason``). Closing the
    iterator early (barge-in) stops the work; ``last_reply`` then holds what was released so
    far. ``reply`` stays available and returns the same as a full ``stream``.
    """

    last_reply: BrainReply | None

    def stream(self, caller_text: str) -> AsyncIterator[str]:
        """The reply to ``caller_text``, piece by piece."""
        ...
