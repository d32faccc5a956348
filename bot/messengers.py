"""The messengers beside Telegram (VK, MAX, WhatsApp), described alike so that the commands can start
any of them: each adapter's package has `settings.<X>Settings.from_env` and `runner` with
`make_gateway`, `webhook_reader` and, where the messenger offers it, `run_polling`."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from common.channels import facts

if TYPE_CHECKING:
    from aiohttp import web

    from bot.channels.gateway import ChannelGateway
    from bot.channels.limits import RateLimits
    from wiring.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Messenger:
    """One adapter: its channel name, how people call it, the variable that turns it on, its package."""

    name: str
    title: str
    token_variable: str
    package: str
    settings_class: str
    # Long polling (VK's Bots Long Poll, MAX's GET /updates) needs no public address; WhatsApp has none.
    polls: bool

    def settings(self, env: Mapping[str, str]) -> Any:
        """The adapter's settings from the environment; SettingsError (one line) when they are wrong."""
        module = importlib.import_module(f"{self.package}.settings")
        return getattr(module, self.settings_class).from_env(env)

    def runner(self) -> ModuleType:
        """The adapter's runner module (imported on first use: each library takes a while to import)."""
        return importlib.import_module(f"{self.package}.runner")

    def gateway(self, runtime: Runtime, settings: Any, limits: RateLimits | None = None) -> ChannelGateway:
        """The adapter's gateway over the runtime's service; a messenger with a reply window (WhatsApp)
        looks up in storage when a chat's client last wrote (the outbox after a restart, other workers'
        chats)."""
        extra: dict[str, Any] = {}
        if facts(self.name).reply_window is not None:
            channel = self.name

            async def last_inbound(chat_id: str) -> datetime | None:
                return await asyncio.to_thread(runtime.desk_store.last_in, channel, chat_id)

            extra["last_inbound"] = last_inbound
        gateway: ChannelGateway = self.runner().make_gateway(runtime.service, settings, limits, **extra)
        return gateway

    def webhook_app(self, runtime: Runtime, settings: Any) -> web.Application:
        """The messenger's webhook served in one process (call on the event loop that will serve it):
        messages through its gateway, operators' replies from the outbox, receipts stored."""
        from bot.channels.webhook import webhook_app

        reader = self.runner().webhook_reader(settings)
        gateway = self.gateway(runtime, settings)
        return webhook_app(reader, gateway, runtime.desk_store, runtime.desk_store.record_receipts)

    def configured(self, env: Mapping[str, str]) -> bool:
        """Whether its token is set, i.e. the operator means to run it."""
        return bool(env.get(self.token_variable, "").strip())


MESSENGERS: dict[str, Messenger] = {
    "vk": Messenger("vk", "VK", "VK_GROUP_TOKEN", "bot.vk", "VkSettings", polls=True),
    "max": Messenger("max", "MAX", "MAX_BOT_TOKEN", "bot.max", "MaxSettings", polls=True),
    "whatsapp": Messenger(
        "whatsapp", "WhatsApp", "WHATSAPP_TOKEN", "bot.whatsapp", "WhatsAppSettings", polls=False
    ),
}


def configured_messengers(env: Mapping[str, str]) -> list[tuple[Messenger, Any]]:
    """Every messenger whose token is set, with its settings (SettingsError when one is wrong)."""
    return [
        (messenger, messenger.settings(env)) for messenger in MESSENGERS.values() if messenger.configured(env)
    ]
