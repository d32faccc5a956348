"""A pywa_async client pointed at the Graph API base of the settings (Meta's, a proxy or a stand-in)."""

from __future__ import annotations

import httpx
from pywa_async.api import GraphAPIAsync
from pywa_async.client import WhatsApp

from bot.whatsapp.settings import WhatsAppSettings

# A Graph API call is answered within a second or two; a stuck connection must not hold a chat for long.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Requests in flight at once, one connection each: at Meta's ~0.3 s a call, 32 carry more than the Cloud
# API's default 80 messages a second. More only cost: httpx's pool walks every connection and every
# waiting request on each request (quadratic), measured 2.6 ms of CPU a send with 32, 4.9 ms with 100.
MAX_IN_FLIGHT = 32
CONNECTIONS = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)


class RelocatedGraphAPI(GraphAPIAsync):
    """pywa's Graph API calls, sent to the session's own base URL when it has one: pywa itself always
    sets Meta's address, whatever the session says."""

    def __init__(self, token: str, session: httpx.AsyncClient, api_version: float) -> None:
        base = str(session.base_url).rstrip("/")
        super().__init__(token=token, session=session, api_version=api_version)
        if base:
            session.base_url = f"{base}/v{api_version}"


class RelocatedWhatsApp(WhatsApp):
    """pywa_async's client over `RelocatedGraphAPI`."""

    _api_cls = RelocatedGraphAPI


def make_client(settings: WhatsAppSettings) -> tuple[WhatsApp, httpx.AsyncClient]:
    """The client and its HTTP session (the caller closes it)."""
    session = httpx.AsyncClient(base_url=settings.api_base, timeout=TIMEOUT, limits=CONNECTIONS)
    client = RelocatedWhatsApp(
        phone_id=settings.phone_number_id,
        token=settings.token,
        session=session,
        verify_token=settings.verify_token,
        app_secret=settings.app_secret,
    )
    return client, session
