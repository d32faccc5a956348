"""WhatsApp Cloud API settings, read from the environment; a missing or malformed one stops the start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wiring.settings import SettingsError

DEFAULT_API_BASE = "https://graph.facebook.com"


class WhatsAppConfigError(SettingsError):
    """A WhatsApp setting is missing or malformed; the message says what to set or fix."""


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise WhatsAppConfigError(f"{name} is not set: put {what} in the environment or in .env")
    if any(character.isspace() for character in value):
        raise WhatsAppConfigError(f"{name} contains spaces; copy it again ({what})")
    return value


@dataclass(frozen=True, slots=True)
class WhatsAppSettings:
    """Where and how to reach the WhatsApp Cloud API, and what proves a webhook request is Meta's."""

    # The secrets stay out of repr(): settings end up in logs and tracebacks.
    token: str = field(repr=False)
    phone_number_id: str
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    api_base: str = DEFAULT_API_BASE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WhatsAppSettings:
        """Read WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN and
        WHATSAPP_API_BASE; WhatsAppConfigError names the one to set or fix."""
        token = _required(env, "WHATSAPP_TOKEN", "the access token of the app's system user")
        phone_number_id = _required(
            env, "WHATSAPP_PHONE_NUMBER_ID", "the Phone number ID from the app's WhatsApp > API Setup page"
        )
        if not phone_number_id.isdigit():
            raise WhatsAppConfigError(
                "WHATSAPP_PHONE_NUMBER_ID must be the numeric Phone number ID (digits only), "
                f"not the phone number itself; got {phone_number_id!r}"
            )
        # Without the app secret nobody could tell Meta's webhook requests from forged ones.
        app_secret = _required(
            env, "WHATSAPP_APP_SECRET", "the App secret (App settings > Basic) that signs Meta's webhooks"
        )
        verify_token = _required(
            env, "WHATSAPP_VERIFY_TOKEN", "the Verify token you enter when subscribing the webhook"
        )
        api_base = env.get("WHATSAPP_API_BASE", "").strip().rstrip("/") or DEFAULT_API_BASE
        parts = urlsplit(api_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise WhatsAppConfigError(
                f"WHATSAPP_API_BASE must be an http:// or https:// address, got {api_base!r}"
            )
        return cls(token, phone_number_id, app_secret, verify_token, api_base)
