"""What the gateway needs from a messenger's client library, and the errors it understands.

OutboundError
├── RetryLater       the messenger said 429 (or its flood code): wait `seconds`, then send again
├── TemporaryFailure 5xx, a timeout or a network error: back off and send again
└── Rejected         the request will not succeed (chat not found, a malformed request)
    └── NotAllowed   the client has not allowed messages (VK 901, a blocked bot): not retried
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from common.messages import Button


class OutboundError(Exception):
    """Sending to the messenger failed."""


class RetryLater(OutboundError):
    """Flood control: the messenger asks to wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class TemporaryFailure(OutboundError):
    """A server or network problem that may pass."""


class Rejected(OutboundError):
    """The messenger refused the request for good."""


class NotAllowed(Rejected):
    """The client has not allowed the bot to write (or blocked it); sending resumes when they write."""


class Outbound(ABC):
    """Sending through one messenger's client library."""

    @abstractmethod
    async def send_text(
        self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = ""
    ) -> str | None:
        """Send one message, with inline buttons when given; `key` is the same on every retry of this
        message (a messenger that deduplicates sends derives its idempotency key from it). The messenger's
        id of what it accepted, where its receipts refer to it (WhatsApp's wamid), else None."""

    @abstractmethod
    async def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat."""

    @abstractmethod
    async def answer_callback(self, callback_id: str) -> None:
        """Acknowledge a pressed button so the client stops its spinner."""

    async def close(self) -> None:  # noqa: B027 - most libraries' clients need no closing
        """Release the library's HTTP session, if it holds one."""


def keyboard_rows(buttons: Sequence[Button]) -> list[list[Button]]:
    """Short labels two to a row (five for ratings), long labels one to a row."""
    if buttons and all(len(b.text) <= 2 for b in buttons):
        return [list(buttons)]
    rows: list[list[Button]] = []
    for button in buttons:
        if rows and len(rows[-1]) == 1 and len(rows[-1][0].text) <= 16 and len(button.text) <= 16:
            rows[-1].append(button)
        else:
            rows.append([button])
    return rows
