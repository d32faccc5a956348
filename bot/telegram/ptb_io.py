"""python-telegram-bot 22: sending through a PTB Bot, and a handler that an existing Application adds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import BaseHandler, ContextTypes, TypeHandler

from bot.telegram.gateway import TelegramGateway
from bot.telegram.inbound import from_callback, from_message
from bot.telegram.outbound import Outbound, Rejected, RetryLater, TemporaryFailure, keyboard_rows
from dialogs.messages import Button


def _markup(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [
        [InlineKeyboardButton(b.text, callback_data=b.payload) for b in row] for row in keyboard_rows(buttons)
    ]
    return InlineKeyboardMarkup(rows)


class PtbOutbound(Outbound):
    """Sends with a python-telegram-bot Bot, translating its errors."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def _call(self, coroutine: Any) -> None:
        try:
            await coroutine
        except RetryAfter as exc:
            delay = exc.retry_after
            raise RetryLater(delay if isinstance(delay, int | float) else delay.total_seconds()) from exc
        except (TimedOut, NetworkError) as exc:
            # NetworkError also covers 5xx answers in PTB; BadRequest and Forbidden are caught below.
            if type(exc).__name__ in ("BadRequest", "Forbidden", "InvalidToken", "ChatMigrated"):
                raise Rejected(str(exc)) from exc
            raise TemporaryFailure(str(exc)) from exc
        except TelegramError as exc:
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


def tonebot_handler(gateway: TelegramGateway) -> BaseHandler[Update, Any, None]:
    """A handler passing messages, edits and button presses to tonebot; add it to your Application."""

    async def handle(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query:
            incoming = from_callback(update.callback_query)
            if incoming:
                await gateway.submit(incoming, callback_id=update.callback_query.id)
            return
        message, edited = (update.edited_message, True) if update.edited_message else (update.message, False)
        if message:
            incoming = from_message(message, edited=edited)
            if incoming:
                await gateway.submit(incoming)

    return TypeHandler(Update, handle)
