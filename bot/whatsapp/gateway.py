"""The WhatsApp gateway: the shared channel gateway under WhatsApp's name, limits and 4096 characters, noting
each client's latest message (the 24-hour window and "typing…" need it)."""

from __future__ import annotations

from typing import Any

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.whatsapp.inbound import CHANNEL
from bot.whatsapp.layout import TEXT_MAX
from bot.whatsapp.outbound import WhatsAppOutbound
from common.messages import IncomingMessage
from dialogs.service import ConversationService

# The Cloud API sends 80 messages a second per business number by default (more once Meta raises it).
# Per chat one a second: Meta's pair limit allows bursts and averages one message every six seconds per
# client, and a bot answers a message with one to three; a second apart they also read in order.
WHATSAPP_LIMITS = RateLimits(per_chat_interval=1.0, global_per_second=80.0)


class WhatsAppGateway(ChannelGateway):
    """Runs WhatsApp messages through tonebot and delivers the replies."""

    def __init__(
        self,
        service: ConversationService,
        outbound: WhatsAppOutbound,
        limits: RateLimits | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            service, outbound, limits or WHATSAPP_LIMITS, channel=CHANNEL, text_limit=TEXT_MAX, **options
        )
        self.windows = outbound.windows

    async def submit(self, message: IncomingMessage, *, callback_id: str | None = None) -> None:
        """Note the client's message (it opens the 24-hour window), then queue it as any gateway does."""
        self.windows.saw(message.chat_id, message.message_id, message.at)
        await super().submit(message, callback_id=callback_id)
