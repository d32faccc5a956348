"""`tonebot run telegram`: long polling by default, or a webhook served by our own aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.channels.limits import RateLimits
from bot.channels.metrics_site import add_metrics
from bot.telegram.aiogram_io import AiogramOutbound, tonebot_router
from bot.telegram.gateway import TelegramGateway
from bot.telegram.session import QuickSession
from dialogs.safetext import loads_clean
from dialogs.service import ConversationService
from storage.desk.base import Outbox
from wiring.settings import SettingsError

log = logging.getLogger(__name__)
TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
WEBHOOK_PATH = "/telegram/webhook"


class TelegramConfigError(SettingsError):
    """A Telegram setting is missing or malformed; the message says what to set."""


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """Where and how to reach Telegram."""

    token: str
    api_base: str | None = None
    webhook_secret: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> TelegramSettings:
        """Read TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE and TELEGRAM_WEBHOOK_SECRET; fail with what to set."""
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        if not token:
            raise TelegramConfigError(
                "TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather in the environment or in .env"
            )
        if not TOKEN_RE.match(token):
            raise TelegramConfigError(
                "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then 30+ letters, "
                "digits, - or _); copy it again from @BotFather"
            )
        base = env.get("TELEGRAM_API_BASE", "").strip().rstrip("/") or None
        if base and not base.startswith(("http://", "https://")):
            raise TelegramConfigError(f"TELEGRAM_API_BASE must start with http:// or https://, got {base!r}")
        return cls(token, base, env.get("TELEGRAM_WEBHOOK_SECRET") or None)


def make_bot(settings: TelegramSettings) -> Bot:
    """An aiogram Bot pointed at Telegram or at the Bot API server in TELEGRAM_API_BASE."""
    # Updates are parsed leniently: a lone surrogate escape in a client's text becomes U+FFFD instead of
    # failing the whole batch (which polling would fetch again and again).
    api = TelegramAPIServer.from_base(settings.api_base) if settings.api_base else PRODUCTION
    return Bot(settings.token, session=QuickSession(api=api, json_loads=_lenient_loads))


def _lenient_loads(raw: str | bytes) -> Any:
    return loads_clean(raw)


def make_dispatcher(service: ConversationService, bot: Bot, limits: RateLimits | None = None) -> Dispatcher:
    """A Dispatcher with tonebot's router; the gateway is kept in dispatcher["tonebot_gateway"]."""
    gateway = TelegramGateway(service, AiogramOutbound(bot), limits)
    dispatcher = Dispatcher()
    dispatcher["tonebot_gateway"] = gateway
    dispatcher.include_router(tonebot_router(gateway))
    return dispatcher


async def run_polling(
    service: ConversationService,
    settings: TelegramSettings,
    outbox: Outbox | None = None,
    *,
    handle_signals: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Long polling until interrupted, or until `stop` is set; with an outbox, operators' messages are
    delivered too."""
    bot = make_bot(settings)
    dispatcher = make_dispatcher(service, bot)
    await bot.delete_webhook(drop_pending_updates=False)
    me = await bot.get_me()
    log.warning("tonebot is answering in Telegram as @%s (long polling)", me.username)
    drainer = None
    if outbox is not None:
        gateway: TelegramGateway = dispatcher["tonebot_gateway"]
        drainer = asyncio.create_task(gateway.deliver_outbox(outbox))
    # Cancelling start_polling would leave its polling task running on a closed session (an ERROR in the
    # log): a stop asked for from outside goes through aiogram's own stop_polling instead.
    stopper = asyncio.create_task(_stop_when(stop, dispatcher)) if stop is not None else None
    try:
        if stop is None or not stop.is_set():
            await dispatcher.start_polling(bot, handle_as_tasks=True, handle_signals=handle_signals)
        else:
            await bot.session.close()  # start_polling closes it when it ends
    finally:
        for task in (drainer, stopper):
            if task is not None:
                task.cancel()


async def _stop_when(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    await stop.wait()
    with contextlib.suppress(RuntimeError):  # not polling yet: run_polling then does not start
        await dispatcher.stop_polling()


def webhook_app(
    service: ConversationService,
    bot: Bot,
    secret: str,
    webhook_url: str | None = None,
    outbox: Outbox | None = None,
) -> web.Application:
    """The aiohttp app receiving updates at WEBHOOK_PATH; requests without the secret header get 401."""
    dispatcher = make_dispatcher(service, bot)
    app = web.Application()
    if outbox is not None:
        gateway: TelegramGateway = dispatcher["tonebot_gateway"]

        async def drain_outbox(_app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(gateway.deliver_outbox(outbox))
            yield
            task.cancel()

        app.cleanup_ctx.append(drain_outbox)
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(app, path=WEBHOOK_PATH)
    setup_application(app, dispatcher, bot=bot)
    add_metrics(app)
    if webhook_url:

        async def register(_app: web.Application) -> None:
            await bot.set_webhook(webhook_url, secret_token=secret, drop_pending_updates=False)
            log.warning("webhook set to %s", webhook_url)

        app.on_startup.append(register)
    return app


def run_webhook(
    service: ConversationService,
    settings: TelegramSettings,
    url: str,
    host: str,
    port: int,
    outbox: Outbox | None = None,
) -> None:
    """Serve the webhook app and register `url` with Telegram."""
    secret = settings.webhook_secret or secrets.token_urlsafe(32)
    bot = make_bot(settings)
    full_url = url.rstrip("/") + WEBHOOK_PATH if not url.rstrip("/").endswith(WEBHOOK_PATH) else url
    web.run_app(webhook_app(service, bot, secret, full_url, outbox), host=host, port=port)
