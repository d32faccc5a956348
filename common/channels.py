"""What differs between the channels a client writes in: their names for people, how long after the
client's last message a free-form reply is allowed, who vouches for what, and who delivers replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.names import COMPANY_SOURCE_PREFIX, Channel, contact_source


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """One channel as the console and the desk see it."""

    name: str
    title: str
    # A free-form reply is allowed only this long after the client's last message (WhatsApp's customer
    # service window; outside it only an approved template); None: no such limit.
    reply_window: timedelta | None = None
    # The messenger names the number of the sender's own account on every message (WhatsApp's wa_id),
    # so IncomingMessage.sender_phone from it is verified; from any other channel it is ignored.
    vouches_sender_phone: bool = False
    # The channel's page reads new messages itself (the web chat): nothing waits in the outbox for it.
    self_delivering: bool = False
    # Messages a second the platform lets a bot send to many chats (campaigns keep below it); 0: none.
    broadcast_per_s: float = 0.0


CHANNELS: dict[str, ChannelFacts] = {
    # Telegram: about 30 messages a second overall; VK: 20 API calls a second for a community token;
    # MAX: about 30 requests a second; WhatsApp Cloud API: 80 messages a second by default.
    Channel.TELEGRAM: ChannelFacts(Channel.TELEGRAM, "Telegram", broadcast_per_s=30.0),
    Channel.VK: ChannelFacts(Channel.VK, "ВКонтакте", broadcast_per_s=20.0),
    Channel.MAX: ChannelFacts(Channel.MAX, "MAX", broadcast_per_s=30.0),
    Channel.WHATSAPP: ChannelFacts(
        Channel.WHATSAPP,
        "WhatsApp",
        reply_window=timedelta(hours=24),
        vouches_sender_phone=True,
        broadcast_per_s=80.0,
    ),
    Channel.WEB: ChannelFacts(Channel.WEB, "веб-чат", self_delivering=True),
}


def facts(channel: str) -> ChannelFacts:
    """The facts of a channel; one this table does not know (a test's, the terminal) has no limits."""
    return CHANNELS.get(channel) or ChannelFacts(channel, channel)


def title(channel: str) -> str:
    """How operators read the channel's name: «ВКонтакте», «веб-чат»."""
    return facts(channel).title


def window_closes(channel: str, last_in: datetime | None) -> datetime | None:
    """When the channel stops taking free-form replies after the client's last message at `last_in`;
    None when it never does. A client who never wrote there has no window open at all."""
    window = facts(channel).reply_window
    if window is None:
        return None
    if last_in is None:
        return datetime.min.replace(tzinfo=UTC)
    return last_in + window


def window_hours(channel: str) -> int:
    """The length of the channel's reply window in whole hours (0 without one), for messages to people."""
    window = facts(channel).reply_window
    return int(window.total_seconds() // 3600) if window else 0


def source_title(source: str) -> str:
    """Who vouched for an identity, as an operator reads it after «подтверждён»."""
    if source.startswith(COMPANY_SOURCE_PREFIX):
        return f"компанией ({source.removeprefix(COMPANY_SOURCE_PREFIX)})"
    contact = contact_source("")
    if source.endswith(contact):
        return f"контактом {title(source.removesuffix(contact))}"
    if source in CHANNELS:
        return f"аккаунтом {title(source)}"
    return source


def vouched_by(channel: str, source: str) -> bool:
    """Whether the channel itself vouched for an identity of this source (its contact, its account)."""
    return source in (channel, contact_source(channel))
