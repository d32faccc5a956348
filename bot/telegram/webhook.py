"""Telegram's webhook as a reader: the secret header checked, the update parsed leniently."""

from __future__ import annotations

import json
import logging

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.channels.webhook import Inbound, WebhookResult
from bot.telegram.inbound import CHANNEL, from_callback, from_message
from common.messages import IncomingMessage
from dialogs.safetext import clean_json_body

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def incoming(update: Update) -> tuple[IncomingMessage | None, str | None]:
    """The platform-free message in an update, and the callback id to answer, if any."""
    if update.message is not None:
        return from_message(update.message), None
    if update.edited_message is not None:
        return from_message(update.edited_message, edited=True), None
    if update.callback_query is not None:
        return from_callback(update.callback_query), update.callback_query.id
    return None, None


class TelegramWebhookReader:
    """Reads Telegram's webhook POSTs; a request without the secret header is refused (401)."""

    channel = CHANNEL
    path = WEBHOOK_PATH

    def __init__(self, bot: Bot, secret: str) -> None:
        self.bot, self.secret = bot, secret

    async def read(self, request: web.Request) -> WebhookResult:
        """The update's message, if any."""
        if request.method != "POST":
            return WebhookResult(status=405, body="POST only")
        if self.secret and request.headers.get(SECRET_HEADER) != self.secret:
            return WebhookResult(status=401, body="wrong secret")
        try:
            # Leniently: a lone surrogate escape must not cost the client's message (cleaned once here).
            update = Update.model_validate(
                json.loads(clean_json_body(await request.read())), context={"bot": self.bot}
            )
        except (ValueError, ValidationError) as exc:
            log.warning("rejected a malformed update: %s", str(exc).splitlines()[0][:200])
            return WebhookResult(status=400, body="malformed update")
        message, callback_id = incoming(update)
        if message is None:
            return WebhookResult(body="ignored")
        return WebhookResult(inbound=(Inbound(message, callback_id),))
