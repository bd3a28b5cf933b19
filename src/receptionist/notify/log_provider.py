"""The embedded default provider: the message is stored as `logged` and written to the log,
nothing leaves the machine. What a business sees before it connects MSG91."""

from __future__ import annotations

import logging

from receptionist.notify.provider import ACCEPTED, OutgoingMessage, SendResult

log = logging.getLogger("receptionist.notify")


def mask_number(digits: str) -> str:
    """Enough of a number to tell messages apart in a log, not enough to dial it."""
    return digits if len(digits) < 7 else f"{digits[:4]}{'•' * (len(digits) - 7)}{digits[-3:]}"


class LogProvider:
    name = "log"

    async def send(self, message: OutgoingMessage) -> SendResult:
        log.info(
            "WhatsApp %s to %s (log provider, not sent): %s",
            message.template,
            mask_number(message.to),
            message.text,
        )
        return SendResult(ACCEPTED, provider_ref=f"log-{message.notification_id}")

    async def aclose(self) -> None:
        return None
