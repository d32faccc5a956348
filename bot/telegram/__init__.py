"""Telegram: a channel adapter for aiogram 3 and python-telegram-bot 22 over one platform-free gateway."""

from bot.channels.limits import RateLimits
from bot.telegram.gateway import TelegramGateway

__all__ = ["RateLimits", "TelegramGateway"]
