"""aiogram 3: sending through an aiogram Bot, and a Router that an existing aiogram bot includes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Sequence
from typing import Any

from aiogram import Router
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.channels.outbound import NotAllowed, Rejected, RetryLater, TemporaryFailure, keyboard_rows
from bot.telegram.gateway import TelegramGateway
from bot.telegram.inbound import from_callback, from_message
from bot.telegram.outbound import BotMethodsOutbound
from common.messages import Button


class AiogramOutbound(BotMethodsOutbound):
    """Sends with an aiogram Bot, translating its errors."""

    typing_action = ChatAction.TYPING

    def markup(self, buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
        """aiogram's inline keyboard."""
        if not buttons:
            return None
        return _keyboard(tuple(buttons))

    async def close(self) -> None:
        """Close the bot's HTTP session (polling closes it itself; a webhook worker does it here)."""
        await self.bot.session.close()

    async def call(self, request: Awaitable[Any]) -> None:
        """Await an aiogram request; its errors become OutboundError subclasses."""
        try:
            await request
        except TelegramRetryAfter as exc:
            raise RetryLater(float(exc.retry_after)) from exc
        except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
            raise TemporaryFailure(str(exc)) from exc
        except ClientDecodeError as exc:
            # Not JSON: the HTML error page of a proxy in front of the Bot API (502/504) — try again later.
            raise TemporaryFailure(f"undecodable answer: {str(exc).splitlines()[0]}") from exc
        except TelegramForbiddenError as exc:
            # The client blocked the bot: nothing more is sent until they write again.
            raise NotAllowed(str(exc)) from exc
        except TelegramAPIError as exc:
            raise Rejected(str(exc)) from exc


@functools.lru_cache(maxsize=512)
def _keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup:
    # The guides offer a few dozen keyboards: each pydantic model is built once, not per reply (it is
    # never changed after, so replies may share it).
    rows = [
        [InlineKeyboardButton(text=b.text, callback_data=b.payload) for b in row]
        for row in keyboard_rows(buttons)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


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
