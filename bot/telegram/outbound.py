"""What the gateway needs from a Telegram client library, and the errors it understands.

OutboundError
├── RetryLater       Telegram said 429: wait `seconds`, then send again
├── TemporaryFailure 5xx, a timeout or a network error: back off and send again
└── Rejected         4xx other than 429 (chat not found, bot blocked): will not succeed
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from typing import Any

from common.messages import Button


class OutboundError(Exception):
    """Sending to Telegram failed."""


class RetryLater(OutboundError):
    """Flood control: Telegram asks to wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class TemporaryFailure(OutboundError):
    """A server or network problem that may pass."""


class Rejected(OutboundError):
    """Telegram refused the request for good."""


class Outbound(ABC):
    """Sending through one client library (aiogram or python-telegram-bot)."""

    @abstractmethod
    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button]) -> None:
        """Send one message, with inline buttons when given."""

    @abstractmethod
    async def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat."""

    @abstractmethod
    async def answer_callback(self, callback_id: str) -> None:
        """Acknowledge a pressed button so the client stops its spinner."""


class BotMethodsOutbound(Outbound):
    """Sending through a client whose bot object has the Bot API's method names (aiogram and PTB alike)."""

    typing_action: Any = "typing"

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    @abstractmethod
    def markup(self, buttons: Sequence[Button]) -> Any:
        """The library's inline keyboard for these buttons, or None."""

    @abstractmethod
    async def call(self, request: Awaitable[Any]) -> None:
        """Await a request, translating the library's errors into OutboundError subclasses."""

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button]) -> None:
        """Send one message with optional inline buttons."""
        await self.call(
            self.bot.send_message(chat_id=int(chat_id), text=text, reply_markup=self.markup(buttons))
        )

    async def typing(self, chat_id: str) -> None:
        """Show "typing…"."""
        await self.call(self.bot.send_chat_action(chat_id=int(chat_id), action=self.typing_action))

    async def answer_callback(self, callback_id: str) -> None:
        """Acknowledge a pressed button."""
        await self.call(self.bot.answer_callback_query(callback_query_id=callback_id))


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
