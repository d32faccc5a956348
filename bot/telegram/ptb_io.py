"""python-telegram-bot 22: sending through a PTB Bot, and a handler that an existing Application adds."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseHandler, ContextTypes, TypeHandler

from bot.channels.outbound import NotAllowed, Rejected, RetryLater, TemporaryFailure, keyboard_rows
from bot.telegram.gateway import TelegramGateway
from bot.telegram.inbound import from_callback, from_message
from bot.telegram.outbound import BotMethodsOutbound
from common.messages import Button


class PtbOutbound(BotMethodsOutbound):
    """Sends with a python-telegram-bot Bot, translating its errors."""

    typing_action = ChatAction.TYPING

    def markup(self, buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
        """PTB's inline keyboard."""
        if not buttons:
            return None
        rows = [
            [InlineKeyboardButton(b.text, callback_data=b.payload) for b in row]
            for row in keyboard_rows(buttons)
        ]
        return InlineKeyboardMarkup(rows)

    async def call(self, request: Awaitable[Any]) -> None:
        """Await a PTB request; its errors become OutboundError subclasses."""
        try:
            await request
        except RetryAfter as exc:
            delay = exc.retry_after
            raise RetryLater(delay if isinstance(delay, int | float) else delay.total_seconds()) from exc
        except Forbidden as exc:
            # The client blocked the bot: nothing more is sent until they write again.
            raise NotAllowed(str(exc)) from exc
        except (BadRequest, InvalidToken, ChatMigrated) as exc:
            raise Rejected(str(exc)) from exc
        except (TimedOut, NetworkError) as exc:
            # PTB reports 5xx answers and connection problems as NetworkError.
            raise TemporaryFailure(str(exc)) from exc
        except TelegramError as exc:
            raise Rejected(str(exc)) from exc


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
