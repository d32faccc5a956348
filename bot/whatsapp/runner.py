"""`tonebot run whatsapp`: the webhook Meta posts to, and a gateway sending through pywa_async.

WhatsApp has no polling: Meta posts every message and status to a public HTTPS URL, subscribed in the
app's dashboard with the verify token; this process serves it at WEBHOOK_PATH.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.webhook import WebhookReader, webhook_app
from bot.whatsapp.client import make_client
from bot.whatsapp.gateway import WhatsAppGateway
from bot.whatsapp.outbound import SentHook, WhatsAppOutbound
from bot.whatsapp.settings import WhatsAppSettings
from bot.whatsapp.webhook import WEBHOOK_PATH, WhatsAppWebhook
from bot.whatsapp.window import LastInboundLookup
from dialogs.service import ConversationService
from storage.desk.base import Outbox

log = logging.getLogger(__name__)


def make_gateway(
    service: ConversationService,
    settings: WhatsAppSettings,
    limits: RateLimits | None = None,
    *,
    last_inbound: LastInboundLookup | None = None,
    on_sent: SentHook | None = None,
) -> ChannelGateway:
    """A gateway sending through a pywa_async client pointed at `settings.api_base`. `last_inbound` looks
    up when a chat's client last wrote (for chats this process has not heard from: the outbox after a
    restart, another worker's chats); `on_sent` hears every accepted message's wamid."""
    client, session = make_client(settings)
    outbound = WhatsAppOutbound(client, session=session, last_inbound=last_inbound, on_sent=on_sent)
    return WhatsAppGateway(service, outbound, limits)


def webhook_reader(settings: WhatsAppSettings) -> WebhookReader:
    """The reader of WhatsApp webhook requests at WEBHOOK_PATH: verification and signed posts."""
    return WhatsAppWebhook(settings)


def run_webhook(
    service: ConversationService,
    settings: WhatsAppSettings,
    host: str,
    port: int,
    outbox: Outbox | None = None,
    *,
    last_inbound: LastInboundLookup | None = None,
) -> None:
    """Serve the webhook until interrupted; with an outbox, operators' messages are delivered too
    (`last_inbound`: see make_gateway)."""
    gateway = make_gateway(service, settings, last_inbound=last_inbound)
    app = webhook_app(webhook_reader(settings), gateway, outbox)
    log.warning(
        "tonebot is answering in WhatsApp for phone number id %s; subscribe https://<your host>%s",
        settings.phone_number_id,
        WEBHOOK_PATH,
    )
    web.run_app(app, host=host, port=port)
