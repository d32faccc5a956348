"""MAX's webhook as a reader: the secret header checked first, then one update parsed with maxapi."""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from bot.channels.webhook import Inbound, WebhookResult
from bot.max.inbound import CHANNEL, UPDATE_TYPES, incoming, parse_update
from dialogs.safetext import clean_json_body

WEBHOOK_PATH = "/max/webhook"
SECRET_HEADER = "X-Max-Bot-Api-Secret"


class MaxWebhookReader:
    """Reads MAX's webhook POSTs (one update each); without the subscription's secret, 403 and nothing
    read."""

    channel = CHANNEL
    path = WEBHOOK_PATH

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a MAX webhook needs the secret its subscription was made with")
        self.secret = secret.encode()

    async def read(self, request: web.Request) -> WebhookResult:
        """The update's message and the button press to answer, if any."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.secret):
            return WebhookResult(status=403, body="wrong secret")
        if request.method != "POST":
            return WebhookResult(status=405, body="POST only")
        try:
            # Leniently: a lone surrogate escape must not cost the client's message (cleaned once here).
            raw = json.loads(clean_json_body(await request.read()))
        except ValueError:
            return WebhookResult(status=400, body="malformed update")
        update = parse_update(raw)
        if update is None:
            known = isinstance(raw, dict) and raw.get("update_type") in UPDATE_TYPES
            return (
                WebhookResult(status=400, body="malformed update") if known else WebhookResult(body="ignored")
            )
        message, callback_id = incoming(update)
        if message is None:
            return WebhookResult(body="ignored")
        return WebhookResult(inbound=(Inbound(message, callback_id),))
