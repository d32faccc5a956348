"""The messengers a campaign sends through, set up from the environment as `tonebot run` does: Telegram by
TELEGRAM_BOT_TOKEN (and TELEGRAM_API_BASE), VK, MAX and WhatsApp by their own variables (bot/messengers)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bot.channels.outbound import Outbound
from bot.messengers import MESSENGERS
from wiring.runtime import Runtime

TELEGRAM = "telegram"
TELEGRAM_TOKEN = "TELEGRAM_BOT_TOKEN"


def token_variable(channel: str) -> str:
    """The variable that turns a channel's messenger on."""
    messenger = MESSENGERS.get(channel)
    return messenger.token_variable if messenger is not None else TELEGRAM_TOKEN


def messenger_outbounds(
    runtime: Runtime, env: Mapping[str, str], channels: Collection[str]
) -> dict[str, Outbound]:
    """An Outbound for each of `channels` whose messenger is configured (its library's client, paced as the
    adapter paces it: VK's calls within 20 a second); SettingsError when a configured one is wrong."""
    outbounds: dict[str, Outbound] = {}
    if TELEGRAM in channels and env.get(TELEGRAM_TOKEN, "").strip():
        from bot.telegram.aiogram_io import AiogramOutbound
        from bot.telegram.runner import TelegramSettings, make_bot

        outbounds[TELEGRAM] = AiogramOutbound(make_bot(TelegramSettings.from_env(dict(env))))
    for name, messenger in MESSENGERS.items():
        if name in channels and messenger.configured(env):
            # The adapter's own gateway builds its Outbound; only the Outbound is used here.
            outbounds[name] = messenger.gateway(runtime, messenger.settings(env)).outbound
    return outbounds


async def close_all(outbounds: Mapping[str, Outbound]) -> None:
    """Close the libraries' HTTP sessions."""
    for outbound in outbounds.values():
        await outbound.close()
