"""Sending through a Telegram library whose bot object has the Bot API's method names."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Sequence
from typing import Any

from bot.channels.outbound import Outbound
from common.messages import Button


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

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = "") -> None:
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
