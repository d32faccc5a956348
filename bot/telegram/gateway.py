"""The Telegram gateway: the shared channel gateway under Telegram's name and 4096-character limit."""

from __future__ import annotations

from typing import Any

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.outbound import Outbound
from bot.channels.text_split import TELEGRAM_TEXT_LIMIT
from dialogs.service import ConversationService

CHANNEL = "telegram"


class TelegramGateway(ChannelGateway):
    """Runs Telegram messages through tonebot and delivers the replies."""

    def __init__(
        self,
        service: ConversationService,
        outbound: Outbound,
        limits: RateLimits | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            service, outbound, limits, channel=CHANNEL, text_limit=TELEGRAM_TEXT_LIMIT, **options
        )
