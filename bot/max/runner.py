"""`tonebot run max`: a maxapi Bot pointed at MAX_API_BASE, the gateway around it, long polling, and the
webhook reader for the single-process webhook app and the PostgreSQL workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings

from maxapi import Bot
from maxapi.client.default import DefaultConnectionProperties
from maxapi.enums.update import UpdateType
from maxapi.exceptions import InvalidToken

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.webhook import WebhookReader
from bot.max.inbound import CHANNEL, UPDATE_TYPES
from bot.max.outbound import MAX_LIMITS, MAX_TEXT_LIMIT, MaxOutbound
from bot.max.polling import POLL_INTERVAL_S, POLL_TIMEOUT_S, MaxPoller
from bot.max.settings import MaxConfigError, MaxSettings
from bot.max.webhook import WEBHOOK_PATH, MaxWebhookReader
from dialogs.service import ConversationService
from storage.desk.base import Outbox

log = logging.getLogger(__name__)
# A request's whole time, a long poll's wait included (POLL_TIMEOUT_S).
REQUEST_TIMEOUT_S = 60
# On a stop, replies to what was already fetched still go out for this long before the session closes.
DRAIN_ON_STOP_S = 10.0

__all__ = [
    "WEBHOOK_PATH",
    "gateway_for",
    "make_bot",
    "make_gateway",
    "run_polling",
    "subscribe_webhook",
    "webhook_reader",
]


def make_bot(settings: MaxSettings) -> Bot:
    """A maxapi Bot pointed at MAX or at the server in MAX_API_BASE."""
    bot = Bot(
        settings.token,
        # No GET /chats/{id} per update (tonebot reads only the update itself).
        auto_requests=False,
        # maxapi's own retries of 502-504 and connection errors (1, 2, 4 s) are off: the gateway backs off
        # and retries every send itself, and a hidden wait would hold the chat's queue without a trace.
        default_connection=DefaultConnectionProperties(timeout=REQUEST_TIMEOUT_S, max_retries=0),
    )
    bot.set_api_url(settings.api_base)
    return bot


def gateway_for(service: ConversationService, bot: Bot, limits: RateLimits | None = None) -> ChannelGateway:
    """The channel gateway sending through `bot`, within MAX's limits unless others are given."""
    return ChannelGateway(
        service, MaxOutbound(bot), limits or MAX_LIMITS, channel=CHANNEL, text_limit=MAX_TEXT_LIMIT
    )


def make_gateway(
    service: ConversationService, settings: MaxSettings, limits: RateLimits | None = None
) -> ChannelGateway:
    """A gateway with its own maxapi Bot (its session is closed by `gateway.close()`)."""
    return gateway_for(service, make_bot(settings), limits)


def webhook_reader(settings: MaxSettings) -> WebhookReader:
    """The reader of MAX's webhook at WEBHOOK_PATH; it needs MAX_WEBHOOK_SECRET."""
    if not settings.webhook_secret:
        raise MaxConfigError(
            "MAX_WEBHOOK_SECRET is not set: a MAX webhook needs one (5 to 256 letters, digits or hyphens), "
            "the same for every worker"
        )
    return MaxWebhookReader(settings.webhook_secret)


async def subscribe_webhook(settings: MaxSettings, url: str) -> None:
    """Ask MAX to post tonebot's updates to `url` (ending in WEBHOOK_PATH) with MAX_WEBHOOK_SECRET."""
    reader = webhook_reader(settings)
    full_url = url if url.rstrip("/").endswith(reader.path) else url.rstrip("/") + reader.path
    bot = make_bot(settings)
    try:
        with warnings.catch_warnings():
            # maxapi warns about http:// in Python's warnings; said once here, in the log, instead.
            warnings.filterwarnings("ignore", message=".*HTTPS", category=UserWarning)
            if full_url.startswith("http://"):
                log.warning("MAX webhook %s is not HTTPS: MAX posts to HTTPS addresses only", full_url)
            await bot.subscribe_webhook(
                full_url, [UpdateType(kind) for kind in UPDATE_TYPES], settings.webhook_secret
            )
        log.warning("MAX webhook subscribed: %s", full_url)
    finally:
        await bot.close_session()


async def run_polling(
    service: ConversationService,
    settings: MaxSettings,
    outbox: Outbox | None = None,
    *,
    stop: asyncio.Event | None = None,
    limits: RateLimits | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
    poll_timeout_s: int = POLL_TIMEOUT_S,
) -> None:
    """Long polling until `stop` is set or the task is cancelled; with an outbox, operators' messages are
    delivered too. A token MAX refuses raises MaxConfigError."""
    bot = make_bot(settings)
    gateway = gateway_for(service, bot, limits)
    poller = MaxPoller(bot, gateway, timeout_s=poll_timeout_s, interval_s=poll_interval_s)
    drainer: asyncio.Task[None] | None = None
    try:
        await _prepare(bot)
        if outbox is not None:
            drainer = asyncio.create_task(gateway.deliver_outbox(outbox))
        await poller.run(stop or asyncio.Event())
        # Stopped: what was fetched is answered before the session closes. (Were it cut short, MAX would
        # send it again, its marker not confirmed, and storage drops what was handled.)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.drain(), DRAIN_ON_STOP_S)
        await poller.settle()
    finally:
        poller.abandon()
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        await gateway.close()


async def _prepare(bot: Bot) -> None:
    """Check the token (GET /me) and leave webhook mode: MAX sends a subscribed bot nothing by polling."""
    try:
        me = await bot.get_me()
    except InvalidToken as exc:
        raise MaxConfigError(
            "MAX refused MAX_BOT_TOKEN (401 Unauthorized): copy the token again from the MAX platform"
        ) from exc
    for subscription in (await bot.get_subscriptions()).subscriptions:
        log.warning(
            "removing MAX webhook %s: long polling gets nothing while it is subscribed", subscription.url
        )
        await bot.unsubscribe_webhook(subscription.url)
    log.warning("tonebot is answering in MAX as @%s (long polling)", me.username or me.first_name)
