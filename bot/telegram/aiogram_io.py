"""aiogram 3: sending through an aiogram Bot, and a Router that an existing aiogram bot includes."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.telegram.gateway import TelegramGateway
from bot.telegram.inbound import from_callback, from_message
from bot.telegram.outbound import Outbound, Rejected, RetryLater, TemporaryFailure, keyboard_rows
from dialogs.messages import Button


def _markup(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [
        [InlineKeyboardButton(text=b.text, callback_data=b.payload) for b in row]
        for row in keyboard_rows(buttons)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


class AiogramOutbound(Outbound):
    """Sends with an aiogram Bot, translating its errors."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def _call(self, coroutine: object) -> None:
        try:
            await coroutine  # type: ignore[misc]
        except TelegramRetryAfter as exc:
            raise RetryLater(float(exc.retry_after)) from exc
        except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
            raise TemporaryFailure(str(exc)) from exc
        except TelegramAPIError as exc:
            raise Rejected(str(exc)) from exc

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button]) -> None:
        """Send one message with optional inline buttons."""
        await self._call(
            self.bot.send_message(chat_id=int(chat_id), text=text, reply_markup=_markup(buttons))
        )

    async def typing(self, chat_id: str) -> None:
        """Show "typing…"."""
        await self._call(self.bot.send_chat_action(chat_id=int(chat_id), action=ChatAction.TYPING))

    async def answer_callback(self, callback_id: str) -> None:
        """Acknowledge a pressed button."""
        await self._call(self.bot.answer_callback_query(callback_query_id=callback_id))


def tonebot_router(gateway: TelegramGateway) -> Router:
    """A Router handing messages, edits and button presses to tonebot; include it in your Dispatcher."""
    router = Router(name="tonebot")

    @router.message()
    async def on_message(message: Message) -> None:
        incoming = from_message(message)
        if incoming:
            await gateway.submit(incoming)

    @router.edited_message()
    async def on_edit(message: Message) -> None:
        incoming = from_message(message, edited=True)
        if incoming:
            await gateway.submit(incoming)

    @router.callback_query()
    async def on_button(query: CallbackQuery) -> None:
        incoming = from_callback(query)
        if incoming:
            await gateway.submit(incoming, callback_id=query.id)

    return router
