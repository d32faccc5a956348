"""The WhatsApp webhook: Meta's verification handshake (GET) and signed event posts (POST).

Every POST must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>`;
without it, or with a wrong one, the request is refused with 401 and nothing in it is read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

from aiohttp import web

from bot.channels.webhook import Inbound, WebhookResult
from bot.whatsapp.inbound import CHANNEL, MalformedEnvelope, read_envelope
from bot.whatsapp.settings import WhatsAppSettings
from dialogs.safetext import loads_clean

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is "sha256=" and the HMAC-SHA256 of `body` with `secret` (constant-time compare)."""
    if not header:
        return False
    expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


class WhatsAppWebhook:
    """Reads WhatsApp Cloud API webhook requests for one business phone number."""

    channel = CHANNEL
    path = WEBHOOK_PATH

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.phone_number_id = settings.phone_number_id
        self._secret = settings.app_secret.encode()
        self._verify_token = settings.verify_token.encode()

    async def read(self, request: web.Request) -> WebhookResult:
        """The messages and receipts of a genuine POST; the challenge for a genuine handshake; else 4xx."""
        if request.method == "GET":
            return self.verify(request.query)
        if request.method != "POST":
            return WebhookResult(status=405, body="method not allowed")
        body = await request.read()
        if not signature_ok(self._secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("refused a WhatsApp webhook post with a missing or wrong signature")
            return WebhookResult(status=401, body="bad signature")
        try:
            # Meta escapes non-ASCII as \uXXXX: a lone surrogate (half an emoji) is read as U+FFFD.
            envelope = read_envelope(loads_clean(body.decode("utf-8", "replace")), self.phone_number_id)
        except (ValueError, RecursionError, MalformedEnvelope) as exc:
            log.warning("refused a malformed WhatsApp webhook post: %s", str(exc).splitlines()[0][:200])
            return WebhookResult(status=400, body="malformed")
        inbound = tuple(Inbound(message) for message in envelope.messages)
        return WebhookResult(inbound=inbound, receipts=tuple(envelope.receipts))

    def verify(self, query: Mapping[str, str]) -> WebhookResult:
        """Meta's subscription handshake: the challenge back when the verify token is ours, else 403."""
        token = query.get("hub.verify_token", "").encode("utf-8", "replace")
        challenge = query.get("hub.challenge", "")
        if (
            query.get("hub.mode") == "subscribe"
            and challenge
            and hmac.compare_digest(token, self._verify_token)
        ):
            log.warning("WhatsApp webhook verified by Meta")
            return WebhookResult(body=challenge)
        log.warning("refused a WhatsApp webhook verification with a wrong verify token")
        return WebhookResult(status=403, body="forbidden")
