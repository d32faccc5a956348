"""Telegram: a channel adapter for aiogram 3 and python-telegram-bot 22 over one platform-free gateway."""

from bot.telegram.gateway import TelegramGateway
from bot.telegram.limits import RateLimits

__all__ = ["RateLimits", "TelegramGateway"]
