"""The Callback API: VK posts each event as JSON with the community's secret in it and wants "ok" back.

The first request, {"type": "confirmation"}, is answered with the confirmation code; any other without
the right secret (or for another community) gets 403 and nothing in it is read.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.channels.webhook import MAX_WEBHOOK_BYTES, WebhookResult
from bot.vk.inbound import CHANNEL, permission_change, read_update
from dialogs.safetext import loads_clean

log = logging.getLogger(__name__)
CALLBACK_PATH = "/vk/callback"


class VkCallbackReader:
    """Checks and reads the Callback API's requests for one community."""

    channel = CHANNEL
    path = CALLBACK_PATH

    def __init__(self, group_id: int, secret: str, confirmation_code: str) -> None:
        if not secret or not confirmation_code:
            raise ValueError("the Callback API needs a secret and a confirmation code")
        self.group_id = group_id
        self._secret = secret.encode()
        self.confirmation_code = confirmation_code

    async def read(self, request: web.Request) -> WebhookResult:
        """The client's message in the request; 403 when it is not VK's, 400 when it is not an event."""
        if request.method != "POST":
            return WebhookResult(status=405, body="POST only")
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            return WebhookResult(status=413, body="too large")
        try:
            event = loads_clean(await request.read())
        except (ValueError, UnicodeDecodeError):
            return WebhookResult(status=400, body="not JSON")
        if not isinstance(event, Mapping):
            return WebhookResult(status=400, body="not an event")
        return self.answer(event)

    def answer(self, event: Mapping[str, Any]) -> WebhookResult:
        """What one parsed event carries and what VK expects back."""
        if event.get("group_id") != self.group_id:
            return WebhookResult(status=403, body="wrong community")
        if event.get("type") == "confirmation":
            return WebhookResult(body=self.confirmation_code)
        secret = event.get("secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), self._secret):
            log.warning("refused a VK callback without the right secret")
            return WebhookResult(status=403, body="wrong secret")
        change = permission_change(event)
        if change is not None:
            log.info("VK user %s %s messages", change[0], "allowed" if change[1] else "denied")
        inbound = read_update(event)
        return WebhookResult(inbound=(inbound,) if inbound is not None else ())
