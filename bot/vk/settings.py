"""VK settings from the environment: the community's token and id, the API base, the Callback API's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from wiring.settings import SettingsError

DEFAULT_API_BASE = "https://api.vk.com"
# Community tokens are either "vk1.a." and a long base64url tail, or (older ones) 85 hex digits: anything
# shorter or with other characters is a paste gone wrong, and VK would only answer "invalid access_token".
_TOKEN = re.compile(r"^(?:vk1\.a\.[A-Za-z0-9_.\-]{20,}|[A-Za-z0-9_.\-]{60,})$")
WHERE_TOKENS_ARE = "the community's Manage → API usage → Access tokens"


class VkConfigError(SettingsError):
    """A VK setting is missing or malformed; the message says what to set."""


@dataclass(frozen=True, slots=True)
class VkSettings:
    """Where and how to reach VK as one community."""

    # Kept out of repr(): settings end up in logs and tracebacks.
    token: str = field(repr=False)
    group_id: int
    api_base: str = DEFAULT_API_BASE
    callback_secret: str | None = field(default=None, repr=False)
    confirmation_code: str | None = None

    @property
    def callback_configured(self) -> bool:
        """Whether the Callback API can be served: both its secret and its confirmation code are set."""
        return bool(self.callback_secret and self.confirmation_code)

    @property
    def method_url(self) -> str:
        """The base vkbottle appends method names to."""
        return f"{self.api_base}/method/"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VkSettings:
        """Read VK_GROUP_TOKEN, VK_GROUP_ID, VK_API_BASE, VK_CALLBACK_SECRET and VK_CONFIRMATION_CODE."""
        return cls(
            _token(env.get("VK_GROUP_TOKEN", "").strip()),
            _group_id(env.get("VK_GROUP_ID", "").strip()),
            _api_base(env.get("VK_API_BASE", "").strip()),
            *_callback(
                env.get("VK_CALLBACK_SECRET", "").strip(), env.get("VK_CONFIRMATION_CODE", "").strip()
            ),
        )


def _token(token: str) -> str:
    if not token:
        raise VkConfigError(
            "VK_GROUP_TOKEN is not set: create a community token allowed to send messages in "
            f"{WHERE_TOKENS_ARE}"
        )
    if not _TOKEN.match(token):
        raise VkConfigError(
            "VK_GROUP_TOKEN does not look like a community token (vk1.a.… or 60+ letters, digits, - or _); "
            f"copy it again from {WHERE_TOKENS_ARE}"
        )
    return token


def _group_id(value: str) -> int:
    if not value:
        raise VkConfigError(
            "VK_GROUP_ID is not set: put the community's id there (123456 for vk.com/club123456)"
        )
    if not value.isascii() or not value.isdigit() or int(value) == 0:
        raise VkConfigError(
            f"VK_GROUP_ID must be the community's id in digits (123456 for vk.com/club123456), got {value!r}"
        )
    return int(value)


def _api_base(value: str) -> str:
    base = value.rstrip("/").removesuffix("/method") or DEFAULT_API_BASE
    if not base.startswith(("http://", "https://")):
        raise VkConfigError(f"VK_API_BASE must start with http:// or https://, got {value!r}")
    return base


def _callback(secret: str, code: str) -> tuple[str | None, str | None]:
    if bool(secret) != bool(code):
        missing = "VK_CONFIRMATION_CODE" if secret else "VK_CALLBACK_SECRET"
        raise VkConfigError(
            f"the Callback API needs both VK_CALLBACK_SECRET and VK_CONFIRMATION_CODE: set {missing} too "
            "(from the community's Manage → API usage → Callback API), or neither for long polling"
        )
    return secret or None, code or None
