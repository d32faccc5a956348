"""What the misunderstood inbox asks of storage, and the values it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A client's message the bot did not understand (a `misunderstood` row), its text as stored."""

    id: int
    conversation_id: int
    reason: str  # common.names.NOT_UNDERSTOOD or a handoff reason (stuck, missed_point)
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InboxSlice:
    """The newest misunderstood messages of a period, and how many the period holds in all."""

    messages: list[InboxMessage]
    total: int


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One message of a conversation, either way, its text as stored."""

    id: int
    direction: str  # common.names.Direction
    author: str  # common.names.Author, or the account name of the person who wrote it
    text: str
    attachment: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Transcript:
    """A conversation with something misunderstood in it: its messages (the first `TRANSCRIPT_LIMIT`) and
    what was misunderstood."""

    conversation_id: int
    channel: str
    lines: list[TranscriptLine]
    total: int
    misheard: list[InboxMessage]


class Inbox(Protocol):
    """The misunderstood inbox's reads."""

    def misheard(self, since: datetime, until: datetime, limit: int) -> InboxSlice:
        """The misunderstood messages with since <= at < until, the newest `limit` of them first."""
        ...

    def transcript(self, conversation_id: int) -> Transcript | None:
        """A conversation's messages and misunderstood ones; None unless something in it was misunderstood
        (the inbox opens no other conversation)."""
        ...
