"""Where and how to reach MAX, read from the environment; a wrong value fails with what to set.

Kept free of maxapi (which takes about a second to import): the commands read every messenger's settings
before they start any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wiring.settings import SettingsError

# maxapi's BaseConnection.API_URL (a test keeps the two equal).
DEFAULT_API_BASE = "https://platform-api2.max.ru"
# MAX does not document its tokens' shape; the ones it issues are long base64-like strings. Anything sent
# in an HTTP header as it is passes: no spaces, quotes or control characters, within sane lengths.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.:+/=~]{20,512}$")
# What MAX accepts as a webhook subscription's secret (POST /subscriptions).
SECRET_RE = re.compile(r"^[A-Za-z0-9-]{5,256}$")


class MaxConfigError(SettingsError):
    """A MAX setting is missing or malformed; the message says what to set."""


@dataclass(frozen=True, slots=True)
class MaxSettings:
    """The bot's token, the API's address, and the secret MAX posts webhooks with."""

    token: str
    api_base: str = DEFAULT_API_BASE
    webhook_secret: str | None = None

    def __repr__(self) -> str:
        # The token and the secret are credentials: never in a log or a traceback.
        secret = "'***'" if self.webhook_secret else "None"
        return f"MaxSettings(token='***', api_base={self.api_base!r}, webhook_secret={secret})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MaxSettings:
        """Read MAX_BOT_TOKEN, MAX_API_BASE and MAX_WEBHOOK_SECRET; MaxConfigError says what to fix."""
        return cls(_token(env), _api_base(env), _secret(env))


def _token(env: Mapping[str, str]) -> str:
    token = env.get("MAX_BOT_TOKEN", "").strip()
    if not token:
        raise MaxConfigError(
            "MAX_BOT_TOKEN is not set: put the bot's token from the MAX platform (business.max.ru, "
            "Чат-боты → Настройки) in the environment or in .env"
        )
    if token.lower().startswith("bearer "):
        raise MaxConfigError("MAX_BOT_TOKEN must be the bare token, without 'Bearer '")
    if not TOKEN_RE.match(token):
        raise MaxConfigError(
            "MAX_BOT_TOKEN does not look like a MAX bot token (20 to 512 letters, digits and -_.:+/=~, no "
            "spaces or quotes); copy it again from the MAX platform"
        )
    return token


def _api_base(env: Mapping[str, str]) -> str:
    base = env.get("MAX_API_BASE", "").strip().rstrip("/")
    if not base:
        return DEFAULT_API_BASE
    if not base.startswith(("http://", "https://")) or len(base) <= len("https://"):
        raise MaxConfigError(f"MAX_API_BASE must be an http:// or https:// address, got {base!r}")
    return base


def _secret(env: Mapping[str, str]) -> str | None:
    secret = env.get("MAX_WEBHOOK_SECRET", "").strip()
    if not secret:
        return None
    if not SECRET_RE.match(secret):
        raise MaxConfigError(
            "MAX_WEBHOOK_SECRET must be 5 to 256 letters, digits or hyphens (what MAX accepts for a "
            "webhook's secret)"
        )
    return secret
