"""Sending to MAX through a maxapi Bot: messages with inline keyboards, "typing…", button answers.

maxapi's errors become the gateway's (see bot/channels/outbound.py):

MaxApiError 429              → RetryLater, a second (maxapi keeps no Retry-After header; MAX's body has none)
MaxApiError 5xx, MaxConnection, a timeout, a network error → TemporaryFailure
MaxApiError 403 / chat.denied → NotAllowed (the client blocked the bot, or never started it)
InvalidToken, other 4xx, a text maxapi refuses → Rejected
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Sequence

from aiohttp import ClientError
from maxapi import Bot
from maxapi.enums.attachment import AttachmentType
from maxapi.enums.sender_action import SenderAction
from maxapi.exceptions import InvalidToken, MaxApiError, MaxConnection
from maxapi.types.attachments import ButtonsPayload, CallbackButton, InlineButtonUnion
from maxapi.types.attachments.attachment import Attachment
from maxapi.types.attachments.upload import AttachmentUpload
from maxapi.types.input_media import InputMedia, InputMediaBuffer

from bot.channels.limits import RateLimits
from bot.channels.outbound import (
    NotAllowed,
    Outbound,
    OutboundError,
    Rejected,
    RetryLater,
    TemporaryFailure,
    keyboard_rows,
)
from common.messages import Button

# MAX takes texts of up to 4000 characters; maxapi refuses 4000 itself (`len(text) < 4000`).
MAX_TEXT_LIMIT = 3999
# MAX's published limits: about 30 requests a second for a bot, 2 messages a second to one chat.
MAX_LIMITS = RateLimits(per_chat_interval=0.5, global_per_second=30.0)
DEFAULT_RETRY_AFTER_S = 1.0
BLOCKED_CODES = frozenset({"chat.denied"})


class MaxOutbound(Outbound):
    """Sends with a maxapi Bot, translating its errors."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = "") -> None:
        """POST /messages?chat_id=… with the text and, when given, an inline keyboard of callback buttons.
        MAX has no idempotency key, so `key` is not used."""
        attachments = _keyboard(tuple(buttons)) if buttons else None
        await _translated(self.bot.send_message(chat_id=_chat(chat_id), text=text, attachments=attachments))

    async def typing(self, chat_id: str) -> None:
        """POST /chats/{chat_id}/actions {"action": "typing_on"}."""
        await _translated(self.bot.send_action(chat_id=_chat(chat_id), action=SenderAction.TYPING_ON))

    async def answer_callback(self, callback_id: str) -> None:
        """POST /answers?callback_id=… with no notification: the press is acknowledged, the message kept."""
        await _translated(self.bot.send_callback(callback_id=callback_id))

    async def close(self) -> None:
        """Close maxapi's aiohttp session."""
        await self.bot.close_session()


def _chat(chat_id: str) -> int:
    # MAX's chat ids are numbers; anything else never becomes one, so it is refused, not retried.
    try:
        return int(chat_id)
    except ValueError:
        raise Rejected(f"{chat_id!r} is not a MAX chat id") from None


async def _translated(request: Awaitable[object]) -> None:
    try:
        await request
    except MaxApiError as exc:
        raise translate(exc) from exc
    except (MaxConnection, ClientError, TimeoutError) as exc:
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
    except InvalidToken as exc:
        raise Rejected("MAX refused the bot's token (401)") from exc
    except ValueError as exc:
        # maxapi checks arguments before sending (a text of 4000 characters or more), and a reply it
        # cannot parse comes to a ValueError too: neither gets better by sending again.
        raise Rejected(str(exc).splitlines()[0]) from exc


def translate(exc: MaxApiError) -> OutboundError:
    """The gateway's error for an error answer of the MAX API."""
    raw = exc.raw if isinstance(exc.raw, dict) else {}
    detail = f"{exc.code} {raw.get('code') or ''} {raw.get('message') or ''}".strip()
    if exc.code == 429:
        return RetryLater(DEFAULT_RETRY_AFTER_S)
    if exc.code >= 500:
        return TemporaryFailure(detail)
    if exc.code == 403 or raw.get("code") in BLOCKED_CODES:
        return NotAllowed(detail)
    return Rejected(detail)


@functools.lru_cache(maxsize=512)
def _keyboard(
    buttons: tuple[Button, ...],
) -> list[Attachment | InputMedia | InputMediaBuffer | AttachmentUpload]:
    # The guides offer a few dozen keyboards: each is built once, not per reply (maxapi only dumps it).
    rows: list[list[InlineButtonUnion]] = [
        [CallbackButton(text=b.text, payload=b.payload) for b in row] for row in keyboard_rows(buttons)
    ]
    # bot=None: maxapi declares the field without its default for type checkers.
    return [Attachment(type=AttachmentType.INLINE_KEYBOARD, payload=ButtonsPayload(buttons=rows), bot=None)]
