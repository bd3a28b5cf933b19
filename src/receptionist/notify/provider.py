"""The one small interface every WhatsApp provider implements, and what a send can come to.

A send has four outcomes, and the difference between the last two is what keeps a customer from
getting the same message twice:

* ``accepted``  the provider took the message; ``provider_ref`` is its request id.
* ``rejected``  the provider refused it for good (4xx: bad number, unknown template, bad key);
  resending cannot help. ``reason`` says why, in the provider's words.
* ``retry``     it was certainly *not* taken (connection refused, 5xx answer with an error body,
  429): sending again later is safe.
* ``ambiguous`` it may or may not have been taken (read timeout, connection dropped after the
  request was written, a 2xx with a body we cannot read): never resent blindly; resolved by the
  provider's delivery report, or left ``unknown`` for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

__all__ = [
    "ACCEPTED",
    "AMBIGUOUS",
    "REJECTED",
    "RETRY",
    "OutgoingMessage",
    "Provider",
    "SendResult",
]

ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
RETRY: Final = "retry"
AMBIGUOUS: Final = "ambiguous"
Outcome = Literal["accepted", "rejected", "retry", "ambiguous"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One WhatsApp template message to one number, ready for the wire."""

    notification_id: int  # our reference (notifications.id)
    to: str  # digits with country code, no "+", e.g. "919800000001"
    template: str  # template name as approved at the provider
    language: str  # template language code, e.g. "en"
    variables: tuple[str, ...]  # values of {{1}}..{{n}}, in order
    text: str  # the message as the recipient reads it (for logs and the log provider)
    integrated_number: str | None = None  # the business's sender number, digits
    namespace: str | None = None
    auth_key: str | None = None  # per-tenant MSG91 key; None = the provider's own


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_ref: str | None = None  # the provider's request id when accepted
    reason: str = ""  # why it was rejected / retried / ambiguous, for the owner to read
    http_status: int | None = None
    retry_after_s: float | None = None  # when the provider said how long to wait (429)


class Provider(Protocol):
    """Sends one message; never raises for provider or network trouble (returns an outcome)."""

    name: str

    async def send(self, message: OutgoingMessage) -> SendResult: ...

    async def aclose(self) -> None: ...
