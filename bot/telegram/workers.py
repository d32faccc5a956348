"""Telegram's webhook workers: the shared channel worker with Telegram's reader and gateway."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram import Bot

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.webhook import MAX_WEBHOOK_BYTES, WebhookReader
from bot.channels.workers import ChannelWorker, run_worker
from bot.telegram.aiogram_io import AiogramOutbound
from bot.telegram.gateway import TelegramGateway
from bot.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH, TelegramWebhookReader, incoming
from wiring.runtime import Runtime

MAX_UPDATE_BYTES = MAX_WEBHOOK_BYTES
__all__ = ["MAX_UPDATE_BYTES", "SECRET_HEADER", "WEBHOOK_PATH", "WebhookWorker", "incoming", "run_worker"]


class WebhookWorker(ChannelWorker):
    """A worker answering Telegram (and any other messengers given) over one PostgreSQL database."""

    def __init__(
        self,
        runtime: Runtime,
        bot: Bot,
        secret: str,
        *,
        limits: RateLimits | None = None,
        others: Sequence[tuple[WebhookReader, ChannelGateway]] = (),
        **options: Any,
    ) -> None:
        gateway = TelegramGateway(runtime.service, AiogramOutbound(bot), limits)
        super().__init__(runtime, [(TelegramWebhookReader(bot, secret), gateway), *others], **options)
        self.bot = bot
        self.gateway = gateway
