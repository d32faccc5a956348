"""WhatsApp's 24-hour customer service window: free-form messages only within 24 hours of the client's
last message (a template outside it). The last message of each chat is remembered as it arrives; what this
process did not see, a caller may look up (the messages table keeps every client message's time).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WINDOW = timedelta(hours=24)
# Chats remembered at most; a forgotten one is looked up, or left for WhatsApp to judge (131047).
REMEMBERED_CHATS = 100_000
OUTSIDE_WINDOW = "outside WhatsApp's 24-hour window (вне 24-часового окна WhatsApp: нужен шаблон)"

# The time of a chat's last client message, from storage; None when there is none.
LastInboundLookup = Callable[[str], Awaitable[datetime | None]]


@dataclass(frozen=True, slots=True)
class LastInbound:
    """A chat's latest client message: when WhatsApp says it was sent, and its wamid (for "typing…")."""

    at: datetime
    message_id: str


def is_open(last_inbound_at: datetime, now: datetime) -> bool:
    """Whether a free-form message may still be sent, given the client's last message time."""
    return now - last_inbound_at < WINDOW


class ChatWindows:
    """The latest client message of each recently active chat, in memory, newest chats kept."""

    def __init__(self, capacity: int = REMEMBERED_CHATS) -> None:
        self.capacity = capacity
        self._last: OrderedDict[str, LastInbound] = OrderedDict()

    def saw(self, chat_id: str, message_id: str, at: datetime) -> None:
        """Note a client's message; an older one arriving late (a redelivered webhook) changes nothing."""
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        known = self._last.get(chat_id)
        if known is not None and known.at > at:
            return
        self._last[chat_id] = LastInbound(at, message_id)
        self._last.move_to_end(chat_id)
        if len(self._last) > self.capacity:
            self._last.popitem(last=False)

    def last(self, chat_id: str) -> LastInbound | None:
        """The chat's latest client message this process saw, if it remembers one."""
        return self._last.get(chat_id)
